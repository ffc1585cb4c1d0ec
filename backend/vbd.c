/* vbd.c — request validation, grant copy and volume I/O (see vbd.h). */
#include "vbd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evloop.h"
#include "log.h"
#include "volume.h"
#include "xenplat.h"

struct vbd_queue {
    struct vbd *vbd;
    struct ring ring;
    bool broken;
};

struct vbd {
    struct evloop *el;
    struct xp *xp;
    char name[48];
    uint16_t domid;
    struct volume *vol;
    uint64_t sectors;
    bool readonly;
    unsigned max_indirect;
    void (*fatal)(void *arg);
    void *fatal_arg;
    long long fatal_timer;

    int nq;
    struct vbd_queue q[VBD_MAX_QUEUES];

    unsigned inflight;
    bool stopping;
    void (*drained)(void *arg);
    void *drained_arg;
    struct vbd_counters cnt;
};

/* One request between the ring and its response. */
struct vreq {
    struct vbd_queue *q;
    uint64_t id;
    uint8_t rsp_op;             /* the op the frontend expects back */
    uint8_t op;                 /* what we do: READ, WRITE, FLUSH_DISKCACHE, DISCARD */
    uint64_t sector;
    uint32_t nsect;
    unsigned nsegs;
    struct xp_gcopy *segs;      /* nsegs grant-copy descriptors into buf */
    void *buf;
};

struct vbd *vbd_new(struct evloop *el, struct xp *xp, const struct vbd_params *p)
{
    struct vbd *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    v->el = el;
    v->xp = xp;
    snprintf(v->name, sizeof(v->name), "%s", p->name);
    v->domid = p->domid;
    v->vol = p->vol;
    v->sectors = volume_size(p->vol) / VOLUME_SECTOR_SIZE;
    v->readonly = p->readonly;
    v->max_indirect = p->max_indirect;
    v->fatal = p->fatal;
    v->fatal_arg = p->arg;
    return v;
}

void vbd_get_counters(const struct vbd *v, struct vbd_counters *c) { *c = v->cnt; }

static void kick(struct vbd_queue *q);

/* ---- responses ---------------------------------------------------------- */

static void respond(struct vbd_queue *q, uint64_t id, uint8_t op, int16_t status)
{
    if (status != BLKIF_RSP_OKAY)
        q->vbd->cnt.errors++;
    ring_put_response(&q->ring, id, op, status);
}

static void vreq_finish(struct vreq *r, int16_t status)
{
    struct vbd_queue *q = r->q;
    struct vbd *v = q->vbd;
    respond(q, r->id, r->rsp_op, status);
    free(r->segs);
    free(r->buf);
    free(r);
    v->inflight--;
    ring_push_responses(&q->ring);
    if (v->stopping) {
        if (v->inflight == 0 && v->drained)
            v->drained(v->drained_arg);
        return;
    }
    /* The answered slot may be what the frontend was waiting for. */
    kick(q);
}

/* A one-line reason for a rejected request.  The first one per device is a
 * warning; later ones go to debug level, so a hostile guest cannot flood the
 * log (the counters still show every one). */
static void __attribute__((format(printf, 4, 5)))
note_bad(struct vbd *v, uint64_t id, unsigned op, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    enum mx_log_level lvl = v->cnt.bad_requests ? MX_LOG_DEBUG : MX_LOG_WARN;
    if (mx_log_level() >= lvl)
        mx_log(lvl, "%s: bad request id %llu op %u: %s%s", v->name, (unsigned long long)id, op, why,
               lvl == MX_LOG_WARN ? " (further bad requests are logged at debug level)" : "");
}
#define BAD(v, req, ...) note_bad((v), (req)->id, (req)->operation, __VA_ARGS__)

/* ---- data movement ------------------------------------------------------ */

static int copy_segments(struct vreq *r)
{
    if (xp_gnt_copy(r->q->vbd->xp, r->nsegs, r->segs) == 0)
        return 0;
    struct vbd *v = r->q->vbd;
    for (unsigned i = 0; i < r->nsegs; i++)
        if (r->segs[i].status) {
            note_bad(v, r->id, r->rsp_op, "grant copy of ref %u failed (status %d)", r->segs[i].ref,
                     r->segs[i].status);
            break;
        }
    v->cnt.bad_requests++;
    return -1;
}

static void flush_done(void *arg, int status)
{
    vreq_finish(arg, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
}

static void write_done(void *arg, int status)
{
    struct vreq *r = arg;
    if (status == 0 && r->op == BLKIF_OP_FLUSH_DISKCACHE) {
        /* A flush carrying data (blkfront's FUA/preflush write): durable afterwards. */
        volume_flush(r->q->vbd->vol, flush_done, r);
        return;
    }
    if (status)
        mx_warn("%s: write of %u sectors at %llu failed: %s", r->q->vbd->name, r->nsect,
                (unsigned long long)r->sector, strerror(-status));
    vreq_finish(r, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
}

static void read_done(void *arg, int status)
{
    struct vreq *r = arg;
    if (status) {
        mx_warn("%s: read of %u sectors at %llu failed: %s", r->q->vbd->name, r->nsect,
                (unsigned long long)r->sector, strerror(-status));
        vreq_finish(r, BLKIF_RSP_ERROR);
        return;
    }
    vreq_finish(r, copy_segments(r) ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
}

static void discard_done(void *arg, int status)
{
    vreq_finish(arg, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
}

/* ---- validation --------------------------------------------------------- */

static bool range_ok(const struct vbd *v, uint64_t sector, uint64_t nsect)
{
    return sector <= v->sectors && nsect <= v->sectors - sector;
}

/* Fetches the indirect descriptor pages (guest memory, read once) into segs. */
static int fetch_indirect(struct vbd *v, const struct blkif_req *req, struct blkif_wire_seg *segs)
{
    unsigned n = req->nr_segments;
    unsigned pages = (n + BLKIF_SEGS_PER_INDIRECT_PAGE - 1) / BLKIF_SEGS_PER_INDIRECT_PAGE;
    struct xp_gcopy gc[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    for (unsigned i = 0; i < pages; i++) {
        unsigned here = n - i * BLKIF_SEGS_PER_INDIRECT_PAGE;
        if (here > BLKIF_SEGS_PER_INDIRECT_PAGE)
            here = BLKIF_SEGS_PER_INDIRECT_PAGE;
        gc[i] = (struct xp_gcopy){ .to_guest = false, .domid = v->domid,
                                   .ref = req->indirect_grefs[i], .offset = 0,
                                   .len = (uint16_t)(here * sizeof(*segs)),
                                   .local = segs + i * BLKIF_SEGS_PER_INDIRECT_PAGE };
    }
    return xp_gnt_copy(v->xp, pages, gc);
}

/* Builds r->segs/buf from the request's segments; -1 if any is malformed. */
static int build_segments(struct vbd *v, const struct blkif_req *req, struct vreq *r,
                          const struct blkif_wire_seg *ws, const struct blkif_seg *ds, unsigned n)
{
    uint32_t nsect = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t f = ws ? ws[i].first_sect : ds[i].first_sect;
        uint8_t l = ws ? ws[i].last_sect : ds[i].last_sect;
        if (f > l || l > 7) {
            BAD(v, req, "segment %u has sectors %u..%u", i, f, l);
            return -1;
        }
        nsect += (uint32_t)(l - f + 1);
    }
    if (!range_ok(v, req->sector_number, nsect)) {
        BAD(v, req, "sectors %llu+%u beyond the end (%llu)", (unsigned long long)req->sector_number,
            nsect, (unsigned long long)v->sectors);
        return -1;
    }
    r->sector = req->sector_number;
    r->nsect = nsect;
    r->nsegs = n;
    r->segs = calloc(n, sizeof(*r->segs));
    r->buf = malloc((size_t)nsect * VOLUME_SECTOR_SIZE);
    if (!r->segs || !r->buf)
        return -1;
    bool to_guest = r->op == BLKIF_OP_READ;
    size_t off = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t f = ws ? ws[i].first_sect : ds[i].first_sect;
        uint8_t l = ws ? ws[i].last_sect : ds[i].last_sect;
        uint16_t len = (uint16_t)((l - f + 1) * VOLUME_SECTOR_SIZE);
        r->segs[i] = (struct xp_gcopy){ .to_guest = to_guest, .domid = v->domid,
                                        .ref = ws ? ws[i].gref : ds[i].gref,
                                        .offset = (uint16_t)(f * VOLUME_SECTOR_SIZE), .len = len,
                                        .local = (char *)r->buf + off };
        off += len;
    }
    return 0;
}

/* Validates and starts one request; 0 if it is now in flight, else the
 * status to answer with at once. */
static int16_t start(struct vbd_queue *q, const struct blkif_req *req, struct vreq *r)
{
    struct vbd *v = q->vbd;
    r->rsp_op = r->op = req->operation;
    switch (req->operation) {
    case BLKIF_OP_READ:
    case BLKIF_OP_WRITE:
    case BLKIF_OP_FLUSH_DISKCACHE:
        if (req->operation == BLKIF_OP_FLUSH_DISKCACHE && req->nr_segments == 0) {
            volume_flush(v->vol, flush_done, r);
            return 0;
        }
        if (req->nr_segments == 0 || req->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
            BAD(v, req, "%u segments (1..%u)", req->nr_segments, BLKIF_MAX_SEGMENTS_PER_REQUEST);
            goto bad;
        }
        if (build_segments(v, req, r, NULL, req->seg, req->nr_segments))
            goto bad;
        break;
    case BLKIF_OP_INDIRECT: {
        if (v->max_indirect == 0)
            return BLKIF_RSP_EOPNOTSUPP;
        r->rsp_op = r->op = req->indirect_op;
        if (req->indirect_op != BLKIF_OP_READ && req->indirect_op != BLKIF_OP_WRITE) {
            BAD(v, req, "indirect op %u", req->indirect_op);
            goto bad;
        }
        if (req->nr_segments == 0 || req->nr_segments > v->max_indirect) {
            BAD(v, req, "%u indirect segments (1..%u)", req->nr_segments, v->max_indirect);
            goto bad;
        }
        struct blkif_wire_seg *ws = calloc(req->nr_segments, sizeof(*ws));
        if (!ws)
            return BLKIF_RSP_ERROR;
        int rc = fetch_indirect(v, req, ws);
        if (rc) {
            BAD(v, req, "cannot copy its indirect pages");
        } else {
            rc = build_segments(v, req, r, ws, NULL, req->nr_segments);
        }
        free(ws);
        if (rc)
            goto bad;
        break;
    }
    case BLKIF_OP_DISCARD:
        if (v->readonly) {
            BAD(v, req, "discard on a read-only device");
            goto bad;
        }
        if (!range_ok(v, req->sector_number, req->nr_sectors)) {
            BAD(v, req, "discard %llu+%llu beyond the end (%llu)",
                (unsigned long long)req->sector_number, (unsigned long long)req->nr_sectors,
                (unsigned long long)v->sectors);
            goto bad;
        }
        volume_discard(v->vol, req->sector_number, req->nr_sectors, discard_done, r);
        return 0;
    default:
        /* WRITE_BARRIER (not offered), RESERVED_1 and anything newer. */
        return BLKIF_RSP_EOPNOTSUPP;
    }

    if (r->op != BLKIF_OP_READ && v->readonly) {
        BAD(v, req, "write to a read-only device");
        goto bad;
    }
    if (r->op == BLKIF_OP_READ) {
        volume_read(v->vol, r->sector, r->nsect, r->buf, read_done, r);
        return 0;
    }
    if (copy_segments(r))
        return BLKIF_RSP_ERROR;
    volume_write(v->vol, r->sector, r->nsect, r->buf, write_done, r);
    return 0;
bad:
    v->cnt.bad_requests++;
    return BLKIF_RSP_ERROR;
}

static void dispatch(struct vbd_queue *q, const struct blkif_req *req)
{
    struct vbd *v = q->vbd;
    v->cnt.requests++;
    struct vreq *r = calloc(1, sizeof(*r));
    if (!r) {
        respond(q, req->id, req->operation, BLKIF_RSP_ERROR);
        return;
    }
    r->q = q;
    r->id = req->id;
    int16_t st = start(q, req, r);
    if (st == 0) {
        v->inflight++;
        return;
    }
    respond(q, req->id, r->rsp_op, st);
    free(r->segs);
    free(r->buf);
    free(r);
}

/* ---- the ring loop ------------------------------------------------------ */

static int fatal_timer(struct evloop *el, long long id, void *arg)
{
    struct vbd *v = arg;
    v->fatal_timer = 0;
    v->fatal(v->fatal_arg);
    return -1;
}

static void kick(struct vbd_queue *q)
{
    struct vbd *v = q->vbd;
    if (q->broken || v->stopping)
        return;
    struct blkif_req req;
    for (;;) {
        int rc;
        /* Batch: everything the frontend has published, then one push. */
        while ((rc = ring_get_request(&q->ring, &req)) == 1)
            dispatch(q, &req);
        if (rc < 0) {
            mx_err("%s: frontend's req_prod is more than %u requests ahead of its responses "
                   "(queue %d): ring corrupt, disconnecting the device",
                   v->name, q->ring.size, (int)(q - v->q));
            q->broken = true;
            v->cnt.bad_requests++;
            if (v->fatal && !v->fatal_timer)
                v->fatal_timer = evloop_add_timer(v->el, 0, fatal_timer, v);
            break;
        }
        ring_push_responses(&q->ring);
        if (!ring_final_check(&q->ring))
            break;
    }
    ring_push_responses(&q->ring);
}

int vbd_add_queue(struct vbd *v, enum blkif_abi abi, const uint32_t *refs, unsigned npages,
                  uint32_t remote_port, char *err, size_t errlen)
{
    if (v->nq >= VBD_MAX_QUEUES) {
        snprintf(err, errlen, "more than %d queues", VBD_MAX_QUEUES);
        return -1;
    }
    struct vbd_queue *q = &v->q[v->nq];
    if (ring_map(&q->ring, v->xp, v->domid, abi, refs, npages, remote_port, err, errlen))
        return -1;
    q->vbd = v;
    q->broken = false;
    v->nq++;
    kick(q);
    return 0;
}

bool vbd_handle_port(struct vbd *v, int port)
{
    for (int i = 0; i < v->nq; i++)
        if (v->q[i].ring.port == port) {
            kick(&v->q[i]);
            return true;
        }
    return false;
}

bool vbd_stop(struct vbd *v, void (*drained)(void *arg), void *arg)
{
    v->stopping = true;
    v->drained = drained;
    v->drained_arg = arg;
    return v->inflight == 0;
}

void vbd_free(struct vbd *v)
{
    if (!v)
        return;
    if (v->fatal_timer)
        evloop_del_timer(v->el, v->fatal_timer);
    for (int i = 0; i < v->nq; i++)
        ring_unmap(&v->q[i].ring);
    free(v);
}
