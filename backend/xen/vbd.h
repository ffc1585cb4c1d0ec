/* vbd.h — the I/O side of one connected virtual block device: takes
 * requests off its rings, validates them, moves data with grant copy and
 * turns them into volume operations.
 *
 * Policy lives here (what a valid request is, what each op means); ring.c
 * knows only ring mechanics, blkdev.c the negotiation and xenbus.c the XenBus
 * state machine.  A
 * bad request is answered with BLKIF_RSP_ERROR (unknown ops with
 * BLKIF_RSP_EOPNOTSUPP) and counted; a frontend that corrupts its ring
 * indices gets the device disconnected through the fatal callback.
 */
#ifndef MEMX_VBD_H
#define MEMX_VBD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkif_abi.h"
#include "ring.h"

#define VBD_MAX_QUEUES 16

struct evloop;
struct xp;
struct volume;
struct vbd;
struct port_table;

struct vbd_params {
    const char *name;           /* "vbd <domid>/<devid>", used in log lines */
    uint16_t domid;             /* the frontend domain: grant refs belong to it */
    struct volume *vol;
    bool readonly;
    struct port_table *ports;   /* its queues' ports are registered there (ports.h; NULL: nowhere) */
    unsigned max_indirect;      /* 0: indirect descriptors not offered */
    /* Bytes the device's requests may hold in buffers past what each slot
     * keeps (memx_config.device_buffer_max): past it a queue waits. */
    uint64_t buf_max;
    /* Each queue's resumable ring state goes to "<state_path>-q<N>"
     * (ringstate.h), so a restarted backend resumes the ring; NULL: none. */
    const char *state_path;
    /* For this long after a ring's last activity (requests taken, answers
     * pushed), look at it every loop turn instead of asking the frontend for
     * an event (0: never poll); only while it has at most one request in
     * flight (vbd_int.h VBD_POLL_INFLIGHT_MAX). */
    unsigned poll_us;
    /* Called (from the loop, never inside a vbd call) when the frontend broke
     * its ring; the owner then stops and frees the vbd. */
    void (*fatal)(void *arg, const char *why);   /* the device must go: ring corrupt, volume lost */
    void *arg;
};

struct vbd_counters { uint64_t requests, errors, bad_requests; };

/* Where a request's time goes inside the backend, in ns (lib/histo.h):
 * PICKUP   start of the ring look (event-channel wake-up, or the look after
 *          a completion) -> request taken off the ring; the wake-up
 *          latency before the event handler runs is not visible here
 * COPY     one grant copy (guest -> buffer for writes, buffer -> guest for reads)
 * VOLUME   volume call -> its callback: volume, pool, transport and servers
 * RESPONSE answer ready -> published on the ring (the frontend notified) */
enum { VBD_STAGE_PICKUP, VBD_STAGE_COPY, VBD_STAGE_VOLUME, VBD_STAGE_RESPONSE, VBD_STAGES };
struct histo;

struct vbd *vbd_new(struct evloop *el, struct xp *xp, const struct vbd_params *p);
/* Maps a queue's ring and binds its event channel.  Nothing is taken off
 * it yet: a frontend may have pre-filled it, and a later queue of the same
 * device may still fail to map (the connect then unwinds with nothing in
 * flight). */
int  vbd_add_queue(struct vbd *v, enum blkif_abi abi, const uint32_t *refs, unsigned npages,
                   uint32_t remote_port, char *err, size_t errlen);
/* Starts serving every queue added (the first requests are looked for at
 * once).  Called once every queue is mapped and Connected is written; until
 * then events on the queues' ports are ignored (the look here finds what they
 * announced). */
void vbd_start(struct vbd *v);
/* An event on local port: kicks the queue that owns it in pt (an index, not
 * a search); false if none does (a late event of a channel just unbound). */
bool vbd_kick_port(struct port_table *pt, int port);
/* Stops taking requests.  Returns true if nothing is in flight; otherwise
 * drained(arg) runs (from the loop) once every in-flight request is answered. */
bool vbd_stop(struct vbd *v, void (*drained)(void *arg), void *arg);
/* Pauses the device for a hand-over to a successor process (an upgrade):
 * no request is taken off its rings any more (what the frontend adds stays
 * there for the successor), every answer is published at once.  Returns
 * true if nothing is in flight; otherwise paused(arg) runs once the last
 * request in flight is answered and published (from its completion: it
 * must not free the vbd, only note it).  Independent of vbd_stop: a device
 * being stopped can be paused too, and its drained still runs after. */
bool vbd_pause(struct vbd *v, void (*paused)(void *arg), void *arg);
/* Takes requests again after vbd_pause (the hand-over did not happen). */
void vbd_unpause(struct vbd *v);
/* Requests taken and not yet answered. */
unsigned vbd_inflight(const struct vbd *v);
/* Unmaps the rings; the vbd must be drained: stopped with nothing in flight,
 * or never started.  The volume is the caller's. */
void vbd_free(struct vbd *v);

void vbd_get_counters(const struct vbd *v, struct vbd_counters *c);
/* Merges the per-stage histograms into into[VBD_STAGES] (VBD_STAGE_* order). */
void vbd_merge_stages(const struct vbd *v, struct histo *into);

#endif
