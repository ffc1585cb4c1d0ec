/* memx-io — a guest's-eye workload on a MemX disk through libmemxfront:
 * seeded write/verify runs, single writes and checks, device info, and
 * malformed requests for hostile-frontend tests.  Exit status: 0 ok,
 * 1 a mismatch, an I/O error or an accepted bad request, 2 usage or set-up. */
#include "config.h"
#include "histo.h"
#include "log.h"
#include "memxfront.h"
#include "pattern.h"
#include "xenplat.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>
#include <xen/io/xenbus.h>

#define KEY_UNKNOWN UINT64_MAX   /* a failed write: contents undefined, not verified */
#define DUP_BASE    (1ull << 62) /* keys shared by many pages: exercises de-duplication */

struct args {
    const char *platform, *sim_dir, *device;
    int domid;
    unsigned ring_order, queues, indirect, timeout_ms;
    uint64_t size, offset, bs, seed;
    unsigned qd, flush_every;
    double discard_frac, zero_frac, dup_frac;
    bool size_set;
};

static void usage(FILE *o)
{
    fprintf(o,
        "usage: memx-io --platform sim|real [--sim-dir D] [--domid N] --device device/vbd/51728 COMMAND\n"
        "commands:\n"
        "  verify --size 256M [--qd 32] [--seed S] [--flush-every N] [--discard-fraction F]\n"
        "         [--zero-fraction F] [--dup-fraction F] [--offset O]\n"
        "      random 4 KiB writes of seeded pages (every page once, then 25%% overwrites), discards,\n"
        "      then reads every page back and verifies it; discarded pages must read as zeros\n"
        "  write --seed S --offset O --size N [--bs B] [--qd Q]   write the seed's pattern\n"
        "  read-verify --seed S --offset O --size N [--bs B] [--qd Q]   check it\n"
        "  info                       the negotiated device parameters\n"
        "  raw-bad KIND               send one malformed request and print the answer; KIND is\n"
        "      too-many-segs, past-end, bad-gref, bad-sects, unknown-op, req-prod-ahead,\n"
        "      indirect-too-many, discard-past-end\n"
        "options:\n"
        "  --platform sim|real   sim: no hypervisor (needs --sim-dir); real: from a Xen domU\n"
        "  --sim-dir D           sim platform directory (default /run/memx/sim)\n"
        "  --domid N             this guest's domain id on sim (default 1)\n"
        "  --device P            frontend node, relative to /local/domain/<domid>/ or absolute\n"
        "  --ring-order N        ring pages 2^N per queue (default 4; capped by the backend)\n"
        "  --queues N            queues (default 1; capped by the backend)\n"
        "  --indirect N          max segments per indirect request, 0 = off (default 32)\n"
        "  --timeout MS          XenBus handshake timeout (default 10000)\n"
        "  --log-level L         error|warn|info|debug (default warn)\n");
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the I/O engine: keeps qd requests in flight ---- */

enum op_kind { OP_WRITE, OP_READ, OP_DISCARD, OP_FLUSH };

struct job;
struct op {
    struct job *j;
    enum op_kind kind;
    uint64_t page;              /* first page (relative to the job's base) */
    unsigned npages;
    uint64_t t0;
    uint8_t *buf;
    bool busy;
};

struct job {
    struct memxfront *f;
    const struct args *a;
    uint64_t base;              /* byte offset of page 0 */
    uint64_t npages;
    uint64_t *key;              /* expected contents per page */
    uint8_t *page_busy;
    unsigned qd, inflight;
    struct op *ops;
    struct histo h;             /* latency of this phase, ns */
    uint64_t done_ops, done_pages, errors, mismatches, verified, zero_verified, flushes;
    bool disconnected;
    /* generator state */
    uint64_t rng, next, count;
    uint64_t *perm;
    int (*gen)(struct job *j, struct op *o);
};

static void op_done(void *arg, int status)
{
    struct op *o = arg;
    struct job *j = o->j;
    histo_record(&j->h, now_ns() - o->t0);
    j->inflight--;
    j->done_ops++;
    o->busy = false;
    for (unsigned i = 0; i < o->npages; i++)
        j->page_busy[o->page + i] = 0;
    if (status) {
        j->errors++;
        if (j->errors <= 5)
            fprintf(stderr, "memx-io: %s at page %" PRIu64 " failed: %s\n",
                    o->kind == OP_WRITE ? "write" : o->kind == OP_READ ? "read" :
                    o->kind == OP_DISCARD ? "discard" : "flush", j->base / PAT_PAGE + o->page, strerror(-status));
        if (o->kind == OP_WRITE || o->kind == OP_DISCARD)
            for (unsigned i = 0; i < o->npages; i++)
                j->key[o->page + i] = KEY_UNKNOWN;
        return;
    }
    j->done_pages += o->npages;
    j->flushes += o->kind == OP_FLUSH;
    if (o->kind != OP_READ)
        return;
    for (unsigned i = 0; i < o->npages; i++) {
        uint64_t k = j->key[o->page + i];
        if (k == KEY_UNKNOWN)
            continue;
        const uint8_t *pg = o->buf + (size_t)i * PAT_PAGE;
        if (pat_check(pg, j->a->seed, k)) {
            j->verified++;
            j->zero_verified += k == 0;
        } else if (++j->mismatches <= 10) {
            char what[96];
            fprintf(stderr, "memx-io: MISMATCH at page %" PRIu64 " (byte offset %" PRIu64 "): expected %s%#" PRIx64
                    ", found %s\n", j->base / PAT_PAGE + o->page + i, j->base + (o->page + i) * PAT_PAGE,
                    k ? "key " : "zeros, key ", k, pat_describe(pg, what, sizeof(what)));
        }
    }
}

static int submit(struct job *j, struct op *o)
{
    uint64_t off = j->base + o->page * PAT_PAGE;
    size_t len = (size_t)o->npages * PAT_PAGE;
    o->t0 = now_ns();
    switch (o->kind) {
    case OP_WRITE: return memxfront_write(j->f, off, o->buf, len, op_done, o);
    case OP_READ: return memxfront_read(j->f, off, o->buf, len, op_done, o);
    case OP_DISCARD: return memxfront_discard(j->f, off, len, op_done, o);
    case OP_FLUSH: return memxfront_flush(j->f, op_done, o);
    }
    return -1;
}

/* Runs the job's generator to the end; returns wall time in seconds. */
static double run(struct job *j)
{
    histo_reset(&j->h);
    j->done_ops = j->done_pages = 0;
    uint64_t t0 = now_ns();
    struct op *pending = NULL;
    bool more = true;
    while ((more || pending || j->inflight) && !j->disconnected) {
        while (j->inflight < j->qd && (pending || more)) {
            if (!pending) {
                struct op *o = NULL;
                for (unsigned i = 0; i < j->qd && !o; i++)
                    if (!j->ops[i].busy)
                        o = &j->ops[i];
                if (!j->gen(j, o)) {
                    more = false;
                    break;
                }
                o->busy = true;
                for (unsigned i = 0; i < o->npages && o->kind != OP_READ; i++)
                    j->page_busy[o->page + i] = 1;
                pending = o;
            }
            if (submit(j, pending) < 0) {
                if (errno == EAGAIN)
                    break;
                if (errno == ENOTCONN) {
                    j->disconnected = true;
                    break;
                }
                fprintf(stderr, "memx-io: cannot submit: %s\n", strerror(errno));
                j->errors++;
                pending->busy = false;
                for (unsigned i = 0; i < pending->npages; i++)
                    j->page_busy[pending->page + i] = 0;
                pending = NULL;
                continue;
            }
            j->inflight++;
            pending = NULL;
        }
        if (j->inflight && memxfront_wait(j->f, 1000) < 0 && errno == ENOTCONN)
            j->disconnected = true;
    }
    if (j->disconnected) {
        fprintf(stderr, "memx-io: the backend disconnected the device\n");
        j->errors++;
    }
    return (double)(now_ns() - t0) / 1e9;
}

static void report(const char *what, struct job *j, double secs)
{
    double mb = (double)j->done_pages * PAT_PAGE / 1048576.0;
    printf("%s: %" PRIu64 " ops (%" PRIu64 " pages) in %.2f s, %.1f MB/s, %.0f IOPS, latency p50 %.1f us p99 %.1f us, "
           "errors %" PRIu64 "\n", what, j->done_ops, j->done_pages, secs, secs > 0 ? mb / secs : 0,
           secs > 0 ? (double)j->done_ops / secs : 0, (double)histo_quantile(&j->h, 0.5) / 1000.0,
           (double)histo_quantile(&j->h, 0.99) / 1000.0, j->errors);
}

static double frand(struct job *j) { return (double)(pat_mix(&j->rng) >> 11) / 9007199254740992.0; }

static void shuffle(struct job *j)
{
    for (uint64_t i = 0; i < j->npages; i++)
        j->perm[i] = i;
    for (uint64_t i = j->npages; i > 1; i--) {
        uint64_t k = pat_mix(&j->rng) % i, t = j->perm[i - 1];
        j->perm[i - 1] = j->perm[k];
        j->perm[k] = t;
    }
}

/* verify, phase 1: every page once in random order, then 25% random
 * overwrites of pages not in flight; a flush every flush_every writes. */
static int gen_verify_write(struct job *j, struct op *o)
{
    uint64_t total = j->npages + j->npages / 4;
    if (j->a->flush_every && j->count && j->count % j->a->flush_every == 0 && j->next != j->count) {
        j->next = j->count;         /* one flush per boundary */
        o->kind = OP_FLUSH;
        o->page = 0;
        o->npages = 0;
        return 1;
    }
    if (j->count >= total)
        return 0;
    uint64_t p;
    if (j->count < j->npages) {
        p = j->perm[j->count];
    } else {
        p = pat_mix(&j->rng) % j->npages;
        for (int tries = 0; j->page_busy[p] && tries < 64; tries++)
            p = pat_mix(&j->rng) % j->npages;
        if (j->page_busy[p])
            return 0;
    }
    double r = frand(j);
    uint64_t k;
    if (r < j->a->zero_frac)
        k = 0;
    else if (r < j->a->zero_frac + j->a->dup_frac)
        k = DUP_BASE | (pat_mix(&j->rng) % 8);
    else
        k = ((j->base / PAT_PAGE + p + 1) << 24) | (j->count & 0xffffff);
    j->key[p] = k;
    pat_fill(o->buf, j->a->seed, k);
    o->kind = OP_WRITE;
    o->page = p;
    o->npages = 1;
    j->count++;
    return 1;
}

/* verify, phase 2: discard runs of 1-8 pages until the fraction is reached. */
static int gen_verify_discard(struct job *j, struct op *o)
{
    uint64_t want = (uint64_t)(j->a->discard_frac * (double)j->npages);
    if (j->count >= want)
        return 0;
    uint64_t p = 0;
    unsigned n = 0;
    for (int tries = 0; n == 0; tries++) {
        if (tries == 64)
            return 0;
        p = pat_mix(&j->rng) % j->npages;
        n = 1 + (unsigned)(pat_mix(&j->rng) % 8);
        if (p + n > j->npages)
            n = (unsigned)(j->npages - p);
        for (unsigned i = 0; i < n; i++)
            if (j->page_busy[p + i])
                n = i;
    }
    for (unsigned i = 0; i < n; i++)
        j->key[p + i] = 0;
    o->kind = OP_DISCARD;
    o->page = p;
    o->npages = n;
    j->count += n;
    return 1;
}

/* verify, phase 3: read every page in a fresh random order. */
static int gen_verify_read(struct job *j, struct op *o)
{
    if (j->count >= j->npages)
        return 0;
    o->kind = OP_READ;
    o->page = j->perm[j->count++];
    o->npages = 1;
    return 1;
}

/* write / read-verify: sequential blocks of bs bytes. */
static int gen_seq(struct job *j, struct op *o, enum op_kind kind)
{
    if (j->next >= j->npages)
        return 0;
    unsigned n = (unsigned)(j->a->bs / PAT_PAGE);
    if (j->next + n > j->npages)
        n = (unsigned)(j->npages - j->next);
    o->kind = kind;
    o->page = j->next;
    o->npages = n;
    if (kind == OP_WRITE)
        for (unsigned i = 0; i < n; i++)
            pat_fill(o->buf + (size_t)i * PAT_PAGE, j->a->seed, j->key[o->page + i]);
    j->next += n;
    return 1;
}
static int gen_seq_write(struct job *j, struct op *o) { return gen_seq(j, o, OP_WRITE); }
static int gen_seq_read(struct job *j, struct op *o) { return gen_seq(j, o, OP_READ); }

static int job_init(struct job *j, struct memxfront *f, const struct args *a, unsigned pages_per_op)
{
    const struct memxfront_info *in = memxfront_info(f);
    memset(j, 0, sizeof(*j));
    j->f = f;
    j->a = a;
    j->qd = a->qd;
    j->base = a->offset;
    uint64_t size = a->size_set ? a->size : in->size_bytes - a->offset;
    if (a->offset % PAT_PAGE || size % PAT_PAGE || size == 0 || a->offset > in->size_bytes ||
        size > in->size_bytes - a->offset) {
        fprintf(stderr, "memx-io: --offset %" PRIu64 " --size %" PRIu64 " must be 4 KiB multiples within the "
                "device (%" PRIu64 " bytes)\n", a->offset, size, in->size_bytes);
        return -1;
    }
    if ((size_t)pages_per_op * PAT_PAGE > in->max_io) {
        fprintf(stderr, "memx-io: --bs %u KiB is larger than the device's largest request (%zu KiB)\n",
                pages_per_op * 4, in->max_io / 1024);
        return -1;
    }
    j->npages = size / PAT_PAGE;
    j->key = calloc(j->npages, sizeof(*j->key));
    j->page_busy = calloc(j->npages, 1);
    j->perm = calloc(j->npages, sizeof(*j->perm));
    j->ops = calloc(j->qd, sizeof(*j->ops));
    if (!j->key || !j->page_busy || !j->perm || !j->ops)
        return -1;
    for (unsigned i = 0; i < j->qd; i++) {
        j->ops[i].j = j;
        j->ops[i].buf = aligned_alloc(PAT_PAGE, (size_t)pages_per_op * PAT_PAGE);
        if (!j->ops[i].buf)
            return -1;
    }
    j->rng = a->seed ^ 0x5eedf00dull;
    return 0;
}

static void job_free(struct job *j)
{
    for (unsigned i = 0; j->ops && i < j->qd; i++)
        free(j->ops[i].buf);
    free(j->ops);
    free(j->key);
    free(j->page_busy);
    free(j->perm);
}

static int cmd_verify(struct memxfront *f, const struct args *a)
{
    struct job j;
    if (job_init(&j, f, a, 1) < 0)
        return 2;
    const struct memxfront_info *in = memxfront_info(f);
    if ((a->flush_every && !in->flush) || (a->discard_frac > 0 && !in->discard)) {
        fprintf(stderr, "memx-io: the backend offers no %s\n", a->flush_every && !in->flush ? "flush" : "discard");
        job_free(&j);
        return 2;
    }
    uint64_t errors = 0;
    shuffle(&j);
    j.gen = gen_verify_write;
    double s = run(&j);
    uint64_t written = j.done_pages;
    report("write", &j, s);
    printf("write: %" PRIu64 " flushes completed\n", j.flushes);
    errors += j.errors;
    if (a->discard_frac > 0 && !j.disconnected) {
        j.errors = 0;
        j.count = 0;
        j.gen = gen_verify_discard;
        s = run(&j);
        report("discard", &j, s);
        errors += j.errors;
    }
    uint64_t read = 0;
    if (!j.disconnected) {
        j.errors = 0;
        j.count = 0;
        shuffle(&j);
        j.gen = gen_verify_read;
        s = run(&j);
        read = j.done_pages;
        report("read", &j, s);
        errors += j.errors;
    }
    printf("verify: pages written=%" PRIu64 " read=%" PRIu64 " verified=%" PRIu64 " zero=%" PRIu64
           " mismatches=%" PRIu64 " io_errors=%" PRIu64 "\n", written, read, j.verified, j.zero_verified,
           j.mismatches, errors);
    int rc = j.mismatches || errors || j.verified != j.npages ? 1 : 0;
    job_free(&j);
    return rc;
}

static int cmd_seq(struct memxfront *f, const struct args *a, bool write)
{
    struct job j;
    if (a->bs % PAT_PAGE || a->bs == 0) {
        fprintf(stderr, "memx-io: --bs %" PRIu64 " must be a multiple of 4096\n", a->bs);
        return 2;
    }
    if (job_init(&j, f, a, (unsigned)(a->bs / PAT_PAGE)) < 0)
        return 2;
    /* Pages are keyed by their absolute number, so any offset/size slice of
     * a write can be checked later with the same seed. */
    for (uint64_t p = 0; p < j.npages; p++)
        j.key[p] = j.base / PAT_PAGE + p + 1;
    j.gen = write ? gen_seq_write : gen_seq_read;
    double s = run(&j);
    report(write ? "write" : "read", &j, s);
    int rc;
    if (write) {
        printf("write: pages written=%" PRIu64 " io_errors=%" PRIu64 "\n", j.done_pages, j.errors);
        rc = j.errors ? 1 : 0;
    } else {
        printf("read-verify: pages read=%" PRIu64 " verified=%" PRIu64 " mismatches=%" PRIu64 " io_errors=%" PRIu64
               "\n", j.done_pages, j.verified, j.mismatches, j.errors);
        rc = j.errors || j.mismatches || j.verified != j.npages ? 1 : 0;
    }
    job_free(&j);
    return rc;
}

static int cmd_info(struct memxfront *f, const char *dev)
{
    const struct memxfront_info *in = memxfront_info(f);
    char sz[32];
    printf("device:       %s\n", dev);
    printf("backend:      %s (domid %u)\n", in->backend, in->backend_domid);
    printf("size:         %s (%" PRIu64 " sectors of 512, sector-size %u)\n",
           memx_format_size(in->size_bytes, sz, sizeof(sz)), in->sectors, in->sector_size);
    printf("protocol:     %s\n", in->protocol);
    printf("queues:       %u x %u ring page(s), depth %u\n", in->nr_queues, in->ring_pages, in->queue_depth);
    printf("segments:     %u per request (%s), max I/O %zu KiB\n", in->max_segs,
           in->max_segs > BLKIF_MAX_SEGMENTS_PER_REQUEST ? "indirect" : "direct", in->max_io / 1024);
    printf("features:     flush=%d discard=%d readonly=%d info=%#x\n", in->flush, in->discard, in->readonly,
           in->vdisk_info);
    return 0;
}

/* ---- raw-bad: one malformed request ---- */

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
    "discard-past-end", NULL,
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

static int cmd_raw_bad(struct memxfront *f, const char *kind, unsigned timeout_ms)
{
    const struct memxfront_info *in = memxfront_info(f);
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

/* ---- main ---- */

static int parse_uint(const char *opt, const char *v, unsigned long max, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 0);
    if (errno || end == v || *end || v[0] == '-' || x > max) {
        fprintf(stderr, "memx-io: %s '%s': must be an integer from 0 to %lu\n", opt, v, max);
        return -1;
    }
    *out = (unsigned)x;
    return 0;
}

static int parse_frac(const char *opt, const char *v, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !(x >= 0 && x <= 1)) {
        fprintf(stderr, "memx-io: %s '%s': must be a fraction from 0 to 1\n", opt, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_sz(const char *opt, const char *v, uint64_t *out)
{
    if (memx_parse_size(v, out) < 0) {
        fprintf(stderr, "memx-io: %s '%s': not a size (use e.g. 4096, 64K, 256M)\n", opt, v);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = {
        .platform = NULL, .sim_dir = "/run/memx/sim", .domid = 1, .ring_order = 4, .queues = 1, .indirect = 32,
        .timeout_ms = 10000, .bs = PAT_PAGE, .qd = 32, .seed = 1,
    };
    enum { O_PLAT = 256, O_SIMDIR, O_DOMID, O_DEV, O_RING, O_QUEUES, O_IND, O_TMO, O_SIZE, O_OFF, O_BS, O_QD,
           O_SEED, O_FLUSH, O_DISC, O_ZERO, O_DUP, O_LOG };
    static const struct option lo[] = {
        { "platform", 1, 0, O_PLAT }, { "sim-dir", 1, 0, O_SIMDIR }, { "domid", 1, 0, O_DOMID },
        { "device", 1, 0, O_DEV }, { "ring-order", 1, 0, O_RING }, { "queues", 1, 0, O_QUEUES },
        { "indirect", 1, 0, O_IND }, { "timeout", 1, 0, O_TMO }, { "size", 1, 0, O_SIZE },
        { "offset", 1, 0, O_OFF }, { "bs", 1, 0, O_BS }, { "qd", 1, 0, O_QD }, { "seed", 1, 0, O_SEED },
        { "flush-every", 1, 0, O_FLUSH }, { "discard-fraction", 1, 0, O_DISC }, { "zero-fraction", 1, 0, O_ZERO },
        { "dup-fraction", 1, 0, O_DUP }, { "log-level", 1, 0, O_LOG }, { "help", 0, 0, 'h' }, { 0, 0, 0, 0 },
    };
    int c, lvl = MX_LOG_WARN;
    unsigned u;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_PLAT: a.platform = optarg; break;
        case O_SIMDIR: a.sim_dir = optarg; break;
        case O_DOMID: bad = parse_uint("--domid", optarg, 32767, &u); a.domid = (int)u; break;
        case O_DEV: a.device = optarg; break;
        case O_RING: bad = parse_uint("--ring-order", optarg, 4, &a.ring_order); break;
        case O_QUEUES: bad = parse_uint("--queues", optarg, 16, &a.queues); break;
        case O_IND: bad = parse_uint("--indirect", optarg, 512, &a.indirect); break;
        case O_TMO: bad = parse_uint("--timeout", optarg, 3600000, &a.timeout_ms); break;
        case O_SIZE: bad = parse_sz("--size", optarg, &a.size); a.size_set = true; break;
        case O_OFF: bad = parse_sz("--offset", optarg, &a.offset); break;
        case O_BS: bad = parse_sz("--bs", optarg, &a.bs); break;
        case O_QD: bad = parse_uint("--qd", optarg, 4096, &a.qd); if (!bad && !a.qd) { bad = 1;
                   fprintf(stderr, "memx-io: --qd must be at least 1\n"); } break;
        case O_SEED: { char *e; a.seed = strtoull(optarg, &e, 0); if (e == optarg || *e) { bad = 1;
                       fprintf(stderr, "memx-io: --seed '%s': not a number\n", optarg); } break; }
        case O_FLUSH: bad = parse_uint("--flush-every", optarg, 1u << 30, &a.flush_every); break;
        case O_DISC: bad = parse_frac("--discard-fraction", optarg, &a.discard_frac); break;
        case O_ZERO: bad = parse_frac("--zero-fraction", optarg, &a.zero_frac); break;
        case O_DUP: bad = parse_frac("--dup-fraction", optarg, &a.dup_frac); break;
        case O_LOG: lvl = mx_log_parse_level(optarg);
            if (lvl < 0) { bad = 1; fprintf(stderr, "memx-io: --log-level '%s': use error, warn, info or debug\n",
                                            optarg); } break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "memx-io: no command given (verify, write, read-verify, info, raw-bad); see --help\n");
        return 2;
    }
    const char *cmd = argv[optind];
    const char *kind = optind + 1 < argc ? argv[optind + 1] : NULL;
    bool is_raw = !strcmp(cmd, "raw-bad");
    if (strcmp(cmd, "verify") && strcmp(cmd, "write") && strcmp(cmd, "read-verify") && strcmp(cmd, "info") &&
        !is_raw) {
        fprintf(stderr, "memx-io: unknown command '%s' (verify, write, read-verify, info, raw-bad)\n", cmd);
        return 2;
    }
    if ((is_raw && (!kind || optind + 2 < argc)) || (!is_raw && optind + 1 < argc)) {
        fprintf(stderr, "memx-io: %s\n", is_raw ? "raw-bad takes one KIND (see --help)" : "unexpected extra arguments");
        return 2;
    }
    if (a.zero_frac + a.dup_frac > 1) {
        fprintf(stderr, "memx-io: --zero-fraction plus --dup-fraction must not exceed 1\n");
        return 2;
    }
    if (!a.platform || (strcmp(a.platform, "sim") && strcmp(a.platform, "real"))) {
        fprintf(stderr, "memx-io: --platform must be 'sim' or 'real'\n");
        return 2;
    }
    if (!a.device) {
        fprintf(stderr, "memx-io: --device is required, e.g. --device device/vbd/51728\n");
        return 2;
    }
    mx_log_init("memx-io", (enum mx_log_level)lvl);

    struct xp *xp = !strcmp(a.platform, "sim") ? xp_open_sim(a.sim_dir, (uint16_t)a.domid) : xp_open_real();
    if (!xp) {
        if (!strcmp(a.platform, "real") && errno == ENOENT)
            fprintf(stderr, "memx-io: not running in a Xen domain (use --platform sim for testing)\n");
        else
            fprintf(stderr, "memx-io: cannot open the %s platform%s%s: %s\n", a.platform,
                    strcmp(a.platform, "sim") ? "" : " in ", strcmp(a.platform, "sim") ? "" : a.sim_dir,
                    strerror(errno));
        return 2;
    }
    char dev[160];
    if (a.device[0] == '/')
        snprintf(dev, sizeof(dev), "%s", a.device);
    else
        snprintf(dev, sizeof(dev), "/local/domain/%u/%s", xp_domid(xp), a.device);
    struct memxfront_opts fo;
    memxfront_opts_default(&fo);
    fo.ring_page_order = a.ring_order;
    fo.nr_queues = a.queues;
    fo.max_indirect_segs = a.indirect;
    fo.timeout_ms = a.timeout_ms;
    char err[256];
    struct memxfront *f = memxfront_open(xp, dev, &fo, err, sizeof(err));
    if (!f) {
        fprintf(stderr, "memx-io: %s\n", err);
        xp_close(xp);
        return 2;
    }
    const struct memxfront_info *in = memxfront_info(f);
    if (strcmp(cmd, "info")) {
        char sz[32];
        printf("memx-io: %s: %s, %u queue(s) x %u ring page(s), depth %u, %u segs/request%s%s\n", dev,
               memx_format_size(in->size_bytes, sz, sizeof(sz)), in->nr_queues, in->ring_pages, in->queue_depth,
               in->max_segs, in->flush ? ", flush" : "", in->discard ? ", discard" : "");
        fflush(stdout);
    }
    int rc;
    if (!strcmp(cmd, "verify"))
        rc = cmd_verify(f, &a);
    else if (!strcmp(cmd, "write"))
        rc = cmd_seq(f, &a, true);
    else if (!strcmp(cmd, "read-verify"))
        rc = cmd_seq(f, &a, false);
    else if (!strcmp(cmd, "info"))
        rc = cmd_info(f, dev);
    else
        rc = cmd_raw_bad(f, kind, a.timeout_ms < 5000 ? a.timeout_ms : 5000);
    if (memxfront_close(f, err, sizeof(err)) < 0)
        fprintf(stderr, "memx-io: %s\n", err);
    xp_close(xp);
    return rc;
}
