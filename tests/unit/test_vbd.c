/* test_vbd.c — memx-backd's Xen side driven end to end on the sim platform.
 *
 * This process is the toolstack and the frontend (a second struct xp with
 * domid 1) as well as the backend: memx-simxsd provides XenStore, the ring
 * and data pages are granted by "domain 1", and the backend runs
 * blkback + the real volume layer over the in-memory fake pool.  Everything
 * a guest can get wrong is sent on one device while a second keeps serving.
 */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "barrier.h"
#include "blkback.h"
#include "blkif_abi.h"
#include "config.h"
#include "cu_main.h"
#include "evloop.h"
#include "fake_pool.h"
#include "log.h"
#include "volumes.h"
#include "xenplat.h"

#define FE_DOM   1
#define NDATA    16
#define VOL_SECT (16u * 1024 * 1024 / 512)

static char dir[64];
static pid_t xsd = -1;
static struct evloop *el;
static struct xp *xbe, *xfe;
static struct pool *pool;
static struct volumes *vols;
static struct blkback *bb;
static struct memx_config cfg;
static bool shut;
static void shut_done(void *arg) { shut = true; }

struct tqueue {
    struct blkif_sring *s;
    unsigned pages, size;
    size_t entsz;
    uint32_t ring_refs[16];
    int port;
    uint32_t req_prod, rsp_cons;
    bool notified;              /* the last push kicked the backend */
};

struct tfront {
    uint32_t devid;
    char fe[96], be[96];
    int nq;
    struct tqueue q[4];
    uint8_t *data;
    uint32_t refs[NDATA];
    uint64_t next_id;
};

/* ---- plumbing ------------------------------------------------------------ */

static char *xs_get(const char *path)
{
    return xp_xs_read(xbe, XP_TXN_NULL, path, NULL);
}

static bool node_is(const char *d, const char *node, const char *want)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", d, node);
    char *v = xs_get(p);
    bool ok = v && !strcmp(v, want);
    free(v);
    return ok;
}

/* Runs the loop until dir/node reads want (or 5 s pass). */
static bool wait_node(const char *d, const char *node, const char *want)
{
    uint64_t end = evloop_now_ms() + 5000;
    while (evloop_now_ms() < end) {
        if (node_is(d, node, want))
            return true;
        evloop_run_once(el, 10);
    }
    return node_is(d, node, want);
}

static void put(const char *d, const char *node, const char *val)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", d, node);
    CU_ASSERT_EQUAL_FATAL(xp_xs_write(xbe, XP_TXN_NULL, p, val), 0);
}

/* What libxl writes for a disk line, in one go. */
static void toolstack_add(struct tfront *f, uint32_t devid, const char *params, const char *mode)
{
    memset(f, 0, sizeof(*f));
    f->devid = devid;
    f->next_id = 1000;
    snprintf(f->fe, sizeof(f->fe), "/local/domain/%d/device/vbd/%u", FE_DOM, devid);
    snprintf(f->be, sizeof(f->be), "/local/domain/0/backend/vbd/%d/%u", FE_DOM, devid);
    put(f->fe, "backend", f->be);
    put(f->fe, "backend-id", "0");
    put(f->fe, "state", "1");
    put(f->be, "frontend", f->fe);
    put(f->be, "frontend-id", "1");
    put(f->be, "params", params);
    put(f->be, "mode", mode);
    put(f->be, "online", "1");
    put(f->be, "state", "1");
}

/* What blkfront does on seeing InitWait: rings, event channels, Initialised.
 * order < 0: a single "ring-ref"; nq > 1: queue-N/ subdirectories; proto
 * NULL: no protocol node, laid out as the old i386 frontends that omit it. */
static void fe_rings(struct tfront *f, int order, int nq, const char *proto, int omit_ref_of);

static void fe_connect_ex(struct tfront *f, int order, int nq, const char *proto)
{
    fe_rings(f, order, nq, proto, -1);
    put(f->fe, "state", "3");
}

/* Everything blkfront publishes before Initialised; omit_ref_of >= 0 leaves
 * that queue's ring-ref nodes out (a broken or hostile frontend). */
static void fe_rings(struct tfront *f, int order, int nq, const char *proto, int omit_ref_of)
{
    bool x32 = !proto || !strcmp(proto, "x86_32-abi");
    f->nq = nq;
    f->data = xp_gnt_share(xfe, 0, NDATA, f->refs, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->data);
    char v[32], d[160], node[32];
    for (int qi = 0; qi < nq; qi++) {
        struct tqueue *q = &f->q[qi];
        q->pages = order < 0 ? 1 : 1u << order;
        q->entsz = x32 ? 108 : 112;
        q->size = blkif_abi_ring_size(x32 ? BLKIF_ABI_X86_32 : BLKIF_ABI_X86_64, q->pages);
        q->s = xp_gnt_share(xfe, 0, q->pages, q->ring_refs, true);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q->s);
        SHARED_RING_INIT(q->s);
        q->port = xp_evtchn_alloc_unbound(xfe, 0);
        CU_ASSERT_FATAL(q->port > 0);
        if (nq > 1)
            snprintf(d, sizeof(d), "%s/queue-%d", f->fe, qi);
        else
            snprintf(d, sizeof(d), "%s", f->fe);
        for (unsigned i = 0; i < q->pages && qi != omit_ref_of; i++) {
            if (order < 0)
                snprintf(node, sizeof(node), "ring-ref");
            else
                snprintf(node, sizeof(node), "ring-ref%u", i);
            snprintf(v, sizeof(v), "%u", q->ring_refs[i]);
            put(d, node, v);
        }
        snprintf(v, sizeof(v), "%d", q->port);
        put(d, "event-channel", v);
    }
    if (order >= 0) {
        snprintf(v, sizeof(v), "%d", order);
        put(f->fe, "ring-page-order", v);
    }
    if (nq > 1) {
        snprintf(v, sizeof(v), "%d", nq);
        put(f->fe, "multi-queue-num-queues", v);
    }
    if (proto)
        put(f->fe, "protocol", proto);
}

static void fe_connect(struct tfront *f)
{
    fe_connect_ex(f, -1, 1, "x86_64-abi");
}

static void fe_release(struct tfront *f)
{
    for (int qi = 0; qi < f->nq; qi++) {
        struct tqueue *q = &f->q[qi];
        if (q->port > 0)
            xp_evtchn_unbind(xfe, (uint32_t)q->port);
        if (q->s)
            xp_gnt_unshare(xfe, q->s, q->pages);
        q->port = 0;
        q->s = NULL;
    }
    if (f->data)
        xp_gnt_unshare(xfe, f->data, NDATA);
    f->data = NULL;
}

static void *slot(struct tqueue *q, uint32_t i)
{
    return (char *)q->s + BLKIF_SRING_HDR + (i & (q->size - 1)) * q->entsz;
}

/* RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, as blkfront does it: the backend is
 * kicked only when it asked for an event (req_event).  req is one of the
 * request layouts of the queue's ABI, len its size.  The id is set here (its
 * offset differs). */
static uint64_t push_q(struct tfront *f, int qi, const void *req, size_t len)
{
    struct tqueue *q = &f->q[qi];
    uint8_t *r = slot(q, q->req_prod);
    memset(r, 0, q->entsz);
    memcpy(r, req, len);
    uint64_t id = f->next_id++;
    memcpy(r + (q->entsz == 108 ? 4 : 8), &id, sizeof(id));
    uint32_t old = q->req_prod++;
    mx_smp_wmb();       /* the entry before req_prod: pairs with ring.c's rmb after reading it */
    MX_WRITE_ONCE(q->s->req_prod, q->req_prod);
    mx_smp_mb();        /* req_prod before reading req_event: pairs with ring_final_check's mb */
    uint32_t ev = MX_READ_ONCE(q->s->req_event);
    q->notified = (uint32_t)(q->req_prod - ev) < (uint32_t)(q->req_prod - old);
    if (q->notified)
        xp_evtchn_notify(xfe, (uint32_t)q->port);
    return id;
}
#define push(f, req) push_q((f), 0, (req), sizeof(*(req)))

/* Waits for the next response; its status, or 99 on a timeout. */
static int wait_rsp_q(struct tfront *f, int qi, uint64_t id, uint8_t *op)
{
    struct tqueue *q = &f->q[qi];
    uint64_t end = evloop_now_ms() + 5000;
    while (evloop_now_ms() < end) {
        /* acquire: the entry after rsp_prod; pairs with ring_push_responses' wmb */
        if (mx_load_acquire(&q->s->rsp_prod) != q->rsp_cons) {
            /* id at 0, operation at 8, status at 10 in both ABIs. */
            struct blkif_x86_32_response rsp;
            memcpy(&rsp, slot(q, q->rsp_cons), sizeof(rsp));
            q->rsp_cons++;
            CU_ASSERT_EQUAL(rsp.id, id);
            if (op)
                *op = rsp.operation;
            return rsp.status;
        }
        evloop_run_once(el, 10);
    }
    return 99;
}
#define wait_rsp(f, id, op) wait_rsp_q((f), 0, (id), (op))

static int rw(struct tfront *f, uint8_t op, uint64_t sector, unsigned page, uint8_t first, uint8_t last)
{
    struct blkif_x86_64_request r = { .operation = op, .nr_segments = 1, .sector_number = sector };
    r.seg[0] = (struct blkif_wire_seg){ .gref = f->refs[page], .first_sect = first, .last_sect = last };
    return wait_rsp(f, push(f, &r), NULL);
}

static void connect_dev(struct tfront *f, uint32_t devid, const char *params, const char *mode)
{
    toolstack_add(f, devid, params, mode);
    CU_ASSERT_FATAL(wait_node(f->be, "state", "2"));
    fe_connect(f);
    CU_ASSERT_FATAL(wait_node(f->be, "state", "4"));
}

static void fe_close(struct tfront *f)
{
    put(f->fe, "state", "5");
    CU_ASSERT(wait_node(f->be, "state", "6"));
    put(f->fe, "state", "6");
    fe_release(f);
}

static struct blkback_dev_info *info_of(uint32_t devid, struct blkback_dev_info *buf)
{
    int n = blkback_list(bb, buf, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (buf[i].devid == devid)
            return &buf[i];
    return NULL;
}

/* ---- suite ------------------------------------------------------------- */

static int suite_init(void)
{
    mx_log_init("test_vbd", getenv("MEMX_TEST_DEBUG") ? MX_LOG_DEBUG : MX_LOG_ERR);
    snprintf(dir, sizeof(dir), "/tmp/memx-blk-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    xsd = fork();
    if (xsd == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);       /* no stray daemon if this test crashes */
        execl(MEMX_BUILDDIR "/memx-simxsd", "memx-simxsd", "--dir", dir, "--log-level", "error",
              (char *)NULL);
        _exit(127);
    }
    char sock[128];
    snprintf(sock, sizeof(sock), "%s/xenstore.sock", dir);
    struct stat st;
    for (int i = 0; i < 500 && stat(sock, &st); i++)
        usleep(10000);
    if (!(xbe = xp_open_sim(dir, 0)) || !(xfe = xp_open_sim(dir, FE_DOM)))
        return 1;
    el = evloop_new();
    pool = fake_pool_new(el);
    vols = volumes_new(pool, false);
    memx_config_defaults(&cfg);
    /* A poll window longer than any request takes here, even under valgrind,
     * so test_ring_polling does not depend on the machine's speed. */
    cfg.ring_poll_us = 1000;
    /* Small enough for test_indirect_bound to reach with a handful of requests. */
    cfg.device_buffer_max = 4u << 20;
    char err[256];
    bb = blkback_new(el, xbe, vols, &cfg, err, sizeof(err));
    if (!bb || blkback_start(bb, err, sizeof(err))) {
        fprintf(stderr, "blkback: %s\n", err);
        return 1;
    }
    return 0;
}


static int suite_cleanup(void)
{
    if (bb) {
        if (!shut)
            blkback_shutdown(bb, shut_done, NULL);
        for (int i = 0; i < 500 && !shut; i++)
            evloop_run_once(el, 10);
        blkback_free(bb);
    }
    if (vols)
        volumes_free(vols);
    if (pool)
        pool_free(pool);
    if (xfe)
        xp_close(xfe);
    if (xbe)
        xp_close(xbe);
    if (el)
        evloop_free(el);
    if (xsd > 0) {
        kill(xsd, SIGTERM);
        waitpid(xsd, NULL, 0);
    }
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

/* ---- tests ------------------------------------------------------------- */

static void test_handshake(void)
{
    struct tfront f;
    toolstack_add(&f, 51712, "memx:hs:16M", "w");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "2"));
    CU_ASSERT(node_is(f.be, "feature-flush-cache", "1"));
    CU_ASSERT(node_is(f.be, "feature-discard", "1"));
    CU_ASSERT(node_is(f.be, "discard-granularity", "4096"));
    CU_ASSERT(node_is(f.be, "discard-alignment", "0"));
    CU_ASSERT(node_is(f.be, "feature-persistent", "0"));
    CU_ASSERT(node_is(f.be, "max-ring-page-order", "4"));
    CU_ASSERT(node_is(f.be, "multi-queue-max-queues", "4"));
    CU_ASSERT(node_is(f.be, "feature-max-indirect-segments", "256"));
    fe_connect(&f);
    CU_ASSERT_FATAL(wait_node(f.be, "state", "4"));
    CU_ASSERT(node_is(f.be, "sectors", "32768"));
    CU_ASSERT(node_is(f.be, "sector-size", "512"));
    CU_ASSERT(node_is(f.be, "physical-sector-size", "4096"));
    CU_ASSERT(node_is(f.be, "info", "0"));
    struct blkback_dev_info buf[8], *i = info_of(51712, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i);
    CU_ASSERT_STRING_EQUAL(i->state, "Connected");
    CU_ASSERT_STRING_EQUAL(i->volume, "hs");
    CU_ASSERT_STRING_EQUAL(i->protocol, "x86_64-abi");
    CU_ASSERT_STRING_EQUAL(volume_owner(volumes_find(vols, "hs")), "vbd 1/51712");

    /* Closing -> Closed, volume let go; Initialising again -> InitWait (reconnect). */
    fe_close(&f);
    CU_ASSERT_STRING_EQUAL(volume_owner(volumes_find(vols, "hs")), "");
    put(f.fe, "state", "1");
    CU_ASSERT(wait_node(f.be, "state", "2"));
    fe_connect(&f);
    CU_ASSERT(wait_node(f.be, "state", "4"));
    /* libxl's teardown: online=0 then state=Closing; it waits for Closed. */
    put(f.be, "online", "0");
    put(f.be, "state", "5");
    CU_ASSERT(wait_node(f.be, "state", "6"));
    fe_release(&f);
    CU_ASSERT_EQUAL(xp_xs_rm(xbe, XP_TXN_NULL, f.be), 0);
    for (int k = 0; k < 20; k++)
        evloop_run_once(el, 10);
    CU_ASSERT_PTR_NULL(info_of(51712, buf));
    CU_ASSERT_STRING_EQUAL(volume_owner(volumes_find(vols, "hs")), "");
}

static void test_bad_target(void)
{
    struct tfront f;
    toolstack_add(&f, 51744, "nbd:foo", "w");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "2"));
    fe_connect(&f);
    CU_ASSERT(wait_node(f.be, "state", "6"));
    char p[160];
    snprintf(p, sizeof(p), "%s/error", f.be);
    char *e = xs_get(p);
    CU_ASSERT(e && strstr(e, "nbd:foo"));
    free(e);
    /* libxl tears the failed device down: it must see Closed again. */
    put(f.be, "online", "0");
    put(f.be, "state", "5");
    CU_ASSERT(wait_node(f.be, "state", "6"));
    fe_release(&f);
    xp_xs_rm(xbe, XP_TXN_NULL, f.be);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

static void test_io_and_bad_requests(void)
{
    struct tfront a, b;
    connect_dev(&a, 51728, "memx:va:16M", "w");
    connect_dev(&b, 51760, "memx:vb:16M", "w");

    /* Write 8 sectors from page 0 (two segments), read back into page 1. */
    fill(a.data, 4096, 1);
    struct blkif_x86_64_request r = { .operation = BLKIF_OP_WRITE, .nr_segments = 2, .sector_number = 64 };
    r.seg[0] = (struct blkif_wire_seg){ .gref = a.refs[0], .first_sect = 0, .last_sect = 3 };
    r.seg[1] = (struct blkif_wire_seg){ .gref = a.refs[0], .first_sect = 4, .last_sect = 7 };
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &r), NULL), BLKIF_RSP_OKAY);
    memset(a.data + 4096, 0, 4096);
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_READ, 64, 1, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(a.data, a.data + 4096, 4096), 0);
    /* A sub-page read lands at its offset in the guest page. */
    memset(a.data + 8192, 0xaa, 4096);
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_READ, 66, 2, 5, 6), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(a.data + 8192 + 5 * 512, a.data + 2 * 512, 1024), 0);
    CU_ASSERT_EQUAL(a.data[8192], 0xaa);

    /* Flush without data, then discard: the range reads back as zeros. */
    struct blkif_x86_64_request fl = { .operation = BLKIF_OP_FLUSH_DISKCACHE };
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &fl), NULL), BLKIF_RSP_OKAY);
    struct blkif_x86_64_request_discard dc = { .operation = BLKIF_OP_DISCARD, .sector_number = 64,
                                               .nr_sectors = 8 };
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &dc), NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_READ, 64, 1, 0, 7), BLKIF_RSP_OKAY);
    static const uint8_t zero[4096];
    CU_ASSERT_EQUAL(memcmp(a.data + 4096, zero, 4096), 0);

    /* Indirect write of 16 pages, then a direct read of the last one. */
    struct blkif_wire_seg *ind = (struct blkif_wire_seg *)(a.data + 15 * 4096);
    for (int i = 0; i < 14; i++) {
        fill(a.data + i * 4096, 4096, 100 + (unsigned)i);
        ind[i] = (struct blkif_wire_seg){ .gref = a.refs[i], .first_sect = 0, .last_sect = 7 };
    }
    struct blkif_x86_64_request_indirect ir = { .operation = BLKIF_OP_INDIRECT, .indirect_op = BLKIF_OP_WRITE,
                                                .nr_segments = 14, .sector_number = 800 };
    ir.indirect_grefs[0] = a.refs[15];
    uint8_t op = 0;
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &ir), &op), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(op, BLKIF_OP_WRITE);
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_READ, 800 + 13 * 8, 14, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(a.data + 14 * 4096, a.data + 13 * 4096, 4096), 0);

    /* Malformed requests: each answered with an error, none served. */
    struct blkif_x86_64_request bad = { .operation = BLKIF_OP_WRITE, .nr_segments = 12 };
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &bad), NULL), BLKIF_RSP_ERROR);       /* > 11 segments */
    bad.nr_segments = 0;
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &bad), NULL), BLKIF_RSP_ERROR);       /* 0 segments */
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_READ, VOL_SECT - 4, 0, 0, 7), BLKIF_RSP_ERROR);    /* past the end */
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_READ, UINT64_MAX - 2, 0, 0, 7), BLKIF_RSP_ERROR);  /* wraps */
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_WRITE, 0, 0, 5, 2), BLKIF_RSP_ERROR);       /* last < first */
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_WRITE, 0, 0, 0, 8), BLKIF_RSP_ERROR);       /* last > 7 */
    r = (struct blkif_x86_64_request){ .operation = BLKIF_OP_WRITE, .nr_segments = 1 };
    r.seg[0] = (struct blkif_wire_seg){ .gref = 9999, .first_sect = 0, .last_sect = 7 };
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &r), NULL), BLKIF_RSP_ERROR);        /* bad grant ref */
    r.operation = BLKIF_OP_READ;
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &r), NULL), BLKIF_RSP_ERROR);
    dc.sector_number = VOL_SECT;
    dc.nr_sectors = 1;
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &dc), NULL), BLKIF_RSP_ERROR);       /* discard past end */
    ir.nr_segments = 257;
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &ir), NULL), BLKIF_RSP_ERROR);       /* > max indirect */
    ir.nr_segments = 14;
    ir.indirect_grefs[0] = 9999;
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &ir), NULL), BLKIF_RSP_ERROR);       /* bad indirect page */
    struct blkif_x86_64_request unk = { .operation = 99 };
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &unk), &op), BLKIF_RSP_EOPNOTSUPP);
    CU_ASSERT_EQUAL(op, 99);
    unk.operation = BLKIF_OP_WRITE_BARRIER;
    CU_ASSERT_EQUAL(wait_rsp(&a, push(&a, &unk), NULL), BLKIF_RSP_EOPNOTSUPP);

    struct blkback_dev_info buf[8], *i = info_of(51728, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i);
    CU_ASSERT_EQUAL(i->bad_requests, 11);
    CU_ASSERT_EQUAL(i->errors, 13);
    CU_ASSERT_EQUAL(i->requests, 21);
    /* The earlier data survived all of it. */
    CU_ASSERT_EQUAL(rw(&a, BLKIF_OP_READ, 800, 14, 0, 7), BLKIF_RSP_OKAY);
    fill(a.data + 4096, 4096, 100);
    CU_ASSERT_EQUAL(memcmp(a.data + 14 * 4096, a.data + 4096, 4096), 0);

    /* req_prod far ahead: device a is disconnected ... */
    mx_store_release(&a.q[0].s->req_prod, a.q[0].req_prod + 1000);
    xp_evtchn_notify(xfe, (uint32_t)a.q[0].port);
    CU_ASSERT(wait_node(a.be, "state", "6"));
    CU_ASSERT_STRING_EQUAL(volume_owner(volumes_find(vols, "va")), "");

    /* ... and device b keeps serving. */
    fill(b.data, 4096, 7);
    CU_ASSERT_EQUAL(rw(&b, BLKIF_OP_WRITE, 0, 0, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(rw(&b, BLKIF_OP_READ, 0, 3, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(b.data, b.data + 3 * 4096, 4096), 0);
    i = info_of(51760, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i);
    CU_ASSERT_EQUAL(i->errors, 0);

    fe_release(&a);
    fe_close(&b);
    CU_ASSERT_EQUAL(fake_pool_violations(pool), 0);
}

static void test_readonly(void)
{
    struct tfront f;
    connect_dev(&f, 51776, "memx:ro:1M", "r");
    CU_ASSERT(node_is(f.be, "info", "4"));
    CU_ASSERT_EQUAL(rw(&f, BLKIF_OP_READ, 0, 0, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(rw(&f, BLKIF_OP_WRITE, 0, 0, 0, 7), BLKIF_RSP_ERROR);
    struct blkif_x86_64_request_discard dc = { .operation = BLKIF_OP_DISCARD, .nr_sectors = 8 };
    CU_ASSERT_EQUAL(wait_rsp(&f, push(&f, &dc), NULL), BLKIF_RSP_ERROR);
    fe_close(&f);
}

/* What a multi-queue blkfront with big rings and an i386 guest look like. */
static void test_multiqueue_x86_32(void)
{
    struct tfront f;
    toolstack_add(&f, 51792, "memx:mq:16M", "w");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "2"));
    fe_connect_ex(&f, 2, 2, "x86_32-abi");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "4"));
    struct blkback_dev_info buf[8], *i = info_of(51792, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i);
    CU_ASSERT_EQUAL(i->nr_queues, 2);
    CU_ASSERT_EQUAL(i->ring_pages, 4);
    CU_ASSERT_STRING_EQUAL(i->protocol, "x86_32-abi");
    CU_ASSERT_EQUAL(f.q[0].size, 128);

    /* More requests than one page of ring holds, in one batch per queue. */
    for (int qi = 0; qi < 2; qi++) {
        uint64_t ids[40];
        for (unsigned k = 0; k < 40; k++) {
            fill(f.data + (k % 8) * 4096, 4096, k);
            struct blkif_x86_32_request r = { .operation = BLKIF_OP_WRITE, .nr_segments = 1,
                                              .sector_number = 8u * (k + 40u * (unsigned)qi) };
            r.seg[0] = (struct blkif_wire_seg){ .gref = f.refs[k % 8], .first_sect = 0, .last_sect = 7 };
            if (k % 8 == 7) {
                /* Data pages are reused: wait for this batch of 8 first. */
                ids[k] = push_q(&f, qi, &r, sizeof(r));
                for (unsigned j = k - 7; j <= k; j++)
                    CU_ASSERT_EQUAL(wait_rsp_q(&f, qi, ids[j], NULL), BLKIF_RSP_OKAY);
            } else {
                ids[k] = push_q(&f, qi, &r, sizeof(r));
            }
        }
    }
    for (unsigned k = 0; k < 80; k += 13) {
        struct blkif_x86_32_request r = { .operation = BLKIF_OP_READ, .nr_segments = 1,
                                          .sector_number = 8u * k };
        r.seg[0] = (struct blkif_wire_seg){ .gref = f.refs[8], .first_sect = 0, .last_sect = 7 };
        int qi = (int)(k & 1);
        CU_ASSERT_EQUAL(wait_rsp_q(&f, qi, push_q(&f, qi, &r, sizeof(r)), NULL), BLKIF_RSP_OKAY);
        fill(f.data + 9 * 4096, 4096, k % 40);
        CU_ASSERT_EQUAL(memcmp(f.data + 8 * 4096, f.data + 9 * 4096, 4096), 0);
    }
    i = info_of(51792, buf);
    CU_ASSERT_EQUAL(i->requests, 87);
    CU_ASSERT_EQUAL(i->errors, 0);
    fe_close(&f);
}

/* Issue 12 item 8: a frontend that writes no protocol node speaks the
 * x86_32 ABI on x86 (Linux blkback's BLKIF_PROTOCOL_DEFAULT, QEMU's
 * xen-block on x86 machines): its 108-byte requests must be decoded as such. */
static void test_no_protocol_is_x86_32(void)
{
#if defined(__i386__) || defined(__x86_64__)
    struct tfront f;
    toolstack_add(&f, 51840, "memx:noproto:1M", "w");
    CU_ASSERT_FATAL(wait_node(f.be, "state", "2"));
    fe_connect_ex(&f, -1, 1, NULL);
    CU_ASSERT_FATAL(wait_node(f.be, "state", "4"));
    struct blkback_dev_info buf[8], *i = info_of(51840, buf);
    CU_ASSERT_PTR_NOT_NULL_FATAL(i);
    CU_ASSERT_STRING_EQUAL(i->protocol, "x86_32-abi");
    fill(f.data, 4096, 9);
    struct blkif_x86_32_request w = { .operation = BLKIF_OP_WRITE, .nr_segments = 1, .sector_number = 16 };
    w.seg[0] = (struct blkif_wire_seg){ .gref = f.refs[0], .first_sect = 0, .last_sect = 7 };
    CU_ASSERT_EQUAL(wait_rsp(&f, push(&f, &w), NULL), BLKIF_RSP_OKAY);
    struct blkif_x86_32_request r = { .operation = BLKIF_OP_READ, .nr_segments = 1, .sector_number = 16 };
    r.seg[0] = (struct blkif_wire_seg){ .gref = f.refs[1], .first_sect = 0, .last_sect = 7 };
    CU_ASSERT_EQUAL(wait_rsp(&f, push(&f, &r), NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(f.data, f.data + 4096, 4096), 0);
    i = info_of(51840, buf);
    CU_ASSERT_EQUAL(i->errors, 0);
    fe_close(&f);
#endif
}

/* ring_poll_us (off by default, 1000 here): right after a request and its
 * answer the backend looks at the ring without an event, so the next
 * request needs no kick; once the ring has been quiet that long it asks for
 * an event again. */
static void test_ring_polling(void)
{
    struct memx_config def;
    memx_config_defaults(&def);
    CU_ASSERT_EQUAL(def.ring_poll_us, 0);    /* opt-in */
    struct tfront f;
    connect_dev(&f, 51824, "memx:poll:1M", "w");
    fill(f.data, 4096, 5);
    CU_ASSERT_EQUAL(rw(&f, BLKIF_OP_WRITE, 0, 0, 0, 7), BLKIF_RSP_OKAY);
    /* Back to back: the backend is polling, the push must not kick it. */
    struct blkif_x86_64_request r = { .operation = BLKIF_OP_READ, .nr_segments = 1, .sector_number = 0 };
    r.seg[0] = (struct blkif_wire_seg){ .gref = f.refs[1], .first_sect = 0, .last_sect = 7 };
    uint64_t id = push(&f, &r);
    CU_ASSERT(!f.q[0].notified);
    CU_ASSERT_EQUAL(wait_rsp(&f, id, NULL), BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(memcmp(f.data, f.data + 4096, 4096), 0);
    /* Idle past the window: it asks for an event on the next request. */
    usleep(5000);
    for (int k = 0; k < 3; k++)
        evloop_run_once(el, 0);
    CU_ASSERT_EQUAL(mx_load_acquire(&f.q[0].s->req_event), f.q[0].req_prod + 1);
    CU_ASSERT_EQUAL(rw(&f, BLKIF_OP_READ, 0, 1, 0, 7), BLKIF_RSP_OKAY);
    CU_ASSERT(f.q[0].notified);
    fe_close(&f);
}

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

static void test_shutdown_drains(void)
{
    struct tfront f;
    connect_dev(&f, 51808, "memx:sd:1M", "w");
    fill(f.data, 4096, 3);
    fake_pool_hold(pool, true);
    struct blkif_x86_64_request r = { .operation = BLKIF_OP_WRITE, .nr_segments = 1, .sector_number = 8 };
    r.seg[0] = (struct blkif_wire_seg){ .gref = f.refs[0], .first_sect = 0, .last_sect = 7 };
    uint64_t id = push(&f, &r);
    for (int k = 0; k < 10; k++)
        evloop_run_once(el, 5);
    CU_ASSERT(fake_pool_pending(pool) > 0);
    blkback_shutdown(bb, shut_done, NULL);
    for (int k = 0; k < 10; k++)
        evloop_run_once(el, 5);
    CU_ASSERT(node_is(f.be, "state", "5"));     /* Closing while the write is in flight */
    CU_ASSERT(!shut);
    fake_pool_hold(pool, false);
    fake_pool_release_all(pool);
    CU_ASSERT_EQUAL(wait_rsp(&f, id, NULL), BLKIF_RSP_OKAY);
    for (int k = 0; k < 100 && !shut; k++)
        evloop_run_once(el, 10);
    CU_ASSERT(shut);
    CU_ASSERT(node_is(f.be, "state", "6"));
    CU_ASSERT_STRING_EQUAL(volume_owner(volumes_find(vols, "sd")), "");
    fe_release(&f);
}

static const struct cu_test tests[] = {
    { "handshake, close, reconnect, toolstack teardown", test_handshake },
    { "bad params target", test_bad_target },
    { "I/O, malformed requests, hostile ring beside a good device", test_io_and_bad_requests },
    { "read-only device", test_readonly },
    { "two queues, 4-page rings, x86_32 ABI", test_multiqueue_x86_32 },
    { "no protocol node: the x86_32 ABI on x86", test_no_protocol_is_x86_32 },
    { "ring polling: no kick needed while polling, events again once idle", test_ring_polling },
    { "partial multi-queue connect: nothing served before Connected", test_partial_multiqueue },
    { "a bad-request storm: a ring's worth per loop turn, the other guest keeps serving",
      test_bad_request_storm },
    { "a sparse full-range discard: records only for written pages", test_sparse_discard },
    { "a discard of a fully written range: bounded memory (chunks)", test_full_discard_bounded },
    { "indirect buffers bounded per device: the rest wait, all complete", test_indirect_bound },
    { "shutdown drains in-flight I/O (last: ends the backend)", test_shutdown_drains },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "blkback on sim", suite_init, suite_cleanup, tests },
                                          { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
