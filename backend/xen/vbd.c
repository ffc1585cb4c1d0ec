/* vbd.c — request validation, grant copy and volume I/O (see vbd.h).
 * It never touches the shared ring page itself: every shared-memory access,
 * with the fence it pairs with, is in ring.c. */
#include "vbd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evloop.h"
#include "histo.h"
#include "log.h"
#include "ports.h"
#include "queue.h"
#include "ringstate.h"
#include "volume.h"
#include "xalloc.h"
#include "xenplat.h"

struct vreq;

/* Log lines name the device: "vbd <domid>/<devid>: ...". */
#define vbd_log(v, lvl, fmt, ...) mx_log((lvl), "%s: " fmt, (v)->name, ##__VA_ARGS__)

struct vbd_queue {
    struct vbd *vbd;
    struct ring ring;
    bool broken;
    /* Responses queued but not yet published: pushed (and the frontend
     * notified at most once) by the vbd's deferred push, which runs at the
     * end of this loop turn (and keeps the loop from sleeping first), so
     * completions that land in the same turn share one push and one event. */
    bool unpushed;
    /* One vreq per ring slot, allocated at connect: a queue never has more
     * requests in flight than its ring has slots. */
    struct vreq *slots;
    SLIST_HEAD(, vreq) free;
    /* When each queued response became ready (indexed like the ring), for
     * the response stage. */
    uint64_t *ready_ns;
    /* Ring polling (vbd_params.poll_us): while polling, req_event is left
     * behind and vbd_poll looks at the ring every loop turn instead. */
    bool polling;
    uint64_t active_ns;         /* last kick: requests taken or answers pushed */
    /* The per-turn budget (see kick): requests taken since the ring was last
     * found empty or the last resume; once it reaches the ring's size the
     * queue is exhausted and takes nothing more until the vbd's resume
     * defer, at the end of this loop turn. */
    unsigned taken;
    bool exhausted;
    /* A request taken off the ring whose buffers would take the device past
     * buf_max: it waits here (its slot stays occupied: ring_inflight counts
     * it) and the queue takes nothing more until a buffer is let go. */
    bool blocked;
    bool stash_ready;           /* it fits now: the next kick dispatches it first */
    struct blkif_req stash;
    int stash_ent;
    /* Its resumable state (ringstate.h; NULL: none, a restart cannot resume
     * it) and, after a predecessor died, the requests to replay at start. */
    struct ringstate *rs;
    int nreplay;
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
    uint64_t buf_max;               /* vbd_params.buf_max */
    uint64_t buf_held;              /* bytes held past the slots' kept buffers (segs and buf) */
    struct port_table *ports;
    void (*fatal)(void *arg, const char *why);
    void *fatal_arg;
    struct ev_defer fatal_defer;    /* calls fatal from the loop, never inside a vbd call */
    const char *fatal_why;

    int nq;
    struct vbd_queue q[VBD_MAX_QUEUES];

    unsigned inflight;
    uint64_t poll_ns;
    bool started;                   /* vbd_start: every queue mapped, Connected written */
    bool stopping;
    struct ev_defer push_defer;     /* pushes the unpushed queues at the end of this turn */
    struct ev_defer resume_defer;   /* gives exhausted queues a new budget on the next turn */
    struct blkif_wire_seg *ind;     /* indirect segments of the request being started */
    struct histo stage[VBD_STAGES];
    void (*drained)(void *arg);
    void *drained_arg;
    struct vbd_counters cnt;
    char *state_path;               /* vbd_params.state_path */
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
    unsigned seg_cap;           /* what segs and buf can hold, kept across requests */
    size_t buf_cap;
    uint64_t t_vol;             /* volume call, for the volume stage */
    int ent;                    /* its ringstate entry (-1: none) */
    SLIST_ENTRY(vreq) next_free;
};

/* Buffers up to a full direct request stay with their slot; bigger ones
 * (indirect) are freed when the request ends, so a queue's memory stays
 * bounded by ring slots x 44 KiB. */
#define VREQ_KEEP_SEGS  BLKIF_MAX_SEGMENTS_PER_REQUEST
#define VREQ_KEEP_BYTES ((size_t)BLKIF_MAX_SEGMENTS_PER_REQUEST * XP_PAGE_SIZE)

static int vbd_poll(struct evloop *el, void *arg);
static void push_due(struct evloop *el, void *arg);
static void resume_due(struct evloop *el, void *arg);
static void fatal_due(struct evloop *el, void *arg);

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
    v->ports = p->ports;
    v->max_indirect = p->max_indirect;
    v->buf_max = p->buf_max;
    if (p->state_path && !(v->state_path = strdup(p->state_path))) {
        free(v);
        return NULL;
    }
    v->fatal = p->fatal;
    v->fatal_arg = p->arg;
    v->poll_ns = (uint64_t)p->poll_us * 1000;
    evloop_defer_init(&v->push_defer, push_due, v);
    evloop_defer_init(&v->resume_defer, resume_due, v);
    evloop_defer_init(&v->fatal_defer, fatal_due, v);
    if ((v->max_indirect && !(v->ind = calloc(v->max_indirect, sizeof(*v->ind)))) ||
        (v->poll_ns && evloop_add_prepare(el, vbd_poll, v))) {
        free(v->ind);
        free(v->state_path);
        free(v);
        return NULL;
    }
    return v;
}

void vbd_get_counters(const struct vbd *v, struct vbd_counters *c) { *c = v->cnt; }

void vbd_merge_stages(const struct vbd *v, struct histo *into)
{
    for (int i = 0; i < VBD_STAGES; i++)
        histo_merge(&into[i], &v->stage[i]);
}

static void kick(struct vbd_queue *q, uint64_t woke_ns);

/* ---- request slots ------------------------------------------------------ */

static struct vreq *vreq_get(struct vbd_queue *q)
{
    struct vreq *r = SLIST_FIRST(&q->free);
    SLIST_REMOVE_HEAD(&q->free, next_free);
    r->q = q;
    r->nsegs = 0;
    return r;
}

static void vreq_put(struct vreq *r)
{
    struct vbd_queue *q = r->q;
    struct vbd *v = q->vbd;
    uint64_t held = v->buf_held;
    if (r->seg_cap > VREQ_KEEP_SEGS) {
        free(r->segs);
        v->buf_held -= r->seg_cap * sizeof(*r->segs);
        r->segs = NULL;
        r->seg_cap = 0;
    }
    if (r->buf_cap > VREQ_KEEP_BYTES) {
        free(r->buf);
        v->buf_held -= r->buf_cap;
        r->buf = NULL;
        r->buf_cap = 0;
    }
    SLIST_INSERT_HEAD(&q->free, r, next_free);
    if (held != v->buf_held) {
        /* Room made: a queue waiting for buffers tries again next turn. */
        for (int i = 0; i < v->nq; i++)
            if (v->q[i].blocked)
                evloop_defer(v->el, &v->resume_defer);
    }
}

/* What a request's buffers would add to buf_held (an upper bound: its
 * segments may cover less than whole pages); 0 for a request that fits in
 * what its slot keeps, or that start() refuses anyway. */
static uint64_t extra_bytes(const struct vbd *v, const struct blkif_req *req)
{
    if (req->operation != BLKIF_OP_INDIRECT || !v->max_indirect || req->nr_segments == 0 ||
        req->nr_segments > v->max_indirect || req->nr_segments <= VREQ_KEEP_SEGS)
        return 0;
    return (uint64_t)req->nr_segments * (XP_PAGE_SIZE + sizeof(struct xp_gcopy));
}

/* Whether req must wait for buffers: the device would go past buf_max.  One
 * request alone always goes (nothing held), so a queue always makes progress
 * and a bound below one request only serialises them. */
static bool must_wait(const struct vbd *v, const struct blkif_req *req)
{
    uint64_t need = extra_bytes(v, req);
    return need && v->buf_held && v->buf_held + need > v->buf_max;
}

static void slots_free(struct vbd_queue *q)
{
    for (unsigned i = 0; q->slots && i < q->ring.size; i++) {
        free(q->slots[i].segs);
        free(q->slots[i].buf);
    }
    free(q->slots);
    free(q->ready_ns);
    q->slots = NULL;
    SLIST_INIT(&q->free);
    q->ready_ns = NULL;
}

static int slots_alloc(struct vbd_queue *q)
{
    unsigned n = q->ring.size;
    q->slots = calloc(n, sizeof(*q->slots));
    q->ready_ns = calloc(n, sizeof(*q->ready_ns));
    if (!q->slots || !q->ready_ns) {
        slots_free(q);
        return -1;
    }
    SLIST_INIT(&q->free);
    for (unsigned i = n; i-- > 0;)
        SLIST_INSERT_HEAD(&q->free, &q->slots[i], next_free);
    return 0;
}

/* ---- responses ---------------------------------------------------------- */

static void respond(struct vbd_queue *q, uint64_t id, uint8_t op, int16_t status, uint64_t now, int ent)
{
    if (status != BLKIF_RSP_OKAY)
        q->vbd->cnt.errors++;
    /* Invariant (a restart loses no request and answers none twice): the
     * answer's index is in the ring state before the answer is on the ring. */
    if (q->rs && ent >= 0)
        rs_answer(q->rs, ent, q->ring.rsp_prod_pvt);
    q->ready_ns[q->ring.rsp_prod_pvt & (q->ring.size - 1)] = now;
    ring_put_response(&q->ring, id, op, status);
}

/* Publishes queued responses (one event at most, as the frontend asked);
 * the response stage is each one's wait from ready to published. */
static void push(struct vbd_queue *q)
{
    struct ring *rg = &q->ring;
    if (rg->rsp_prod_pub != rg->rsp_prod_pvt) {
        uint64_t now = evloop_now_ns();
        for (uint32_t i = rg->rsp_prod_pub; i != rg->rsp_prod_pvt; i++)
            histo_record(&q->vbd->stage[VBD_STAGE_RESPONSE], now - q->ready_ns[i & (rg->size - 1)]);
    }
    q->unpushed = false;
    uint32_t old = rg->rsp_prod_pub;
    ring_push_responses(rg);
    if (q->rs && old != rg->rsp_prod_pub)
        rs_published(q->rs, old, rg->rsp_prod_pub);     /* after rsp_prod: see ringstate.h */
}

static void push_due(struct evloop *el, void *arg)
{
    struct vbd *v = arg;
    for (int i = 0; i < v->nq; i++)
        if (v->q[i].unpushed)
            kick(&v->q[i], 0);  /* pushes; the freed slots may admit waiting requests */
}

static void vreq_finish(struct vreq *r, int16_t status, uint64_t now)
{
    struct vbd_queue *q = r->q;
    struct vbd *v = q->vbd;
    respond(q, r->id, r->rsp_op, status, now, r->ent);
    vreq_put(r);
    v->inflight--;
    if (v->stopping) {
        push(q);
        if (v->inflight == 0 && v->drained)
            v->drained(v->drained_arg);
        return;
    }
    /* The last request in flight on this queue answers at once (nothing
     * else can join its batch: QD1 pays no deferral); otherwise the push
     * waits for the end of this loop turn. */
    if (ring_inflight(&q->ring) != 0) {
        evloop_defer(v->el, &v->push_defer);
        q->unpushed = true;
        return;
    }
    kick(q, 0);
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
        vbd_log(v, lvl, "bad request id %llu op %u: %s%s", (unsigned long long)id, op, why,
                lvl == MX_LOG_WARN ? " (further bad requests are logged at debug level)" : "");
}
#define BAD(v, req, ...) note_bad((v), (req)->id, (req)->operation, __VA_ARGS__)

/* ---- data movement ------------------------------------------------------ */

static int copy_segments(struct vreq *r)
{
    struct vbd *v = r->q->vbd;
    uint64_t t0 = evloop_now_ns();
    int rc = xp_gnt_copy(v->xp, r->nsegs, r->segs);
    histo_record(&v->stage[VBD_STAGE_COPY], evloop_now_ns() - t0);
    if (rc == 0)
        return 0;
    for (unsigned i = 0; i < r->nsegs; i++)
        if (r->segs[i].status) {
            note_bad(v, r->id, r->rsp_op, "grant copy of ref %u failed (status %d)", r->segs[i].ref,
                     r->segs[i].status);
            break;
        }
    v->cnt.bad_requests++;
    return -1;
}

/* The volume stage: from the volume call to its callback (volume, pool,
 * transport and memory servers together). */
static uint64_t vol_done(struct vreq *r)
{
    uint64_t now = evloop_now_ns();
    histo_record(&r->q->vbd->stage[VBD_STAGE_VOLUME], now - r->t_vol);
    return now;
}

/* -ESTALE from the volume: another backend attached it (we are fenced).
 * Nothing this device does can succeed any more; the toolstack hears why. */
static void volume_lost(struct vbd *v, int status)
{
    if (status != -ESTALE || !v->fatal || v->fatal_defer.queued || v->stopping)
        return;
    v->fatal_why = "volume attached by another backend (fenced): device lost";
    evloop_defer(v->el, &v->fatal_defer);
}

static void flush_done(void *arg, int status)
{
    struct vreq *r = arg;
    volume_lost(r->q->vbd, status);
    vreq_finish(r, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY, vol_done(r));
}

static void write_done(void *arg, int status)
{
    struct vreq *r = arg;
    volume_lost(r->q->vbd, status);
    if (status == 0 && r->op == BLKIF_OP_FLUSH_DISKCACHE) {
        /* A flush carrying data (blkfront's FUA/preflush write): durable afterwards. */
        volume_flush(r->q->vbd->vol, flush_done, r);
        return;
    }
    uint64_t now = vol_done(r);
    if (status)
        vbd_log(r->q->vbd, MX_LOG_WARN, "write of %u sectors at %llu failed: %s", r->nsect,
                (unsigned long long)r->sector, strerror(-status));
    vreq_finish(r, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY, now);
}

static void read_done(void *arg, int status)
{
    struct vreq *r = arg;
    volume_lost(r->q->vbd, status);
    uint64_t now = vol_done(r);
    if (status) {
        vbd_log(r->q->vbd, MX_LOG_WARN, "read of %u sectors at %llu failed: %s", r->nsect,
                (unsigned long long)r->sector, strerror(-status));
        vreq_finish(r, BLKIF_RSP_ERROR, now);
        return;
    }
    int16_t st = copy_segments(r) ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY;
    vreq_finish(r, st, evloop_now_ns());
}

static void discard_done(void *arg, int status)
{
    struct vreq *r = arg;
    volume_lost(r->q->vbd, status);
    vreq_finish(r, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY, vol_done(r));
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
    size_t bytes = (size_t)nsect * VOLUME_SECTOR_SIZE;
    /* Past what a slot keeps, buffers count in buf_held until vreq_put frees
     * them (must_wait kept the device under buf_max before this request). */
    if (n > r->seg_cap) {
        if (r->seg_cap > VREQ_KEEP_SEGS)
            v->buf_held -= r->seg_cap * sizeof(*r->segs);
        free(r->segs);
        r->seg_cap = 0;
        if (!(r->segs = xcalloc(n, sizeof(*r->segs)))) {
            BAD(v, req, "%s", "no memory for its segments");
            return xalloc_fail("%s: request segments", v->name);
        }
        r->seg_cap = n;
        if (n > VREQ_KEEP_SEGS)
            v->buf_held += n * sizeof(*r->segs);
    }
    if (bytes > r->buf_cap) {
        /* A slot's first buffer is a whole direct request, so it is reused. */
        size_t cap = bytes < VREQ_KEEP_BYTES ? VREQ_KEEP_BYTES : bytes;
        if (r->buf_cap > VREQ_KEEP_BYTES)
            v->buf_held -= r->buf_cap;
        free(r->buf);
        r->buf_cap = 0;
        if (!(r->buf = malloc(cap))) {
            BAD(v, req, "%s", "no memory for its data buffer");
            return xalloc_fail("%s: a request buffer", v->name);
        }
        r->buf_cap = cap;
        if (cap > VREQ_KEEP_BYTES)
            v->buf_held += cap;
    }
    r->nsegs = n;
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
            r->t_vol = evloop_now_ns();
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
        struct blkif_wire_seg *ws = v->ind;
        int rc = fetch_indirect(v, req, ws);
        if (rc) {
            BAD(v, req, "cannot copy its indirect pages");
        } else {
            rc = build_segments(v, req, r, ws, NULL, req->nr_segments);
        }
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
        r->t_vol = evloop_now_ns();
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
        r->t_vol = evloop_now_ns();
        volume_read(v->vol, r->sector, r->nsect, r->buf, read_done, r);
        return 0;
    }
    if (copy_segments(r))
        return BLKIF_RSP_ERROR;
    r->t_vol = evloop_now_ns();
    volume_write(v->vol, r->sector, r->nsect, r->buf, write_done, r);
    return 0;
bad:
    v->cnt.bad_requests++;
    return BLKIF_RSP_ERROR;
}

/* ent: its ringstate entry (-1: none). */
static void dispatch(struct vbd_queue *q, const struct blkif_req *req, int ent)
{
    struct vbd *v = q->vbd;
    v->cnt.requests++;
    /* ring_get_request handed out a free slot, so a vreq is free too. */
    struct vreq *r = vreq_get(q);
    r->id = req->id;
    r->ent = ent;
    int16_t st = start(q, req, r);
    if (st == 0) {
        v->inflight++;
        return;
    }
    respond(q, req->id, r->rsp_op, st, evloop_now_ns(), ent);
    vreq_put(r);
}

/* ---- the ring loop ------------------------------------------------------ */

static void fatal_due(struct evloop *el, void *arg)
{
    struct vbd *v = arg;
    v->fatal(v->fatal_arg, v->fatal_why);
}

/* woke_ns: when the event that brought us here was taken (0: not an event:
 * a completion, or the end of a loop turn).  Each request taken records its
 * ring-pickup time from then; on a loaded host most requests at QD1 are
 * found by the look that follows a completion's push, before their event is
 * handled (the frontend answers the push faster than we finish it).
 *
 * Bounded: a guest whose requests are answered at once (unknown ops, bad
 * segments) frees each slot as it is taken and can refill it from another
 * CPU as fast as we answer, so "until the ring is empty" may never come.
 * A queue takes at most a ring's worth (ring.size) of requests, then comes
 * back on the next loop turn (resume_due), as Linux blkback and QEMU's
 * dataplane batch: every other device, the pool's heartbeats and the control
 * socket get their turn in between.  The budget is refreshed only when the
 * ring is found empty or by the resume, so the outer loop below (which
 * repeats only while ring_final_check finds more) cannot run past it either. */
static void kick(struct vbd_queue *q, uint64_t woke_ns)
{
    struct vbd *v = q->vbd;
    if (!v->started)
        return;                 /* nothing is taken before vbd_start (see vbd_add_queue) */
    if (q->broken || v->stopping || q->exhausted || q->blocked) {
        /* An exhausted queue's resume_due comes at the end of this turn, a
         * blocked one's once a buffer is let go (vreq_put). */
        push(q);
        return;
    }
    struct blkif_req req;
    uint64_t t0 = woke_ns ? woke_ns : evloop_now_ns();
    if (q->stash_ready) {
        /* The request that waited for buffers goes first (they are there now,
         * or nothing else holds any). */
        q->stash_ready = false;
        q->taken++;
        dispatch(q, &q->stash, q->stash_ent);
    }
    uint8_t raw[BLKIF_RING_ENTRY_MAX];
    for (;;) {
        int rc = 0;
        /* Batch: what the frontend has published, up to the budget, then one push. */
        while (q->taken < q->ring.size) {
            uint32_t idx = q->ring.req_cons;
            if ((rc = ring_get_request_raw(&q->ring, &req, raw)) != 1)
                break;
            /* Invariant (a restart loses no request): recorded before anything
             * can be written over its slot (our answers go to taken slots only). */
            int ent = q->rs ? rs_take(q->rs, idx, raw) : -1;
            if (q->rs && ent < 0) {
                rc = -1;        /* more outstanding than a ring holds */
                break;
            }
            if (must_wait(v, &req)) {
                q->stash = req;
                q->stash_ent = ent;
                q->blocked = true;
                push(q);
                return;
            }
            q->taken++;
            histo_record(&v->stage[VBD_STAGE_PICKUP], evloop_now_ns() - t0);
            dispatch(q, &req, ent);
        }
        if (rc < 0) {
            vbd_log(v, MX_LOG_ERR, "frontend's req_prod is more than %u requests ahead of its responses "
                    "(queue %d): ring corrupt, disconnecting the device", q->ring.size, (int)(q - v->q));
            q->broken = true;
            v->cnt.bad_requests++;
            if (v->fatal && !v->fatal_defer.queued) {
                v->fatal_why = "frontend corrupted its ring; device disconnected";
                evloop_defer(v->el, &v->fatal_defer);
            }
            break;
        }
        if (rc == 1 || q->taken >= q->ring.size) {
            /* Budget spent: no ring_final_check (no event needed, we come
             * back by ourselves); the frontend sees these answers now. */
            q->exhausted = true;
            evloop_defer(v->el, &v->resume_defer);
            break;
        }
        push(q);
        if (v->poll_ns) {
            q->polling = true;
            q->active_ns = evloop_now_ns();
            q->taken = 0;       /* found empty */
            break;
        }
        if (!ring_final_check(&q->ring)) {
            q->taken = 0;       /* found empty, and an event asked for */
            break;
        }
    }
    push(q);
}

/* The next turn of every queue that spent its budget: a fresh one; and of
 * every queue whose stashed request now fits under buf_max. */
static void resume_due(struct evloop *el, void *arg)
{
    struct vbd *v = arg;
    for (int i = 0; i < v->nq; i++) {
        struct vbd_queue *q = &v->q[i];
        if (q->blocked && !must_wait(v, &q->stash)) {
            q->blocked = false;
            q->stash_ready = true;
        }
        if (q->exhausted) {
            q->exhausted = false;
            q->taken = 0;
        }
        if (!q->blocked)
            kick(q, 0);
    }
}

/* A prepare hook, before each loop sleep: a ring that took requests or had
 * answers pushed in the last poll_us is looked at without an event (a guest
 * issuing I/O back to back pushes its next request within microseconds of
 * our answer: catching it here saves its kick and our wake-up).  Once a ring
 * has been quiet for poll_us it asks for events again (ring_final_check) and
 * the loop may sleep: polling costs CPU only while a guest is busy, and never
 * more than poll_us past its last activity, so a memory server sharing this
 * host's CPUs is not kept waiting behind us for long. */
static int vbd_poll(struct evloop *el, void *arg)
{
    struct vbd *v = arg;
    int busy = 0;
    uint64_t now = evloop_now_ns();
    for (int i = 0; i < v->nq; i++) {
        struct vbd_queue *q = &v->q[i];
        if (!q->polling)
            continue;
        if (q->broken || v->stopping) {
            q->polling = false;
        } else if (ring_peek(&q->ring)) {
            kick(q, now);
            busy = 1;
        } else if (now - q->active_ns < v->poll_ns) {
            busy = 1;
        } else {
            q->polling = false;
            if (ring_final_check(&q->ring)) {
                kick(q, now);
                busy = 1;
            }
        }
    }
    return busy;
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
    if (slots_alloc(q)) {
        snprintf(err, errlen, "out of memory for %u request slots", q->ring.size);
        ring_unmap(&q->ring);
        return -1;
    }
    q->rs = NULL;
    q->nreplay = 0;
    if (v->state_path) {
        char path[400], why[300];
        snprintf(path, sizeof(path), "%s-q%d", v->state_path, v->nq);
        q->rs = rs_open(path, &q->ring, refs[0], &q->nreplay, why, sizeof(why));
        if (!q->rs)
            vbd_log(v, MX_LOG_WARN, "queue %d: no resumable ring state (%s): a restart will not resume it",
                    v->nq, why);
        else if (why[0])
            vbd_log(v, MX_LOG_INFO, "queue %d: ring state not resumed: %s", v->nq, why);
        if (q->nreplay < 0) {
            snprintf(err, errlen, "the ring a previous run left holds more requests than it can");
            rs_close(q->rs, true);
            q->rs = NULL;
            slots_free(q);
            ring_unmap(&q->ring);
            return -1;
        }
    }
    if (port_table_set(v->ports, q->ring.port, q)) {
        snprintf(err, errlen, "out of memory for the port table (port %d)", q->ring.port);
        rs_close(q->rs, false);
        q->rs = NULL;
        slots_free(q);
        ring_unmap(&q->ring);
        return -1;
    }
    q->vbd = v;
    q->broken = false;
    q->unpushed = false;
    q->taken = 0;
    q->exhausted = false;
    q->blocked = q->stash_ready = false;
    v->nq++;
    return 0;
}

void vbd_start(struct vbd *v)
{
    v->started = true;
    for (int i = 0; i < v->nq; i++) {
        struct vbd_queue *q = &v->q[i];
        /* A predecessor's requests the guest still waits for, oldest first,
         * before anything new (their slots are the ring's in-flight ones). */
        for (int k = 0; k < q->nreplay; k++) {
            int ent = rs_replay_ent(q->rs, (unsigned)k);
            struct blkif_req req;
            blkif_abi_get_request(q->ring.abi, rs_raw(q->rs, ent), &req);
            dispatch(q, &req, ent);
        }
        if (q->nreplay)
            vbd_log(v, MX_LOG_INFO, "queue %d: resumed its ring after a restart: %d request(s) replayed", i,
                    q->nreplay);
        q->nreplay = 0;
        kick(q, 0);
    }
}

bool vbd_kick_port(struct port_table *pt, int port)
{
    struct vbd_queue *q = port_table_get(pt, port);
    if (!q)
        return false;
    kick(q, evloop_now_ns());
    return true;
}

bool vbd_stop(struct vbd *v, void (*drained)(void *arg), void *arg)
{
    v->stopping = true;
    v->drained = drained;
    v->drained_arg = arg;
    for (int i = 0; i < v->nq; i++)
        push(&v->q[i]);     /* answers held for the end of this loop turn */
    return v->inflight == 0;
}

void vbd_free(struct vbd *v)
{
    if (!v)
        return;
    evloop_defer_cancel(v->el, &v->fatal_defer);
    evloop_defer_cancel(v->el, &v->push_defer);
    evloop_defer_cancel(v->el, &v->resume_defer);
    if (v->poll_ns)
        evloop_del_prepare(v->el, vbd_poll, v);
    for (int i = 0; i < v->nq; i++) {
        port_table_clear(v->ports, v->q[i].ring.port);
        ring_unmap(&v->q[i].ring);
        slots_free(&v->q[i]);
        /* Drained (or never started): nothing to resume, the device closed. */
        rs_close(v->q[i].rs, true);
    }
    free(v->ind);
    free(v->state_path);
    free(v);
}
