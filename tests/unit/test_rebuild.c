/* The pool's failure handling through a fake server connection
 * (fake_srvconn.c): a server going down, re-replication, drain, an aborted
 * rebuild, synchronous post failures (in writes, adoption and pool_ctl).
 * Deterministic: no processes, no fabric, the placement's random source is
 * the test's.  The harness is pool_harness.c; flaps, late servers and hedged
 * operations are test_flap.c's. */
#include "pool_harness.h"
#include "evloop.h"
#include "fake_srvconn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

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
    srv_down(p->srv[lost], "test");
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
    srv_down(p->srv[kept], "test");
    uint8_t buf[POOL_PAGE_SIZE];
    for (unsigned i = 0; i < NPAGES; i++) {
        CU_ASSERT_EQUAL(read_page(pages[i], buf), 0);
        CU_ASSERT_EQUAL(memcmp(buf, data[i], POOL_PAGE_SIZE), 0);
    }
    endpool();
}

static unsigned recopy_calls;
static void on_recopy(void *arg) { (void)arg; recopy_calls++; }

/* A write with its record completes 0 only when all R replicas took it;
 * on a degraded slab it is POOL_WRITE_FEW (the caller publishes the record
 * another way).  The copy re-replication makes has the pages, not their
 * records: the slab is flagged and the owner told (cluster.h). */
static void test_records_and_rebuild(void)
{
    mkpool(3, 2);
    recopy_calls = 0;
    pool_set_recopy_cb(p, on_recopy, NULL);
    static uint8_t page[POOL_PAGE_SIZE];
    memset(page, 0x42, sizeof(page));
    struct pool_wrec rec = { .lpn = 5, .seq = 1ull << 40 | 2 };
    struct op w = { 0 };
    pool_write_vol(p, page, 7, 1, &rec, wdone, &w);
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, 2000));
    CU_ASSERT_EQUAL(w.status, 0);
    CU_ASSERT_FALSE(pool_page_recopied(p, w.page));
    struct pslab *ps = &p->slabs[0];
    int lost = ps->rep[0].srv;
    srv_down(p->srv[lost], "test");
    struct op w2 = { 0 };
    rec.seq += 2;
    pool_write_vol(p, page, 7, 1, &rec, wdone, &w2);
    CU_ASSERT_TRUE_FATAL(run_until(&w2.done, 2000));
    CU_ASSERT_EQUAL(w2.status, POOL_WRITE_FEW);         /* one of R replicas holds it */
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.writes_few, 1);
    CU_ASSERT_TRUE(wait_healed(3000));
    run_until(NULL, 5);
    CU_ASSERT_TRUE(pool_page_recopied(p, w.page));
    CU_ASSERT_TRUE(recopy_calls >= 1);
    pool_recopied_clear(p);
    CU_ASSERT_FALSE(pool_page_recopied(p, w.page));
    /* pool_write_new's writes carry no record: 0 even on a degraded slab. */
    srv_down(p->srv[p->slabs[0].rep[0].srv], "test");
    struct op w3 = { 0 };
    pool_write_new(p, page, wdone, &w3);
    CU_ASSERT_TRUE_FATAL(run_until(&w3.done, 2000));
    CU_ASSERT_EQUAL(w3.status, 0);
    pool_set_recopy_cb(p, NULL, NULL);
    endpool();
}

/* An empty slab goes back to its servers forced: records of our volumes
 * there that still name it are superseded ones (records go only to a page's
 * own servers, so older ones stay behind), and an unforced free would be
 * refused for them (EBUSY): the slab would stay allocated for good. */
static void test_give_back_forced(void)
{
    mkpool(2, 2);
    write_pages(MAXPAGES, 3);
    struct op extra = { 0 };
    pool_write_new(p, data[0], wdone, &extra);        /* a second slab, with room */
    CU_ASSERT_TRUE_FATAL(run_until(&extra.done, 2000));
    for (unsigned i = 0; i < MAXPAGES; i++)
        pool_free_page(p, pages[i]);
    run_until(NULL, 20);
    for (int s = 0; s < 2; s++) {
        CU_ASSERT_EQUAL(fake_srv_frees(p->srv[s], false), 1);
        CU_ASSERT_EQUAL(fake_srv_frees(p->srv[s], true), 1);
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
    CU_ASSERT_EQUAL_FATAL(pool_drain(p, p->srv[victim]->addr, true, err, sizeof(err)), 0);
    struct pool_server_info info[3];
    uint64_t end = evloop_now_ms() + 3000;
    do {
        evloop_run_once(el, 10);
        pool_get_servers(p, info, 3);
    } while (strcmp(info[victim].state, "drained") && evloop_now_ms() < end);
    CU_ASSERT_STRING_EQUAL(info[victim].state, "drained");
    CU_ASSERT_EQUAL(info[victim].replicas, 0);
    run_until(NULL, 50);        /* the SLAB_FREE's answer */
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[victim]), 0);
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
    CU_ASSERT_EQUAL(pool_drain(p, p->srv[victim]->addr, false, err, sizeof(err)), 0);
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
    srv_down(p->srv[lost], "test");
    /* Let the target's SLAB_ALLOC through, then hold its page writes. */
    uint64_t end = evloop_now_ms() + 2000;
    while (!p->rb.allocated && evloop_now_ms() < end)
        evloop_run_once(el, 10);
    CU_ASSERT_TRUE_FATAL(p->rb.active && p->rb.allocated);
    CU_ASSERT_EQUAL(p->rb.target, target);
    fake_srv_hold(p->srv[target], true);
    end = evloop_now_ms() + 2000;
    while (fake_srv_held(p->srv[target], SOP_CWRITE) < 8 && evloop_now_ms() < end)
        evloop_run_once(el, 10);
    CU_ASSERT_TRUE_FATAL(fake_srv_held(p->srv[target], SOP_CWRITE) >= 8);
    CU_ASSERT_EQUAL(fake_srv_release_kind(p->srv[target], SOP_CWRITE, 4), 4);
    uint64_t copied = p->rerep_pages;
    CU_ASSERT_EQUAL(copied, 4);
    /* Reads of the source still in flight must not revive it either. */
    fake_srv_hold(p->srv[kept], true);
    run_until(NULL, 30);
    srv_down(p->srv[target], "test: target dies mid-copy");
    CU_ASSERT_TRUE(p->rb.aborting || !p->rb.active);
    fake_srv_hold(p->srv[kept], false);
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
    fake_srv_hold(p->srv[target], false);
    fake_srv_restart(p->srv[target], false);
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
    srv_down(p->srv[lost], "test");
    fake_srv_fail_posts(p->srv[kept], 1);      /* its next post is the rebuild's page read */
    run_until(NULL, 400);
    CU_ASSERT_EQUAL(p->srv[kept]->state, SRV_DOWN);
    struct pslab *ps = &p->slabs[0];
    CU_ASSERT_FALSE(holds_good(ps, target));
    CU_ASSERT_EQUAL(good(ps), 0);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.lost_slabs, 1);
    CU_ASSERT_EQUAL(st.rereplicated_pages, 0);
    check_replicas(1);
    uint8_t buf[POOL_PAGE_SIZE];
    /* No good copy: never zeros, never garbage; both servers are only down,
     * so the read says unreachable (the volume layer waits for them). */
    CU_ASSERT_EQUAL(read_page(pages[0], buf), -EHOSTUNREACH);
    endpool();
}

/* A write's post fails synchronously on the first replica, and that failure
 * chain (a read in flight there moves to the second replica, whose post
 * fails too) takes the second replica's server down before the write's loop
 * over replicas reaches it: the write must still complete (-EHOSTUNREACH:
 * both servers went down), not wait for ever. */
static void test_sync_failure_chain_write(void)
{
    mkpool(2, 2);
    write_pages(1, 6);
    int first = p->slabs[0].rep[0].srv, second = p->slabs[0].rep[1].srv;
    fake_srv_hold(p->srv[first], true);
    uint8_t buf[POOL_PAGE_SIZE];
    struct op r = { 0 };
    pool_read(p, pages[0], buf, rdone, &r);         /* goes to the first replica, and waits there */
    CU_ASSERT_EQUAL(fake_srv_held(p->srv[first], SOP_READ), 1);
    fake_srv_fail_posts(p->srv[first], 1);
    fake_srv_fail_posts(p->srv[second], 1);
    struct op w = { 0 };
    static uint8_t page[POOL_PAGE_SIZE];
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE(run_until(&w.done, 500));
    CU_ASSERT_EQUAL(w.status, -EHOSTUNREACH);
    CU_ASSERT_TRUE(run_until(&r.done, 500));
    CU_ASSERT_EQUAL(r.status, -EHOSTUNREACH);
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
    p->srv[z]->full = true;
    fake_srv_hold(p->srv[x], true);
    struct op ops[100] = { { 0 } };
    for (int i = 0; i < 100; i++)
        pool_write_new(p, many[i], wdone, &ops[i]);
    run_until(NULL, 15);    /* less than WRITE_LATE_MS: after it the build goes on without x (allocs_late) */
    CU_ASSERT_EQUAL_FATAL(p->building, 15);
    CU_ASSERT_EQUAL(fake_srv_held(p->srv[x], SOP_ALLOC), 1);
    /* One free slot in slab 3, the next write's; its post to x fails. */
    pool_free_page(p, make_page(3, 5));
    fake_srv_fail_posts(p->srv[x], 1);
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
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[cut]), 1);
    srv_down(p->srv[cut], "test: cut");
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], cut));
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[cut]), 1);  /* kept while it is away */
    fake_srv_restart(p->srv[cut], true);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[cut]), 0);
    check_replicas(NPAGES);
    endpool();
}

/* Writes keep completing while a server dies under them, and go on to the
 * survivors. */
static void test_writes_survive_down(void)
{
    mkpool(3, 2);
    write_pages(NPAGES, 7);
    srv_down(p->srv[p->slabs[0].rep[0].srv], "test");
    write_pages(NPAGES, 8);
    CU_ASSERT_TRUE(wait_healed(3000));
    check_replicas(NPAGES);
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
    fake_srv_fail_posts(p->srv[0], 1);
    fake_srv_hold(p->srv[1], true);
    struct adopted a = { 0 };
    pool_adopt(p, 0x1234, adone, &a);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(p->srv[0]->state, SRV_DOWN);
    CU_ASSERT_EQUAL(fake_srv_held(p->srv[1], SOP_CTL), 1);
    CU_ASSERT_EQUAL(a.calls, 0);                /* server 1 has not answered yet */
    fake_srv_hold(p->srv[1], false);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(a.calls, 1);
    CU_ASSERT_EQUAL(a.status, -ENOENT);         /* nobody holds it (the fake knows no uid) */
    endpool();
}

/* A slab adopted for a loading volume holds the volume's data although none
 * of its pages is held yet (the volume holds them once its records are
 * loaded): the pool's tick must never give it back meanwhile, though every
 * slot looks free and another slab has room (check-faults' backd scenario
 * lost 7680 pages to this: the restarted backend freed the slabs it was
 * adopting, the servers zeroed them). */
static void test_adopted_not_given_back(void)
{
    mkpool(2, 2);
    write_pages(4, 3);                          /* a slab with room */
    unsigned before0 = fake_srv_slabs(p->srv[0]), before1 = fake_srv_slabs(p->srv[1]);
    CU_ASSERT(fake_srv_add_slab(p->srv[0], 0xabcdef, 0x5a) != 0);
    CU_ASSERT(fake_srv_add_slab(p->srv[1], 0xabcdef, 0x5a) != 0);
    struct adopted a = { 0 };
    pool_adopt(p, 0xabcdef, adone, &a);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL_FATAL(a.calls, 1);
    CU_ASSERT_EQUAL_FATAL(a.status, 0);
    CU_ASSERT_EQUAL(p->slabs[a.slab].nrep, 2);
    run_until(NULL, 600);                       /* several pool ticks */
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[0]), before0 + 1);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[1]), before1 + 1);
    /* The volume's records are in: its pages are held and read back. */
    pool_page_t pg = pool_page_in(p, a.slab, 7);
    CU_ASSERT_TRUE(pool_page_hold(p, pg));
    pool_adopt_settled(p, a.slab);
    uint8_t out[POOL_PAGE_SIZE];
    CU_ASSERT_EQUAL(read_page(pg, out), 0);
    CU_ASSERT_EQUAL(out[0], 0x5a);
    CU_ASSERT_EQUAL(out[POOL_PAGE_SIZE - 1], 0x5a);
    /* Once settled, a slab whose last page goes is given back as any other. */
    pool_free_page(p, pg);
    run_until(NULL, 300);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[0]), before0);
    endpool();
}

static int read_checked(pool_page_t pg, const uint8_t h[16], uint8_t *out)
{
    struct op o = { 0 };
    pool_read_checked(p, pg, h, out, rdone, &o);
    run_until(&o.done, 2000);
    return o.done ? o.status : -ETIMEDOUT;
}

/* Each copy of an adopted slab missed a different write (its old owner
 * never repaired them): a page read against its record's hash is served
 * from the copy that has it, and a mismatch condemns only that slot of the
 * other copy, not the whole copy, so every page stays readable. */
static void test_adopted_mismatch_per_slot(void)
{
    mkpool(2, 2);
    write_pages(4, 3);
    CU_ASSERT(fake_srv_add_slab(p->srv[0], 0x5107, 0x11) != 0);
    CU_ASSERT(fake_srv_add_slab(p->srv[1], 0x5107, 0x22) != 0);
    struct adopted a = { 0 };
    pool_adopt(p, 0x5107, adone, &a);
    run_until(NULL, 50);
    CU_ASSERT_EQUAL_FATAL(a.status, 0);
    static uint8_t want0[POOL_PAGE_SIZE], want1[POOL_PAGE_SIZE], out[POOL_PAGE_SIZE];
    memset(want0, 0x11, sizeof(want0));
    memset(want1, 0x22, sizeof(want1));
    uint8_t h0[16], h1[16];
    pool_hash(want0, h0);
    pool_hash(want1, h1);
    pool_page_t p0 = pool_page_in(p, a.slab, 0), p1 = pool_page_in(p, a.slab, 1);
    CU_ASSERT_TRUE(pool_page_hold(p, p0));
    CU_ASSERT_TRUE(pool_page_hold(p, p1));
    pool_adopt_settled(p, a.slab);
    for (int round = 0; round < 2; round++) {
        CU_ASSERT_EQUAL(read_checked(p0, h0, out), 0);
        CU_ASSERT_EQUAL(out[0], 0x11);
        CU_ASSERT_EQUAL(read_checked(p1, h1, out), 0);
        CU_ASSERT_EQUAL(out[0], 0x22);
    }
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
    fake_srv_fail_posts(p->srv[0], 1);
    in_ctl_call = true;
    int rc = pool_ctl(p, 0, &q, ctl_done, &c);
    in_ctl_call = false;
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(p->srv[0]->state, SRV_DOWN);
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

static int suite_init(void)
{
    return harness_suite_init("test_rebuild");
}

static int suite_clean(void)
{
    return harness_suite_clean();
}

static const struct cu_test tests[] = {
    { "server down, rebuild restores redundancy", test_rebuild_after_down },
    { "records: 0 only on R replicas, FEW on fewer; a re-replicated slab is flagged", test_records_and_rebuild },
    { "an empty slab goes back forced", test_give_back_forced },
    { "adopted copies that missed different writes: per slot", test_adopted_mismatch_per_slot },
    { "drain moves every replica and shows drained", test_drain },
    { "target dies mid-copy: abort, no finish, retry", test_abort_target_dies },
    { "source post fails in the copy loop: no finish after abort", test_abort_source_fails_in_loop },
    { "synchronous failure chain does not leave a write pending", test_sync_failure_chain_write },
    { "synchronous failure chain grows the slab table under a write", test_sync_failure_chain_grows_table },
    { "writes survive a server going down", test_writes_survive_down },
    { "orphaned replicas are freed when their server returns", test_orphans_freed_on_return },
    { "adoption: a post fails in the loop over servers, the adoption waits for the rest",
      test_adopt_post_fails_in_loop },
    { "adoption: an adopted slab is never given back before its volume holds its pages",
      test_adopted_not_given_back },
    { "pool_ctl: a post that fails synchronously is -1 and never calls back", test_ctl_post_fails },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "rebuild", suite_init, suite_clean, tests },
                                          { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
