/* Pool client against real memx-memd processes on loopback. */
#include "config.h"
#include "cu_main.h"
#include "evloop.h"
#include "histo.h"
#include "log.h"
#include "pool.h"
#include "pool_config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

/* spawn API (test_memd_spawn.c) */
struct memd_proc { pid_t pid; int port; char addr[32]; char log[64]; };
int spawn_write_key(char *path, size_t len, unsigned char raw[32]);
int spawn_memd(struct memd_proc *m, const char *key_path, const char *cap, const char *slab);
int spawn_memd_port(struct memd_proc *m, const char *key_path, const char *cap, const char *slab,
                    int port);
int spawn_stop(struct memd_proc *m, int sig);
int spawn_log_has(const struct memd_proc *m, const char *s);
void spawn_kill_all(void);

#define SLAB "256K"
#define SLAB_BYTES (256u << 10)

static struct evloop *el;
static struct memd_proc memd[3];
static char keypath[64], badkeypath[64];
static uint8_t key[32], badkey[32];

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

static bool run_until(bool *flag, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (!*flag && evloop_now_ms() < end)
        evloop_run_once(el, 50);
    return *flag;
}

static bool wait_live(struct pool *p, int n, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (pool_live_servers(p) < n && evloop_now_ms() < end)
        evloop_run_once(el, 50);
    return pool_live_servers(p) >= n;
}

static void fill(uint8_t *b, unsigned seed)
{
    for (unsigned i = 0; i < POOL_PAGE_SIZE; i++)
        b[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 8));
}

static bool gather;     /* [backend] gather_reads for the next mkpool */

static struct pool *mkpool(int nsrv, int replicas, const uint8_t *k)
{
    struct memx_config cfg;
    char err[256];
    memx_config_defaults(&cfg);
    cfg.gather_reads = gather;
    memx_config_set(&cfg, "cluster", "slab_size", SLAB, err, sizeof(err));
    cfg.replicas = replicas;
    cfg.nservers = nsrv;
    for (int i = 0; i < nsrv; i++)
        strcpy(cfg.servers[i], memd[i].addr);
    struct pool_opts po;
    pool_opts_from_config(&po, &cfg);
    struct pool *p = pool_new(el, &po, k, err, sizeof(err));
    if (!p)
        fprintf(stderr, "pool_new: %s\n", err);
    return p;
}

/* Until every slab has R good copies again (re-replication done). */
static bool wait_healed(struct pool *p, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    struct pool_stats st;
    for (;;) {
        pool_get_stats(p, &st);
        if ((st.degraded_slabs == 0 && !st.rebuilding) || evloop_now_ms() >= end)
            return st.degraded_slabs == 0;
        evloop_run_once(el, 50);
    }
}

static pool_page_t write_page(struct pool *p, const uint8_t *data, int *status)
{
    struct op o = { 0 };
    pool_write_new(p, data, wdone, &o);
    CU_ASSERT_FALSE(o.done);            /* never inside the call */
    CU_ASSERT_TRUE_FATAL(run_until(&o.done, 10000));
    *status = o.status;
    return o.page;
}

static int read_page(struct pool *p, pool_page_t pg, uint8_t *out)
{
    struct op o = { 0 };
    pool_read(p, pg, out, rdone, &o);
    CU_ASSERT_FALSE(o.done);
    CU_ASSERT_TRUE_FATAL(run_until(&o.done, 10000));
    return o.status;
}

static int start3(void)
{
    for (int i = 0; i < 3; i++)
        if (spawn_memd(&memd[i], keypath, "8M", SLAB))
            return -1;
    return 0;
}

static void stop3(void)
{
    for (int i = 0; i < 3; i++)
        if (memd[i].pid > 0)
            spawn_stop(&memd[i], SIGKILL);
}

static int suite_init(void)
{
    srand((unsigned)getpid());
    mx_log_init("test_pool", getenv("MXDEBUG") ? MX_LOG_DEBUG : MX_LOG_WARN);
    el = evloop_new();
    if (!el || spawn_write_key(keypath, sizeof(keypath), key) ||
        spawn_write_key(badkeypath, sizeof(badkeypath), badkey))
        return -1;
    return 0;
}

static int suite_clean(void)
{
    spawn_kill_all();
    unlink(keypath);
    unlink(badkeypath);
    evloop_free(el);
    return 0;
}

/* 3 servers, R=2: bytes round-trip, and one slab's replicas sit on two different servers. */
static void test_write_read_replicas(void)
{
    CU_ASSERT_EQUAL_FATAL(start3(), 0);
    struct pool *p = mkpool(3, 2, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(wait_live(p, 3, 5000));

    enum { N = 48 };                      /* fits one 64-page slab */
    static uint8_t in[N][POOL_PAGE_SIZE], out[POOL_PAGE_SIZE];
    pool_page_t pages[N];
    struct histo hw, hr;
    histo_reset(&hw);
    histo_reset(&hr);
    struct pool_traffic tr0, tr1, tr2;
    pool_get_traffic(p, &tr0);
    for (int i = 0; i < N; i++) {
        int st;
        fill(in[i], (unsigned)i);
        uint64_t t0 = evloop_now_ns();
        pages[i] = write_page(p, in[i], &st);
        histo_record(&hw, evloop_now_ns() - t0);
        CU_ASSERT_EQUAL(st, 0);
        CU_ASSERT_NOT_EQUAL(pages[i], 0);
    }
    /* The transport's counts: a QD1 page write is one page message to each of
     * its R replicas, answered; small messages (the slab's ALLOC, heartbeats)
     * are not pages. */
    pool_get_traffic(p, &tr1);
    CU_ASSERT_EQUAL(tr1.page_msgs - tr0.page_msgs, 2 * N);
    CU_ASSERT(tr1.page_bytes - tr0.page_bytes >= 2ull * N * POOL_PAGE_SIZE);
    CU_ASSERT(tr1.page_bytes - tr0.page_bytes < 2ull * N * (POOL_PAGE_SIZE + 512));
    CU_ASSERT(tr1.msgs_sent - tr0.msgs_sent >= 2 * N);
    CU_ASSERT(tr1.msgs_recvd - tr0.msgs_recvd >= 2 * N);
    CU_ASSERT_EQUAL(tr1.rma_reads, tr0.rma_reads);
    for (int i = 0; i < N; i++) {
        memset(out, 0, sizeof(out));
        uint64_t t0 = evloop_now_ns();
        CU_ASSERT_EQUAL(read_page(p, pages[i], out), 0);
        histo_record(&hr, evloop_now_ns() - t0);
        CU_ASSERT_EQUAL(memcmp(out, in[i], POOL_PAGE_SIZE), 0);
    }
    printf("\n  QD1 4 KiB over tcp;ofi_rxm, R=2: write p50 %.1f us, read p50 %.1f us (informational)\n",
           histo_quantile(&hw, 0.5) / 1000.0, histo_quantile(&hr, 0.5) / 1000.0);

    struct pool_server_info info[3];
    CU_ASSERT_EQUAL(pool_get_servers(p, info, 3), 3);
    int holding = 0;
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_STRING_EQUAL(info[i].state, "up");
        CU_ASSERT_STRING_EQUAL(info[i].provider, "tcp;ofi_rxm");
        CU_ASSERT(info[i].used == 0 || info[i].used == SLAB_BYTES);
        holding += info[i].used == SLAB_BYTES;
    }
    CU_ASSERT_EQUAL(holding, 2);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.pages_stored, N);
    CU_ASSERT_EQUAL(st.slabs, 1);
    CU_ASSERT_EQUAL(st.writes, N);
    CU_ASSERT_EQUAL(st.reads, N);
    CU_ASSERT_EQUAL(st.live_servers, 3);

    /* Pages written one after another sit in consecutive slots: one read
     * brings a run of them, checked page by page against their hashes. */
    for (int i = 1; i < N; i++)
        CU_ASSERT(pool_page_follows(pages[i - 1], pages[i]));
    CU_ASSERT_FALSE(pool_page_follows(pages[1], pages[0]));
    CU_ASSERT_FALSE(pool_page_follows(pages[0], pages[0] + (1ull << 32) + 1));
    static uint8_t run[POOL_RUN_MAX][POOL_PAGE_SIZE], hashes[POOL_RUN_MAX][16];
    for (int i = 0; i < POOL_RUN_MAX; i++)
        pool_hash(in[5 + i], hashes[i]);
    struct op o = { 0 };
    pool_read_run(p, pages[5], POOL_RUN_MAX, (const uint8_t (*)[16])hashes, run, rdone, &o);
    CU_ASSERT_TRUE_FATAL(run_until(&o.done, 10000));
    CU_ASSERT_EQUAL(o.status, 0);
    for (int i = 0; i < POOL_RUN_MAX; i++)
        CU_ASSERT_EQUAL(memcmp(run[i], in[5 + i], POOL_PAGE_SIZE), 0);
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.reads, N + POOL_RUN_MAX);
    /* A QD1 read is one RMA read of its page; a run is one of all its pages
     * (plus, on a loaded machine, a hedge of a read late past HEDGE_MS: one
     * failure of make check at load 5 was one such extra read). */
    pool_get_traffic(p, &tr2);
    uint64_t hedged = st.hedged_reads;
    CU_ASSERT(hedged <= 2);
    CU_ASSERT_EQUAL(tr2.rma_reads - tr1.rma_reads, N + 1 + hedged);
    CU_ASSERT_EQUAL(tr2.rma_pieces - tr1.rma_pieces, N + 1 + hedged);
    if (!hedged)    /* a hedged run's bytes depend on which read was late */
        CU_ASSERT_EQUAL(tr2.rma_bytes - tr1.rma_bytes, (uint64_t)(N + POOL_RUN_MAX) * POOL_PAGE_SIZE);
    CU_ASSERT_EQUAL(tr2.page_msgs, tr1.page_msgs);
    /* A run past the end of its slab, or longer than POOL_RUN_MAX, is refused. */
    o = (struct op){ 0 };
    pool_read_run(p, pages[0] + SLAB_BYTES / POOL_PAGE_SIZE - 2, 3, NULL, run, rdone, &o);
    CU_ASSERT_TRUE_FATAL(run_until(&o.done, 10000));
    CU_ASSERT_EQUAL(o.status, -EINVAL);
    o = (struct op){ 0 };
    pool_read_run(p, pages[0], POOL_RUN_MAX + 1, NULL, run, rdone, &o);
    CU_ASSERT_TRUE_FATAL(run_until(&o.done, 10000));
    CU_ASSERT_EQUAL(o.status, -EINVAL);

    /* A freed page is handed out again. */
    pool_free_page(p, pages[0]);
    int s2;
    pool_page_t again = write_page(p, in[0], &s2);
    CU_ASSERT_EQUAL(s2, 0);
    CU_ASSERT_EQUAL(again, pages[0]);
    pool_free(p);
    stop3();
}

/* Writes issued in one loop turn are placed together: one PAGE_WRITE per
 * replica carries up to POOL_RUN_MAX of them, in consecutive slots of a
 * fresh slab, which then read back as one run. */
static void test_write_runs(void)
{
    CU_ASSERT_EQUAL_FATAL(start3(), 0);
    gather = true;
    struct pool *p = mkpool(3, 2, key);
    gather = false;
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(wait_live(p, 3, 5000));

    enum { N = POOL_RUN_MAX + 4 };
    static uint8_t in[N][POOL_PAGE_SIZE], out[N][POOL_PAGE_SIZE];
    struct op o[N];
    memset(o, 0, sizeof(o));
    struct histo t0[POOL_T_N], t1[POOL_T_N];
    pool_get_timing(p, t0);
    for (int i = 0; i < N; i++) {
        fill(in[i], 200u + (unsigned)i);
        pool_write_new(p, in[i], wdone, &o[i]);
    }
    for (int i = 0; i < N; i++) {
        CU_ASSERT_TRUE_FATAL(run_until(&o[i].done, 10000));
        CU_ASSERT_EQUAL(o[i].status, 0);
    }
    /* A replica later than WRITE_LATE_MS on a loaded host lets its writes
     * complete without it; its answer still comes, and is counted then. */
    uint64_t end = evloop_now_ms() + 2000;
    do {
        pool_get_timing(p, t1);
        if (t1[POOL_T_XPORT_WRITE].count - t0[POOL_T_XPORT_WRITE].count >= 4)
            break;
        evloop_run_once(el, 50);
    } while (evloop_now_ms() < end);
    /* Two runs (16 + 4 pages) to 2 replicas: 4 messages, not 40. */
    CU_ASSERT_EQUAL(t1[POOL_T_XPORT_WRITE].count - t0[POOL_T_XPORT_WRITE].count, 4);
    for (int i = 1; i < N; i++)
        CU_ASSERT(pool_page_follows(o[i - 1].page, o[i].page));
    struct pool_stats st0, st1;
    pool_get_stats(p, &st0);
    struct op r = { 0 };
    pool_read_run(p, o[0].page, POOL_RUN_MAX, NULL, out, rdone, &r);
    CU_ASSERT_TRUE_FATAL(run_until(&r.done, 10000));
    CU_ASSERT_EQUAL(r.status, 0);
    for (int i = POOL_RUN_MAX; i < N; i++)
        CU_ASSERT_EQUAL(read_page(p, o[i].page, out[i]), 0);
    CU_ASSERT_EQUAL(memcmp(in, out, sizeof(in)), 0);
    pool_get_stats(p, &st1);
    CU_ASSERT_EQUAL(st1.reads - st0.reads, N);
    CU_ASSERT_EQUAL(st1.xport_reads - st0.xport_reads, 1 + N - POOL_RUN_MAX);

    /* Reads issued together, while others are in flight to the same server,
     * are gathered: one RMA read brings several scattered pages (up to the
     * provider's limit: 4 with tcp;ofi_rxm), each checked against its hash. */
    static uint8_t many[N][POOL_PAGE_SIZE];
    uint8_t hashes[N][16];
    struct op g[N];
    memset(g, 0, sizeof(g));
    memset(many, 0, sizeof(many));
    pool_get_stats(p, &st0);
    for (int i = 0; i < N; i++) {
        int k = (i * 7) % N;                    /* scattered, not a run */
        pool_hash(in[k], hashes[k]);
        pool_read_checked(p, o[k].page, hashes[k], many[k], rdone, &g[i]);
    }
    for (int i = 0; i < N; i++) {
        CU_ASSERT_TRUE_FATAL(run_until(&g[i].done, 10000));
        CU_ASSERT_EQUAL(g[i].status, 0);
    }
    CU_ASSERT_EQUAL(memcmp(in, many, sizeof(in)), 0);
    pool_get_stats(p, &st1);
    CU_ASSERT_EQUAL(st1.reads - st0.reads, N);
    CU_ASSERT(st1.xport_reads - st0.xport_reads < N);
    printf("\n  %d scattered reads in one turn: %llu RMA reads (informational)\n", N,
           (unsigned long long)(st1.xport_reads - st0.xport_reads));

    /* A churned slab (single free slots here and there): a run of writes
     * goes to a free stretch, not into the holes, so it reads back as one. */
    for (int i = 2; i <= 8; i += 2)
        pool_free_page(p, o[i].page);
    struct op w[4];
    memset(w, 0, sizeof(w));
    for (int i = 0; i < 4; i++)
        pool_write_new(p, in[i], wdone, &w[i]);
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_TRUE_FATAL(run_until(&w[i].done, 10000));
        CU_ASSERT_EQUAL(w[i].status, 0);
    }
    for (int i = 1; i < 4; i++)
        CU_ASSERT(pool_page_follows(w[i - 1].page, w[i].page));
    pool_free(p);
    stop3();
}

/* A server with another key refuses us; we refuse it; nothing is written, never zeros. */
static void test_wrong_key(void)
{
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&memd[0], keypath, "8M", SLAB), 0);
    struct pool *p = mkpool(1, 1, badkey);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    uint8_t page[POOL_PAGE_SIZE];
    fill(page, 1);
    int st;
    write_page(p, page, &st);
    CU_ASSERT_EQUAL(st, -EHOSTUNREACH);        /* nothing stored; no server we could use */
    CU_ASSERT_EQUAL(pool_live_servers(p), 0);
    struct pool_server_info info;
    pool_get_servers(p, &info, 1);
    CU_ASSERT_STRING_EQUAL(info.state, "refused");
    CU_ASSERT_TRUE(spawn_log_has(&memd[0], "wrong cluster key"));
    CU_ASSERT_TRUE(spawn_log_has(&memd[0], "refused "));
    pool_free(p);
    spawn_stop(&memd[0], SIGKILL);
}

/* One server, one slab of room: the slab fills, then -ENOSPC. */
static void test_full(void)
{
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&memd[0], keypath, SLAB, SLAB), 0);
    struct pool *p = mkpool(1, 1, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(wait_live(p, 1, 5000));
    uint8_t page[POOL_PAGE_SIZE];
    int st = 0;
    for (unsigned i = 0; i < SLAB_BYTES / POOL_PAGE_SIZE && st == 0; i++) {
        fill(page, i);
        write_page(p, page, &st);
    }
    CU_ASSERT_EQUAL(st, 0);
    write_page(p, page, &st);
    CU_ASSERT_EQUAL(st, -ENOSPC);
    pool_free(p);
    spawn_stop(&memd[0], SIGTERM);
}

/* R=2 over 3 servers: SIGKILL one, every page still reads back right, the
 * pool is degraded until its slabs are re-replicated on the two survivors;
 * then kill a second and every page still reads back right. */
static void test_server_killed(void)
{
    CU_ASSERT_EQUAL_FATAL(start3(), 0);
    struct pool *p = mkpool(3, 2, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(wait_live(p, 3, 5000));
    enum { N = 200 };                     /* several slabs, spread over the servers */
    static uint8_t in[N][POOL_PAGE_SIZE], out[POOL_PAGE_SIZE];
    pool_page_t pages[N];
    for (int i = 0; i < N; i++) {
        int st;
        fill(in[i], (unsigned)i + 1000);
        pages[i] = write_page(p, in[i], &st);
        CU_ASSERT_EQUAL_FATAL(st, 0);
    }
    struct pool_server_info info[3];
    pool_get_servers(p, info, 3);
    int victim = info[0].used ? 0 : 1;
    CU_ASSERT_EQUAL(spawn_stop(&memd[victim], SIGKILL), 128 + SIGKILL);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        memset(out, 0, sizeof(out));
        int st = read_page(p, pages[i], out);
        CU_ASSERT_EQUAL(st, 0);
        ok += st == 0 && memcmp(out, in[i], POOL_PAGE_SIZE) == 0;
    }
    CU_ASSERT_EQUAL(ok, N);
    /* The reads may all have been served by the survivors: an idle dead server
     * is found by its unanswered heartbeat. */
    uint64_t until = evloop_now_ms() + 5000;
    while (pool_live_servers(p) > 2 && evloop_now_ms() < until)
        evloop_run_once(el, 50);
    CU_ASSERT_EQUAL(pool_live_servers(p), 2);
    struct pool_stats st0;
    pool_get_stats(p, &st0);
    CU_ASSERT(st0.degraded_slabs > 0 || st0.rereplicated_pages > 0);
    CU_ASSERT_EQUAL(st0.lost_slabs, 0);
    CU_ASSERT_TRUE(wait_healed(p, 15000));
    pool_get_stats(p, &st0);
    CU_ASSERT(st0.rereplicated_pages > 0);
    /* New writes still succeed, on the survivors. */
    int st;
    pool_page_t np = write_page(p, in[0], &st);
    CU_ASSERT_EQUAL(st, 0);
    CU_ASSERT_EQUAL(read_page(p, np, out), 0);
    CU_ASSERT_EQUAL(memcmp(out, in[0], POOL_PAGE_SIZE), 0);

    int second = victim == 0 ? 1 : 0;
    spawn_stop(&memd[second], SIGKILL);
    /* Re-replication put a copy of every slab on the last server. */
    int good = 0, eio = 0, wrong = 0;
    for (int i = 0; i < N; i++) {
        memset(out, 0, sizeof(out));
        int rs = read_page(p, pages[i], out);
        if (rs == 0 && memcmp(out, in[i], POOL_PAGE_SIZE) == 0)
            good++;
        else if (rs == -EIO)
            eio++;
        else
            wrong++;
    }
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(good, N);
    CU_ASSERT_EQUAL(eio, 0);
    pool_free(p);
    stop3();
}

/* A server that stops answering (SIGSTOP: no RST, no error, just silence):
 * every read it held is hedged to another replica, it is declared down by
 * its timeouts, and no other server is declared down with it.  Reads run at a deep
 * queue so the timeout relaunches many of them in one sweep. */
static void test_server_hung(void)
{
    CU_ASSERT_EQUAL_FATAL(start3(), 0);
    struct pool *p = mkpool(3, 2, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(wait_live(p, 3, 5000));
    enum { N = 192 };
    static uint8_t in[N][POOL_PAGE_SIZE], out[N][POOL_PAGE_SIZE];
    pool_page_t pages[N];
    for (int i = 0; i < N; i++) {
        int st;
        fill(in[i], (unsigned)i + 7000);
        pages[i] = write_page(p, in[i], &st);
        CU_ASSERT_EQUAL_FATAL(st, 0);
    }
    struct pool_server_info info[3];
    pool_get_servers(p, info, 3);
    int victim = info[0].used ? 0 : 1;
    CU_ASSERT_EQUAL_FATAL(kill(memd[victim].pid, SIGSTOP), 0);
    static struct op ops[N];
    memset(ops, 0, sizeof(ops));
    memset(out, 0, sizeof(out));
    for (int i = 0; i < N; i++)
        pool_read(p, pages[i], out[i], rdone, &ops[i]);
    uint64_t end = evloop_now_ms() + 15000;
    int done = 0;
    while (done < N && evloop_now_ms() < end) {
        evloop_run_once(el, 50);
        done = 0;
        for (int i = 0; i < N; i++)
            done += ops[i].done;
    }
    CU_ASSERT_EQUAL(done, N);
    int ok = 0;
    for (int i = 0; i < N; i++)
        ok += ops[i].done && ops[i].status == 0 && memcmp(out[i], in[i], POOL_PAGE_SIZE) == 0;
    CU_ASSERT_EQUAL(ok, N);
    /* The reads were hedged to other replicas within ms; the victim is
     * declared down by its timeouts later, and alone. */
    end = evloop_now_ms() + 15000;
    do {
        evloop_run_once(el, 50);
        pool_get_servers(p, info, 3);
    } while (strcmp(info[victim].state, "down") && evloop_now_ms() < end);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_STRING_EQUAL(info[i].state, i == victim ? "down" : "up");
    /* Back as the same process: it rejoins, and the slabs it held for us
     * (re-created elsewhere meanwhile) are freed there, not leaked. */
    kill(memd[victim].pid, SIGCONT);
    CU_ASSERT_TRUE(wait_healed(p, 15000));
    end = evloop_now_ms() + 20000;
    bool clean = false;
    while (!clean && evloop_now_ms() < end) {
        evloop_run_once(el, 100);
        pool_get_servers(p, info, 3);
        clean = strcmp(info[victim].state, "up") == 0 &&
                info[victim].used == (uint64_t)info[victim].replicas * SLAB_BYTES;
    }
    CU_ASSERT_TRUE(clean);
    CU_ASSERT_TRUE(spawn_log_has(&memd[victim], "replaced by a new session"));
    pool_free(p);
    stop3();
}

/* R=2 over 2 servers: one dies, nowhere to re-replicate (degraded); it
 * restarts empty on the same address, rejoins, takes the missing copies; then
 * the other dies and every page still reads back right.  With both gone a
 * read fails with -EIO, never zeros. */
static void test_server_rejoins(void)
{
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&memd[0], keypath, "8M", SLAB), 0);
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&memd[1], keypath, "8M", SLAB), 0);
    struct pool *p = mkpool(2, 2, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(wait_live(p, 2, 5000));
    enum { N = 150 };
    static uint8_t in[N][POOL_PAGE_SIZE], out[POOL_PAGE_SIZE];
    pool_page_t pages[N];
    for (int i = 0; i < N; i++) {
        int st;
        fill(in[i], (unsigned)i + 3000);
        pages[i] = write_page(p, in[i], &st);
        CU_ASSERT_EQUAL_FATAL(st, 0);
    }
    int port = memd[0].port;
    spawn_stop(&memd[0], SIGKILL);
    CU_ASSERT_EQUAL(read_page(p, pages[0], out), 0);       /* notices the death */
    uint64_t end = evloop_now_ms() + 10000;
    while (pool_live_servers(p) > 1 && evloop_now_ms() < end)
        evloop_run_once(el, 50);
    struct pool_stats st;
    evloop_run_once(el, 200);
    pool_get_stats(p, &st);
    CU_ASSERT(st.degraded_slabs > 0);
    CU_ASSERT_EQUAL(st.lost_slabs, 0);

    CU_ASSERT_EQUAL_FATAL(spawn_memd_port(&memd[0], keypath, "8M", SLAB, port), 0);
    CU_ASSERT_TRUE(wait_live(p, 2, 10000));
    CU_ASSERT_TRUE(wait_healed(p, 15000));
    spawn_stop(&memd[1], SIGKILL);
    int good = 0;
    for (int i = 0; i < N; i++) {
        memset(out, 0, sizeof(out));
        good += read_page(p, pages[i], out) == 0 && memcmp(out, in[i], POOL_PAGE_SIZE) == 0;
    }
    CU_ASSERT_EQUAL(good, N);
    spawn_stop(&memd[0], SIGKILL);
    memset(out, 0, sizeof(out));
    /* Never zeros; the one copy's server is down, not known gone: unreachable. */
    CU_ASSERT_EQUAL(read_page(p, pages[1], out), -EHOSTUNREACH);
    pool_free(p);
}

/* Drain: the server's replicas move away, it shows "drained", and killing it
 * then leaves the pool with every slab at R copies. */
static void test_drain(void)
{
    CU_ASSERT_EQUAL_FATAL(start3(), 0);
    struct pool *p = mkpool(3, 2, key);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_TRUE_FATAL(wait_live(p, 3, 5000));
    enum { N = 200 };
    static uint8_t in[N][POOL_PAGE_SIZE], out[POOL_PAGE_SIZE];
    pool_page_t pages[N];
    for (int i = 0; i < N; i++) {
        int st;
        fill(in[i], (unsigned)i + 9000);
        pages[i] = write_page(p, in[i], &st);
        CU_ASSERT_EQUAL_FATAL(st, 0);
    }
    struct pool_server_info info[3];
    pool_get_servers(p, info, 3);
    int victim = info[0].replicas ? 0 : 1;
    CU_ASSERT(info[victim].replicas > 0);
    char err[128];
    CU_ASSERT_EQUAL(pool_drain(p, "127.0.0.1:1", true, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a configured memory server"));
    CU_ASSERT_EQUAL_FATAL(pool_drain(p, memd[victim].addr, true, err, sizeof(err)), 0);
    uint64_t end = evloop_now_ms() + 20000;
    do {
        evloop_run_once(el, 50);
        pool_get_servers(p, info, 3);
    } while ((strcmp(info[victim].state, "drained") || info[victim].used) && evloop_now_ms() < end);
    CU_ASSERT_STRING_EQUAL(info[victim].state, "drained");
    CU_ASSERT_EQUAL(info[victim].replicas, 0);
    CU_ASSERT_EQUAL(info[victim].used, 0);       /* its slabs were freed on it (heartbeat's figure) */
    spawn_stop(&memd[victim], SIGKILL);
    int good = 0;
    for (int i = 0; i < N; i++) {
        memset(out, 0, sizeof(out));
        good += read_page(p, pages[i], out) == 0 && memcmp(out, in[i], POOL_PAGE_SIZE) == 0;
    }
    CU_ASSERT_EQUAL(good, N);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.degraded_slabs, 0);
    pool_free(p);
    stop3();
}

static const struct cu_test tests[] = {
    { "write/read, replicas on distinct servers", test_write_read_replicas },
    { "writes of one loop turn share a message per replica", test_write_runs },
    { "wrong cluster key is refused", test_wrong_key },
    { "full server gives -ENOSPC", test_full },
    { "server killed: reads fall back", test_server_killed },
    { "server hung: timed out alone, reads fall back, rejoins clean", test_server_hung },
    { "server restarts empty, rejoins, takes the missing copies", test_server_rejoins },
    { "drain moves every replica away", test_drain },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "pool", suite_init, suite_clean, tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
