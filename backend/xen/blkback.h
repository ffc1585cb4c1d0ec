/* blkback.h — the Xen side of memx-backd: XenBus device discovery and state
 * machine, blkif rings, and turning ring requests into volume I/O.
 *
 * Internally four files, as QEMU splits xen-bus / xen-block / dataplane:
 * xenbus.c (generic XenBus devices: discovery, watches, the state node,
 * reinit and teardown, behind struct xenbus_dev_ops), blkdev.c (this API, and
 * the blkif policy: features, negotiation, volume attach), vbd.c (the
 * dataplane: validation, grant copy, indirect descriptors, flush, discard ->
 * volume.h) and ring.c + blkif_abi.c (mapping rings, copying each request off
 * the ring once, responses, barriers).
 */
#ifndef MEMX_BLKBACK_H
#define MEMX_BLKBACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "histo.h"

struct evloop;
struct xp;
struct volumes;
struct blkback;

struct blkback_dev_info {
    uint16_t domid;             /* frontend domain */
    uint32_t devid;             /* virtual-device, e.g. 51728 for xvdb */
    char     state[16];         /* XenbusState name: "InitWait", "Connected", ... */
    char     volume[64];        /* volume name ("" before attach) */
    char     protocol[16];      /* "x86_64-abi", "x86_32-abi", "native" */
    int      nr_queues;
    int      ring_pages;        /* per queue */
    bool     indirect, flush, discard;
    uint64_t requests, errors, bad_requests;
    /* Backend latency by stage, ns, in vbd.h's VBD_STAGE_* order: ring pickup
     * (ring look started -> request taken), grant copy, volume (volume + pool +
     * transport + servers, from the volume call to its callback), response
     * (answer ready -> published).  Over every connection of the device. */
#define BLKBACK_STAGES 4
    struct histo stage_ns[BLKBACK_STAGES];
};

struct blkback *blkback_new(struct evloop *el, struct xp *xp, struct volumes *vols,
                            const struct memx_config *cfg, char *err, size_t errlen);
/* Starts watching backend/<device_type> of this domain; devices then come and
 * go as the toolstack writes them.  -1 with a message on a XenStore error. */
int  blkback_start(struct blkback *bb, char *err, size_t errlen);
/* Fills up to max entries; returns the number of devices. */
int  blkback_list(struct blkback *bb, struct blkback_dev_info *out, int max);
/* Closes every device: stops taking requests, lets in-flight I/O finish,
 * answers it, unmaps rings, detaches volumes, then calls done (from the loop). */
void blkback_shutdown(struct blkback *bb, void (*done)(void *arg), void *arg);
void blkback_free(struct blkback *bb);

/* ---- hand-over to a successor process (backend/upgrade.c) ----------------
 * A graceful upgrade stops taking requests on every device, lets what is in
 * flight complete and publishes its answers, and execs the new binary,
 * which resumes every Connected device from XenStore and the ring state
 * files (ringstate.h): no device changes state, nothing closes. */

/* Stops taking requests on every device (what the frontends add stays on
 * their rings), publishes every answer at once, and calls drained(arg) from
 * the loop once no request is in flight on any device.  Devices that
 * connect meanwhile wait (their connect is retried) until blkback_resume or
 * the successor.  Once per resume. */
void blkback_quiesce(struct blkback *bb, void (*drained)(void *arg), void *arg);
/* Takes requests again after blkback_quiesce (the hand-over failed). */
void blkback_resume(struct blkback *bb);
/* Requests in flight over every device; *ndev: devices Connected (a
 * successor resumes those). */
unsigned blkback_inflight(struct blkback *bb, int *ndev);
/* cb(arg, name) runs after each device connects and its rings serve (its
 * predecessor's requests replayed); NULL stops it. */
void blkback_on_connect(struct blkback *bb, void (*cb)(void *arg, const char *dev), void *arg);

#endif
