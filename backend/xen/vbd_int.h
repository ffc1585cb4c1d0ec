/* vbd_int.h — what the two halves of the dataplane share: vbd.c (slots,
 * responses, the ring loop, queues) and vbd_req.c (validating a request,
 * moving its data with grant copy, its volume call and completion).  Not an
 * API: only those two include it. */
#ifndef MEMX_VBD_INT_H
#define MEMX_VBD_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "blkif_abi.h"
#include "evloop.h"
#include "histo.h"
#include "log.h"
#include "queue.h"
#include "ring.h"
#include "vbd.h"
#include "xenplat.h"

struct ringstate;
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
     * behind and vbd_poll looks at the ring every loop turn instead.  Only
     * with at most VBD_POLL_INFLIGHT_MAX requests in flight (see kick). */
    bool polling;
    uint64_t active_ns;         /* last kick that found the ring empty while polling */
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

/* A ring is polled only while it has at most this many requests in flight:
 * a guest waiting on its one request (QD1, swap-in) gains the wake-ups; a
 * deep queue gains nothing (its completions look at the ring) and would keep
 * the loop spinning.  Measured with make bench (memx.conf.example has the
 * figures): 0 lost QD1 reads' latency (the spin during the flight is what
 * catches the pool's completion without a wake-up); no bound (polling
 * whatever the depth) cost 16-28% more backend CPU per I/O at QD32. */
#define VBD_POLL_INFLIGHT_MAX 1

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
    bool paused;                    /* vbd_pause: nothing new taken, for a successor */
    void (*paused_cb)(void *arg);
    void *paused_arg;
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
    uint64_t disc_next, disc_end;   /* a discard's sectors still to do, one chunk at a time */
    SLIST_ENTRY(vreq) next_free;
};

/* Buffers up to a full direct request stay with their slot; bigger ones
 * (indirect) are freed when the request ends, so a queue's memory stays
 * bounded by ring slots x 44 KiB. */
#define VREQ_KEEP_SEGS  BLKIF_MAX_SEGMENTS_PER_REQUEST
#define VREQ_KEEP_BYTES ((size_t)BLKIF_MAX_SEGMENTS_PER_REQUEST * XP_PAGE_SIZE)

/* vbd.c: answers r (its slot goes back; pushed now or at the end of the turn). */
void vbd_vreq_finish(struct vreq *r, int16_t status, uint64_t now);
/* vbd_req.c: validates and starts one request; 0 if it is now in flight,
 * else the status to answer with at once. */
int16_t vbd_req_start(struct vbd_queue *q, const struct blkif_req *req, struct vreq *r);

#endif
