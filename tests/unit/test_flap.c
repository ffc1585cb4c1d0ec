/* The pool's handling of servers that flap or stall, through a fake server
 * connection (fake_srvconn.c): every replica away at once and back
 * (revalidated, not freed), staggered flaps, a server dying around its
 * SLAB_ALLOC, hedged reads, writes that go on without a late replica, slabs
 * given back only once quiet, and slabs built without a late server.
 * Deterministic: no processes, no fabric, the placement's random source is
 * the test's.  The harness is pool_harness.c. */
#include "pool_harness.h"
#include "evloop.h"
#include "fake_srvconn.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Every replica of a slab is unreachable at once (a switch flap, a stalled
 * host, any flap with replicas = 1) and comes back as the same server
 * process: its copies are intact and must be read again, not freed. */
static void flap_all(int nsrv, int replicas)
{
    mkpool(nsrv, replicas);
    write_pages(NPAGES, 20);
    unsigned held[HARNESS_MAX_SERVERS];
    for (int i = 0; i < nsrv; i++)
        held[i] = fake_srv_slabs(p->srv[i]);
    for (int i = 0; i < nsrv; i++)
        srv_down(p->srv[i], "test: flap");
    run_until(NULL, 200);
    for (int i = 0; i < nsrv; i++)
        fake_srv_restart(p->srv[i], true);
    run_until(NULL, 100);
    for (int i = 0; i < nsrv; i++)
        CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[i]), held[i]);   /* nothing freed */
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
    srv_down(p->srv[a], "test: a away");
    write_pages(20, 22);                    /* into slab 0's free slots, on b only */
    static uint8_t second[20][POOL_PAGE_SIZE];
    pool_page_t second_pages[20];
    memcpy(second, data, sizeof(second));
    memcpy(second_pages, pages, sizeof(second_pages));
    srv_down(p->srv[b], "test: b away too");
    fake_srv_restart(p->srv[a], true);
    run_until(NULL, 100);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[a]), 1);
    fake_srv_restart(p->srv[b], true);
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_EQUAL(good(&p->slabs[0]), 2);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[a]), 1);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[b]), 1);
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
    srv_down(p->srv[b], "test: b dies");
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
    fake_srv_hold(p->srv[0], true);
    fake_srv_hold(p->srv[1], true);
    struct op ops[64] = { { 0 } };
    for (unsigned i = 0; i < 64; i++) {
        for (unsigned b = 0; b < POOL_PAGE_SIZE; b++)
            data[i][b] = (uint8_t)(23 * 131 + i * 17 + b * 7 + (b >> 8));
        pool_write_new(p, data[i], wdone, &ops[i]);
    }
    run_until(NULL, 30);
    CU_ASSERT_EQUAL_FATAL(fake_srv_held(p->srv[0], SOP_ALLOC), 1);
    CU_ASSERT_EQUAL_FATAL(fake_srv_held(p->srv[1], SOP_ALLOC), 1);
    CU_ASSERT_EQUAL(fake_srv_release_kind(p->srv[0], SOP_ALLOC, 1), 1);
    srv_down(p->srv[0], "test: dies after its SLAB_ALLOC answer");
    fake_srv_hold(p->srv[1], false);
    CU_ASSERT_TRUE_FATAL(run_until(&ops[63].done, 2000));
    for (unsigned i = 0; i < 64; i++) {
        CU_ASSERT_EQUAL(ops[i].status, 0);
        pages[i] = ops[i].page;
    }
    struct pslab *ps = &p->slabs[0];
    CU_ASSERT_FALSE(holds_good(ps, 0));
    /* Back as a new process: it lost the slab, and hands its id out again. */
    fake_srv_hold(p->srv[0], false);
    fake_srv_restart(p->srv[0], false);
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
    fake_srv_hold(p->srv[0], true);
    struct op w = { 0 };
    static uint8_t page[POOL_PAGE_SIZE] = { 7 };
    pool_write_new(p, page, wdone, &w);
    run_until(NULL, 30);
    CU_ASSERT_EQUAL_FATAL(fake_srv_held(p->srv[0], SOP_ALLOC), 1);
    srv_down(p->srv[0], "test: dies before its SLAB_ALLOC answer");
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, 2000));
    CU_ASSERT_EQUAL(w.status, 0);
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], 0));
    fake_srv_hold(p->srv[0], false);
    fake_srv_restart(p->srv[0], false);
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
    fake_srv_hold(p->srv[0], true);
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
        srv_down(p->srv[0], "test: declared down, as the heartbeat would");
        CU_ASSERT_TRUE_FATAL(run_until(&w[3].done, 2000));
    }
    for (unsigned i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(w[i].status, 0);
        pages[i] = w[i].page;
    }
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], 0));
    /* It resumes: it answers the given-up SLAB_ALLOC, and that slab is freed again. */
    fake_srv_hold(p->srv[0], false);
    if (p->srv[0]->state != SRV_UP)
        fake_srv_restart(p->srv[0], true);
    CU_ASSERT_TRUE(wait_healed(3000));
    run_until(NULL, 50);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[0]), 1);        /* the re-replicated copy only */
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
    fake_srv_hold(p->srv[x], true);
    struct op w = { 0 };
    static uint8_t page[POOL_PAGE_SIZE] = { 9 };
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE(run_until(&w.done, 500));
    CU_ASSERT_TRUE(p->srv[x]->late);
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
           (unsigned long long)took, fake_srv_held(p->srv[x], SOP_ALLOC));
    CU_ASSERT_EQUAL(fake_srv_held(p->srv[x], SOP_ALLOC), 0);
    for (uint32_t k = 1; k < p->nslabs; k++)
        for (int r = 0; p->slabs[k].used && r < p->slabs[k].nrep; r++)
            CU_ASSERT_NOT_EQUAL(p->slabs[k].rep[r].srv, x);
    for (int i = 0; i < 120; i++)
        CU_ASSERT_EQUAL(ops[i].status, 0);
    fake_srv_hold(p->srv[x], false);
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
    fake_srv_hold(p->srv[x], true);
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
    CU_ASSERT_TRUE(p->srv[x]->late);
    for (int i = 0; i < 200; i++)
        CU_ASSERT_EQUAL(ops[i].status, 0);
    fake_srv_hold(p->srv[x], false);
    CU_ASSERT_TRUE(wait_healed(3000));
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
    fake_srv_hold(p->srv[first], true);
    uint8_t buf[POOL_PAGE_SIZE];
    struct op r = { 0 };
    uint64_t t0 = evloop_now_ms();
    pool_read(p, pages[0], buf, rdone, &r);
    CU_ASSERT_EQUAL(fake_srv_held(p->srv[first], SOP_READ), 1);   /* it went to the first replica */
    CU_ASSERT_TRUE(run_until(&r.done, 200));
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(memcmp(buf, data[0], POOL_PAGE_SIZE), 0);
    CU_ASSERT_TRUE(evloop_now_ms() - t0 < 50);
    /* The late answer lands after the request was answered and reused. */
    struct op r2 = { 0 };
    uint8_t buf2[POOL_PAGE_SIZE];
    fake_srv_hold(p->srv[first], false);
    pool_read(p, pages[1], buf2, rdone, &r2);
    r.done = false;
    CU_ASSERT_TRUE(run_until(&r2.done, 200));
    run_until(NULL, 30);
    CU_ASSERT_FALSE(r.done);                    /* never called back twice */
    CU_ASSERT_EQUAL(r2.status, 0);
    CU_ASSERT_EQUAL(memcmp(buf2, data[1], POOL_PAGE_SIZE), 0);
    CU_ASSERT_EQUAL(memcmp(buf, data[0], POOL_PAGE_SIZE), 0);      /* nothing written after the answer */
    /* Hedged again, and this time the stalled server dies with it. */
    fake_srv_hold(p->srv[first], true);
    struct op r3 = { 0 };
    pool_read(p, pages[0], buf, rdone, &r3);
    CU_ASSERT_TRUE(run_until(&r3.done, 200));
    CU_ASSERT_EQUAL(r3.status, 0);
    r3.done = false;
    srv_down(p->srv[first], "test: the stalled server dies");
    run_until(NULL, 30);
    CU_ASSERT_FALSE(r3.done);
    /* And the pool goes away with a hedged read's first half still out. */
    fake_srv_restart(p->srv[first], true);
    fake_srv_hold(p->srv[first], true);
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
    fake_srv_hold(p->srv[late], true);
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
    fake_srv_hold(p->srv[late], false);
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
    fake_srv_hold(p->srv[late], true);
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
    fake_srv_hold(p->srv[late], false);
    fake_srv_release(p->srv[late]);
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
    fake_srv_hold(p->srv[a], true);
    static uint8_t buf[POOL_PAGE_SIZE];
    struct op r = { 0 };
    pool_read(p, oq.page, buf, rdone, &r);
    if (!fake_srv_held(p->srv[a], SOP_READ)) {          /* the read went to the other replica */
        fake_srv_hold(p->srv[a], false);
        fake_srv_release(p->srv[a]);
        a = p->slabs[sq].rep[1].srv;
        run_until(&r.done, 200);
        r.done = false;
        fake_srv_hold(p->srv[a], true);
        pool_read(p, oq.page, buf, rdone, &r);
    }
    CU_ASSERT_TRUE_FATAL(fake_srv_held(p->srv[a], SOP_READ) > 0);
    CU_ASSERT_TRUE_FATAL(run_until(&r.done, 200));      /* hedged to the other replica */
    CU_ASSERT_EQUAL(r.status, 0);
    pool_free_page(p, oq.page);
    CU_ASSERT_TRUE(p->slabs[sq].used);
    fake_srv_hold(p->srv[a], false);
    fake_srv_release(p->srv[a]);
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
    fake_srv_hold(p->srv[b], true);
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
    fake_srv_hold(p->srv[b], false);
    fake_srv_release(p->srv[b]);
    run_until(NULL, 50);
    endpool();
}

static int suite_init(void)
{
    return harness_suite_init("test_flap");
}

static int suite_clean(void)
{
    return harness_suite_clean();
}

/* While every replica of a slab is away, its reads and the writes none of
 * the servers took say so (-EHOSTUNREACH: the volume layer holds them and
 * tries again) instead of -EIO (the guest's I/O error, a swap page lost).
 * Once a replica is known gone for good (its server came back as a new
 * process), a read of it is -EIO. */
static void test_unreachable_not_eio(void)
{
    mkpool(2, 2);
    write_pages(NPAGES, 31);
    static uint8_t buf[POOL_PAGE_SIZE], page[POOL_PAGE_SIZE];
    memset(page, 0x5a, sizeof(page));
    /* A write in flight when both servers go down. */
    for (int i = 0; i < 2; i++)
        fake_srv_hold(p->srv[i], true);
    struct op w = { 0 };
    pool_write_new(p, page, wdone, &w);
    run_until(NULL, 50);
    CU_ASSERT_FALSE(w.done);
    for (int i = 0; i < 2; i++)
        srv_down(p->srv[i], "test: flap");
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, 2000));
    CU_ASSERT_EQUAL(w.status, -EHOSTUNREACH);
    /* With both down: a read of an intact page, a new write. */
    CU_ASSERT_EQUAL(read_page(pages[0], buf), -EHOSTUNREACH);
    struct op w2 = { 0 };
    pool_write_new(p, page, wdone, &w2);
    CU_ASSERT_TRUE_FATAL(run_until(&w2.done, 5000));
    CU_ASSERT_EQUAL(w2.status, -EHOSTUNREACH);
    /* Back as the same processes: what was there reads again. */
    for (int i = 0; i < 2; i++) {
        fake_srv_hold(p->srv[i], false);
        fake_srv_restart(p->srv[i], true);
    }
    CU_ASSERT_TRUE(wait_healed(3000));
    read_all(NPAGES);
    struct op w3 = { 0 };
    pool_write_new(p, page, wdone, &w3);
    CU_ASSERT_TRUE_FATAL(run_until(&w3.done, 2000));
    CU_ASSERT_EQUAL(w3.status, 0);
    /* Both come back as new processes: the slab is gone, its reads fail. */
    for (int i = 0; i < 2; i++)
        srv_down(p->srv[i], "test: crash");
    for (int i = 0; i < 2; i++)
        fake_srv_restart(p->srv[i], false);
    run_until(NULL, 200);
    CU_ASSERT_EQUAL(read_page(pages[0], buf), -EIO);
    endpool();
}

static const struct cu_test tests[] = {
    { "every replica flaps at once, R = 1: nothing lost", test_flap_all_r1 },
    { "every replica flaps at once, R = 2: nothing lost", test_flap_all_r2 },
    { "every replica flaps at once, R = 3: nothing lost", test_flap_all_r3 },
    { "staggered flap: the missed slots are copied, nothing lost", test_flap_staggered },
    { "every replica away: reads and writes say unreachable, not EIO; gone for good: EIO",
      test_unreachable_not_eio },
    { "server dies after its SLAB_ALLOC answer: never good, no write lands in a reused slab",
      test_dies_during_slab_alloc },
    { "server dies before its SLAB_ALLOC answer", test_dies_before_slab_alloc_answer },
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
static const struct cu_suite suites[] = { { "flap", suite_init, suite_clean, tests },
                                          { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
