/* memxfront.h — libmemxfront: a userspace blkif frontend.
 *
 * Speaks exactly what Linux xen-blkfront speaks (XenBus handshake, multi-page
 * rings, multi-queue, indirect descriptors, flush, discard) over the platform
 * seam (xenplat.h), so the same code drives memx-backd on the sim platform and
 * any blkif backend from a real domU's userspace.
 *
 * Data moves through a pool of pages granted once at connect time; the backend
 * grant-copies into and out of them (persistent grants are not negotiated).
 *
 * Threading: a handle is single-threaded; threads may share one if every call
 * on it is serialized (memx-fio: one mutex per device, each thread steered to
 * its own queue with memxfront_set_queue).  It owns the event-channel fd of
 * the xp it was opened on, so open one device per xp.
 *
 * Errors: functions return -1 (or NULL) and set errno; open and close also
 * leave a one-line message in err.  Completion statuses are 0 or a negative
 * errno: -EIO (BLKIF_RSP_ERROR), -EOPNOTSUPP (BLKIF_RSP_EOPNOTSUPP),
 * -ENOTCONN (the backend left while the request was in flight).
 */
#ifndef MEMX_MEMXFRONT_H
#define MEMX_MEMXFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xp;
struct memxfront;

struct memxfront_opts {
    unsigned ring_page_order;   /* wanted ring size 2^order pages; capped by the backend's max */
    unsigned nr_queues;         /* wanted queues; capped by multi-queue-max-queues */
    unsigned max_indirect_segs; /* 0: never indirect; else cap on segments per request (<= 512) */
    unsigned queue_depth;       /* in-flight requests per queue; 0 = ring size */
    unsigned bounce_pages;      /* data pool size in 4 KiB pages; 0 = enough for every slot (<= 4096) */
    unsigned timeout_ms;        /* XenBus waits in open/close; 0 = 10000 */
    /* Test only (a hostile guest, issue 13 item 6): > 0 pre-fills queue 0
     * with this many reads (grant ref 0) before Initialised and leaves
     * queue 1's ring-ref out (needs nr_queues >= 2): the connect must fail. */
    unsigned debug_partial_mq;
};

struct memxfront_info {
    uint64_t sectors;           /* in 512-byte units, as the backend wrote them */
    uint64_t size_bytes;
    unsigned sector_size;       /* logical sector size; I/O must be aligned to it */
    unsigned vdisk_info;        /* VDISK_* bits from the backend's "info" */
    bool     readonly;
    bool     flush;             /* feature-flush-cache (or feature-barrier) */
    bool     discard;
    unsigned nr_queues;
    unsigned ring_pages;        /* per queue */
    unsigned queue_depth;       /* per queue */
    unsigned max_segs;          /* per request: 11, or the indirect limit */
    size_t   max_io;            /* bytes per read/write request */
    uint16_t backend_domid;
    char     backend[128];      /* backend XenStore path */
    char     protocol[16];
};

/* Completion: status 0 on success, else a negative errno (see above). */
typedef void (*memxfront_cb)(void *arg, int status);

void memxfront_opts_default(struct memxfront_opts *o);

/* devpath: the frontend node, e.g. /local/domain/3/device/vbd/51728.
 * Blocks through the handshake until both ends are Connected. */
struct memxfront *memxfront_open(struct xp *xp, const char *devpath, const struct memxfront_opts *opts,
                                 char *err, size_t errlen);
/* Fails in-flight requests with -ENOTCONN, walks Closing -> Closed with the
 * backend, then revokes every grant.  Returns 0, or -1 if the backend did not
 * follow (the device is freed either way). */
int  memxfront_close(struct memxfront *f, char *err, size_t errlen);
const struct memxfront_info *memxfront_info(const struct memxfront *f);

/* Async I/O.  offset/len in bytes, multiples of sector_size, len <= max_io.
 * Writes copy buf before returning; reads fill buf just before cb runs.
 * -1/EAGAIN: no free ring slot or bounce page, process completions and retry;
 * EINVAL (range/alignment), E2BIG (> max_io), EOPNOTSUPP, EROFS, ENOTCONN. */
int memxfront_read(struct memxfront *f, uint64_t offset, void *buf, size_t len, memxfront_cb cb, void *arg);
int memxfront_write(struct memxfront *f, uint64_t offset, const void *buf, size_t len, memxfront_cb cb,
                    void *arg);
int memxfront_flush(struct memxfront *f, memxfront_cb cb, void *arg);
int memxfront_discard(struct memxfront *f, uint64_t offset, uint64_t len, memxfront_cb cb, void *arg);

/* Multi-queue steering, as blkfront maps each CPU to its own queue: q in
 * 0..nr_queues-1 sends every later read, write, flush and discard to queue q
 * only (-1/EAGAIN when that queue is full); -1, the default, spreads them
 * round robin over the queues with a free slot.  Returns 0, or -1/EINVAL. */
int memxfront_set_queue(struct memxfront *f, int q);
/* Gives up on the device without closing it: every in-flight request
 * completes now with -ENOTCONN (reads copy nothing into their buffers) and
 * later ones fail with ENOTCONN.  For a user that must free its buffers while
 * the backend still holds requests; memxfront_close still follows. */
void memxfront_abort(struct memxfront *f);

/* Readable when completions (or a backend state change) may be pending. */
int memxfront_fd(const struct memxfront *f);
/* Runs callbacks for every finished request; returns how many, or -1 with
 * ENOTCONN once the backend has gone (in-flight requests were failed). */
int memxfront_process(struct memxfront *f);
/* Waits up to timeout_ms (-1: forever) for the fd, then processes. */
int memxfront_wait(struct memxfront *f, int timeout_ms);
unsigned memxfront_inflight(const struct memxfront *f);

/* Synchronous wrappers: any length (split at max_io), 0 or -1 with errno. */
int memxfront_pread(struct memxfront *f, void *buf, size_t len, uint64_t offset);
int memxfront_pwrite(struct memxfront *f, const void *buf, size_t len, uint64_t offset);
int memxfront_sync_flush(struct memxfront *f);
int memxfront_sync_discard(struct memxfront *f, uint64_t offset, uint64_t len);

/* ---- Test-only: a hostile frontend ------------------------------------
 * For tests of backend validation.  Never used on a device that matters. */

/* Copies a raw blkif request (len <= 112 bytes, the native ABI) onto queue q
 * as is, except its id, which is replaced so the response finds cb. */
int memxfront_debug_submit_raw(struct memxfront *f, unsigned q, const void *req, size_t len,
                               memxfront_cb cb, void *arg);
/* The grant ref of bounce page i (a valid ref to build segments with). */
uint32_t memxfront_debug_gref(const struct memxfront *f, unsigned i);
/* Moves req_prod of queue q forward by delta without writing requests, and notifies. */
int memxfront_debug_bump_req_prod(struct memxfront *f, unsigned q, uint32_t delta);
/* The backend's current XenbusState number, or -1 if unreadable. */
int memxfront_debug_backend_state(struct memxfront *f);

#endif
