/* vbd_harness.c — the in-process toolstack and frontend of the test_vbd
 * programs: XenStore plumbing, what libxl and blkfront write, the ring as a
 * frontend drives it, and the suite's set-up (memx-simxsd, blkback over the
 * volume layer and the fake pool).  See vbd_harness.h.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "config.h"
#include "log.h"
#include "vbd_harness.h"

static char dir[64];
static pid_t xsd = -1;
struct evloop *el;
struct xp *xbe, *xfe;
struct pool *pool;
struct volumes *vols;
struct blkback *bb;
static struct memx_config cfg;
bool shut;
void shut_done(void *arg) { shut = true; }

/* ---- plumbing ------------------------------------------------------------ */

char *xs_get(const char *path)
{
    return xp_xs_read(xbe, XP_TXN_NULL, path, NULL);
}

bool node_is(const char *d, const char *node, const char *want)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", d, node);
    char *v = xs_get(p);
    bool ok = v && !strcmp(v, want);
    free(v);
    return ok;
}

/* Runs the loop until dir/node reads want (or 5 s pass). */
bool wait_node(const char *d, const char *node, const char *want)
{
    uint64_t end = evloop_now_ms() + 5000;
    while (evloop_now_ms() < end) {
        if (node_is(d, node, want))
            return true;
        evloop_run_once(el, 10);
    }
    return node_is(d, node, want);
}

void put(const char *d, const char *node, const char *val)
{
    char p[160];
    snprintf(p, sizeof(p), "%s/%s", d, node);
    CU_ASSERT_EQUAL_FATAL(xp_xs_write(xbe, XP_TXN_NULL, p, val), 0);
}

/* What libxl writes for a disk line, in one go. */
void toolstack_add(struct tfront *f, uint32_t devid, const char *params, const char *mode)
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
void fe_connect_ex(struct tfront *f, int order, int nq, const char *proto)
{
    fe_rings(f, order, nq, proto, -1);
    put(f->fe, "state", "3");
}

/* Everything blkfront publishes before Initialised; omit_ref_of >= 0 leaves
 * that queue's ring-ref nodes out (a broken or hostile frontend). */
void fe_rings(struct tfront *f, int order, int nq, const char *proto, int omit_ref_of)
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

void fe_connect(struct tfront *f)
{
    fe_connect_ex(f, -1, 1, "x86_64-abi");
}

void fe_release(struct tfront *f)
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

void *slot(struct tqueue *q, uint32_t i)
{
    return (char *)q->s + BLKIF_SRING_HDR + (i & (q->size - 1)) * q->entsz;
}

/* RING_PUSH_REQUESTS_AND_CHECK_NOTIFY, as blkfront does it: the backend is
 * kicked only when it asked for an event (req_event).  req is one of the
 * request layouts of the queue's ABI, len its size.  The id is set here (its
 * offset differs). */
uint64_t push_q(struct tfront *f, int qi, const void *req, size_t len)
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

/* Waits for the next response; its status, or 99 on a timeout. */
int wait_rsp_q(struct tfront *f, int qi, uint64_t id, uint8_t *op)
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

int rw(struct tfront *f, uint8_t op, uint64_t sector, unsigned page, uint8_t first, uint8_t last)
{
    struct blkif_x86_64_request r = { .operation = op, .nr_segments = 1, .sector_number = sector };
    r.seg[0] = (struct blkif_wire_seg){ .gref = f->refs[page], .first_sect = first, .last_sect = last };
    return wait_rsp(f, push(f, &r), NULL);
}

void connect_dev(struct tfront *f, uint32_t devid, const char *params, const char *mode)
{
    toolstack_add(f, devid, params, mode);
    CU_ASSERT_FATAL(wait_node(f->be, "state", "2"));
    fe_connect(f);
    CU_ASSERT_FATAL(wait_node(f->be, "state", "4"));
}

void fe_close(struct tfront *f)
{
    put(f->fe, "state", "5");
    CU_ASSERT(wait_node(f->be, "state", "6"));
    put(f->fe, "state", "6");
    fe_release(f);
}

struct blkback_dev_info *info_of(uint32_t devid, struct blkback_dev_info *buf)
{
    int n = blkback_list(bb, buf, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (buf[i].devid == devid)
            return &buf[i];
    return NULL;
}

void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 9));
}

/* ---- suite ------------------------------------------------------------- */

int vbd_suite_init(const char *log_name)
{
    mx_log_init(log_name, getenv("MEMX_TEST_DEBUG") ? MX_LOG_DEBUG : MX_LOG_ERR);
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
     * so test_vbd's test_ring_polling does not depend on the machine's speed. */
    cfg.ring_poll_us = 1000;
    /* Small enough for test_vbd_hostile's test_indirect_bound to reach with a
     * handful of requests. */
    cfg.device_buffer_max = 4u << 20;
    char err[256];
    bb = blkback_new(el, xbe, vols, &cfg, err, sizeof(err));
    if (!bb || blkback_start(bb, err, sizeof(err))) {
        fprintf(stderr, "blkback: %s\n", err);
        return 1;
    }
    return 0;
}

int vbd_suite_cleanup(void)
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
