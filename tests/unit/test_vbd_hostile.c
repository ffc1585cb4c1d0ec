/* test_vbd_hostile.c — memx-backd's Xen side on the sim platform against
 * frontends that try to break it or hog it: a multi-queue connect with a
 * queue missing, a storm of bad requests beside a second guest, and the
 * bounds on what one request or one device may make the backend hold
 * (discards of large ranges, indirect requests' buffers).
 *
 * The frontend, toolstack and suite set-up are vbd_harness.c (as in
 * test_vbd): this process is the toolstack, the frontend (domain 1) and the
 * backend, over memx-simxsd and the in-memory fake pool.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "vbd_harness.h"

static int suite_init(void)
{
    return vbd_suite_init("test_vbd_hostile");
}

static int suite_cleanup(void)
{
    return vbd_suite_cleanup();
}

/* ---- tests ------------------------------------------------------------- */

/* Issue 13 item 6: a frontend that pre-fills queue 0 and leaves out
 * queue-1/ring-ref.  The connect fails (Closed, with the reason in error);
 * nothing may be taken off queue 0 before every queue is mapped and
 * Connected is written, so nothing is in flight when the connect unwinds
 * (it used to be: the unwind freed the slots under the pool's callbacks and
 * the volume detach asserted).  The frontend then publishes the missing node
 * and starts over: its pre-filled requests are served once, after Connected. */
static void test_partial_multiqueue(void)
{
    struct tfront f;
    toolstack_add(&f, 51856, "memx:pmq:16M", "w");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "2"));
    fe_rings(&f, -1, 2, "x86_64-abi", 1);
    fake_pool_hold(pool, true);
    uint64_t ids[8];
    for (unsigned k = 0; k < 8; k++) {
        fill(f.data + k * 4096, 4096, 200 + k);
        struct blkif_x86_64_request r = { .operation = BLKIF_OP_WRITE, .nr_segments = 1,
                                          .sector_number = 8u * k };
        r.seg[0] = (struct blkif_wire_seg){ .gref = f.refs[k], .first_sect = 0, .last_sect = 7 };
        ids[k] = push_q(&f, 0, &r, sizeof(r));
    }
    put(f.fe, "state", "3");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "6"));
    char p[160];
    snprintf(p, sizeof(p), "%s/error", f.be);
    char *e = xs_get(p);
    CU_ASSERT(e && strstr(e, "queue-1"));
    free(e);
    for (int k = 0; k < 20; k++)
        evloop_run_once(el, 5);
    CU_ASSERT_EQUAL(fake_pool_pending(pool), 0);                /* nothing was started */
    CU_ASSERT_EQUAL(mx_load_acquire(&f.q[0].s->rsp_prod), 0);  /* nor answered */
    fake_pool_hold(pool, false);
    CU_ASSERT_STRING_EQUAL(volume_owner(volumes_find(vols, "pmq")), "");

    /* The frontend starts over with the node it had left out. */
    char v[32], d[160];
    snprintf(d, sizeof(d), "%s/queue-1", f.fe);
    snprintf(v, sizeof(v), "%u", f.q[1].ring_refs[0]);
    put(d, "ring-ref", v);
    put(f.fe, "state", "1");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "2"));
    put(f.fe, "state", "3");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "4"));
    for (unsigned k = 0; k < 8; k++)
        CU_ASSERT_EQUAL(wait_rsp_q(&f, 0, ids[k], NULL), BLKIF_RSP_OKAY);
    for (unsigned k = 0; k < 8; k++) {
        struct blkif_x86_64_request r = { .operation = BLKIF_OP_READ, .nr_segments = 1,
                                          .sector_number = 8u * k };
        r.seg[0] = (struct blkif_wire_seg){ .gref = f.refs[15], .first_sect = 0, .last_sect = 7 };
        CU_ASSERT_EQUAL(wait_rsp_q(&f, 1, push_q(&f, 1, &r, sizeof(r)), NULL), BLKIF_RSP_OKAY);
        CU_ASSERT_EQUAL(memcmp(f.data + 15 * 4096, f.data + k * 4096, 4096), 0);
    }
    struct blkback_dev_info buf[8], *i = info_of(51856, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i);
    CU_ASSERT_EQUAL(i->requests, 16);                           /* each one once */
    CU_ASSERT_EQUAL(i->errors, 0);
    fe_close(&f);
    CU_ASSERT_EQUAL(fake_pool_violations(pool), 0);
}

/* ---- a bad-request storm (issue 13 item 7) ---------------------------- */

/* The storm's guest runs on its own thread, as a guest's vCPU does beside
 * dom0: it refills every slot whose answer the backend has published, as
 * fast as it can, so the backend finds another batch after every push
 * (within one kick) and only its per-turn budget sends it back to the loop.
 * It never runs more than a ring ahead of the published answers (a guest
 * that did would have its ring declared corrupt). */
struct storm {
    struct tqueue *q;
    uint64_t base;
    uint64_t sent, limit;       /* stops refilling after limit requests */
    int stop;                   /* set by the test thread (atomic) */
};

static void storm_put(struct storm *st, uint32_t k)
{
    /* A write from a grant ref the guest never granted: refused at once. */
    struct blkif_x86_64_request r = { .operation = BLKIF_OP_WRITE, .nr_segments = 1,
                                      .id = st->base + k };
    r.seg[0] = (struct blkif_wire_seg){ .gref = 99999, .first_sect = 0, .last_sect = 7 };
    memcpy(slot(st->q, k), &r, sizeof(r));
}

static void *storm_guest(void *arg)
{
    struct storm *st = arg;
    struct tqueue *q = st->q;
    while (!__atomic_load_n(&st->stop, __ATOMIC_ACQUIRE) && st->sent < st->limit) {
        /* acquire: the answers before rsp_prod are written, so their slots
         * are free; pairs with ring_push_responses' wmb */
        uint32_t pub = mx_load_acquire(&q->s->rsp_prod);
        bool put = false;
        while (st->sent < st->limit && q->req_prod - pub < q->size) {
            storm_put(st, q->req_prod);
            q->req_prod++;
            __atomic_add_fetch(&st->sent, 1, __ATOMIC_RELAXED);    /* read by the test thread */
            put = true;
        }
        if (put) {
            uint32_t old = MX_READ_ONCE(q->s->req_prod);
            mx_smp_wmb();   /* the entries before req_prod: pairs with ring.c's rmb after reading it */
            MX_WRITE_ONCE(q->s->req_prod, q->req_prod);
            mx_smp_mb();    /* req_prod before req_event (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY):
                               pairs with the mb in ring_final_check after it sets req_event */
            uint32_t ev = MX_READ_ONCE(q->s->req_event);
            if ((uint32_t)(q->req_prod - ev) < (uint32_t)(q->req_prod - old))
                xp_evtchn_notify(xfe, (uint32_t)q->port);
        }
    }
    return NULL;
}

/* QD1 4 KiB reads on f for ms milliseconds: how many, and the longest one
 * (the loop runs inside wait_rsp).  *max_turn_us: the longest single loop turn. */
static unsigned loop_turns;     /* counted by qd1_reads */

static unsigned qd1_reads(struct tfront *f, unsigned ms, uint64_t *max_us, uint64_t *max_turn_us)
{
    unsigned n = 0;
    loop_turns = 0;
    *max_us = *max_turn_us = 0;
    uint64_t end = evloop_now_ms() + ms;
    while (evloop_now_ms() < end) {
        struct blkif_x86_64_request r = { .operation = BLKIF_OP_READ, .nr_segments = 1,
                                          .sector_number = 8u * (n % 64) };
        r.seg[0] = (struct blkif_wire_seg){ .gref = f->refs[1], .first_sect = 0, .last_sect = 7 };
        uint64_t t0 = evloop_now_ns();
        uint64_t id = push(f, &r);
        struct tqueue *q = &f->q[0];
        int st = 99;
        while (evloop_now_ns() - t0 < 5000000000ull) {
            /* acquire: the entry after rsp_prod; pairs with ring_push_responses' wmb */
            if (mx_load_acquire(&q->s->rsp_prod) != q->rsp_cons) {
                struct blkif_x86_32_response rsp;
                memcpy(&rsp, slot(q, q->rsp_cons), sizeof(rsp));
                q->rsp_cons++;
                CU_ASSERT_EQUAL(rsp.id, id);
                st = rsp.status;
                break;
            }
            uint64_t t = evloop_now_ns();
            evloop_run_once(el, 10);
            loop_turns++;
            t = evloop_now_ns() - t;
            if (t / 1000 > *max_turn_us)
                *max_turn_us = t / 1000;
        }
        CU_ASSERT_EQUAL(st, BLKIF_RSP_OKAY);
        uint64_t us = (evloop_now_ns() - t0) / 1000;
        if (us > *max_us)
            *max_us = us;
        n++;
    }
    return n;
}

/* Issue 13 item 7: one guest storms its ring with requests answered at
 * once; the backend must take a ring's worth per loop turn and come back on
 * the next one, so no loop turn lasts long and a second guest keeps most of
 * its throughput (it used to stay in kick() until the storm stopped). */
static void test_bad_request_storm(void)
{
    /* Its checks are about microseconds and thread scheduling, which
     * memcheck's serialised, 50x slower run changes (tests/valgrind.sh). */
    if (getenv("MEMX_VALGRIND")) {
        printf("skipped under valgrind (timing) ");
        return;
    }
    struct tfront a, b;
    connect_dev(&a, 51872, "memx:storm:1M", "w");
    connect_dev(&b, 51888, "memx:calm:1M", "w");
    fill(b.data, 4096, 11);
    CU_ASSERT_EQUAL(rw(&b, BLKIF_OP_WRITE, 0, 0, 0, 7), BLKIF_RSP_OKAY);
    uint64_t max_alone, turn_alone, max_storm, turn_storm;
    unsigned alone = qd1_reads(&b, 500, &max_alone, &turn_alone), turns_alone = loop_turns;

    /* The storm: up to a million bad requests, each slot refilled as soon
     * as its answer is published (about a second and a half of backend work). */
    struct storm st = { .q = &a.q[0], .base = 1ull << 40, .limit = 1000000 };
    struct tqueue *q = &a.q[0];
    for (uint32_t k = 0; k < q->size; k++)
        storm_put(&st, k);
    q->req_prod = q->size;
    st.sent = q->size;
    mx_smp_wmb();       /* entries before req_prod: pairs with ring.c's rmb after reading it */
    MX_WRITE_ONCE(q->s->req_prod, q->req_prod);
    pthread_t guest;
    CU_ASSERT_EQUAL_FATAL(pthread_create(&guest, NULL, storm_guest, &st), 0);
    /* B has a read in flight when A's storm begins: how long does it wait? */
    struct blkif_x86_64_request r = { .operation = BLKIF_OP_READ, .nr_segments = 1 };
    r.seg[0] = (struct blkif_wire_seg){ .gref = b.refs[1], .first_sect = 0, .last_sect = 7 };
    xp_evtchn_notify(xfe, (uint32_t)q->port);
    uint64_t t = evloop_now_ns();
    uint64_t id = push(&b, &r);
    evloop_run_once(el, 10);
    uint64_t first_turn = __atomic_load_n(&st.sent, __ATOMIC_RELAXED) - q->size;
    unsigned b_turns = 1;
    /* acquire: the entry after rsp_prod; pairs with ring_push_responses' wmb */
    while (mx_load_acquire(&b.q[0].s->rsp_prod) == b.q[0].rsp_cons && b_turns < 1000) {
        evloop_run_once(el, 10);
        b_turns++;
    }
    CU_ASSERT_EQUAL(wait_rsp(&b, id, NULL), BLKIF_RSP_OKAY);
    t = evloop_now_ns() - t;
    unsigned during = qd1_reads(&b, 500, &max_storm, &turn_storm), turns_storm = loop_turns;
    __atomic_store_n(&st.stop, 1, __ATOMIC_RELEASE);    /* what is on its ring gets answered */
    pthread_join(guest, NULL);
    xp_evtchn_notify(xfe, (uint32_t)q->port);   /* its last push may have found the backend asleep */
    uint64_t storm_n = st.sent;
    printf("\n    storm: the first loop turn refused %llu of guest A's bad requests; guest B's read "
           "issued with it waited %u loop turns, %llu us; B's QD1 4k reads alone %u in 0.5 s "
           "(%u turns, longest %llu us), during A's storm (%llu bad requests so far) %u in 0.5 s "
           "(%u turns) = %.0f%% kept (longest %llu us, longest loop turn %llu us)\n",
           (unsigned long long)first_turn, b_turns, (unsigned long long)(t / 1000), alone, turns_alone,
           (unsigned long long)max_alone, (unsigned long long)storm_n, during, turns_storm,
           alone ? 100.0 * during / alone : 0.0, (unsigned long long)max_storm,
           (unsigned long long)turn_storm);
    /* Counted in loop turns, not time, so a loaded host cannot fail it. */
    CU_ASSERT(first_turn <= 2u * q->size);      /* a ring's worth per turn, then the others */
    CU_ASSERT(b_turns <= 4);                    /* B's read went on the next turns */
    /* The storm went on beside B's reads (how far depends on how the guest
     * thread is scheduled: on a loaded 2-core host, a few thousand). */
    CU_ASSERT(storm_n > 4u * q->size);
    CU_ASSERT(during * 4 >= turns_storm);       /* B: a read every 4 turns or better (alone: every 2) */
    /* B keeps serving: QD1 gets one request per loop turn, and each turn now
     * also carries A's ring's worth of refusals (and, here, A's debug log and
     * refill), so against this in-memory pool (about 2 us a read alone) B
     * keeps a few percent of its time-based rate; the sim integration test
     * (hostile-storm.sh) measures it against real memory servers.  Before the
     * fix B got no read at all while the storm lasted. */
    struct blkback_dev_info buf[8], *i = info_of(51888, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i);
    CU_ASSERT_EQUAL(i->errors, 0);
    /* A is still a device: once its storm is answered it serves a normal request. */
    for (int k = 0; k < 1000 && MX_READ_ONCE(q->s->rsp_prod) != q->req_prod; k++)
        evloop_run_once(el, 1);
    CU_ASSERT_EQUAL(MX_READ_ONCE(q->s->rsp_prod), q->req_prod);
    q->rsp_cons = q->req_prod;
    fill(a.data, 4096, 12);
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_WRITE, 0, 0, 0, 7), BLKIF_RSP_OKAY);
    fe_close(&a);
    fe_close(&b);
}

/* What malloc hands out, big blocks (mmap) included. */
static size_t heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* Issue 13 item 8: a full-range discard over a sparse volume publishes a
 * record only for the pages that were written (it used to publish, and
 * allocate for, every page of each leaf that held one written page), and the
 * heap stays small while it runs. */
static void test_sparse_discard(void)
{
    struct tfront f;
    /* 64 leaves of 4096 pages, the last page of each written (the walk over
     * a leaf ended where the leaf went empty: a written first page hid it) */
    connect_dev(&f, 51904, "memx:sparse:1G", "w");
    fill(f.data, 4096, 13);
    for (unsigned leaf = 0; leaf < 64; leaf++)
        CU_ASSERT_EQUAL(rw(&f, BLKIF_OP_WRITE, ((uint64_t)leaf * 4096 + 4095) * 8, 0, 0, 7), BLKIF_RSP_OKAY);
    for (int k = 0; k < 20; k++)
        evloop_run_once(el, 1);
    uint64_t rec0 = fake_pool_meta_records(pool);
    size_t heap0 = heap_bytes(), peak = heap0;
    struct blkif_x86_64_request_discard dc = { .operation = BLKIF_OP_DISCARD, .sector_number = 0,
                                               .nr_sectors = 1ull << 21 };
    uint64_t id = push(&f, &dc);
    struct tqueue *q = &f.q[0];
    int st = 99;
    for (uint64_t end = evloop_now_ms() + 10000; evloop_now_ms() < end;) {
        size_t h = heap_bytes();
        if (h > peak)
            peak = h;
        /* acquire: the entry after rsp_prod; pairs with ring_push_responses' wmb */
        if (mx_load_acquire(&q->s->rsp_prod) != q->rsp_cons) {
            struct blkif_x86_32_response rsp;
            memcpy(&rsp, slot(q, q->rsp_cons), sizeof(rsp));
            q->rsp_cons++;
            CU_ASSERT_EQUAL(rsp.id, id);
            st = rsp.status;
            break;
        }
        evloop_run_once(el, 1);
    }
    CU_ASSERT_EQUAL(st, BLKIF_RSP_OKAY);
    uint64_t recs = fake_pool_meta_records(pool) - rec0;
    printf("\n    sparse discard of 1 GiB with 64 pages written: %llu records published, heap grew by at most "
           "%zu KiB\n", (unsigned long long)recs, (peak - heap0) / 1024);
    CU_ASSERT_EQUAL(recs, 64);
    CU_ASSERT(peak - heap0 < 1024 * 1024);
    /* The written pages read back as zeros. */
    static const uint8_t zero[4096];
    CU_ASSERT_EQUAL(rw(&f, BLKIF_OP_READ, (8 * 4096 + 4095) * 8, 1, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(f.data + 4096, zero, 4096), 0);
    struct volume_stats vst;
    volume_get_stats(volumes_find(vols, "sparse"), &vst);
    CU_ASSERT_EQUAL(vst.logical_pages, 0);
    fe_close(&f);
}

/* Issue 13 item 8, per request: a discard of a fully written range is
 * worked through in chunks (one record and page reference each), so one
 * request's memory stays bounded whatever range it names.  256 MiB written
 * with indirect writes, then one discard of it all: the heap's peak while it
 * runs stays under 3 MiB (all at once it took about 8). */
static void test_full_discard_bounded(void)
{
    struct tfront f;
    connect_dev(&f, 51936, "memx:dense:256M", "w");
    struct blkif_wire_seg *ind = (struct blkif_wire_seg *)(f.data + 15 * 4096);
    for (int i = 0; i < 256; i++)
        ind[i] = (struct blkif_wire_seg){ .gref = f.refs[i % 14], .first_sect = 0, .last_sect = 7 };
    for (int i = 0; i < 14; i++)
        fill(f.data + i * 4096, 4096, 400 + (unsigned)i);
    for (unsigned k = 0; k < 256; k++) {
        struct blkif_x86_64_request_indirect ir = { .operation = BLKIF_OP_INDIRECT,
                                                    .indirect_op = BLKIF_OP_WRITE, .nr_segments = 256,
                                                    .sector_number = (uint64_t)k * 2048 };
        ir.indirect_grefs[0] = f.refs[15];
        CU_ASSERT_EQUAL_FATAL(wait_rsp(&f, push(&f, &ir), NULL), BLKIF_RSP_OKAY);
    }
    for (int k = 0; k < 20; k++)
        evloop_run_once(el, 1);
    size_t heap0 = heap_bytes(), peak = heap0;
    struct blkif_x86_64_request_discard dc = { .operation = BLKIF_OP_DISCARD, .sector_number = 0,
                                               .nr_sectors = 256u * 2048 };
    uint64_t id = push(&f, &dc);
    struct tqueue *q = &f.q[0];
    int st = 99;
    for (uint64_t end = evloop_now_ms() + 20000; evloop_now_ms() < end;) {
        size_t h = heap_bytes();
        if (h > peak)
            peak = h;
        /* acquire: the entry after rsp_prod; pairs with ring_push_responses' wmb */
        if (mx_load_acquire(&q->s->rsp_prod) != q->rsp_cons) {
            struct blkif_x86_32_response rsp;
            memcpy(&rsp, slot(q, q->rsp_cons), sizeof(rsp));
            q->rsp_cons++;
            CU_ASSERT_EQUAL(rsp.id, id);
            st = rsp.status;
            break;
        }
        evloop_run_once(el, 1);
    }
    CU_ASSERT_EQUAL(st, BLKIF_RSP_OKAY);
    printf("\n    discard of 256 MiB fully written: heap peak +%zu KiB while it ran\n", (peak - heap0) / 1024);
    CU_ASSERT(peak - heap0 < 3u << 20);
    struct volume_stats vst;
    volume_get_stats(volumes_find(vols, "dense"), &vst);
    CU_ASSERT_EQUAL(vst.logical_pages, 0);
    static const uint8_t zero[4096];
    CU_ASSERT_EQUAL(rw(&f, BLKIF_OP_READ, 100 * 2048 + 8 * 77, 14, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(f.data + 14 * 4096, zero, 4096), 0);
    fe_close(&f);
    CU_ASSERT_EQUAL(fake_pool_violations(pool), 0);
}

/* Issue 13 item 8: indirect requests' buffers are bounded per device
 * (device_buffer_max, 4 MiB here): with 12 writes of 1 MiB each in flight
 * at once (the pool holds them), no more than the bound's worth are started;
 * the rest wait on the ring, then every one completes with its data. */
static void test_indirect_bound(void)
{
    struct tfront f;
    connect_dev(&f, 51920, "memx:ibound:64M", "w");
    /* One indirect page of 256 segments over data pages 0..13 (reused). */
    struct blkif_wire_seg *ind = (struct blkif_wire_seg *)(f.data + 15 * 4096);
    for (int i = 0; i < 256; i++)
        ind[i] = (struct blkif_wire_seg){ .gref = f.refs[i % 14], .first_sect = 0, .last_sect = 7 };
    for (int i = 0; i < 14; i++)
        fill(f.data + i * 4096, 4096, 300 + (unsigned)i);
    size_t heap0 = heap_bytes();
    fake_pool_hold(pool, true);
    uint64_t ids[12];
    for (unsigned k = 0; k < 12; k++) {
        struct blkif_x86_64_request_indirect ir = { .operation = BLKIF_OP_INDIRECT,
                                                    .indirect_op = BLKIF_OP_WRITE, .nr_segments = 256,
                                                    .sector_number = (uint64_t)k * 2048 };
        ir.indirect_grefs[0] = f.refs[15];
        ids[k] = push(&f, &ir);
    }
    for (int k = 0; k < 50; k++)
        evloop_run_once(el, 1);
    size_t heap = heap_bytes() - heap0;
    struct blkback_dev_info buf[8], *i = info_of(51920, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i);
    printf("\n    12 indirect writes of 1 MiB under a 4 MiB device bound: %llu started, heap grew %zu KiB\n",
           (unsigned long long)i->requests, heap / 1024);
    CU_ASSERT(i->requests >= 1 && i->requests <= 4);
    CU_ASSERT(heap < (4u << 20) + (1u << 20));  /* buffers plus the pool's held copies are small */
    fake_pool_hold(pool, false);
    for (int round = 0; round < 20 && fake_pool_pending(pool); round++) {
        fake_pool_release_all(pool);
        for (int k = 0; k < 10; k++)
            evloop_run_once(el, 1);
    }
    for (unsigned k = 0; k < 12; k++)
        CU_ASSERT_EQUAL(wait_rsp(&f, ids[k], NULL), BLKIF_RSP_OKAY);
    i = info_of(51920, buf);
    CU_ASSERT_EQUAL(i->requests, 12);
    CU_ASSERT_EQUAL(i->errors, 0);
    /* Each one landed: the last page of the 7th reads back as data page 255 % 14. */
    CU_ASSERT_EQUAL(rw(&f, BLKIF_OP_READ, 6 * 2048 + 255 * 8, 14, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(f.data + 14 * 4096, f.data + (255 % 14) * 4096, 4096), 0);
    fe_close(&f);
}

static const struct cu_test tests[] = {
    { "partial multi-queue connect: nothing served before Connected", test_partial_multiqueue },
    { "a bad-request storm: a ring's worth per loop turn, the other guest keeps serving",
      test_bad_request_storm },
    { "a sparse full-range discard: records only for written pages", test_sparse_discard },
    { "a discard of a fully written range: bounded memory (chunks)", test_full_discard_bounded },
    { "indirect buffers bounded per device: the rest wait, all complete", test_indirect_bound },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "blkback on sim, hostile frontends", suite_init, suite_cleanup,
                                            tests },
                                          { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
