/* ring.c — blkif shared-ring mechanics (see ring.h).
 *
 * Barriers (lib/barrier.h), each where Xen's ring.h back-ring macros put
 * theirs and each pairing with the opposite one in the frontend (the same
 * table, seen from the other side, heads frontend/front_ring.c):
 *   rmb after reading req_prod      <-> frontend wmb before writing req_prod
 *   mb  after writing req_event, before re-reading req_prod
 *                                   <-> frontend mb between req_prod and reading req_event
 *   wmb before writing rsp_prod     <-> frontend rmb after reading rsp_prod
 *   mb  after rsp_prod, before reading rsp_event
 *                                   <-> frontend mb between writing rsp_event and
 *                                       re-reading rsp_prod
 */
#include "ring.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barrier.h"
#include "xenplat.h"

/* The four shared indices at the start of the first ring page (struct blkif_sring). */
struct sring_hdr {
    uint32_t req_prod, req_event;
    uint32_t rsp_prod, rsp_event;
};

static struct sring_hdr *hdr(const struct ring *r) { return r->sring; }

static void *slot(const struct ring *r, uint32_t idx)
{
    return (char *)r->sring + BLKIF_SRING_HDR + (size_t)(idx & (r->size - 1)) * r->entsz;
}

int ring_map(struct ring *r, struct xp *xp, uint16_t domid, enum blkif_abi abi,
             const uint32_t *refs, unsigned npages, uint32_t remote_port, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->xp = xp;
    r->domid = domid;
    r->abi = abi;
    r->port = -1;
    r->sring = xp_gnt_map(xp, domid, npages, refs, true);
    if (!r->sring) {
        snprintf(err, errlen, "cannot map %u ring page(s) (first ref %u): %s", npages, refs[0],
                 strerror(errno));
        return -1;
    }
    r->npages = npages;
    r->entsz = blkif_abi_entry_size(abi);
    r->size = blkif_abi_ring_size(abi, npages);
    int port = xp_evtchn_bind_interdomain(xp, domid, remote_port);
    if (port < 0) {
        snprintf(err, errlen, "cannot bind event channel %u: %s", remote_port, strerror(errno));
        ring_unmap(r);
        return -1;
    }
    r->port = port;
    /* The frontend initialised the indices (SHARED_RING_INIT) before it
     * published ring-ref in XenStore, and XenStore orders that for us.  A
     * frontend reconnecting after resume may have left requests on the ring;
     * like Linux blkback we start where its responses end.  No fence: the
     * frontend has not been told our ring is live, so nothing moves yet. */
    r->rsp_prod_pvt = r->rsp_prod_pub = MX_READ_ONCE(hdr(r)->rsp_prod);
    r->req_cons = r->req_seen = r->rsp_prod_pvt;
    return 0;
}

void ring_unmap(struct ring *r)
{
    if (r->port >= 0)
        xp_evtchn_unbind(r->xp, (uint32_t)r->port);
    r->port = -1;
    if (r->sring)
        xp_gnt_unmap(r->xp, r->sring, r->npages);
    r->sring = NULL;
}

unsigned ring_inflight(const struct ring *r)
{
    return r->req_cons - r->rsp_prod_pvt;
}

/* Reads req_prod and checks it: the frontend may have at most `size`
 * requests outstanding, counted from the last response we produced. */
static int refresh(struct ring *r)
{
    uint32_t rp = MX_READ_ONCE(hdr(r)->req_prod);
    mx_smp_rmb();   /* pairs with the frontend's wmb before it writes req_prod
                       (RING_PUSH_REQUESTS): entries up to rp are complete before we read them */
    /* A frontend sees only published responses (RING_FULL on rsp_cons), so it
     * is never more than a ring ahead of them: past that, the slots hold our
     * own unpublished answers, never requests. */
    if (rp - r->rsp_prod_pub > r->size || rp - r->req_cons > rp - r->rsp_prod_pvt)
        return -1;
    r->req_seen = rp;
    return 0;
}

static bool available(const struct ring *r)
{
    /* RING_REQUEST_CONS_OVERFLOW: a slot holding an unanswered request is not free. */
    return r->req_cons != r->req_seen && r->req_cons - r->rsp_prod_pvt < r->size;
}

int ring_get_request_raw(struct ring *r, struct blkif_req *req, void *raw)
{
    if (r->req_cons == r->req_seen && refresh(r) < 0)
        return -1;
    if (!available(r))
        return 0;
    /* The entry, read once (the frontend may rewrite it meanwhile: we decode
     * our copy only); it is complete because of the rmb in refresh, which
     * pairs with the frontend's wmb before req_prod. */
    if (raw) {
        memcpy(raw, slot(r, r->req_cons), r->entsz);
        blkif_abi_get_request(r->abi, raw, req);
    } else {
        blkif_abi_get_request(r->abi, slot(r, r->req_cons), req);
    }
    r->req_cons++;
    return 1;
}

int ring_get_request(struct ring *r, struct blkif_req *req) { return ring_get_request_raw(r, req, NULL); }

void ring_resume(struct ring *r, uint32_t req_cons)
{
    /* Private indices only: nothing shared moves (the next refresh checks
     * req_prod against them as usual). */
    r->req_cons = r->req_seen = req_cons;
}

bool ring_peek(struct ring *r)
{
    if (refresh(r) < 0)
        return true;            /* let ring_get_request report it */
    return available(r);
}

bool ring_final_check(struct ring *r)
{
    if (ring_peek(r))
        return true;
    /* RING_FINAL_CHECK_FOR_REQUESTS: ask for an event on the next request ... */
    MX_WRITE_ONCE(hdr(r)->req_event, r->req_cons + 1);
    mx_smp_mb();    /* ... and make req_event visible before re-reading req_prod; pairs with the
                       frontend's mb between writing req_prod and reading req_event
                       (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY), so one of us sees the other */
    return ring_peek(r);
}

void ring_poll_begin(struct ring *r)
{
    /* The frontend kicks when req_prod passes req_event; at req_cons it is
     * already behind every request to come. */
    MX_WRITE_ONCE(hdr(r)->req_event, r->req_cons);
}

void ring_put_response(struct ring *r, uint64_t id, uint8_t op, int16_t status)
{
    /* Into a slot the frontend no longer reads (it took the request from
     * there); it sees the entry only after ring_push_responses' wmb, which
     * pairs with its rmb after reading rsp_prod. */
    blkif_abi_put_response(r->abi, slot(r, r->rsp_prod_pvt), id, op, status);
    r->rsp_prod_pvt++;
}

/* TEST ONLY: MEMX_TEST_CRASH_BEFORE_PUSH=N makes the process SIGKILL itself
 * at its Nth push that has responses written and not yet published, i.e.
 * between writing a response and publishing it: the crash a restarted
 * backend must recover from (tests/integration/hostile-restart.sh).  Unset
 * (always, outside tests), it costs one branch per push. */
static void crash_point(void)
{
    static long left = -1;
    if (left == -1) {
        const char *e = getenv("MEMX_TEST_CRASH_BEFORE_PUSH");
        left = e && *e ? atol(e) : 0;
        if (left <= 0)
            left = 0;
    }
    if (left > 0 && --left == 0) {
        fprintf(stderr, "ring: MEMX_TEST_CRASH_BEFORE_PUSH reached: killing this process between "
                        "writing responses and publishing them (test only)\n");
        raise(SIGKILL);
    }
}

bool ring_push_responses(struct ring *r)
{
    uint32_t old = r->rsp_prod_pub, new = r->rsp_prod_pvt;
    if (old == new)
        return false;
    crash_point();
    mx_smp_wmb();   /* responses are written before rsp_prod; pairs with the frontend's rmb
                       after reading rsp_prod (RING_FOR_EACH response loop) */
    MX_WRITE_ONCE(hdr(r)->rsp_prod, new);
    r->rsp_prod_pub = new;
    mx_smp_mb();    /* rsp_prod is visible before we read rsp_event; pairs with the frontend's
                       mb between writing rsp_event and re-reading rsp_prod
                       (RING_FINAL_CHECK_FOR_RESPONSES) */
    uint32_t ev = MX_READ_ONCE(hdr(r)->rsp_event);     /* ordered by the mb just above */
    if ((uint32_t)(new - ev) < (uint32_t)(new - old)) {
        xp_evtchn_notify(r->xp, (uint32_t)r->port);
        return true;
    }
    return false;
}
