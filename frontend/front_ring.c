/* front_ring.c — blkif rings from the frontend side: granting ring and data
 * pages, putting requests on the ring, consuming responses, and the
 * synchronous wrappers.
 *
 * Barriers (lib/barrier.h).  The shared indices are read and written with relaxed
 * atomics; ordering comes from explicit fences, each placed where Xen's ring.h macros
 * place theirs, and each pairs with the opposite fence in the backend:
 *   wmb before req_prod      <-> backend rmb after reading req_prod
 *   mb  after req_prod, before reading req_event
 *                            <-> backend mb between writing req_event and
 *                                re-reading req_prod (RING_FINAL_CHECK_FOR_REQUESTS)
 *   rmb after reading rsp_prod <-> backend wmb before writing rsp_prod
 *   mb  after writing rsp_event, before re-reading rsp_prod
 *                            <-> backend mb between rsp_prod and reading rsp_event
 *                                (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY)
 */
#include "front_int.h"

#include "barrier.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include <xen/io/xenbus.h>

#define SECTORS_PER_PAGE (XP_PAGE_SIZE / 512u)

int mf_queue_setup(struct memxfront *f, struct mf_queue *q, char *err, size_t errlen)
{
    unsigned pages = 1u << f->ring_order;
    q->sring = xp_gnt_share(f->xp, f->info.backend_domid, pages, q->ring_refs, true);
    if (!q->sring) {
        snprintf(err, errlen, "vbd %s: cannot grant %u ring page(s) for queue %u: %s", f->front, pages, q->idx,
                 strerror(errno));
        return -1;
    }
    /* SHARED_RING_INIT + FRONT_RING_INIT.  The backend has not seen the refs
     * yet (they are published later, in a transaction), so plain stores do. */
    memset(q->sring, 0, (size_t)pages * XP_PAGE_SIZE);
    q->sring->req_event = 1;
    q->sring->rsp_event = 1;
    q->nr_ents = __RING_SIZE(q->sring, (size_t)pages * XP_PAGE_SIZE);
    q->req_prod_pvt = 0;
    q->rsp_cons = 0;
    q->port = xp_evtchn_alloc_unbound(f->xp, f->info.backend_domid);
    if (q->port < 0) {
        snprintf(err, errlen, "vbd %s: cannot allocate an event channel for queue %u: %s", f->front, q->idx,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* After Connected: slots per queue, the bounce pool, indirect pages. */
int mf_data_setup(struct memxfront *f, char *err, size_t errlen)
{
    unsigned segs = f->info.max_segs;
    unsigned depth = f->q[0].nr_ents;
    if (f->opts.queue_depth && f->opts.queue_depth < depth)
        depth = f->opts.queue_depth;
    f->info.queue_depth = depth;
    f->info.nr_queues = f->nq;
    f->info.ring_pages = 1u << f->ring_order;

    unsigned long want = f->opts.bounce_pages;
    if (!want) {
        want = (unsigned long)f->nq * depth * segs;
        if (want > MF_DEFAULT_POOL_CAP)
            want = MF_DEFAULT_POOL_CAP;
    }
    if (want < segs)
        want = segs;
    f->npool = (unsigned)want;
    f->pool_refs = calloc(f->npool, sizeof(uint32_t));
    f->pool_free = calloc(f->npool, sizeof(uint32_t));
    if (!f->pool_refs || !f->pool_free)
        goto nomem;
    f->pool = xp_gnt_share(f->xp, f->info.backend_domid, f->npool, f->pool_refs, true);
    if (!f->pool) {
        snprintf(err, errlen, "vbd %s: cannot grant %u bounce pages: %s", f->front, f->npool, strerror(errno));
        return -1;
    }
    for (unsigned i = 0; i < f->npool; i++)
        f->pool_free[i] = f->npool - 1 - i;
    f->pool_nfree = f->npool;

    for (unsigned qi = 0; qi < f->nq; qi++) {
        struct mf_queue *q = &f->q[qi];
        q->depth = depth;
        q->slots = calloc(depth, sizeof(*q->slots));
        q->slot_pages = calloc((size_t)depth * segs, sizeof(uint32_t));
        q->free_ids = calloc(depth, sizeof(uint16_t));
        if (!q->slots || !q->slot_pages || !q->free_ids)
            goto nomem;
        for (unsigned i = 0; i < depth; i++) {
            q->slots[i].pages = q->slot_pages + (size_t)i * segs;
            q->free_ids[i] = (uint16_t)(depth - 1 - i);
        }
        q->nfree = depth;
        if (segs > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
            q->ind_refs = calloc(depth, sizeof(uint32_t));
            if (!q->ind_refs)
                goto nomem;
            /* Read-only: the backend only reads descriptor pages. */
            q->ind = xp_gnt_share(f->xp, f->info.backend_domid, depth, q->ind_refs, false);
            if (!q->ind) {
                snprintf(err, errlen, "vbd %s: cannot grant %u indirect pages: %s", f->front, depth,
                         strerror(errno));
                return -1;
            }
        }
    }
    return 0;
nomem:
    snprintf(err, errlen, "vbd %s: out of memory", f->front);
    errno = ENOMEM;
    return -1;
}

void mf_release(struct memxfront *f)
{
    for (unsigned qi = 0; qi < MF_MAX_QUEUES; qi++) {
        struct mf_queue *q = &f->q[qi];
        if (q->port >= 0)
            xp_evtchn_unbind(f->xp, (uint32_t)q->port);
        if (q->sring && xp_gnt_unshare(f->xp, q->sring, 1u << f->ring_order) < 0)
            mx_warn("vbd %s: revoking ring grants of queue %u: %s", f->front, qi, strerror(errno));
        if (q->ind && xp_gnt_unshare(f->xp, q->ind, q->depth) < 0)
            mx_warn("vbd %s: revoking indirect grants of queue %u: %s", f->front, qi, strerror(errno));
        free(q->slots);
        free(q->slot_pages);
        free(q->free_ids);
        free(q->ind_refs);
        memset(q, 0, sizeof(*q));
        q->port = -1;
    }
    if (f->pool && xp_gnt_unshare(f->xp, f->pool, f->npool) < 0)
        mx_warn("vbd %s: revoking bounce-page grants: %s", f->front, strerror(errno));
    f->pool = NULL;
    free(f->pool_refs);
    free(f->pool_free);
    f->pool_refs = f->pool_free = NULL;
}

static inline uint8_t *pool_page(struct memxfront *f, uint32_t i) { return f->pool + (size_t)i * XP_PAGE_SIZE; }

/* A queue with a free slot, round robin so queues share the load; only the
 * steered queue once memxfront_set_queue chose one. */
static struct mf_queue *pick_queue(struct memxfront *f)
{
    if (f->steer >= 0) {
        struct mf_queue *q = &f->q[f->steer];
        return q->nfree ? q : NULL;
    }
    for (unsigned n = 0; n < f->nq; n++) {
        struct mf_queue *q = &f->q[(f->next_q + n) % f->nq];
        if (q->nfree) {
            f->next_q = (q->idx + 1) % f->nq;
            return q;
        }
    }
    return NULL;
}

static struct mf_slot *slot_get(struct memxfront *f, struct mf_queue *q, uint16_t *id, memxfront_cb cb, void *arg)
{
    *id = q->free_ids[--q->nfree];
    struct mf_slot *s = &q->slots[*id];
    s->busy = true;
    s->cb = cb;
    s->arg = arg;
    s->rbuf = NULL;
    s->len = 0;
    s->npages = 0;
    f->inflight++;
    return s;
}

/* Writes one request into the next free ring entry and publishes it. */
static void ring_push(struct memxfront *f, struct mf_queue *q, const void *req, size_t len)
{
    union blkif_sring_entry *e = &q->sring->ring[q->req_prod_pvt & (q->nr_ents - 1)];
    memset(&e->req, 0, sizeof(e->req));
    memcpy(&e->req, req, len);
    q->req_prod_pvt++;
    /* RING_PUSH_REQUESTS_AND_CHECK_NOTIFY.
     * wmb: the request body is visible before the new req_prod; pairs with
     * the backend's rmb after it reads req_prod. */
    RING_IDX old = MX_READ_ONCE(q->sring->req_prod), new = q->req_prod_pvt;
    mx_smp_wmb();
    MX_WRITE_ONCE(q->sring->req_prod, new);
    /* mb: req_prod is visible before we read req_event; pairs with the
     * backend's mb between setting req_event and re-checking req_prod, so
     * one of us always sees the other and no kick is lost. */
    mx_smp_mb();
    RING_IDX ev = MX_READ_ONCE(q->sring->req_event);
    if ((RING_IDX)(new - ev) < (RING_IDX)(new - old))
        xp_evtchn_notify(f->xp, (uint32_t)q->port);
}

void mf_debug_prefill(struct memxfront *f, struct mf_queue *q, unsigned n)
{
    for (unsigned i = 0; i < n && i < q->nr_ents; i++) {
        /* Reads from grant ref 0, ids no slot owns: never to be answered
         * (the backend must not take them before it is Connected). */
        struct blkif_request r = { .operation = BLKIF_OP_READ, .nr_segments = 1, .id = 0xdead0000u + i,
                                   .sector_number = 8u * i };
        r.seg[0] = (struct blkif_request_segment){ .gref = 0, .first_sect = 0, .last_sect = 7 };
        ring_push(f, q, &r, sizeof(r));
    }
}

static int check_io(struct memxfront *f, uint64_t offset, uint64_t len, bool data)
{
    if (f->dead) {
        errno = ENOTCONN;
        return -1;
    }
    uint64_t ss = f->info.sector_size;
    if (len == 0 || offset % ss || len % ss || offset > f->info.size_bytes || len > f->info.size_bytes - offset) {
        errno = EINVAL;
        return -1;
    }
    if (data && len > f->info.max_io) {
        errno = E2BIG;
        return -1;
    }
    return 0;
}

static int submit_rw(struct memxfront *f, uint8_t op, uint64_t offset, const void *wbuf, void *rbuf, size_t len,
                     memxfront_cb cb, void *arg)
{
    if (check_io(f, offset, len, true) < 0)
        return -1;
    if (op == BLKIF_OP_WRITE && f->info.readonly) {
        errno = EROFS;
        return -1;
    }
    unsigned npages = (unsigned)((len + XP_PAGE_SIZE - 1) / XP_PAGE_SIZE);
    struct mf_queue *q = pick_queue(f);
    if (!q || f->pool_nfree < npages) {
        errno = EAGAIN;
        return -1;
    }
    uint16_t id;
    struct mf_slot *s = slot_get(f, q, &id, cb, arg);
    s->op = op;
    s->rbuf = rbuf;
    s->len = len;
    s->npages = (uint16_t)npages;
    struct blkif_request_segment segs[MF_MAX_INDIRECT];
    size_t left = len;
    for (unsigned i = 0; i < npages; i++) {
        uint32_t pg = f->pool_free[--f->pool_nfree];
        s->pages[i] = pg;
        size_t n = left < XP_PAGE_SIZE ? left : XP_PAGE_SIZE;
        if (wbuf)
            memcpy(pool_page(f, pg), (const uint8_t *)wbuf + (size_t)i * XP_PAGE_SIZE, n);
        segs[i].gref = f->pool_refs[pg];
        segs[i].first_sect = 0;
        segs[i].last_sect = (uint8_t)(n / 512u - 1);
        left -= n;
    }
    if (npages <= BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        struct blkif_request r = {
            .operation = op, .nr_segments = (uint8_t)npages, .handle = f->handle, .id = id,
            .sector_number = offset / 512u,
        };
        memcpy(r.seg, segs, npages * sizeof(segs[0]));
        ring_push(f, q, &r, sizeof(r));
    } else {
        /* One descriptor page per slot (max_segs <= 512), granted read-only;
         * filled before the request is published, so the ring wmb covers it. */
        memcpy(q->ind + (size_t)id * XP_PAGE_SIZE, segs, npages * sizeof(segs[0]));
        struct blkif_request_indirect r = {
            .operation = BLKIF_OP_INDIRECT, .indirect_op = op, .nr_segments = (uint16_t)npages, .id = id,
            .sector_number = offset / 512u, .handle = f->handle,
        };
        r.indirect_grefs[0] = q->ind_refs[id];
        ring_push(f, q, &r, sizeof(r));
    }
    return 0;
}

int memxfront_read(struct memxfront *f, uint64_t offset, void *buf, size_t len, memxfront_cb cb, void *arg)
{
    return submit_rw(f, BLKIF_OP_READ, offset, NULL, buf, len, cb, arg);
}

int memxfront_write(struct memxfront *f, uint64_t offset, const void *buf, size_t len, memxfront_cb cb, void *arg)
{
    return submit_rw(f, BLKIF_OP_WRITE, offset, buf, NULL, len, cb, arg);
}

int memxfront_flush(struct memxfront *f, memxfront_cb cb, void *arg)
{
    if (f->dead || !f->info.flush) {
        errno = f->dead ? ENOTCONN : EOPNOTSUPP;
        return -1;
    }
    struct mf_queue *q = pick_queue(f);
    if (!q) {
        errno = EAGAIN;
        return -1;
    }
    uint16_t id;
    struct mf_slot *s = slot_get(f, q, &id, cb, arg);
    s->op = f->flush_op;
    /* Linux sends a data-less flush as FLUSH_DISKCACHE with no segments. */
    struct blkif_request r = { .operation = f->flush_op, .nr_segments = 0, .handle = f->handle, .id = id };
    ring_push(f, q, &r, sizeof(r));
    return 0;
}

int memxfront_discard(struct memxfront *f, uint64_t offset, uint64_t len, memxfront_cb cb, void *arg)
{
    if (check_io(f, offset, len, false) < 0)
        return -1;
    if (!f->info.discard || f->info.readonly) {
        errno = f->info.readonly ? EROFS : EOPNOTSUPP;
        return -1;
    }
    struct mf_queue *q = pick_queue(f);
    if (!q) {
        errno = EAGAIN;
        return -1;
    }
    uint16_t id;
    struct mf_slot *s = slot_get(f, q, &id, cb, arg);
    s->op = BLKIF_OP_DISCARD;
    struct blkif_request_discard r = {
        .operation = BLKIF_OP_DISCARD, .handle = f->handle, .id = id, .sector_number = offset / 512u,
        .nr_sectors = len / 512u,
    };
    ring_push(f, q, &r, sizeof(r));
    return 0;
}

static void complete(struct memxfront *f, struct mf_queue *q, uint16_t id, int status)
{
    struct mf_slot *s = &q->slots[id];
    if (status == 0 && s->rbuf && s->op == BLKIF_OP_READ) {
        size_t left = s->len;
        for (unsigned i = 0; i < s->npages; i++) {
            size_t n = left < XP_PAGE_SIZE ? left : XP_PAGE_SIZE;
            memcpy((uint8_t *)s->rbuf + (size_t)i * XP_PAGE_SIZE, pool_page(f, s->pages[i]), n);
            left -= n;
        }
    }
    for (unsigned i = 0; i < s->npages; i++)
        f->pool_free[f->pool_nfree++] = s->pages[i];
    s->busy = false;
    s->npages = 0;
    q->free_ids[q->nfree++] = id;
    f->inflight--;
    /* The slot is free before the callback runs, so it may submit again. */
    if (s->cb)
        s->cb(s->arg, status);
}

static int status_errno(int16_t st)
{
    switch (st) {
    case BLKIF_RSP_OKAY: return 0;
    case BLKIF_RSP_EOPNOTSUPP: return -EOPNOTSUPP;
    default: return -EIO;
    }
}

/* RING_FOR_EACH response + RING_FINAL_CHECK_FOR_RESPONSES. */
static int consume(struct memxfront *f, struct mf_queue *q)
{
    int done = 0;
    for (;;) {
        RING_IDX rp = MX_READ_ONCE(q->sring->rsp_prod);
        /* rmb: read the responses only after rsp_prod; pairs with the
         * backend's wmb before it writes rsp_prod. */
        mx_smp_rmb();
        if ((RING_IDX)(rp - q->rsp_cons) > q->nr_ents) {
            mx_err("vbd %s: queue %u: backend moved rsp_prod to %u (consumer at %u); disconnecting", f->front,
                   q->idx, rp, q->rsp_cons);
            f->dead = true;
            return done;
        }
        for (RING_IDX i = q->rsp_cons; i != rp; i++) {
            struct blkif_response r;
            memcpy(&r, &q->sring->ring[i & (q->nr_ents - 1)].rsp, sizeof(r));
            if (r.id >= q->depth || !q->slots[r.id].busy) {
                mx_err("vbd %s: queue %u: response for unknown id %llu ignored", f->front, q->idx,
                       (unsigned long long)r.id);
                continue;
            }
            complete(f, q, (uint16_t)r.id, status_errno(r.status));
            done++;
        }
        q->rsp_cons = rp;
        /* Ask for a kick at the next response, then look again.
         * mb: the rsp_event store is visible before we re-read rsp_prod;
         * pairs with the backend's mb between publishing rsp_prod and
         * reading rsp_event. */
        MX_WRITE_ONCE(q->sring->rsp_event, q->rsp_cons + 1);
        mx_smp_mb();
        if (MX_READ_ONCE(q->sring->rsp_prod) == q->rsp_cons)
            return done;
    }
}

int mf_consume_all(struct memxfront *f)
{
    int n = 0;
    for (unsigned i = 0; i < f->nq; i++)
        if (f->q[i].slots)
            n += consume(f, &f->q[i]);
    return n;
}

void mf_fail_all(struct memxfront *f, int status)
{
    for (unsigned qi = 0; qi < f->nq; qi++) {
        struct mf_queue *q = &f->q[qi];
        for (unsigned id = 0; q->slots && id < q->depth; id++)
            if (q->slots[id].busy) {
                q->slots[id].rbuf = NULL;
                complete(f, q, (uint16_t)id, status);
            }
    }
}

int memxfront_set_queue(struct memxfront *f, int q)
{
    if (q < -1 || q >= (int)f->nq) {
        errno = EINVAL;
        return -1;
    }
    f->steer = q;
    return 0;
}

void memxfront_abort(struct memxfront *f)
{
    if (!f->dead)
        mx_warn("vbd %s: abandoned by its user; failing %u in-flight request(s)", f->front, f->inflight);
    f->dead = true;
    mf_fail_all(f, -ENOTCONN);
}

int memxfront_fd(const struct memxfront *f) { return f->epfd; }
unsigned memxfront_inflight(const struct memxfront *f) { return f->inflight; }

int memxfront_process(struct memxfront *f)
{
    int port;
    /* Unmask before looking at the rings: a response published after the
     * look raises the event again. */
    while ((port = xp_evtchn_pending(f->xp)) >= 0)
        xp_evtchn_unmask(f->xp, (uint32_t)port);
    int n = f->dead ? 0 : mf_consume_all(f);
    if (!f->dead && !mf_check_backend(f)) {
        /* Answers the backend published before leaving still count. */
        n += mf_consume_all(f);
    }
    if (f->dead) {
        mf_fail_all(f, -ENOTCONN);
        if (n == 0) {
            errno = ENOTCONN;
            return -1;
        }
    }
    return n;
}

int memxfront_wait(struct memxfront *f, int timeout_ms)
{
    if (f->dead) {
        errno = ENOTCONN;
        return -1;
    }
    struct pollfd p = { .fd = f->epfd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) < 0 && errno != EINTR)
        return -1;
    return memxfront_process(f);
}

/* ---- synchronous wrappers ---- */

struct sync_ctx {
    unsigned pending;
    int status;
};

static void sync_cb(void *arg, int status)
{
    struct sync_ctx *c = arg;
    c->pending--;
    if (status && !c->status)
        c->status = status;
}

static int sync_finish(struct memxfront *f, struct sync_ctx *c)
{
    while (c->pending)
        if (memxfront_wait(f, 1000) < 0 && errno != ENOTCONN && errno != EINTR)
            break;
    if (c->pending) {
        errno = EIO;
        return -1;
    }
    if (c->status) {
        errno = -c->status;
        return -1;
    }
    return 0;
}

/* Submits one piece, processing completions while the ring or pool is full. */
static int sync_submit(struct memxfront *f, struct sync_ctx *c, int (*fn)(struct memxfront *, void *), void *p)
{
    for (;;) {
        if (fn(f, p) == 0) {
            c->pending++;
            return 0;
        }
        if (errno != EAGAIN || !f->inflight)
            return -1;
        if (memxfront_wait(f, 1000) < 0 && errno == ENOTCONN)
            return -1;
    }
}

struct rw_piece {
    struct sync_ctx *c;
    bool write;
    uint8_t *buf;
    size_t len;
    uint64_t off;
};

static int rw_fn(struct memxfront *f, void *arg)
{
    struct rw_piece *p = arg;
    return p->write ? memxfront_write(f, p->off, p->buf, p->len, sync_cb, p->c)
                    : memxfront_read(f, p->off, p->buf, p->len, sync_cb, p->c);
}

static int sync_rw(struct memxfront *f, bool write, uint8_t *buf, size_t len, uint64_t offset)
{
    struct sync_ctx c = { 0, 0 };
    if (len == 0)
        return check_io(f, offset, f->info.sector_size, false) < 0 ? -1 : 0;
    if (check_io(f, offset, len, false) < 0)
        return -1;
    for (size_t done = 0; done < len;) {
        size_t n = len - done < f->info.max_io ? len - done : f->info.max_io;
        struct rw_piece p = { &c, write, buf + done, n, offset + done };
        if (sync_submit(f, &c, rw_fn, &p) < 0) {
            int e = errno;
            sync_finish(f, &c);
            errno = e;
            return -1;
        }
        done += n;
    }
    return sync_finish(f, &c);
}

int memxfront_pread(struct memxfront *f, void *buf, size_t len, uint64_t offset)
{
    return sync_rw(f, false, buf, len, offset);
}

int memxfront_pwrite(struct memxfront *f, const void *buf, size_t len, uint64_t offset)
{
    return sync_rw(f, true, (uint8_t *)(uintptr_t)buf, len, offset);
}

static int flush_fn(struct memxfront *f, void *arg) { return memxfront_flush(f, sync_cb, arg); }

int memxfront_sync_flush(struct memxfront *f)
{
    struct sync_ctx c = { 0, 0 };
    if (sync_submit(f, &c, flush_fn, &c) < 0)
        return -1;
    return sync_finish(f, &c);
}

struct discard_piece {
    struct sync_ctx *c;
    uint64_t off, len;
};

static int discard_fn(struct memxfront *f, void *arg)
{
    struct discard_piece *p = arg;
    return memxfront_discard(f, p->off, p->len, sync_cb, p->c);
}

int memxfront_sync_discard(struct memxfront *f, uint64_t offset, uint64_t len)
{
    struct sync_ctx c = { 0, 0 };
    struct discard_piece p = { &c, offset, len };
    if (sync_submit(f, &c, discard_fn, &p) < 0)
        return -1;
    return sync_finish(f, &c);
}

/* ---- test-only hostile interface ---- */

int memxfront_debug_submit_raw(struct memxfront *f, unsigned qi, const void *req, size_t len, memxfront_cb cb,
                               void *arg)
{
    if (qi >= f->nq || len > sizeof(struct blkif_request) || len < 16) {
        errno = EINVAL;
        return -1;
    }
    if (f->dead) {
        errno = ENOTCONN;
        return -1;
    }
    struct mf_queue *q = &f->q[qi];
    if (!q->nfree) {
        errno = EAGAIN;
        return -1;
    }
    uint16_t id;
    struct mf_slot *s = slot_get(f, q, &id, cb, arg);
    struct blkif_request r;
    memset(&r, 0, sizeof(r));
    memcpy(&r, req, len);
    s->op = r.operation;
    uint64_t id64 = id;
    /* Every blkif request variant keeps its id at offset 8. */
    memcpy((uint8_t *)&r + 8, &id64, sizeof(id64));
    ring_push(f, q, &r, sizeof(r));
    return 0;
}

uint32_t memxfront_debug_gref(const struct memxfront *f, unsigned i)
{
    return i < f->npool ? f->pool_refs[i] : 0;
}

int memxfront_debug_bump_req_prod(struct memxfront *f, unsigned qi, uint32_t delta)
{
    if (qi >= f->nq) {
        errno = EINVAL;
        return -1;
    }
    struct mf_queue *q = &f->q[qi];
    q->req_prod_pvt += delta;
    /* Same publication as ring_push: wmb pairs with the backend's rmb. */
    mx_smp_wmb();
    MX_WRITE_ONCE(q->sring->req_prod, q->req_prod_pvt);
    mx_smp_mb();
    return xp_evtchn_notify(f->xp, (uint32_t)q->port);
}
