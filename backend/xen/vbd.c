/* vbd.c — the dataplane's rings (see vbd.h): request slots, responses and
 * their pushes, the ring loop with its per-turn budget, queues, start, stop
 * and the resumable ring state.  One request's validation, data movement and
 * volume I/O are vbd_req.c (vbd_int.h).  It never touches the shared ring
 * page itself: every shared-memory access, with the fence it pairs with, is
 * in ring.c. */
#include "vbd_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ports.h"
#include "ringstate.h"
#include "volume.h"
#include "xalloc.h"


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

void vbd_vreq_finish(struct vreq *r, int16_t status, uint64_t now)
{
    struct vbd_queue *q = r->q;
    struct vbd *v = q->vbd;
    respond(q, r->id, r->rsp_op, status, now, r->ent);
    vreq_put(r);
    v->inflight--;
    if (v->stopping || v->paused) {
        push(q);
        if (v->inflight == 0) {
            /* The pause's note first: a stop's drained may free the vbd. */
            if (v->paused && v->paused_cb)
                v->paused_cb(v->paused_arg);
            if (v->stopping && v->drained)
                v->drained(v->drained_arg);
        }
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

/* ent: its ringstate entry (-1: none). */
static void dispatch(struct vbd_queue *q, const struct blkif_req *req, int ent)
{
    struct vbd *v = q->vbd;
    v->cnt.requests++;
    /* ring_get_request handed out a free slot, so a vreq is free too. */
    struct vreq *r = vreq_get(q);
    r->id = req->id;
    r->ent = ent;
    int16_t st = vbd_req_start(q, req, r);
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
    if (q->broken || v->stopping || v->paused || q->exhausted || q->blocked) {
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
        /* Polling pays only while the guest's queue is shallow (QD1): its
         * next request follows our answer within microseconds, and the loop
         * spinning meanwhile also catches the pool's completion without a
         * wake-up.  With more in flight, each completion's look at the ring
         * (vbd_vreq_finish) finds what the guest added meanwhile, and
         * polling would only keep this loop spinning on a CPU the memory
         * servers and the guest need (QD32). */
        bool was = q->polling;
        q->polling = v->poll_ns && ring_inflight(&q->ring) <= VBD_POLL_INFLIGHT_MAX;
        if (q->polling) {
            if (!was)
                ring_poll_begin(&q->ring);  /* the event asked for while in flight */
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

/* A prepare hook, before each loop sleep: a ring active in the last poll_us
 * with at most VBD_POLL_INFLIGHT_MAX requests in flight is looked at without
 * an event (a guest issuing I/O back to back pushes its next request within
 * microseconds of our answer: catching it here saves its kick and our
 * wake-up).  Once a ring has been quiet for poll_us, or has more requests in
 * flight (kick), it asks for events again (ring_final_check) and the loop
 * may sleep: polling costs CPU only while a guest does shallow I/O back to
 * back, never for a deep queue (whose completions keep the loop busy anyway)
 * and never more than poll_us past the last activity, so an idle backend
 * sleeps and a memory server sharing this host's CPUs is not kept waiting
 * behind us. */
static int vbd_poll(struct evloop *el, void *arg)
{
    struct vbd *v = arg;
    int busy = 0;
    uint64_t now = evloop_now_ns();
    for (int i = 0; i < v->nq; i++) {
        struct vbd_queue *q = &v->q[i];
        if (!q->polling)
            continue;
        if (q->broken || v->stopping || v->paused) {
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
        /* Said with 0 too: a hand-over that drained first replays nothing,
         * yet the ring went on where its predecessor stopped. */
        if (rs_resumed(q->rs))
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

bool vbd_pause(struct vbd *v, void (*paused)(void *arg), void *arg)
{
    v->paused = true;
    v->paused_cb = paused;
    v->paused_arg = arg;
    for (int i = 0; i < v->nq; i++)
        push(&v->q[i]);     /* answers held for the end of this loop turn */
    return v->inflight == 0;
}

void vbd_unpause(struct vbd *v)
{
    if (!v->paused)
        return;
    v->paused = false;
    v->paused_cb = NULL;
    /* What the frontend queued meanwhile, and an event asked for again
     * (kick ends with ring_final_check); a stopping vbd takes nothing. */
    for (int i = 0; i < v->nq; i++)
        kick(&v->q[i], 0);
}

unsigned vbd_inflight(const struct vbd *v) { return v->inflight; }

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
        /* Only a drained device's state goes: a connect that unwound after
         * resuming its predecessor's requests keeps their only record. */
        rs_close(v->q[i].rs, v->started && v->inflight == 0);
    }
    free(v->ind);
    free(v->state_path);
    free(v);
}
