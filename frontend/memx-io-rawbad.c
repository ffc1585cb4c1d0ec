/* memx-io-rawbad.c — memx-io raw-bad KIND (memx-io.h): one malformed
 * request put on the ring as a hostile guest would (through libmemxfront's
 * debug hooks), the backend's answer printed, and then an honest write and
 * read-back, since refusing a bad request must not stop the device.
 * raw-bad storm: unknown-op requests, the ring kept full for --timeout ms
 * (at most 5 s), each answered at once: what a guest starving the others
 * would do (issue 13 item 7).
 */
#include "memx-io.h"
#include "memxfront.h"
#include "pattern.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>
#include <xen/io/xenbus.h>

struct raw_res {
    bool done;
    int status;
};

static void raw_cb(void *arg, int status)
{
    struct raw_res *r = arg;
    r->done = true;
    r->status = status;
}

static const char *const raw_kinds[] = {
    "too-many-segs", "past-end", "bad-gref", "bad-sects", "unknown-op", "req-prod-ahead", "indirect-too-many",
    "discard-past-end", "storm", "partial-mq", "sparse-write", "sparse-discard", NULL,
};

union raw_req {
    struct blkif_request rw;
    struct blkif_request_discard d;
    struct blkif_request_indirect ind;
};

static int build_raw(struct memxfront *f, const char *kind, union raw_req *u)
{
    const struct memxfront_info *in = memxfront_info(f);
    memset(u, 0, sizeof(*u));
    struct blkif_request *r = &u->rw;
    r->operation = BLKIF_OP_READ;
    r->nr_segments = 1;
    r->handle = 0;
    r->seg[0].gref = memxfront_debug_gref(f, 0);
    r->seg[0].first_sect = 0;
    r->seg[0].last_sect = 7;
    if (!strcmp(kind, "too-many-segs")) {
        /* One more than the ring entry holds: a backend must not read past seg[10]. */
        r->operation = BLKIF_OP_WRITE;
        r->nr_segments = BLKIF_MAX_SEGMENTS_PER_REQUEST + 1;
        for (unsigned i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++)
            r->seg[i] = (struct blkif_request_segment){ memxfront_debug_gref(f, i), 0, 7, };
    } else if (!strcmp(kind, "past-end")) {
        /* Straddles the end: 4 sectors inside, 4 beyond. */
        r->sector_number = in->sectors - 4;
    } else if (!strcmp(kind, "bad-gref")) {
        r->seg[0].gref = 0x7ffffff0u;
    } else if (!strcmp(kind, "bad-sects")) {
        r->seg[0].last_sect = 8;        /* a 4 KiB page holds sectors 0..7 */
    } else if (!strcmp(kind, "unknown-op")) {
        r->operation = 0x42;
        r->nr_segments = 0;
    } else if (!strcmp(kind, "indirect-too-many")) {
        u->ind.operation = BLKIF_OP_INDIRECT;
        u->ind.indirect_op = BLKIF_OP_READ;
        u->ind.nr_segments = 8 * 512 + 1;
        u->ind.sector_number = 0;
        for (unsigned i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
            u->ind.indirect_grefs[i] = memxfront_debug_gref(f, i);
    } else if (!strcmp(kind, "discard-past-end")) {
        u->d.operation = BLKIF_OP_DISCARD;
        u->d.sector_number = in->sectors - 8;
        u->d.nr_sectors = 16;
    } else {
        return -1;
    }
    return 0;
}

static const char *rsp_name(int status)
{
    return status == 0 ? "BLKIF_RSP_OKAY" : status == -EOPNOTSUPP ? "BLKIF_RSP_EOPNOTSUPP" :
           status == -ENOTCONN ? "no answer, device disconnected" : "BLKIF_RSP_ERROR";
}

struct storm_res { uint64_t answered, refused; };

static void storm_cb(void *arg, int status)
{
    struct storm_res *r = arg;
    r->answered++;
    if (status == -EOPNOTSUPP)
        r->refused++;
}

/* Keeps every slot of queue 0 busy with unknown-op requests for ms. */
static int storm(struct memxfront *f, unsigned ms)
{
    struct blkif_request r;
    memset(&r, 0, sizeof(r));
    r.operation = 0x42;
    struct storm_res res = { 0, 0 };
    uint64_t sent = 0, t0 = now_ns(), end = t0 + (uint64_t)ms * 1000000ull;
    while (now_ns() < end) {
        while (memxfront_debug_submit_raw(f, 0, &r, sizeof(r), storm_cb, &res) == 0)
            sent++;
        if (errno == ENOTCONN || (memxfront_wait(f, 0) < 0 && errno == ENOTCONN)) {
            printf("raw-bad storm: the device was disconnected after %" PRIu64 " requests\n", sent);
            return 1;
        }
    }
    while (memxfront_inflight(f) && memxfront_wait(f, 1000) >= 0)
        ;
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("raw-bad storm: %" PRIu64 " bad requests sent, %" PRIu64 " answered (%" PRIu64
           " EOPNOTSUPP) in %.2f s, %.0f/s\n", sent, res.answered, res.refused, secs,
           secs > 0 ? (double)res.answered / secs : 0);
    return res.answered == sent && res.refused == sent ? 0 : 1;
}

/* The last page of every 16 MiB (a page-map leaf of the backend) written,
 * then one discard of the whole device: it must cost the backend a record
 * per written page, not per page of every written leaf (issue 13 item 8). */
static int sparse_discard(struct memxfront *f, unsigned timeout_ms, bool discard)
{
    const struct memxfront_info *in = memxfront_info(f);
    static uint8_t page[PAT_PAGE] __attribute__((aligned(PAT_PAGE))), back[PAT_PAGE];
    const uint64_t leaf = 16ull << 20;
    uint64_t n = 0;
    for (uint64_t off = leaf - PAT_PAGE; off < in->size_bytes; off += leaf, n++) {
        pat_fill(page, 9, off / PAT_PAGE + 1);
        if (memxfront_pwrite(f, page, PAT_PAGE, off) < 0) {
            printf("raw-bad sparse-discard: write at %" PRIu64 " failed: %s\n", off, strerror(errno));
            return 1;
        }
    }
    if (!discard) {
        printf("raw-bad sparse-write: %" PRIu64 " pages written (one per 16 MiB)\n", n);
        return 0;
    }
    struct raw_res res = { false, 0 };
    uint64_t t0 = now_ns();
    if (memxfront_discard(f, 0, in->size_bytes, raw_cb, &res) < 0) {
        printf("raw-bad sparse-discard: cannot submit the discard: %s\n", strerror(errno));
        return 1;
    }
    uint64_t end = t0 + (uint64_t)timeout_ms * 1000000ull;
    while (!res.done && now_ns() < end)
        if (memxfront_wait(f, 200) < 0 && errno == ENOTCONN)
            break;
    if (!res.done || res.status) {
        printf("raw-bad sparse-discard: the discard %s\n", res.done ? rsp_name(res.status) : "got no answer");
        return 1;
    }
    double ms = (double)(now_ns() - t0) / 1e6;
    if (memxfront_pread(f, back, PAT_PAGE, leaf - PAT_PAGE) < 0 || back[0] || memcmp(back, back + 1, PAT_PAGE - 1)) {
        printf("raw-bad sparse-discard: a discarded page does not read back as zeros\n");
        return 1;
    }
    printf("raw-bad sparse-discard: %" PRIu64 " pages written (one per 16 MiB), discard of all %" PRIu64
           " MiB answered OKAY in %.1f ms; zeros read back\n", n, in->size_bytes >> 20, ms);
    return 0;
}

int cmd_raw_bad(struct memxfront *f, const char *kind, unsigned timeout_ms)
{
    const struct memxfront_info *in = memxfront_info(f);
    if (!strcmp(kind, "sparse-write") || !strcmp(kind, "sparse-discard"))
        return sparse_discard(f, timeout_ms, !strcmp(kind, "sparse-discard"));
    if (!strcmp(kind, "storm")) {
        if (storm(f, timeout_ms))
            return 1;
        kind = "storm";         /* then the honest write and read-back below */
        goto honest;
    }
    if (!strcmp(kind, "req-prod-ahead")) {
        /* Far beyond anything a ring of this size can hold. */
        uint32_t delta = in->queue_depth * 4u * in->ring_pages * 32u + 7u;
        if (memxfront_debug_bump_req_prod(f, 0, delta) < 0) {
            fprintf(stderr, "memx-io: raw-bad %s: %s\n", kind, strerror(errno));
            return 2;
        }
        uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
        while (now_ns() < end && memxfront_wait(f, 200) >= 0)
            ;
        int s = memxfront_debug_backend_state(f);
        if (s != XenbusStateConnected) {
            printf("raw-bad %s: backend disconnected the device (backend state %d)\n", kind, s);
            return 0;
        }
        printf("raw-bad %s: backend still Connected after %u ms: req_prod ahead of the ring was not refused\n",
               kind, timeout_ms);
        return 1;
    }
    union raw_req u;
    if (build_raw(f, kind, &u) < 0) {
        fprintf(stderr, "memx-io: raw-bad: unknown kind '%s' (one of:", kind);
        for (const char *const *k = raw_kinds; *k; k++)
            fprintf(stderr, " %s", *k);
        fprintf(stderr, ")\n");
        return 2;
    }
    struct raw_res res = { false, 0 };
    if (memxfront_debug_submit_raw(f, 0, &u, sizeof(u.rw), raw_cb, &res) < 0) {
        fprintf(stderr, "memx-io: raw-bad %s: cannot submit: %s\n", kind, strerror(errno));
        return 2;
    }
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    while (!res.done && now_ns() < end)
        if (memxfront_wait(f, 200) < 0 && errno == ENOTCONN)
            break;
    if (!res.done) {
        printf("raw-bad %s: no response within %u ms%s\n", kind, timeout_ms,
               memxfront_inflight(f) ? "" : " (device disconnected)");
        return 1;
    }
    printf("raw-bad %s: status %d (%s)\n", kind, res.status == 0 ? 0 : res.status == -EOPNOTSUPP ? -2 : -1,
           rsp_name(res.status));
    if (res.status == 0)
        return 1;
    if (res.status == -ENOTCONN)
        return 0;
honest:;
    /* The device must still serve honest I/O after refusing the bad request. */
    static uint8_t page[PAT_PAGE] __attribute__((aligned(PAT_PAGE))), back[PAT_PAGE];
    uint64_t off = in->size_bytes - PAT_PAGE;
    pat_fill(page, 77, off / PAT_PAGE + 1);
    if (memxfront_pwrite(f, page, PAT_PAGE, off) < 0 || memxfront_pread(f, back, PAT_PAGE, off) < 0 ||
        memcmp(page, back, PAT_PAGE)) {
        printf("raw-bad %s: the device no longer serves I/O after the error: %s\n", kind, strerror(errno));
        return 1;
    }
    printf("raw-bad %s: device still serves I/O\n", kind);
    return 0;
}
