/* test_front — libmemxfront against a scripted fake blkif backend.
 *
 * Each test starts a fake backend (dom0) in a child process on the sim
 * platform (memx-simxsd in a temp dir): it plays the XenBus handshake,
 * checks the nodes the frontend wrote, maps the rings, serves a 1 MiB RAM
 * disk with grant copy (indirect descriptors too) and closes when told.  It
 * reports what it saw in XenStore under /test, which the tests assert on.
 */
#include "cu_main.h"
#include "memxfront.h"
#include "xenplat.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>
#include <xen/io/protocols.h>
#include <xen/io/xenbus.h>

#define FE_DOM 1
#define DEVID 51728
#define FRONT "/local/domain/1/device/vbd/51728"
#define BACK "/local/domain/0/backend/vbd/1/51728"
#define DISK_SECTORS 2048u          /* 1 MiB */
#define ERR_SECTOR 2040u            /* requests touching it fail */
#define CLOSE_SECTOR 1960u          /* a write here makes the backend leave without answering */

static char simdir[64];
static pid_t xsd_pid;

struct fake_cfg {
    unsigned max_order, max_queues, max_indirect;
    bool flush, discard;
    bool silent;                    /* never reaches InitWait */
};

/* ---- the fake backend ---- */

struct fq {
    struct blkif_sring *s;
    unsigned n, pages;
    RING_IDX req_cons, rsp_prod_pvt;
    int port;
};

static struct {
    struct xp *xp;
    uint8_t disk[DISK_SECTORS * 512];
    struct fq q[4];
    unsigned nq;
    unsigned rw, ind, flush, discard, bad;
    unsigned perq[4];               /* requests taken from each queue */
} B;

static void fail_child(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail_child(const char *fmt, ...)
{
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    xp_xs_write(B.xp, XP_TXN_NULL, "/test/error", m);
    _exit(1);
}

static long rd(const char *dir, const char *node, long def)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, node);
    char *v = xp_xs_read(B.xp, XP_TXN_NULL, p, NULL);
    if (!v)
        return def;
    long x = strtol(v, NULL, 10);
    free(v);
    return x;
}

static void set_bstate(int s) { xp_xs_printf(B.xp, XP_TXN_NULL, BACK "/state", "%d", s); }

static void wait_fstate(int want)
{
    for (int i = 0; i < 2000; i++) {
        if (rd(FRONT, "state", -1) == want)
            return;
        usleep(5000);
    }
    fail_child("frontend never reached state %d (is %ld)", want, rd(FRONT, "state", -1));
}

static int16_t do_segs(bool write, uint64_t sector, const struct blkif_request_segment *seg, unsigned nseg)
{
    struct xp_gcopy c[512];
    for (unsigned i = 0; i < nseg; i++) {
        if (seg[i].last_sect > 7 || seg[i].first_sect > seg[i].last_sect)
            return BLKIF_RSP_ERROR;
        unsigned n = seg[i].last_sect - seg[i].first_sect + 1u;
        if (sector + n > DISK_SECTORS)
            return BLKIF_RSP_ERROR;
        if (sector <= ERR_SECTOR && ERR_SECTOR < sector + n)
            return BLKIF_RSP_ERROR;
        c[i] = (struct xp_gcopy){ .to_guest = !write, .domid = FE_DOM, .ref = seg[i].gref,
                                  .offset = (uint16_t)(seg[i].first_sect * 512u), .len = (uint16_t)(n * 512u),
                                  .local = B.disk + sector * 512u };
        sector += n;
    }
    return xp_gnt_copy(B.xp, nseg, c) == 0 ? BLKIF_RSP_OKAY : BLKIF_RSP_ERROR;
}

static int16_t handle(const struct blkif_request *r, bool *leave)
{
    switch (r->operation) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
        if (r->nr_segments == 0 || r->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
            return BLKIF_RSP_ERROR;
        B.rw++;
        if (r->operation == BLKIF_OP_WRITE && r->sector_number == CLOSE_SECTOR) {
            *leave = true;
            return BLKIF_RSP_OKAY;
        }
        return do_segs(r->operation == BLKIF_OP_WRITE, r->sector_number, r->seg, r->nr_segments);
    case BLKIF_OP_INDIRECT: {
        const struct blkif_request_indirect *ir = (const void *)r;
        if (ir->nr_segments <= BLKIF_MAX_SEGMENTS_PER_REQUEST || ir->nr_segments > 512)
            return BLKIF_RSP_ERROR;
        uint32_t gref = ir->indirect_grefs[0];
        struct blkif_request_segment *segs = xp_gnt_map(B.xp, FE_DOM, 1, &gref, false);
        if (!segs)
            return BLKIF_RSP_ERROR;
        struct blkif_request_segment copy[512];
        memcpy(copy, segs, ir->nr_segments * sizeof(copy[0]));
        xp_gnt_unmap(B.xp, segs, 1);
        B.ind++;
        return do_segs(ir->indirect_op == BLKIF_OP_WRITE, ir->sector_number, copy, ir->nr_segments);
    }
    case BLKIF_OP_FLUSH_DISKCACHE:
        B.flush++;
        return BLKIF_RSP_OKAY;
    case BLKIF_OP_DISCARD: {
        const struct blkif_request_discard *d = (const void *)r;
        if (d->sector_number + d->nr_sectors > DISK_SECTORS)
            return BLKIF_RSP_ERROR;
        memset(B.disk + d->sector_number * 512u, 0, d->nr_sectors * 512u);
        B.discard++;
        return BLKIF_RSP_OKAY;
    }
    default:
        B.bad++;
        return BLKIF_RSP_EOPNOTSUPP;
    }
}

/* The backend half of ring.h's macros, barriers as a real backend has them. */
static bool serve(struct fq *q)
{
    bool leave = false;
    for (;;) {
        RING_IDX rp = __atomic_load_n(&q->s->req_prod, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);    /* pairs with the frontend's wmb */
        if (rp - q->req_cons > q->n)
            fail_child("req_prod %u ran ahead of req_cons %u", rp, q->req_cons);
        while (q->req_cons != rp) {
            struct blkif_request r;
            memcpy(&r, &q->s->ring[q->req_cons++ & (q->n - 1)].req, sizeof(r));
            B.perq[q - B.q]++;
            bool gone = false;
            struct blkif_response rsp = { .id = r.id, .operation = r.operation, .status = handle(&r, &gone) };
            if (gone) {             /* leaves without answering this one */
                leave = true;
                continue;
            }
            memcpy(&q->s->ring[q->rsp_prod_pvt++ & (q->n - 1)].rsp, &rsp, sizeof(rsp));
        }
        RING_IDX old = q->s->rsp_prod;
        __atomic_thread_fence(__ATOMIC_RELEASE);    /* pairs with the frontend's rmb */
        __atomic_store_n(&q->s->rsp_prod, q->rsp_prod_pvt, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);    /* pairs with the frontend's mb after rsp_event */
        RING_IDX ev = __atomic_load_n(&q->s->rsp_event, __ATOMIC_RELAXED);
        if ((RING_IDX)(q->rsp_prod_pvt - ev) < (RING_IDX)(q->rsp_prod_pvt - old))
            xp_evtchn_notify(B.xp, (uint32_t)q->port);
        __atomic_store_n(&q->s->req_event, q->req_cons + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);    /* pairs with the frontend's mb after req_prod */
        if (__atomic_load_n(&q->s->req_prod, __ATOMIC_RELAXED) == q->req_cons)
            return leave;
    }
}

static void connect_rings(void)
{
    char *proto = xp_xs_read(B.xp, XP_TXN_NULL, FRONT "/protocol", NULL);
    if (!proto || strcmp(proto, XEN_IO_PROTO_ABI_NATIVE))
        fail_child("protocol is '%s'", proto ? proto : "(none)");
    free(proto);
    if (rd(FRONT, "feature-persistent", -1) != 0)
        fail_child("feature-persistent not written as 0");
    long order = rd(FRONT, "ring-page-order", 0);
    B.nq = (unsigned)rd(FRONT, "multi-queue-num-queues", 1);
    if (B.nq < 1 || B.nq > 4)
        fail_child("multi-queue-num-queues %u", B.nq);
    for (unsigned qi = 0; qi < B.nq; qi++) {
        char dir[160];
        if (B.nq == 1)
            snprintf(dir, sizeof(dir), FRONT);
        else
            snprintf(dir, sizeof(dir), FRONT "/queue-%u", qi);
        struct fq *q = &B.q[qi];
        q->pages = 1u << order;
        uint32_t refs[16];
        for (unsigned i = 0; i < q->pages; i++) {
            char node[32];
            snprintf(node, sizeof(node), q->pages == 1 ? "ring-ref" : "ring-ref%u", i);
            long r = rd(dir, node, -1);
            if (r <= 0)
                fail_child("%s/%s missing", dir, node);
            refs[i] = (uint32_t)r;
        }
        if (q->pages == 1 && rd(dir, "ring-ref0", -1) != -1)
            fail_child("single-page ring also wrote ring-ref0");
        q->s = xp_gnt_map(B.xp, FE_DOM, q->pages, refs, true);
        if (!q->s)
            fail_child("cannot map ring of queue %u: %s", qi, strerror(errno));
        q->n = __RING_SIZE(q->s, q->pages * XP_PAGE_SIZE);
        q->port = xp_evtchn_bind_interdomain(B.xp, FE_DOM, (uint32_t)rd(dir, "event-channel", -1));
        if (q->port < 0)
            fail_child("cannot bind event channel of queue %u: %s", qi, strerror(errno));
    }
    xp_xs_printf(B.xp, XP_TXN_NULL, "/test/layout", "queues=%u pages=%u", B.nq, B.q[0].pages);
}

static void fake_backend(const struct fake_cfg *cfg)
{
    B.xp = xp_open_sim(simdir, 0);
    if (!B.xp)
        _exit(3);
    if (cfg->silent)
        for (;;)
            pause();
    xp_xs_printf(B.xp, XP_TXN_NULL, BACK "/max-ring-page-order", "%u", cfg->max_order);
    if (cfg->max_queues > 1)
        xp_xs_printf(B.xp, XP_TXN_NULL, BACK "/multi-queue-max-queues", "%u", cfg->max_queues);
    set_bstate(XenbusStateInitWait);
    wait_fstate(XenbusStateInitialised);
    connect_rings();
    xp_xs_printf(B.xp, XP_TXN_NULL, BACK "/sectors", "%u", DISK_SECTORS);
    xp_xs_write(B.xp, XP_TXN_NULL, BACK "/sector-size", "512");
    xp_xs_write(B.xp, XP_TXN_NULL, BACK "/info", "0");
    xp_xs_write(B.xp, XP_TXN_NULL, BACK "/feature-flush-cache", cfg->flush ? "1" : "0");
    xp_xs_write(B.xp, XP_TXN_NULL, BACK "/feature-discard", cfg->discard ? "1" : "0");
    if (cfg->max_indirect)
        xp_xs_printf(B.xp, XP_TXN_NULL, BACK "/feature-max-indirect-segments", "%u", cfg->max_indirect);
    set_bstate(XenbusStateConnected);
    wait_fstate(XenbusStateConnected);
    for (;;) {
        struct pollfd p = { .fd = xp_evtchn_fd(B.xp), .events = POLLIN };
        poll(&p, 1, 10);
        int port;
        while ((port = xp_evtchn_pending(B.xp)) >= 0)
            xp_evtchn_unmask(B.xp, (uint32_t)port);
        bool leave = false;
        for (unsigned i = 0; i < B.nq; i++)
            leave |= serve(&B.q[i]);
        xp_xs_printf(B.xp, XP_TXN_NULL, "/test/ops", "rw=%u ind=%u flush=%u discard=%u bad=%u q0=%u q1=%u q2=%u q3=%u",
                     B.rw, B.ind, B.flush, B.discard, B.bad, B.perq[0], B.perq[1], B.perq[2], B.perq[3]);
        long fs = rd(FRONT, "state", -1);
        if (leave || fs == XenbusStateClosing) {
            set_bstate(XenbusStateClosing);
            break;
        }
    }
    wait_fstate(XenbusStateClosed);
    for (unsigned i = 0; i < B.nq; i++) {
        xp_evtchn_unbind(B.xp, (uint32_t)B.q[i].port);
        xp_gnt_unmap(B.xp, B.q[i].s, B.q[i].pages);
    }
    set_bstate(XenbusStateClosed);
    xp_close(B.xp);
    _exit(0);
}

/* ---- test harness ---- */

static pid_t be_pid;
static struct xp *fx;          /* the frontend's platform handle (domid 1) */

static void toolstack_create(void)
{
    struct xp *ts = xp_open_sim(simdir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ts);
    xp_xs_rm(ts, XP_TXN_NULL, "/test");
    xp_xs_rm(ts, XP_TXN_NULL, FRONT);
    xp_xs_rm(ts, XP_TXN_NULL, BACK);
    xp_xs_write(ts, XP_TXN_NULL, FRONT "/backend", BACK);
    xp_xs_write(ts, XP_TXN_NULL, FRONT "/backend-id", "0");
    xp_xs_write(ts, XP_TXN_NULL, FRONT "/virtual-device", "51728");
    xp_xs_write(ts, XP_TXN_NULL, FRONT "/state", "1");
    xp_xs_write(ts, XP_TXN_NULL, BACK "/frontend", FRONT);
    xp_xs_write(ts, XP_TXN_NULL, BACK "/frontend-id", "1");
    xp_xs_write(ts, XP_TXN_NULL, BACK "/state", "1");
    xp_close(ts);
}

static void start_backend(const struct fake_cfg *cfg)
{
    toolstack_create();
    fflush(NULL);
    be_pid = fork();
    CU_ASSERT_FATAL(be_pid >= 0);
    if (be_pid == 0)
        fake_backend(cfg);
    fx = xp_open_sim(simdir, FE_DOM);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fx);
}

static char *ts_read(const char *path)
{
    return xp_xs_read(fx, XP_TXN_NULL, path, NULL);
}

/* Waits for the fake backend; returns its exit status (-1 if killed). */
static int stop_backend(bool kill_it)
{
    if (kill_it)
        kill(be_pid, SIGKILL);
    int st = 0;
    waitpid(be_pid, &st, 0);
    char *e = ts_read("/test/error");
    if (e) {
        fprintf(stderr, "fake backend: %s\n", e);
        free(e);
    }
    xp_close(fx);
    fx = NULL;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
}

static int suite_init(void)
{
    strcpy(simdir, "/tmp/memx-test-front-XXXXXX");
    if (!mkdtemp(simdir))
        return -1;
    char sock[128];
    snprintf(sock, sizeof(sock), "%s/xenstore.sock", simdir);
    xsd_pid = fork();
    if (xsd_pid == 0) {
        execl(MEMX_BUILDDIR "/memx-simxsd", "memx-simxsd", "--dir", simdir, "--log-level", "error", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct stat st;
        if (stat(sock, &st) == 0)
            return 0;
        usleep(10000);
    }
    return -1;
}

static int suite_cleanup(void)
{
    kill(xsd_pid, SIGTERM);
    waitpid(xsd_pid, NULL, 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", simdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Multi-queue, multi-page rings, indirect descriptors, flush, discard. */
static void test_full_features(void)
{
    struct fake_cfg cfg = { .max_order = 2, .max_queues = 2, .max_indirect = 64, .flush = true, .discard = true };
    start_backend(&cfg);
    struct memxfront_opts o;
    memxfront_opts_default(&o);
    o.nr_queues = 4;
    o.max_indirect_segs = 128;
    char err[256] = "";
    struct memxfront *f = memxfront_open(fx, FRONT, &o, err, sizeof(err));
    if (!f)
        fprintf(stderr, "open: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct memxfront_info *in = memxfront_info(f);
    CU_ASSERT_EQUAL(in->nr_queues, 2);
    CU_ASSERT_EQUAL(in->ring_pages, 4);
    CU_ASSERT_EQUAL(in->max_segs, 64);
    CU_ASSERT_EQUAL(in->max_io, 64 * 4096);
    CU_ASSERT_EQUAL(in->size_bytes, DISK_SECTORS * 512ull);
    CU_ASSERT_TRUE(in->flush && in->discard);
    CU_ASSERT_EQUAL(in->queue_depth, __CONST_RING_SIZE(blkif, 4 * 4096));
    char *layout = ts_read("/test/layout");
    CU_ASSERT_STRING_EQUAL(layout ? layout : "", "queues=2 pages=4");
    free(layout);

    /* 768 KiB in one call: 3 indirect requests of 64 segments. */
    size_t n = 768 * 1024;
    uint8_t *w = malloc(n), *r = malloc(n);
    fill(w, n, 1);
    CU_ASSERT_EQUAL(memxfront_pwrite(f, w, n, 0), 0);
    CU_ASSERT_EQUAL(memxfront_pread(f, r, n, 0), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, n), 0);
    /* Sector-aligned but not page-aligned: partial last segment. */
    fill(w, 1536, 2);
    CU_ASSERT_EQUAL(memxfront_pwrite(f, w, 1536, 512), 0);
    CU_ASSERT_EQUAL(memxfront_pread(f, r, 2048, 0), 0);
    CU_ASSERT_EQUAL(memcmp(r + 512, w, 1536), 0);
    CU_ASSERT_EQUAL(memxfront_sync_flush(f), 0);
    CU_ASSERT_EQUAL(memxfront_sync_discard(f, 4096, 8192), 0);
    CU_ASSERT_EQUAL(memxfront_pread(f, r, 8192, 4096), 0);
    static const uint8_t zero[8192];
    CU_ASSERT_EQUAL(memcmp(r, zero, 8192), 0);
    CU_ASSERT_EQUAL(memxfront_close(f, err, sizeof(err)), 0);
    char *ops = ts_read("/test/ops");
    CU_ASSERT_PTR_NOT_NULL(ops);
    unsigned rw = 0, ind = 0, fl = 0, dc = 0, bad = 0;
    if (ops)
        sscanf(ops, "rw=%u ind=%u flush=%u discard=%u bad=%u", &rw, &ind, &fl, &dc, &bad);
    free(ops);
    CU_ASSERT_EQUAL(ind, 6);
    CU_ASSERT_EQUAL(fl, 1);
    CU_ASSERT_EQUAL(dc, 1);
    CU_ASSERT_EQUAL(stop_backend(false), 0);
    free(w);
    free(r);
}

/* A minimal backend: one page, one queue, no indirect, no flush/discard. */
static void test_minimal_backend(void)
{
    struct fake_cfg cfg = { .max_order = 0, .max_queues = 1 };
    start_backend(&cfg);
    struct memxfront_opts o;
    memxfront_opts_default(&o);
    o.nr_queues = 2;
    char err[256] = "";
    struct memxfront *f = memxfront_open(fx, FRONT, &o, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    const struct memxfront_info *in = memxfront_info(f);
    CU_ASSERT_EQUAL(in->nr_queues, 1);
    CU_ASSERT_EQUAL(in->ring_pages, 1);
    CU_ASSERT_EQUAL(in->max_segs, BLKIF_MAX_SEGMENTS_PER_REQUEST);
    CU_ASSERT_FALSE(in->flush || in->discard);
    CU_ASSERT_EQUAL(in->queue_depth, 32);
    char *layout = ts_read("/test/layout");
    CU_ASSERT_STRING_EQUAL(layout ? layout : "", "queues=1 pages=1");
    free(layout);
    size_t n = 512 * 1024;          /* split into 44 KiB direct requests */
    uint8_t *w = malloc(n), *r = malloc(n);
    fill(w, n, 3);
    CU_ASSERT_EQUAL(memxfront_pwrite(f, w, n, 256 * 1024), 0);
    CU_ASSERT_EQUAL(memxfront_pread(f, r, n, 256 * 1024), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, n), 0);
    CU_ASSERT_EQUAL(memxfront_flush(f, NULL, NULL), -1);
    CU_ASSERT_EQUAL(errno, EOPNOTSUPP);
    CU_ASSERT_EQUAL(memxfront_discard(f, 0, 4096, NULL, NULL), -1);
    CU_ASSERT_EQUAL(errno, EOPNOTSUPP);
    CU_ASSERT_EQUAL(memxfront_close(f, err, sizeof(err)), 0);
    char *ops = ts_read("/test/ops");
    unsigned rw = 0, ind = 1;
    if (ops)
        sscanf(ops, "rw=%u ind=%u", &rw, &ind);
    free(ops);
    CU_ASSERT_EQUAL(rw, 2 * 12);    /* 512 KiB / 44 KiB rounds up to 12 each way */
    CU_ASSERT_EQUAL(ind, 0);
    CU_ASSERT_EQUAL(stop_backend(false), 0);
    free(w);
    free(r);
}

struct acount {
    unsigned ok, err, last;
};
static void acb(void *arg, int status)
{
    struct acount *c = arg;
    if (status == 0)
        c->ok++;
    else
        c->err++;
    c->last = (unsigned)-status;
}

/* Async submission to a full ring, completions through the fd, argument checks. */
static void test_async_and_errors(void)
{
    struct fake_cfg cfg = { .max_order = 0, .max_queues = 1, .max_indirect = 32, .flush = true, .discard = true };
    start_backend(&cfg);
    struct memxfront_opts o;
    memxfront_opts_default(&o);
    o.queue_depth = 8;
    char err[256] = "";
    struct memxfront *f = memxfront_open(fx, FRONT, &o, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static uint8_t buf[16][4096];
    struct acount c = { 0, 0, 0 };
    unsigned sub = 0;
    while (memxfront_write(f, (uint64_t)sub * 4096, buf[sub % 16], 4096, acb, &c) == 0)
        sub++;
    CU_ASSERT_EQUAL(errno, EAGAIN);
    CU_ASSERT_EQUAL(sub, 8);
    CU_ASSERT_EQUAL(memxfront_inflight(f), 8);
    while (memxfront_inflight(f)) {
        struct pollfd p = { .fd = memxfront_fd(f), .events = POLLIN };
        CU_ASSERT_EQUAL_FATAL(poll(&p, 1, 5000), 1);
        CU_ASSERT(memxfront_process(f) >= 0);
    }
    CU_ASSERT_EQUAL(c.ok, 8);

    CU_ASSERT_EQUAL(memxfront_read(f, 100, buf[0], 512, acb, &c), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(memxfront_read(f, DISK_SECTORS * 512ull - 4096, buf[0], 8192, acb, &c), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(memxfront_write(f, 0, buf, 33 * 4096, acb, &c), -1);
    CU_ASSERT_EQUAL(errno, E2BIG);
    CU_ASSERT_EQUAL(memxfront_pread(f, buf, 3000, 0), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    /* The backend's errors reach the caller. */
    CU_ASSERT_EQUAL(memxfront_pread(f, buf, 4096, ERR_SECTOR * 512ull), -1);
    CU_ASSERT_EQUAL(errno, EIO);
    struct blkif_request raw = { .operation = 0x42 };
    struct acount rc = { 0, 0, 0 };
    CU_ASSERT_EQUAL(memxfront_debug_submit_raw(f, 0, &raw, sizeof(raw), acb, &rc), 0);
    while (memxfront_inflight(f))
        memxfront_wait(f, 1000);
    CU_ASSERT_EQUAL(rc.err, 1);
    CU_ASSERT_EQUAL(rc.last, EOPNOTSUPP);
    CU_ASSERT_NOT_EQUAL(memxfront_debug_gref(f, 0), 0);
    CU_ASSERT_EQUAL(memxfront_debug_backend_state(f), XenbusStateConnected);
    CU_ASSERT_EQUAL(memxfront_close(f, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(stop_backend(false), 0);
}

/* The backend leaves: in-flight requests fail with ENOTCONN, new ones are refused. */
static void test_backend_leaves(void)
{
    struct fake_cfg cfg = { .max_order = 1, .max_queues = 1 };
    start_backend(&cfg);
    char err[256] = "";
    struct memxfront *f = memxfront_open(fx, FRONT, NULL, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static uint8_t buf[4096];
    struct acount c = { 0, 0, 0 };
    CU_ASSERT_EQUAL(memxfront_write(f, CLOSE_SECTOR * 512ull, buf, 4096, acb, &c), 0);
    int rc = 0;
    for (int i = 0; i < 50 && rc >= 0; i++)
        rc = memxfront_wait(f, 100);
    CU_ASSERT_EQUAL(rc, -1);
    CU_ASSERT_EQUAL(errno, ENOTCONN);
    CU_ASSERT_EQUAL(c.err, 1);
    CU_ASSERT_EQUAL(c.last, ENOTCONN);
    CU_ASSERT_EQUAL(memxfront_write(f, 0, buf, 4096, acb, &c), -1);
    CU_ASSERT_EQUAL(errno, ENOTCONN);
    CU_ASSERT_EQUAL(memxfront_close(f, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(stop_backend(false), 0);
}

/* memxfront_set_queue keeps requests on one queue (EAGAIN when it is full,
 * though another has room); memxfront_abort fails what is in flight at once,
 * copying nothing into read buffers. */
static void test_steer_and_abort(void)
{
    struct fake_cfg cfg = { .max_order = 0, .max_queues = 2 };
    start_backend(&cfg);
    struct memxfront_opts o;
    memxfront_opts_default(&o);
    o.nr_queues = 2;
    char err[256] = "";
    struct memxfront *f = memxfront_open(fx, FRONT, &o, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(memxfront_info(f)->nr_queues, 2);
    unsigned depth = memxfront_info(f)->queue_depth;
    CU_ASSERT_EQUAL(memxfront_set_queue(f, 2), -1);
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(memxfront_set_queue(f, -2), -1);
    CU_ASSERT_EQUAL(memxfront_set_queue(f, 1), 0);
    static uint8_t buf[64][4096];
    struct acount c = { 0, 0, 0 };
    unsigned sub = 0;
    while (sub < 64 && memxfront_write(f, (uint64_t)sub * 4096, buf[sub], 4096, acb, &c) == 0)
        sub++;
    CU_ASSERT_EQUAL(errno, EAGAIN);
    CU_ASSERT_EQUAL(sub, depth);
    while (memxfront_inflight(f))
        CU_ASSERT_FATAL(memxfront_wait(f, 5000) >= 0);
    CU_ASSERT_EQUAL(c.ok, depth);
    /* Round robin again: two requests on each queue. */
    CU_ASSERT_EQUAL(memxfront_set_queue(f, -1), 0);
    for (unsigned i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(memxfront_pwrite(f, buf[i], 4096, i * 4096u), 0);

    CU_ASSERT_EQUAL(memxfront_set_queue(f, 0), 0);
    memset(buf, 0xaa, 3 * 4096);
    struct acount a = { 0, 0, 0 };
    for (unsigned i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(memxfront_read(f, i * 4096u, buf[i], 4096, acb, &a), 0);
    memxfront_abort(f);
    CU_ASSERT_EQUAL(a.err, 3);
    CU_ASSERT_EQUAL(a.last, ENOTCONN);
    CU_ASSERT_EQUAL(memxfront_inflight(f), 0);
    CU_ASSERT_EQUAL(buf[0][0], 0xaa);
    CU_ASSERT_EQUAL(buf[2][4095], 0xaa);
    CU_ASSERT_EQUAL(memxfront_read(f, 0, buf[0], 4096, acb, &a), -1);
    CU_ASSERT_EQUAL(errno, ENOTCONN);
    CU_ASSERT_EQUAL(memxfront_process(f), -1);
    CU_ASSERT_EQUAL(errno, ENOTCONN);
    CU_ASSERT_EQUAL(memxfront_close(f, err, sizeof(err)), 0);
    char *ops = ts_read("/test/ops");
    unsigned q0 = 0, q1 = 0;
    if (ops)
        sscanf(ops, "rw=%*u ind=%*u flush=%*u discard=%*u bad=%*u q0=%u q1=%u", &q0, &q1);
    free(ops);
    CU_ASSERT_EQUAL(q1, depth + 2);
    /* The aborted reads may or may not have reached the backend before Closing. */
    CU_ASSERT(q0 >= 2 && q0 <= 5);
    CU_ASSERT_EQUAL(stop_backend(false), 0);
}

static void test_open_errors(void)
{
    struct fake_cfg cfg = { .silent = true };
    start_backend(&cfg);
    char err[256] = "";
    struct memxfront_opts o;
    memxfront_opts_default(&o);
    o.timeout_ms = 300;
    CU_ASSERT_PTR_NULL(memxfront_open(fx, "/local/domain/1/device/vbd/999", &o, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no such frontend device"));
    CU_ASSERT_PTR_NULL(memxfront_open(fx, "device/vbd/51728", &o, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "must be absolute"));
    o.ring_page_order = 9;
    CU_ASSERT_PTR_NULL(memxfront_open(fx, FRONT, &o, err, sizeof(err)));
    CU_ASSERT_EQUAL(errno, EINVAL);
    o.ring_page_order = 0;
    CU_ASSERT_PTR_NULL(memxfront_open(fx, FRONT, &o, err, sizeof(err)));
    CU_ASSERT_EQUAL(errno, ETIMEDOUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "did not reach InitWait"));
    CU_ASSERT_EQUAL(stop_backend(true), -1);
}

static const struct cu_test tests[] = {
    { "full_features", test_full_features },
    { "minimal_backend", test_minimal_backend },
    { "async_and_errors", test_async_and_errors },
    { "backend_leaves", test_backend_leaves },
    { "steer_and_abort", test_steer_and_abort },
    { "open_errors", test_open_errors },
    { NULL, NULL },
};
static const struct cu_suite suites[] = {
    { "front", suite_init, suite_cleanup, tests }, { NULL, NULL, NULL, NULL },
};
CU_MAIN(suites)
