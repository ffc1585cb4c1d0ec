/* test_vbd.c — memx-backd's Xen side driven end to end on the sim platform.
 *
 * This process is the toolstack and the frontend (a second struct xp with
 * domid 1) as well as the backend: memx-simxsd provides XenStore, the ring
 * and data pages are granted by "domain 1", and the backend runs
 * blkback + the real volume layer over the in-memory fake pool.  Everything
 * a guest can get wrong is sent on one device while a second keeps serving.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "blkback.h"
#include "blkif_abi.h"
#include "config.h"
#include "cu_main.h"
#include "evloop.h"
#include "fake_pool.h"
#include "log.h"
#include "volume.h"
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

struct tfront {
    uint32_t devid;
    char fe[96], be[96];
    struct blkif_sring *s;
    uint32_t ring_ref;
    int port;
    uint8_t *data;
    uint32_t refs[NDATA];
    uint32_t req_prod, rsp_cons;
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

/* What blkfront does on seeing InitWait: a ring, an event channel, Initialised. */
static void fe_connect(struct tfront *f)
{
    f->s = xp_gnt_share(xfe, 0, 1, &f->ring_ref, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->s);
    SHARED_RING_INIT(f->s);
    f->data = xp_gnt_share(xfe, 0, NDATA, f->refs, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(f->data);
    f->port = xp_evtchn_alloc_unbound(xfe, 0);
    CU_ASSERT_FATAL(f->port > 0);
    char v[32];
    snprintf(v, sizeof(v), "%u", f->ring_ref);
    put(f->fe, "ring-ref", v);
    snprintf(v, sizeof(v), "%d", f->port);
    put(f->fe, "event-channel", v);
    put(f->fe, "protocol", "x86_64-abi");
    put(f->fe, "state", "3");
}

static void fe_release(struct tfront *f)
{
    if (f->port > 0)
        xp_evtchn_unbind(xfe, (uint32_t)f->port);
    if (f->data)
        xp_gnt_unshare(xfe, f->data, NDATA);
    if (f->s)
        xp_gnt_unshare(xfe, f->s, 1);
    f->port = 0;
    f->data = NULL;
    f->s = NULL;
}

static struct blkif_x86_64_request *slot(struct tfront *f, uint32_t i)
{
    return (void *)((char *)f->s + BLKIF_SRING_HDR + (i & 31u) * sizeof(struct blkif_x86_64_request));
}

/* RING_PUSH_REQUESTS + notify. */
static uint64_t push(struct tfront *f, const void *req)
{
    struct blkif_x86_64_request *r = slot(f, f->req_prod);
    memcpy(r, req, sizeof(*r));
    uint64_t id = f->next_id++;
    r->id = id;
    f->req_prod++;
    __atomic_thread_fence(__ATOMIC_RELEASE);
    __atomic_store_n(&f->s->req_prod, f->req_prod, __ATOMIC_RELAXED);
    xp_evtchn_notify(xfe, (uint32_t)f->port);
    return id;
}

/* Waits for the next response; its status, or 99 on a timeout. */
static int wait_rsp(struct tfront *f, uint64_t id, uint8_t *op)
{
    uint64_t end = evloop_now_ms() + 5000;
    while (evloop_now_ms() < end) {
        if (__atomic_load_n(&f->s->rsp_prod, __ATOMIC_ACQUIRE) != f->rsp_cons) {
            struct blkif_x86_64_response rsp;
            memcpy(&rsp, slot(f, f->rsp_cons), sizeof(rsp));
            f->rsp_cons++;
            CU_ASSERT_EQUAL(rsp.id, id);
            if (op)
                *op = rsp.operation;
            return rsp.status;
        }
        evloop_run_once(el, 10);
    }
    return 99;
}

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
    char err[256];
    bb = blkback_new(el, xbe, vols, &cfg, err, sizeof(err));
    if (!bb || blkback_start(bb, err, sizeof(err))) {
        fprintf(stderr, "blkback: %s\n", err);
        return 1;
    }
    return 0;
}

static bool shut;
static void shut_done(void *arg) { shut = true; }

static int suite_cleanup(void)
{
    if (bb) {
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
    __atomic_store_n(&a.s->req_prod, a.req_prod + 1000, __ATOMIC_RELEASE);
    xp_evtchn_notify(xfe, (uint32_t)a.port);
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

static const struct cu_test tests[] = {
    { "handshake, close, reconnect, toolstack teardown", test_handshake },
    { "bad params target", test_bad_target },
    { "I/O, malformed requests, hostile ring beside a good device", test_io_and_bad_requests },
    { "read-only device", test_readonly },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "blkback on sim", suite_init, suite_cleanup, tests },
                                          { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
