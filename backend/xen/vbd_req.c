/* vbd_req.c — one request of the dataplane (vbd_int.h): what a valid
 * request is, each op's meaning, its segments built and its data moved with
 * grant copy, its volume call and the completion that answers it.  A bad
 * request is answered with BLKIF_RSP_ERROR (unknown ops with
 * BLKIF_RSP_EOPNOTSUPP) and counted.  No shared-ring access here (ring.c). */
#include "vbd_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volume.h"
#include "xalloc.h"

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
    vbd_vreq_finish(r, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY, vol_done(r));
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
    vbd_vreq_finish(r, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY, now);
}

static void read_done(void *arg, int status)
{
    struct vreq *r = arg;
    volume_lost(r->q->vbd, status);
    uint64_t now = vol_done(r);
    if (status) {
        vbd_log(r->q->vbd, MX_LOG_WARN, "read of %u sectors at %llu failed: %s", r->nsect,
                (unsigned long long)r->sector, strerror(-status));
        vbd_vreq_finish(r, BLKIF_RSP_ERROR, now);
        return;
    }
    int16_t st = copy_segments(r) ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY;
    vbd_vreq_finish(r, st, evloop_now_ns());
}

/* A discard goes to the volume in chunks of at most this many sectors (64
 * MiB), one after the other: the volume holds a record and a page reference
 * per written page of what it is discarding until the servers have the
 * records, so one guest request over a whole disk would otherwise hold them
 * for the whole disk at once (1.6 GiB for 64 GiB written).  Chunk bounds
 * are multiples of it (whole pages): only the request's own ends can be
 * partial pages. */
#define DISCARD_CHUNK_SECTORS (64ull << 20 >> 9)

static void discard_done(void *arg, int status);

static void discard_next(struct vreq *r)
{
    uint64_t lim = (r->disc_next / DISCARD_CHUNK_SECTORS + 1) * DISCARD_CHUNK_SECTORS;
    uint64_t n = (lim < r->disc_end ? lim : r->disc_end) - r->disc_next;
    uint64_t at = r->disc_next;
    r->disc_next += n;
    volume_discard(r->q->vbd->vol, at, n, discard_done, r);
}

static void discard_done(void *arg, int status)
{
    struct vreq *r = arg;
    volume_lost(r->q->vbd, status);
    if (status == 0 && r->disc_next < r->disc_end) {
        discard_next(r);        /* bounded: disc_end - disc_next shrinks by a chunk each time */
        return;
    }
    vbd_vreq_finish(r, status ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY, vol_done(r));
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

/* Validates and starts one request (vbd_int.h). */
int16_t vbd_req_start(struct vbd_queue *q, const struct blkif_req *req, struct vreq *r)
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
        r->disc_next = req->sector_number;
        r->disc_end = req->sector_number + req->nr_sectors;
        if (r->disc_next == r->disc_end) {
            volume_discard(v->vol, r->disc_next, 0, discard_done, r);
            return 0;
        }
        discard_next(r);
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

