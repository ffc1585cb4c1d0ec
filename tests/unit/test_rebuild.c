/* The pool's failure handling through a fake server connection
 * (fake_srvconn.c): a server going down, re-replication, drain, an aborted
 * rebuild, synchronous post failures.  Deterministic: no processes, no
 * fabric, the placement's random source is the test's. */
#include "cu_main.h"
#include "evloop.h"
#include "fake_srvconn.h"
#include "log.h"
#include "pool_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SLAB_BYTES (256u << 10)     /* 64 pages */
#define NPAGES 40
#define MAXPAGES 64                 /* write_pages writes at most this many at once */

static struct evloop *el;
static struct pool *p;
static uint8_t data[MAXPAGES][POOL_PAGE_SIZE];
static pool_page_t pages[MAXPAGES];

struct op { bool done; int status; pool_page_t page; };

static void wdone(void *arg, int status, pool_page_t page)
{
    struct op *o = arg;
    o->done = true;
    o->status = status;
    o->page = page;
}

static void rdone(void *arg, int status)
{
    struct op *o = arg;
    o->done = true;
    o->status = status;
}

static int seq_rnd(void)
{
    static unsigned x = 12345;
    x = x * 1103515245u + 12345u;
    return (int)(x >> 16 & 0x7fff);
}

/* Runs the loop until *flag (NULL: n turns) or about ms. */
static bool run_until(const bool *flag, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while ((!flag || !*flag) && evloop_now_ms() < end)
        evloop_run_once(el, 10);
    return !flag || *flag;
}

static void mkpool(int nsrv, int replicas)
{
    struct pool_opts o;
    static char names[POOL_MAX_SERVERS][16];
    uint8_t key[POOL_KEY_BYTES] = { 1 };
    char err[256];
    pool_opts_init(&o);
    o.nservers = nsrv;
    for (int i = 0; i < nsrv; i++) {
        snprintf(names[i], sizeof(names[i]), "fake:%d", i);
        o.servers[i] = names[i];
    }
    o.replicas = replicas;
    o.slab_size = SLAB_BYTES;
    p = pool_new(el, &o, key, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p->rnd = seq_rnd;
    CU_ASSERT_EQUAL(pool_live_servers(p), nsrv);
}

static void endpool(void)
{
    pool_free(p);
    p = NULL;
}

static void write_pages(unsigned n, unsigned seed)
{
    struct op ops[MAXPAGES] = { { 0 } };
    CU_ASSERT_FATAL(n >= 1 && n <= MAXPAGES);
    for (unsigned i = 0; i < n; i++) {
        for (unsigned b = 0; b < POOL_PAGE_SIZE; b++)
            data[i][b] = (uint8_t)(seed * 131 + i * 17 + b * 7 + (b >> 8));
        pool_write_new(p, data[i], wdone, &ops[i]);
    }
    CU_ASSERT_TRUE_FATAL(run_until(&ops[n - 1].done, 2000));
    for (unsigned i = 0; i < n; i++) {
        CU_ASSERT_TRUE(ops[i].done);
        CU_ASSERT_EQUAL(ops[i].status, 0);
        pages[i] = ops[i].page;
    }
}

static int read_page(pool_page_t pg, uint8_t *out)
{
    struct op o = { 0 };
    pool_read(p, pg, out, rdone, &o);
    CU_ASSERT_FALSE(o.done);
    CU_ASSERT_TRUE_FATAL(run_until(&o.done, 2000));
    return o.status;
}

static int good(const struct pslab *ps)
{
    int n = 0;
    for (int i = 0; i < ps->nrep; i++)
        n += ps->rep[i].ok;
    return n;
}

static bool holds_good(const struct pslab *ps, int srv)
{
    for (int i = 0; i < ps->nrep; i++)
        if (ps->rep[i].ok && ps->rep[i].srv == srv)
            return true;
    return false;
}

/* The one invariant no failure may break: a replica the pool reads from is
 * a slab its server really holds, with every page the pool stored there. */
static void check_replicas(unsigned n)
{
    for (uint32_t k = 0; k < p->nslabs; k++) {
        const struct pslab *ps = &p->slabs[k];
        if (!ps->used || !ps->ready)
            continue;
        for (int r = 0; r < ps->nrep; r++) {
            const struct replica *rp = &ps->rep[r];
            if (!rp->ok)
                continue;
            for (unsigned i = 0; i < n; i++) {
                uint32_t slab, pg;
                if (!split_page(p, pages[i], &slab, &pg) || slab != k)
                    continue;
                const uint8_t *b = fake_srv_page(&p->srv[rp->srv], rp->id, pg);
                CU_ASSERT_PTR_NOT_NULL_FATAL(b);
                CU_ASSERT_EQUAL(memcmp(b, data[i], POOL_PAGE_SIZE), 0);
            }
        }
    }
}

static bool healed(void)
{
    struct pool_stats st;
    pool_get_stats(p, &st);
    return st.degraded_slabs == 0 && !st.rebuilding;
}

static bool wait_healed(int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (!healed() && evloop_now_ms() < end)
        evloop_run_once(el, 10);
    return healed();
}

/* A server marked down leaves its slabs degraded; the rebuild copies every
 * page to the third server, and redundancy is back. */
static void test_rebuild_after_down(void)
{
    mkpool(3, 2);
    write_pages(NPAGES, 1);
    struct pslab *ps = &p->slabs[0];
    CU_ASSERT_EQUAL_FATAL(ps->nrep, 2);
    CU_ASSERT_NOT_EQUAL(ps->rep[0].srv, ps->rep[1].srv);
    int lost = ps->rep[0].srv, kept = ps->rep[1].srv, third = 3 - lost - kept;
    srv_down(&p->srv[lost], "test");
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.degraded_slabs, 1);
    CU_ASSERT_EQUAL(st.lost_slabs, 0);
    CU_ASSERT_TRUE(wait_healed(3000));
    ps = &p->slabs[0];
    CU_ASSERT_EQUAL(good(ps), 2);
    CU_ASSERT_TRUE(holds_good(ps, kept));
    CU_ASSERT_TRUE(holds_good(ps, third));
    CU_ASSERT_FALSE(holds_good(ps, lost));
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.rereplicated_pages, NPAGES);
    check_replicas(NPAGES);
    /* With the surviving original gone too, every page reads from the copy. */
    srv_down(&p->srv[kept], "test");
    uint8_t buf[POOL_PAGE_SIZE];
    for (unsigned i = 0; i < NPAGES; i++) {
        CU_ASSERT_EQUAL(read_page(pages[i], buf), 0);
        CU_ASSERT_EQUAL(memcmp(buf, data[i], POOL_PAGE_SIZE), 0);
    }
    endpool();
}

/* Drain moves every replica off the server, frees them there and shows
 * "drained"; the data stays readable from the others. */
static void test_drain(void)
{
    mkpool(3, 2);
    write_pages(NPAGES, 2);
    int victim = p->slabs[0].rep[0].srv;
    char err[128];
    CU_ASSERT_EQUAL(pool_drain(p, "fake:9", true, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL_FATAL(pool_drain(p, p->srv[victim].addr, true, err, sizeof(err)), 0);
    struct pool_server_info info[3];
    uint64_t end = evloop_now_ms() + 3000;
    do {
        evloop_run_once(el, 10);
        pool_get_servers(p, info, 3);
    } while (strcmp(info[victim].state, "drained") && evloop_now_ms() < end);
    CU_ASSERT_STRING_EQUAL(info[victim].state, "drained");
    CU_ASSERT_EQUAL(info[victim].replicas, 0);
    run_until(NULL, 50);        /* the SLAB_FREE's answer */
    CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[victim]), 0);
    for (uint32_t k = 0; k < p->nslabs; k++)
        if (p->slabs[k].used && p->slabs[k].ready) {
            CU_ASSERT_EQUAL(good(&p->slabs[k]), 2);
            CU_ASSERT_FALSE(holds_good(&p->slabs[k], victim));
        }
    check_replicas(NPAGES);
    /* New writes avoid it too. */
    write_pages(NPAGES, 3);
    pool_get_servers(p, info, 3);
    CU_ASSERT_STRING_EQUAL(info[victim].state, "drained");
    CU_ASSERT_EQUAL(pool_drain(p, p->srv[victim].addr, false, err, sizeof(err)), 0);
    pool_get_servers(p, info, 3);
    CU_ASSERT_STRING_EQUAL(info[victim].state, "up");
    endpool();
}

/* The rebuild's target dies with copies in flight: the rebuild stops, never
 * finishes after the abort and never adds the aborted copy; once a server
 * is back, a new rebuild restores redundancy. */
static void test_abort_target_dies(void)
{
    mkpool(3, 2);
    write_pages(NPAGES, 4);
    int lost = p->slabs[0].rep[0].srv, kept = p->slabs[0].rep[1].srv, target = 3 - lost - kept;
    srv_down(&p->srv[lost], "test");
    /* Let the target's SLAB_ALLOC through, then hold its page writes. */
    uint64_t end = evloop_now_ms() + 2000;
    while (!p->rb.allocated && evloop_now_ms() < end)
        evloop_run_once(el, 10);
    CU_ASSERT_TRUE_FATAL(p->rb.active && p->rb.allocated);
    CU_ASSERT_EQUAL(p->rb.target, target);
    fake_srv_hold(&p->srv[target], true);
    end = evloop_now_ms() + 2000;
    while (fake_srv_held(&p->srv[target], SOP_CWRITE) < 8 && evloop_now_ms() < end)
        evloop_run_once(el, 10);
    CU_ASSERT_TRUE_FATAL(fake_srv_held(&p->srv[target], SOP_CWRITE) >= 8);
    CU_ASSERT_EQUAL(fake_srv_release_kind(&p->srv[target], SOP_CWRITE, 4), 4);
    uint64_t copied = p->rerep_pages;
    CU_ASSERT_EQUAL(copied, 4);
    /* Reads of the source still in flight must not revive it either. */
    fake_srv_hold(&p->srv[kept], true);
    run_until(NULL, 30);
    srv_down(&p->srv[target], "test: target dies mid-copy");
    CU_ASSERT_TRUE(p->rb.aborting || !p->rb.active);
    fake_srv_hold(&p->srv[kept], false);
    run_until(NULL, 300);
    CU_ASSERT_FALSE(p->rb.active);
    struct pslab *ps = &p->slabs[0];
    CU_ASSERT_EQUAL(good(ps), 1);
    CU_ASSERT_FALSE(holds_good(ps, target));
    CU_ASSERT_TRUE(holds_good(ps, kept));
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.degraded_slabs, 1);
    check_replicas(NPAGES);
    /* The target comes back (a fresh incarnation): the rebuild runs again, from scratch. */
    fake_srv_hold(&p->srv[target], false);
    fake_srv_restart(&p->srv[target], false);
    CU_ASSERT_TRUE(wait_healed(3000));
    ps = &p->slabs[0];
    CU_ASSERT_EQUAL(good(ps), 2);
    CU_ASSERT_TRUE(holds_good(ps, target));
    check_replicas(NPAGES);
    endpool();
}

/* The rebuild's only source fails synchronously (the transport refuses the
 * post of its first page read): the rebuild is aborted inside its own copy
 * loop and must not then finish and add a copy that has none of the pages
 * (a replica whose slab the abort just freed). */
static void test_abort_source_fails_in_loop(void)
{
    mkpool(3, 2);
    write_pages(1, 5);
    int lost = p->slabs[0].rep[0].srv, kept = p->slabs[0].rep[1].srv, target = 3 - lost - kept;
    srv_down(&p->srv[lost], "test");
    fake_srv_fail_posts(&p->srv[kept], 1);      /* its next post is the rebuild's page read */
    run_until(NULL, 400);
    CU_ASSERT_EQUAL(p->srv[kept].state, SRV_DOWN);
    struct pslab *ps = &p->slabs[0];
    CU_ASSERT_FALSE(holds_good(ps, target));
    CU_ASSERT_EQUAL(good(ps), 0);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.lost_slabs, 1);
    CU_ASSERT_EQUAL(st.rereplicated_pages, 0);
    check_replicas(1);
    uint8_t buf[POOL_PAGE_SIZE];
    CU_ASSERT_EQUAL(read_page(pages[0], buf), -EIO);    /* lost: never zeros, never garbage */
    endpool();
}

/* A write's post fails synchronously on the first replica, and that failure
 * chain (a read in flight there moves to the second replica, whose post
 * fails too) takes the second replica's server down before the write's loop
 * over replicas reaches it: the write must still complete (-EIO), not wait
 * for ever. */
static void test_sync_failure_chain_write(void)
{
    mkpool(2, 2);
    write_pages(1, 6);
    int first = p->slabs[0].rep[0].srv, second = p->slabs[0].rep[1].srv;
    fake_srv_hold(&p->srv[first], true);
    uint8_t buf[POOL_PAGE_SIZE];
    struct op r = { 0 };
    pool_read(p, pages[0], buf, rdone, &r);         /* goes to the first replica, and waits there */
    CU_ASSERT_EQUAL(fake_srv_held(&p->srv[first], SOP_READ), 1);
    fake_srv_fail_posts(&p->srv[first], 1);
    fake_srv_fail_posts(&p->srv[second], 1);
    struct op w = { 0 };
    static uint8_t page[POOL_PAGE_SIZE];
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE(run_until(&w.done, 500));
    CU_ASSERT_EQUAL(w.status, -EIO);
    CU_ASSERT_TRUE(run_until(&r.done, 500));
    CU_ASSERT_EQUAL(r.status, -EIO);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.pages_stored, 1);            /* the failed write's slot went back */
    endpool();
}

/* The same kind of chain, growing the slab table under launch_run's loop: a
 * write's post fails on its slab's first replica X; flushing X fails the
 * SLAB_ALLOC of the slab being built there, which completes that slab with
 * its other replica; the writes waiting for it fill it and need one more,
 * and the table (16 entries, all used) is reallocated.  The loop then goes
 * on to the write's second replica: it must not read the old table (under
 * ASan, a use after free). */
static void test_sync_failure_chain_grows_table(void)
{
    static uint8_t many[100][POOL_PAGE_SIZE];
    fake_srv_set_capacity(64);
    mkpool(3, 2);
    for (int k = 0; k < 15; k++)
        write_pages(64, 10 + (unsigned)k);
    CU_ASSERT_EQUAL_FATAL(p->nslabs, 16);
    struct pslab *a = &p->slabs[3];
    CU_ASSERT_TRUE_FATAL(a->used && a->ready && a->slots.nfree == 0);
    int x = a->rep[0].srv, z = a->rep[1].srv;
    /* The 16th slab is built on x (held) and the third server; z takes no new slab. */
    p->srv[z].full = true;
    fake_srv_hold(&p->srv[x], true);
    struct op ops[100] = { { 0 } };
    for (int i = 0; i < 100; i++)
        pool_write_new(p, many[i], wdone, &ops[i]);
    run_until(NULL, 15);    /* less than WRITE_LATE_MS: after it the build goes on without x (allocs_late) */
    CU_ASSERT_EQUAL_FATAL(p->building, 15);
    CU_ASSERT_EQUAL(fake_srv_held(&p->srv[x], SOP_ALLOC), 1);
    /* One free slot in slab 3, the next write's; its post to x fails. */
    pool_free_page(p, make_page(3, 5));
    fake_srv_fail_posts(&p->srv[x], 1);
    struct op w = { 0 };
    pool_write_new(p, many[0], wdone, &w);
    CU_ASSERT_TRUE(run_until(&w.done, 500));
    CU_ASSERT_EQUAL(w.status, 0);                   /* z took it */
    CU_ASSERT_TRUE(p->nslabs > 16);                 /* the table did grow under it */
    CU_ASSERT_TRUE(run_until(&ops[99].done, 1000));
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(ops[i].status, 0);
    fake_srv_set_capacity(16);
    endpool();
}

/* A server cut off and back as the same incarnation still holds the
 * replicas the pool stopped trusting: with R good copies elsewhere by then
 * (re-replicated meanwhile) they are freed there, not revalidated. */
static void test_orphans_freed_on_return(void)
{
    mkpool(3, 2);
    write_pages(NPAGES, 9);
    int cut = p->slabs[0].rep[0].srv;
    CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[cut]), 1);
    srv_down(&p->srv[cut], "test: cut");
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], cut));
    CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[cut]), 1);  /* kept while it is away */
    fake_srv_restart(&p->srv[cut], true);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[cut]), 0);
    check_replicas(NPAGES);
    endpool();
}

/* Writes keep completing while a server dies under them, and go on to the
 * survivors. */
static void test_writes_survive_down(void)
{
    mkpool(3, 2);
    write_pages(NPAGES, 7);
    srv_down(&p->srv[p->slabs[0].rep[0].srv], "test");
    write_pages(NPAGES, 8);
    CU_ASSERT_TRUE(wait_healed(3000));
    check_replicas(NPAGES);
    endpool();
}

/* Reads every page of pages[0..n) back and compares it with what was written. */
static void read_all(unsigned n)
{
    static uint8_t buf[POOL_PAGE_SIZE];
    for (unsigned i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(read_page(pages[i], buf), 0);
        CU_ASSERT_EQUAL(memcmp(buf, data[i], POOL_PAGE_SIZE), 0);
    }
}

/* Every replica of a slab is unreachable at once (a switch flap, a stalled
 * host, any flap with replicas = 1) and comes back as the same server
 * process: its copies are intact and must be read again, not freed. */
static void flap_all(int nsrv, int replicas)
{
    mkpool(nsrv, replicas);
    write_pages(NPAGES, 20);
    unsigned held[POOL_MAX_SERVERS];
    for (int i = 0; i < nsrv; i++)
        held[i] = fake_srv_slabs(&p->srv[i]);
    for (int i = 0; i < nsrv; i++)
        srv_down(&p->srv[i], "test: flap");
    run_until(NULL, 200);
    for (int i = 0; i < nsrv; i++)
        fake_srv_restart(&p->srv[i], true);
    run_until(NULL, 100);
    for (int i = 0; i < nsrv; i++)
        CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[i]), held[i]);   /* nothing freed */
    read_all(NPAGES);
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_EQUAL(good(&p->slabs[0]), replicas);
    check_replicas(NPAGES);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.lost_slabs, 0);
    CU_ASSERT_EQUAL(st.rereplicated_pages, 0);    /* they missed nothing: nothing to copy */
    endpool();
}

static void test_flap_all_r1(void) { flap_all(3, 1); }
static void test_flap_all_r2(void) { flap_all(2, 2); }
static void test_flap_all_r3(void) { flap_all(3, 3); }

/* One replica is away while writes go on, then the other goes too; both come
 * back as the same processes.  The first one keeps every page it did not
 * miss, gets the ones it missed copied from the other, and nothing is lost:
 * the pages only the second one holds read back once it is back. */
static void test_flap_staggered(void)
{
    mkpool(2, 2);
    write_pages(NPAGES, 21);
    static uint8_t first[NPAGES][POOL_PAGE_SIZE];
    pool_page_t first_pages[NPAGES];
    memcpy(first, data, sizeof(first));
    memcpy(first_pages, pages, sizeof(first_pages));
    int a = p->slabs[0].rep[0].srv, b = p->slabs[0].rep[1].srv;
    srv_down(&p->srv[a], "test: a away");
    write_pages(20, 22);                    /* into slab 0's free slots, on b only */
    static uint8_t second[20][POOL_PAGE_SIZE];
    pool_page_t second_pages[20];
    memcpy(second, data, sizeof(second));
    memcpy(second_pages, pages, sizeof(second_pages));
    srv_down(&p->srv[b], "test: b away too");
    fake_srv_restart(&p->srv[a], true);
    run_until(NULL, 100);
    CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[a]), 1);
    fake_srv_restart(&p->srv[b], true);
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_EQUAL(good(&p->slabs[0]), 2);
    CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[a]), 1);
    CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[b]), 1);
    memcpy(data, first, sizeof(first));
    memcpy(pages, first_pages, sizeof(first_pages));
    read_all(NPAGES);
    check_replicas(NPAGES);
    memcpy(data, second, sizeof(second));
    memcpy(pages, second_pages, sizeof(second_pages));
    read_all(20);
    check_replicas(20);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.rereplicated_pages, 20);   /* only what a missed */
    /* With b gone for good now, a serves every page. */
    srv_down(&p->srv[b], "test: b dies");
    read_all(20);
    memcpy(data, first, sizeof(first));
    memcpy(pages, first_pages, sizeof(first_pages));
    read_all(NPAGES);
    endpool();
}

/* A server dies after answering the SLAB_ALLOC of a slab still being built
 * (its other replica's answer comes later): the replica there must not stay
 * good while every write of the slab misses it.  The server comes back as a
 * new process and hands the same slab id out again, for the pool's next
 * slab: no write or read of the first slab may land there. */
static void test_dies_during_slab_alloc(void)
{
    mkpool(2, 2);
    fake_srv_hold(&p->srv[0], true);
    fake_srv_hold(&p->srv[1], true);
    struct op ops[64] = { { 0 } };
    for (unsigned i = 0; i < 64; i++) {
        for (unsigned b = 0; b < POOL_PAGE_SIZE; b++)
            data[i][b] = (uint8_t)(23 * 131 + i * 17 + b * 7 + (b >> 8));
        pool_write_new(p, data[i], wdone, &ops[i]);
    }
    run_until(NULL, 30);
    CU_ASSERT_EQUAL_FATAL(fake_srv_held(&p->srv[0], SOP_ALLOC), 1);
    CU_ASSERT_EQUAL_FATAL(fake_srv_held(&p->srv[1], SOP_ALLOC), 1);
    CU_ASSERT_EQUAL(fake_srv_release_kind(&p->srv[0], SOP_ALLOC, 1), 1);
    srv_down(&p->srv[0], "test: dies after its SLAB_ALLOC answer");
    fake_srv_hold(&p->srv[1], false);
    CU_ASSERT_TRUE_FATAL(run_until(&ops[63].done, 2000));
    for (unsigned i = 0; i < 64; i++) {
        CU_ASSERT_EQUAL(ops[i].status, 0);
        pages[i] = ops[i].page;
    }
    struct pslab *ps = &p->slabs[0];
    CU_ASSERT_FALSE(holds_good(ps, 0));
    /* Back as a new process: it lost the slab, and hands its id out again. */
    fake_srv_hold(&p->srv[0], false);
    fake_srv_restart(&p->srv[0], false);
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], 0));
    check_replicas(64);
    read_all(64);
    static uint8_t keep[64][POOL_PAGE_SIZE];
    memcpy(keep, data, sizeof(keep));
    write_pages(10, 24);                    /* slab 0 is full: a new slab, on both servers */
    check_replicas(10);
    memcpy(data, keep, sizeof(keep));
    for (unsigned i = 0; i < 64; i++)
        pages[i] = ops[i].page;
    check_replicas(64);
    read_all(64);
    endpool();
}

/* The same, the server dying before it answered: the placeholder goes, the
 * slab is built on the other server, every write lands and reads back. */
static void test_dies_before_slab_alloc_answer(void)
{
    mkpool(2, 2);
    fake_srv_hold(&p->srv[0], true);
    struct op w = { 0 };
    static uint8_t page[POOL_PAGE_SIZE] = { 7 };
    pool_write_new(p, page, wdone, &w);
    run_until(NULL, 30);
    CU_ASSERT_EQUAL_FATAL(fake_srv_held(&p->srv[0], SOP_ALLOC), 1);
    srv_down(&p->srv[0], "test: dies before its SLAB_ALLOC answer");
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, 2000));
    CU_ASSERT_EQUAL(w.status, 0);
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], 0));
    fake_srv_hold(&p->srv[0], false);
    fake_srv_restart(&p->srv[0], false);
    CU_ASSERT_TRUE(wait_healed(3000));
    memcpy(data[0], page, sizeof(page));
    pages[0] = w.page;
    check_replicas(1);
    read_all(1);
    endpool();
}

/* Issue 13 item 4: a server stalls (SIGSTOP) with the pool's next slab's
 * SLAB_ALLOC unanswered: the slab goes on with the replica the other server
 * allocated (degraded), so the writes waiting for it complete in tens of ms,
 * not when the stalled server is declared down (2.5 s).  When the stalled
 * server answers at last, what it allocated is given back; re-replication
 * restores the second copy and every page reads back. */
static void test_slab_alloc_late(void)
{
    mkpool(2, 2);
    fake_srv_hold(&p->srv[0], true);
    struct op w[4] = { { 0 } };
    for (unsigned i = 0; i < 4; i++) {
        for (unsigned b = 0; b < POOL_PAGE_SIZE; b++)
            data[i][b] = (uint8_t)(41 * 131 + i * 17 + b * 7 + (b >> 8));
        pool_write_new(p, data[i], wdone, &w[i]);
    }
    uint64_t t0 = evloop_now_ms();
    bool done = run_until(&w[3].done, 1000);
    uint64_t took = evloop_now_ms() - t0;
    printf("\n    writes waiting for a slab, one SLAB_ALLOC unanswered: %llu ms ", (unsigned long long)took);
    CU_ASSERT_TRUE(done);
    CU_ASSERT(took < 200);
    if (!done) {
        srv_down(&p->srv[0], "test: declared down, as the heartbeat would");
        CU_ASSERT_TRUE_FATAL(run_until(&w[3].done, 2000));
    }
    for (unsigned i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(w[i].status, 0);
        pages[i] = w[i].page;
    }
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], 0));
    /* It resumes: it answers the given-up SLAB_ALLOC, and that slab is freed again. */
    fake_srv_hold(&p->srv[0], false);
    if (p->srv[0].state != SRV_UP)
        fake_srv_restart(&p->srv[0], true);
    CU_ASSERT_TRUE(wait_healed(3000));
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(fake_srv_slabs(&p->srv[0]), 1);        /* the re-replicated copy only */
    check_replicas(4);
    read_all(4);
    endpool();
}

/* A server known late takes no new slab: at QD 32 one slab built there per
 * 64 pages would cost the guest a late interval each time (one_kill_qd32_w's
 * p99).  Three servers, R = 2: once x is late, the next slabs go to the other two. */
static void test_no_slab_on_late_server(void)
{
    mkpool(3, 2);
    write_pages(4, 51);
    int x = p->slabs[0].rep[1].srv;
    fake_srv_hold(&p->srv[x], true);
    struct op w = { 0 };
    static uint8_t page[POOL_PAGE_SIZE] = { 9 };
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE(run_until(&w.done, 500));
    CU_ASSERT_TRUE(p->srv[x].late);
    /* 120 more pages: slab 0 fills, two more are built. */
    static uint8_t many[120][POOL_PAGE_SIZE];
    struct op ops[120] = { { 0 } };
    uint64_t t0 = evloop_now_ms();
    for (int i = 0; i < 120; i++) {
        memset(many[i], i + 1, POOL_PAGE_SIZE);
        pool_write_new(p, many[i], wdone, &ops[i]);
    }
    CU_ASSERT_TRUE(run_until(&ops[119].done, 1000));
    uint64_t took = evloop_now_ms() - t0;
    printf("\n    120 writes over new slabs with a server known late: %llu ms, SLAB_ALLOCs held there: %u ",
           (unsigned long long)took, fake_srv_held(&p->srv[x], SOP_ALLOC));
    CU_ASSERT_EQUAL(fake_srv_held(&p->srv[x], SOP_ALLOC), 0);
    for (uint32_t k = 1; k < p->nslabs; k++)
        for (int r = 0; p->slabs[k].used && r < p->slabs[k].nrep; r++)
            CU_ASSERT_NOT_EQUAL(p->slabs[k].rep[r].srv, x);
    for (int i = 0; i < 120; i++)
        CU_ASSERT_EQUAL(ops[i].status, 0);
    fake_srv_hold(&p->srv[x], false);
    CU_ASSERT_TRUE(wait_healed(3000));
    endpool();
}

/* The same when the late server has no page write of ours to be late on
 * (every slab of the pool lives elsewhere): its unanswered SLAB_ALLOC makes
 * it late, and the slabs after that are built without it. */
static void test_no_slab_on_late_server_allocs_only(void)
{
    mkpool(3, 2);
    int x = 0;
    fake_srv_hold(&p->srv[x], true);
    static uint8_t many[200][POOL_PAGE_SIZE];
    struct op ops[200] = { { 0 } };
    uint64_t t0 = evloop_now_ms();
    for (int i = 0; i < 200; i++) {
        memset(many[i], i + 1, POOL_PAGE_SIZE);
        pool_write_new(p, many[i], wdone, &ops[i]);
        if (i % 32 == 31)
            run_until(&ops[i].done, 1000);      /* QD 32: the next ones go after */
    }
    CU_ASSERT_TRUE(run_until(&ops[199].done, 2000));
    uint64_t took = evloop_now_ms() - t0;
    printf("\n    200 writes, 4 slabs, server 0 silent from the start: %llu ms ", (unsigned long long)took);
    CU_ASSERT_TRUE(took < 120);         /* one late interval, not one per slab */
    CU_ASSERT_TRUE(p->srv[x].late);
    for (int i = 0; i < 200; i++)
        CU_ASSERT_EQUAL(ops[i].status, 0);
    fake_srv_hold(&p->srv[x], false);
    CU_ASSERT_TRUE(wait_healed(3000));
    endpool();
}

struct adopted { int calls, status; uint32_t slab; };

static void adone(void *arg, int status, uint32_t slab)
{
    struct adopted *a = arg;
    a->calls++;
    a->status = status;
    a->slab = slab;
}

/* Adoption asks every server for the slab; the first post fails
 * synchronously (that server goes down inside the loop), and the second
 * server's answer is still out: the adoption must wait for it, end once,
 * and never run (or be freed) before every answer is in. */
static void test_adopt_post_fails_in_loop(void)
{
    mkpool(2, 2);
    fake_srv_fail_posts(&p->srv[0], 1);
    fake_srv_hold(&p->srv[1], true);
    struct adopted a = { 0 };
    pool_adopt(p, 0x1234, adone, &a);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(p->srv[0].state, SRV_DOWN);
    CU_ASSERT_EQUAL(fake_srv_held(&p->srv[1], SOP_CTL), 1);
    CU_ASSERT_EQUAL(a.calls, 0);                /* server 1 has not answered yet */
    fake_srv_hold(&p->srv[1], false);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(a.calls, 1);
    CU_ASSERT_EQUAL(a.status, -ENOENT);         /* nobody holds it (the fake knows no uid) */
    endpool();
}

struct ctl_seen { int calls; bool inside; };
static bool in_ctl_call;

static void ctl_done(void *arg, int srv, const struct proto_msg *reply)
{
    struct ctl_seen *c = arg;
    c->calls++;
    c->inside |= in_ctl_call;
}

/* A volume-metadata request whose post fails synchronously (volmeta.c
 * counts its claims, lists and puts the way adoption counted SLAB_FINDs):
 * pool_ctl says -1 and never calls back, inside the call or later; one
 * that went out is answered later, never inside the call. */
static void test_ctl_post_fails(void)
{
    mkpool(2, 2);
    struct proto_msg q = { .type = PROTO_META_LIST };
    struct ctl_seen c = { 0 };
    fake_srv_fail_posts(&p->srv[0], 1);
    in_ctl_call = true;
    int rc = pool_ctl(p, 0, &q, ctl_done, &c);
    in_ctl_call = false;
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(p->srv[0].state, SRV_DOWN);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(c.calls, 0);
    CU_ASSERT_FALSE(c.inside);
    in_ctl_call = true;
    rc = pool_ctl(p, 1, &q, ctl_done, &c);
    in_ctl_call = false;
    CU_ASSERT_EQUAL(rc, 0);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(c.calls, 1);
    CU_ASSERT_FALSE(c.inside);
    endpool();
}

/* A read to a replica whose server stalls (held: no answer) is hedged to
 * another replica after a few ms: the guest gets its page from there, once;
 * the stalled server's late answer, or its failure, changes nothing. */
static void test_hedged_read(void)
{
    mkpool(2, 2);
    write_pages(2, 30);
    int first = p->slabs[0].rep[0].srv;
    fake_srv_hold(&p->srv[first], true);
    uint8_t buf[POOL_PAGE_SIZE];
    struct op r = { 0 };
    uint64_t t0 = evloop_now_ms();
    pool_read(p, pages[0], buf, rdone, &r);
    CU_ASSERT_EQUAL(fake_srv_held(&p->srv[first], SOP_READ), 1);   /* it went to the first replica */
    CU_ASSERT_TRUE(run_until(&r.done, 200));
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(memcmp(buf, data[0], POOL_PAGE_SIZE), 0);
    CU_ASSERT_TRUE(evloop_now_ms() - t0 < 50);
    /* The late answer lands after the request was answered and reused. */
    struct op r2 = { 0 };
    uint8_t buf2[POOL_PAGE_SIZE];
    fake_srv_hold(&p->srv[first], false);
    pool_read(p, pages[1], buf2, rdone, &r2);
    r.done = false;
    CU_ASSERT_TRUE(run_until(&r2.done, 200));
    run_until(NULL, 30);
    CU_ASSERT_FALSE(r.done);                    /* never called back twice */
    CU_ASSERT_EQUAL(r2.status, 0);
    CU_ASSERT_EQUAL(memcmp(buf2, data[1], POOL_PAGE_SIZE), 0);
    CU_ASSERT_EQUAL(memcmp(buf, data[0], POOL_PAGE_SIZE), 0);      /* nothing written after the answer */
    /* Hedged again, and this time the stalled server dies with it. */
    fake_srv_hold(&p->srv[first], true);
    struct op r3 = { 0 };
    pool_read(p, pages[0], buf, rdone, &r3);
    CU_ASSERT_TRUE(run_until(&r3.done, 200));
    CU_ASSERT_EQUAL(r3.status, 0);
    r3.done = false;
    srv_down(&p->srv[first], "test: the stalled server dies");
    run_until(NULL, 30);
    CU_ASSERT_FALSE(r3.done);
    /* And the pool goes away with a hedged read's first half still out. */
    fake_srv_restart(&p->srv[first], true);
    fake_srv_hold(&p->srv[first], true);
    struct op r4 = { 0 };
    pool_read(p, pages[1], buf, rdone, &r4);
    CU_ASSERT_TRUE(run_until(&r4.done, 200));
    CU_ASSERT_EQUAL(r4.status, 0);
    endpool();
}

/* A write whose second replica's server stalls (held) completes on the
 * replica that answered, within tens of ms; the late replica misses just
 * that slot and never serves it, its late answer changes nothing, and the
 * slot is copied to it once the slab is quiet. */
static void test_write_without_late_replica(void)
{
    mkpool(2, 2);
    write_pages(4, 31);
    int late = p->slabs[0].rep[1].srv;
    fake_srv_hold(&p->srv[late], true);
    static uint8_t page[POOL_PAGE_SIZE];
    memset(page, 0x5a, sizeof(page));
    struct op w = { 0 };
    uint64_t t0 = evloop_now_ms();
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE(run_until(&w.done, 500));
    CU_ASSERT_EQUAL(w.status, 0);
    CU_ASSERT_TRUE(evloop_now_ms() - t0 < 100);
    struct pslab *ps = &p->slabs[0];
    CU_ASSERT_FALSE(holds_good(ps, late));
    CU_ASSERT_TRUE(rep_missed(&ps->rep[1], (uint32_t)w.page));
    /* The page reads back right while the late server still holds the write. */
    memcpy(data[0], page, sizeof(page));
    pages[0] = w.page;
    read_all(1);
    /* The server is known late now: the next writes do not wait for it again
     * (a stalled server costs one late interval, not one per write). */
    static uint8_t more[3][POOL_PAGE_SIZE];
    struct op m[3] = { { 0 } };
    uint64_t t1 = evloop_now_ms();
    for (int i = 0; i < 3; i++) {
        memset(more[i], 0x61 + i, sizeof(more[i]));
        pool_write_new(p, more[i], wdone, &m[i]);
        CU_ASSERT_TRUE(run_until(&m[i].done, 500));
        CU_ASSERT_EQUAL(m[i].status, 0);
    }
    uint64_t took = evloop_now_ms() - t1;
    printf("\n    three more writes with the replica known late: %llu ms ", (unsigned long long)took);
    CU_ASSERT_TRUE(took < 30);
    for (int i = 0; i < 3; i++) {
        memcpy(data[1 + i], more[i], sizeof(more[i]));
        pages[1 + i] = m[i].page;
    }
    read_all(4);
    /* Its late answer: no second callback; then the slot is copied over. */
    w.done = false;
    fake_srv_hold(&p->srv[late], false);
    run_until(NULL, 150);           /* a tick: the degraded count is the tick's */
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_FALSE(w.done);
    CU_ASSERT_EQUAL(good(&p->slabs[0]), 2);
    check_replicas(4);
    endpool();
}

/* A write completed on one replica while the other is late; the guest then
 * frees the page and the slab empties.  The slab must not go back (and its
 * index be reused by a new slab) while the late write is out: its answer
 * would land in the new slab's counters and replicas. */
static void test_free_with_late_write(void)
{
    mkpool(2, 2);
    write_pages(64, 7);
    static uint8_t q[POOL_PAGE_SIZE], w[POOL_PAGE_SIZE];
    memset(q, 0x11, sizeof(q));
    memset(w, 0x22, sizeof(w));
    struct op oq = { 0 }, ow = { 0 };
    pool_write_new(p, q, wdone, &oq);
    CU_ASSERT_TRUE_FATAL(run_until(&oq.done, 500));
    uint32_t sq, pq;
    CU_ASSERT_TRUE_FATAL(split_page(p, oq.page, &sq, &pq));
    pool_free_page(p, pages[0]);        /* another slab has room: an empty one may go back */
    int late = p->slabs[sq].rep[1].srv;
    fake_srv_hold(&p->srv[late], true);
    pool_write_new(p, w, wdone, &ow);
    CU_ASSERT_TRUE_FATAL(run_until(&ow.done, 500));
    CU_ASSERT_EQUAL(ow.status, 0);
    uint32_t sw, pw;
    CU_ASSERT_TRUE_FATAL(split_page(p, ow.page, &sw, &pw));
    CU_ASSERT_EQUAL(sw, sq);
    CU_ASSERT_TRUE(p->slabs[sw].wpending > 0);          /* the late replica's write is out */
    pool_free_page(p, ow.page);
    pool_free_page(p, oq.page);
    CU_ASSERT_TRUE(p->slabs[sw].used);                  /* kept while it is out */
    fake_srv_hold(&p->srv[late], false);
    fake_srv_release(&p->srv[late]);
    run_until(NULL, 300);                               /* its answer, then a tick */
    CU_ASSERT_EQUAL(p->slabs[sw].wpending, 0);
    CU_ASSERT_FALSE(p->slabs[sw].used);                 /* given back once quiet */
    endpool();
}

/* The same for a hedged read whose first replica answers late. */
static void test_free_with_late_read(void)
{
    mkpool(2, 2);
    write_pages(64, 7);
    static uint8_t q[POOL_PAGE_SIZE];
    memset(q, 0x11, sizeof(q));
    struct op oq = { 0 };
    pool_write_new(p, q, wdone, &oq);
    CU_ASSERT_TRUE_FATAL(run_until(&oq.done, 500));
    uint32_t sq, pq;
    CU_ASSERT_TRUE_FATAL(split_page(p, oq.page, &sq, &pq));
    pool_free_page(p, pages[0]);
    int a = p->slabs[sq].rep[0].srv;
    fake_srv_hold(&p->srv[a], true);
    static uint8_t buf[POOL_PAGE_SIZE];
    struct op r = { 0 };
    pool_read(p, oq.page, buf, rdone, &r);
    if (!fake_srv_held(&p->srv[a], SOP_READ)) {          /* the read went to the other replica */
        fake_srv_hold(&p->srv[a], false);
        fake_srv_release(&p->srv[a]);
        a = p->slabs[sq].rep[1].srv;
        run_until(&r.done, 200);
        r.done = false;
        fake_srv_hold(&p->srv[a], true);
        pool_read(p, oq.page, buf, rdone, &r);
    }
    CU_ASSERT_TRUE_FATAL(fake_srv_held(&p->srv[a], SOP_READ) > 0);
    CU_ASSERT_TRUE_FATAL(run_until(&r.done, 200));      /* hedged to the other replica */
    CU_ASSERT_EQUAL(r.status, 0);
    pool_free_page(p, oq.page);
    CU_ASSERT_TRUE(p->slabs[sq].used);
    fake_srv_hold(&p->srv[a], false);
    fake_srv_release(&p->srv[a]);
    run_until(NULL, 300);
    CU_ASSERT_EQUAL(p->slabs[sq].rpending, 0);
    CU_ASSERT_FALSE(p->slabs[sq].used);
    endpool();
}

/* A stalled server's window full of reads (hedged elsewhere) must not keep
 * a write that the other replica acknowledged waiting for the heartbeat. */
static void test_write_behind_reads(void)
{
    mkpool(2, 2);
    write_pages(64, 3);
    pool_free_page(p, pages[63]);       /* the write takes that slot: no new slab to allocate */
    int b = p->slabs[0].rep[1].srv;
    fake_srv_hold(&p->srv[b], true);
    static uint8_t bufs[128][POOL_PAGE_SIZE];
    static struct op rs[128];
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < 128; i++)
        pool_read(p, pages[i % 63], bufs[i], rdone, &rs[i]);
    static uint8_t w[POOL_PAGE_SIZE];
    memset(w, 0x33, sizeof(w));
    struct op ow = { 0 };
    uint64_t t0 = evloop_now_ms();
    pool_write_new(p, w, wdone, &ow);
    run_until(&ow.done, 1500);
    CU_ASSERT_TRUE(ow.done);
    CU_ASSERT_EQUAL(ow.status, 0);
    CU_ASSERT_TRUE(evloop_now_ms() - t0 < 200);
    fake_srv_hold(&p->srv[b], false);
    fake_srv_release(&p->srv[b]);
    run_until(NULL, 50);
    endpool();
}

static int suite_init(void)
{
    mx_log_init("test_rebuild", MX_LOG_WARN);
    el = evloop_new();
    return el ? 0 : -1;
}

static int suite_clean(void)
{
    evloop_free(el);
    return 0;
}

static const struct cu_test tests[] = {
    { "server down, rebuild restores redundancy", test_rebuild_after_down },
    { "drain moves every replica and shows drained", test_drain },
    { "target dies mid-copy: abort, no finish, retry", test_abort_target_dies },
    { "source post fails in the copy loop: no finish after abort", test_abort_source_fails_in_loop },
    { "synchronous failure chain does not leave a write pending", test_sync_failure_chain_write },
    { "synchronous failure chain grows the slab table under a write", test_sync_failure_chain_grows_table },
    { "writes survive a server going down", test_writes_survive_down },
    { "orphaned replicas are freed when their server returns", test_orphans_freed_on_return },
    { "every replica flaps at once, R = 1: nothing lost", test_flap_all_r1 },
    { "every replica flaps at once, R = 2: nothing lost", test_flap_all_r2 },
    { "every replica flaps at once, R = 3: nothing lost", test_flap_all_r3 },
    { "staggered flap: the missed slots are copied, nothing lost", test_flap_staggered },
    { "server dies after its SLAB_ALLOC answer: never good, no write lands in a reused slab",
      test_dies_during_slab_alloc },
    { "server dies before its SLAB_ALLOC answer", test_dies_before_slab_alloc_answer },
    { "adoption: a post fails in the loop over servers, the adoption waits for the rest",
      test_adopt_post_fails_in_loop },
    { "pool_ctl: a post that fails synchronously is -1 and never calls back", test_ctl_post_fails },
    { "a read to a stalled server is hedged to another replica", test_hedged_read },
    { "a write completes without its late replica, which misses just that slot",
      test_write_without_late_replica },
    { "a slab is not given back while a late write to it is out", test_free_with_late_write },
    { "a slab is not given back while a late read from it is out", test_free_with_late_read },
    { "a write is not held up by a stalled server's window of reads", test_write_behind_reads },
    { "a slab build goes on without a late SLAB_ALLOC", test_slab_alloc_late },
    { "a server known late takes no new slab", test_no_slab_on_late_server },
    { "a server late on a SLAB_ALLOC only takes no new slab", test_no_slab_on_late_server_allocs_only },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "rebuild", suite_init, suite_clean, tests },
                                          { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
