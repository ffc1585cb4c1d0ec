/* test_volclaim.c — the volume layer with a coordinator (volclaim_ops,
 * volmeta.h; ownership.c in memx-backd) played by a fake claimer, over the
 * fake pool (vol_harness.c): a takeover waits fence_wait_ms only when a
 * member server did not take the claim directly, a claimer that cannot
 * answer now (-EAGAIN) is asked again later, writes wait while the claim
 * cannot be proven (may_write false) and are replayed in issue order while
 * reads go on, and a store the pool failed with -EAGAIN is retried. */
#include "cu_main.h"
#include "evloop.h"
#include "fake_pool.h"
#include "log.h"
#include "vol_harness.h"
#include "vol_wait.h"
#include "volmeta.h"
#include "volume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FENCE_MS 600

/* The fake coordinator: epochs 1, 2...; the next `again` claims answer -EAGAIN. */
struct fclaim {
    struct volclaim_ops ops;
    unsigned calls, again;
    uint64_t epoch;
    bool takeover, may_write;
    unsigned forgets, insync_sets;
    int ninsync;
    int refuse;                 /* != 0: every claim answers it */
    volclaim_cb cb;
    void *arg;
};
static struct fclaim fc;

static int answer(struct evloop *l, long long id, void *arg)
{
    (void)l;
    (void)id;
    (void)arg;
    volclaim_cb cb = fc.cb;
    fc.cb = NULL;
    if (fc.refuse) {
        cb(fc.arg, fc.refuse, NULL, "volume t exists in the pool with size 4096 bytes, not 262144");
    } else if (fc.again) {
        fc.again--;
        cb(fc.arg, -EAGAIN, NULL, "etcd: Connection refused");
    } else {
        struct volclaim_result res = { .epoch = ++fc.epoch, .takeover = fc.takeover, .ninsync = -1 };
        cb(fc.arg, 0, &res, NULL);
    }
    return -1;
}

/* The in-sync set: taken at once (answered from the loop). */
static volclaim_done_cb set_cb;
static void *set_arg;
static int set_answer(struct evloop *l, long long id, void *arg)
{
    (void)l;
    (void)id;
    (void)arg;
    volclaim_done_cb cb = set_cb;
    set_cb = NULL;
    cb(set_arg, 0);
    return -1;
}

static int fc_set_insync(void *ctx, const char *name, const char *const *addrs, int n, volclaim_done_cb cb,
                         void *arg)
{
    (void)ctx;
    (void)addrs;
    CU_ASSERT_STRING_EQUAL(name, "t");
    CU_ASSERT_PTR_NULL(set_cb);             /* one at a time */
    fc.insync_sets++;
    fc.ninsync = n;
    set_cb = cb;
    set_arg = arg;
    return evloop_add_timer(el, 1, set_answer, NULL) > 0 ? 0 : -ENOMEM;
}

static int fc_claim(void *ctx, const char *name, uint64_t vid, uint64_t size, volclaim_cb cb, void *arg)
{
    (void)ctx;
    (void)vid;
    (void)size;
    CU_ASSERT_STRING_EQUAL(name, "t");
    CU_ASSERT_PTR_NULL(fc.cb);              /* one claim at a time */
    fc.calls++;
    fc.cb = cb;
    fc.arg = arg;
    return evloop_add_timer(el, 1, answer, NULL) > 0 ? 0 : -ENOMEM;
}
static void fc_forget(void *ctx, const char *name) { (void)ctx; (void)name; fc.forgets++; }
static bool fc_may_write(void *ctx) { (void)ctx; return fc.may_write; }

static void fc_init(bool takeover, unsigned again)
{
    set_cb = NULL;              /* an answer the last test's teardown dropped */
    fc = (struct fclaim){ .ops = { .claim = fc_claim, .set_insync = fc_set_insync, .forget = fc_forget,
                                   .may_write = fc_may_write,
                                   .fence_wait_ms = FENCE_MS, .ctx = &fc },
                          .takeover = takeover, .again = again, .may_write = true };
}

/* Attaches "t" with the fake claimer over nmeta servers (down: one not
 * answering); returns how long loading took. */
static uint64_t attach_timed(bool takeover, int nmeta, int down)
{
    fc_init(takeover, 0);
    uint64_t t0 = evloop_now_ms();
    el = evloop_new();
    pool = fake_pool_new(el);
    fake_pool_meta_servers(pool, nmeta);
    if (down >= 0)
        fake_pool_meta_srv_down(pool, down, true);
    vs = volumes_new(pool, false);
    volumes_set_claimer(vs, &fc.ops);
    char err[128];
    t0 = evloop_now_ms();
    v = volume_attach(vs, "t", 64 * PG, "test", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(wait_ready(el, v), 0);
    return evloop_now_ms() - t0;
}

static void test_takeover_all_answer(void)
{
    uint64_t took = attach_timed(true, 3, -1);
    printf("\n    takeover, 3 of 3 servers answering: ready in %llu ms ", (unsigned long long)took);
    CU_ASSERT(took < FENCE_MS / 2);
    CU_ASSERT_EQUAL(fc.calls, 1);
    static uint8_t w[PG], r[PG];
    fill(w, PG, 3);
    CU_ASSERT_EQUAL(do_write(0, SPP, w), 0);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, PG), 0);
    teardown();
}

static void test_takeover_one_silent(void)
{
    uint64_t took = attach_timed(true, 3, 1);
    printf("\n    takeover, 2 of 3 servers answering: ready in %llu ms ", (unsigned long long)took);
    CU_ASSERT(took >= FENCE_MS - 20 && took < FENCE_MS + 400);
    teardown();
    /* Not a takeover (the volume was ours, or new): nobody to fence, no wait. */
    took = attach_timed(false, 3, 1);
    CU_ASSERT(took < FENCE_MS / 2);
    teardown();
}

/* The claimer cannot reach etcd: loading is tried again later, and the volume comes up. */
static void test_claimer_again(void)
{
    fc_init(false, 2);
    uint64_t t0 = evloop_now_ms();
    setup_claimer(&fc.ops, 1);
    const char *why = NULL;
    CU_ASSERT(volume_state(v, &why) > 0);              /* loading */
    CU_ASSERT_EQUAL(wait_ready(el, v), 0);
    CU_ASSERT_EQUAL(fc.calls, 3);
    CU_ASSERT(evloop_now_ms() - t0 >= 2 * 250 - 20);   /* volumes.c's LOAD_RETRY_MS, twice */
    teardown();
}

static void test_delete_forgets(void)
{
    fc_init(false, 0);
    setup_claimer(&fc.ops, 1);
    CU_ASSERT_EQUAL(wait_ready(el, v), 0);
    /* Deleting it tells the coordinator. */
    volume_detach(v);
    CU_ASSERT_EQUAL(volume_delete(vs, "t"), 0);
    CU_ASSERT_EQUAL(fc.forgets, 1);
    teardown();
}

/* The coordinator refuses the claim (another size): the volume fails with its message. */
static void test_claim_refused(void)
{
    fc_init(false, 0);
    fc.refuse = -EEXIST;
    setup_claimer(&fc.ops, 1);
    const char *why = NULL;
    CU_ASSERT_EQUAL(wait_ready(el, v), -1);
    CU_ASSERT_EQUAL(volume_state(v, &why), -1);
    CU_ASSERT(why && strstr(why, "4096") && strstr(why, "262144"));
    CU_ASSERT_EQUAL(fc.calls, 1);
    static uint8_t a[PG];
    CU_ASSERT(do_write(0, SPP, a) < 0);
    teardown();
}

/* The claim cannot be proven: writes, discards and flushes wait, reads go
 * on; once provable, the held requests run in issue order (the later write
 * to a page wins) and none is lost. */
static void test_writes_held(void)
{
    fc_init(false, 0);
    setup_claimer(&fc.ops, 2);
    CU_ASSERT_EQUAL_FATAL(wait_ready(el, v), 0);
    static uint8_t a[PG], b[PG], c[PG], d2[PG], r[PG], z[PG];
    fill(a, PG, 11);
    fill(b, PG, 12);
    fill(c, PG, 13);
    fill(d2, PG, 14);
    CU_ASSERT_EQUAL(do_write(0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(3 * SPP, SPP, a), 0);
    fc.may_write = false;
    struct done w1 = { 0, 1 }, w2 = { 0, 1 }, w3 = { 0, 1 }, dsc = { 0, 1 }, fl = { 0, 1 };
    volume_write(v, 0, SPP, b, on_done, &w1);           /* page 0: b, then c */
    volume_write(v, SPP, SPP, d2, on_done, &w2);        /* page 1 */
    volume_discard(v, 3 * SPP, SPP, on_done, &dsc);     /* page 3 */
    volume_write(v, 0, SPP, c, on_done, &w3);
    volume_flush(v, on_done, &fl);
    for (int i = 0; i < 40; i++)
        evloop_run_once(el, 10);
    CU_ASSERT_EQUAL(w1.calls + w2.calls + w3.calls + dsc.calls + fl.calls, 0);
    /* Reads are served meanwhile, from what was written before. */
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, a, PG), 0);
    CU_ASSERT_EQUAL(do_read(3 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, a, PG), 0);
    CU_ASSERT_EQUAL(w1.calls + w2.calls + w3.calls + dsc.calls + fl.calls, 0);
    fc.may_write = true;
    run_until(el, &fl, 1);
    run_until(el, &w3, 1);
    CU_ASSERT(w1.calls == 1 && w2.calls == 1 && w3.calls == 1 && dsc.calls == 1 && fl.calls == 1);
    CU_ASSERT(w1.status == 0 && w2.status == 0 && w3.status == 0 && dsc.status == 0 && fl.status == 0);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, c, PG), 0);               /* the later write won */
    CU_ASSERT_EQUAL(do_read(SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, d2, PG), 0);
    CU_ASSERT_EQUAL(do_read(3 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, z, PG), 0);               /* discarded */
    /* A new volume table on the same pool (a restarted backend) finds the same. */
    volume_detach(v);
    volumes_free(vs);
    fake_pool_restart(pool);
    fc_init(false, 0);
    fc.epoch = 5;
    vs = volumes_new(pool, false);
    volumes_set_claimer(vs, &fc.ops);
    char err[128];
    v = volume_attach(vs, "t", 64 * PG, "test", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(wait_ready(el, v), 0);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, c, PG), 0);
    CU_ASSERT_EQUAL(do_read(SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, d2, PG), 0);
    CU_ASSERT_EQUAL(do_read(3 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, z, PG), 0);
    teardown();
}

/* A page store the pool failed with -EAGAIN (no server could prove our claim now) is retried. */
static void test_store_again(void)
{
    fc_init(false, 0);
    setup_claimer(&fc.ops, 1);
    CU_ASSERT_EQUAL_FATAL(wait_ready(el, v), 0);
    static uint8_t a[PG], r[PG];
    fill(a, PG, 21);
    fake_pool_fail_writes(pool, 2, -EAGAIN);
    uint64_t t0 = evloop_now_ms();
    CU_ASSERT_EQUAL(do_write(0, SPP, a), 0);
    CU_ASSERT(evloop_now_ms() - t0 >= 2 * 100 - 20);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, a, PG), 0);
    /* A store retried while a later write of the same page goes on: the later one wins. */
    static uint8_t b[PG], c[PG], d[PG];
    fill(b, PG, 22);
    fill(c, PG, 23);
    fill(d, PG, 24);
    fake_pool_fail_writes(pool, 1, -EAGAIN);
    struct done w1 = { 0, 1 }, w2 = { 0, 1 }, w3 = { 0, 1 };
    volume_write(v, 0, SPP, b, on_done, &w1);
    volume_write(v, SPP, SPP, d, on_done, &w3);
    for (int i = 0; i < 3; i++)
        evloop_run_once(el, 1);
    volume_write(v, 0, SPP, c, on_done, &w2);
    run_until(el, &w1, 1);
    run_until(el, &w2, 1);
    run_until(el, &w3, 1);
    CU_ASSERT(w1.calls == 1 && w2.calls == 1 && w3.calls == 1);
    CU_ASSERT(w1.status == 0 && w2.status == 0 && w3.status == 0);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, c, PG), 0);
    CU_ASSERT_EQUAL(do_read(SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, d, PG), 0);
    /* And after a reload from the pool's records. */
    volume_detach(v);
    volumes_free(vs);
    fake_pool_restart(pool);
    fc.epoch += 1;
    vs = volumes_new(pool, false);
    volumes_set_claimer(vs, &fc.ops);
    char err[128];
    v = volume_attach(vs, "t", 64 * PG, "test", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(wait_ready(el, v), 0);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, c, PG), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);     /* nothing leaked */
    teardown();
}

static int init(void) { mx_log_init("test_volclaim", getenv("MEMX_LOG_DEBUG") ? MX_LOG_DEBUG : MX_LOG_ERR); return 0; }

/* The in-sync set: the servers read from at attach; a server that misses a
 * write leaves it (in etcd) before the write completes, and rejoins once it
 * has every record again. */
static void test_insync_set(void)
{
    attach_timed(false, 3, 2);
    CU_ASSERT_EQUAL(fc.insync_sets, 1);
    CU_ASSERT_EQUAL(fc.ninsync, 2);             /* server 2 did not take the claim */
    static uint8_t w[PG], r[PG];
    fill(w, PG, 9);
    fake_pool_few_writes(pool, 1000);           /* records the slow way, through the set */
    fake_pool_meta_srv_down(pool, 1, true);     /* in the set, gone before the write */
    CU_ASSERT_EQUAL(do_write(0, SPP, w), 0);
    CU_ASSERT_EQUAL(fc.insync_sets, 2);         /* dropped before the write completed */
    CU_ASSERT_EQUAL(fc.ninsync, 1);
    /* Back: caught up (the records it missed), then it rejoins, not sooner than 1 s later. */
    fake_pool_meta_srv_down(pool, 1, false);
    fake_pool_meta_srv_down(pool, 2, false);
    CU_ASSERT_EQUAL(do_write(SPP, SPP, w), 0);  /* server 2 hears of the volume: owed every record */
    uint64_t t0 = evloop_now_ms();
    while (fc.ninsync < 3 && evloop_now_ms() - t0 < 5000)
        evloop_run_once(el, 50);
    printf("\n    in-sync set back to %d servers after %llu ms, %u writes of it ", fc.ninsync,
           (unsigned long long)(evloop_now_ms() - t0), fc.insync_sets);
    CU_ASSERT_EQUAL(fc.ninsync, 3);
    CU_ASSERT(evloop_now_ms() - t0 >= 800);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, PG), 0);
    teardown();
}

static const struct cu_test tests[] = {
    { "in-sync set: set at attach, shrinks before an ack, grows once caught up", test_insync_set },
    { "takeover with every member answering: no wait", test_takeover_all_answer },
    { "takeover with a member silent: waits fence_wait_ms", test_takeover_one_silent },
    { "claimer -EAGAIN: loading tried again", test_claimer_again },
    { "delete tells the coordinator", test_delete_forgets },
    { "claim refused (-EEXIST): the volume fails with the message", test_claim_refused },
    { "may_write false: writes held, reads served, replayed in order", test_writes_held },
    { "pool -EAGAIN on a store: retried", test_store_again },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "volclaim", init, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
