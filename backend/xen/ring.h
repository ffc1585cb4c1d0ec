/* ring.h — one blkif shared ring seen from the backend: mapping, taking
 * requests, pushing responses, event-channel notifications.
 *
 * This is ring.h's RING_* macro semantics written out by hand, for two
 * reasons: the entry size depends on the ABI the frontend picked at connect
 * time (108 or 112 bytes), and every index the frontend controls must be
 * checked before use.  The frontend owns req_prod and rsp_event; we own
 * req_cons (private), req_event, rsp_prod.  Each access to a shared index
 * names the barrier on the other side it pairs with.
 */
#ifndef MEMX_RING_H
#define MEMX_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blkif_abi.h"

struct xp;

struct ring {
    struct xp *xp;
    uint16_t domid;
    enum blkif_abi abi;
    void *sring;            /* npages mapped from the frontend */
    unsigned npages;
    unsigned size;          /* entries, a power of two */
    size_t entsz;
    uint32_t req_cons;      /* next request to take */
    uint32_t req_seen;      /* last req_prod read and checked */
    uint32_t rsp_prod_pvt;  /* responses written, not yet published */
    uint32_t rsp_prod_pub;  /* what we last wrote to sring->rsp_prod */
    int port;               /* local event-channel port, -1 when unbound */
};

/* Maps the ring pages (grant refs of domid) and binds the frontend's event
 * channel.  -1 with a message naming what failed. */
int  ring_map(struct ring *r, struct xp *xp, uint16_t domid, enum blkif_abi abi,
              const uint32_t *refs, unsigned npages, uint32_t remote_port, char *err, size_t errlen);
/* Unbinds and unmaps; safe on a ring that was never (or only half) mapped. */
void ring_unmap(struct ring *r);

/* Takes the next request (copied once, decoded).  1: *req is valid; 0: none
 * available now (or every slot holds a request we have not answered yet);
 * -1: the frontend published an impossible req_prod (more than the ring holds):
 * stop using this ring. */
int  ring_get_request(struct ring *r, struct blkif_req *req);
/* The same, and raw (entsz bytes) receives the entry as read: req is decoded
 * from raw, so raw is exactly what was acted on (ringstate.h keeps it). */
int  ring_get_request_raw(struct ring *r, struct blkif_req *req, void *raw);
/* After ring_map: a predecessor took every request below req_cons (the
 * ones it did not answer are replayed by the caller, ringstate.h); go on
 * from there.  rsp_prod stays where ring_map found it published. */
void ring_resume(struct ring *r, uint32_t req_cons);
/* Whether a request is waiting (or req_prod is corrupt: ring_get_request
 * reports it), without asking the frontend for an event: a backend that
 * polls leaves req_event behind, so the frontend's pushes need no kick. */
bool ring_peek(struct ring *r);
/* Before sleeping: asks the frontend for an event on its next request, then
 * looks once more.  true if requests arrived meanwhile. */
bool ring_final_check(struct ring *r);
/* A backend about to poll: withdraws an event asked for earlier (req_event
 * goes behind req_cons), so the frontend's next pushes need no kick.  A
 * frontend that read the old value meanwhile kicks once, which is harmless. */
void ring_poll_begin(struct ring *r);
/* Number of requests taken and not yet answered. */
unsigned ring_inflight(const struct ring *r);

/* Queues a response in the next slot (published by ring_push_responses). */
void ring_put_response(struct ring *r, uint64_t id, uint8_t op, int16_t status);
/* Publishes queued responses and kicks the event channel if the frontend
 * asked for it (RING_PUSH_RESPONSES_AND_CHECK_NOTIFY).  Returns true if notified. */
bool ring_push_responses(struct ring *r);

#endif
