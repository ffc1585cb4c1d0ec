/* memx-io-workload.c — memx-io's seeded workloads (memx-io.h): an engine
 * that keeps qd requests in flight and checks every completed read against
 * the key it expects per page, and the generators of verify (write every page
 * in random order plus overwrites, discard runs, read back) and of write /
 * read-verify (sequential blocks).  A page whose write failed is keyed
 * unknown and never verified, so an I/O error is counted once, not again as
 * a mismatch.
 */
#include "histo.h"
#include "memx-io.h"
#include "memx-io-job.h"
#include "memxfront.h"
#include "pattern.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void op_done(void *arg, int status)
{
    struct op *o = arg;
    struct job *j = o->j;
    uint64_t lat = now_ns() - o->t0;
    histo_record(&j->h, lat);
    if (lat > j->max_ns)
        j->max_ns = lat;
    j->inflight--;
    j->done_ops++;
    o->busy = false;
    for (unsigned i = 0; i < o->npages; i++)
        j->page_busy[o->page + i] = 0;
    if (j->done) {
        j->errors += status != 0;
        j->done_pages += status ? 0 : o->npages;
        j->done(j, o, status);
        return;
    }
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
double job_run(struct job *j)
{
    histo_reset(&j->h);
    j->max_ns = 0;
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
        if (j->inflight && memxfront_wait(j->f, j->give_up_ns ? 100 : 1000) < 0 && errno == ENOTCONN)
            j->disconnected = true;
        if (j->give_up_ns && now_ns() >= j->give_up_ns)
            break;              /* the caller counts what is still in flight */
    }
    if (j->disconnected) {
        fprintf(stderr, "memx-io: the backend disconnected the device\n");
        j->errors++;
    }
    return (double)(now_ns() - t0) / 1e9;
}

void job_report(const char *what, struct job *j, double secs)
{
    double mb = (double)j->done_pages * PAT_PAGE / 1048576.0;
    printf("%s: %" PRIu64 " ops (%" PRIu64 " pages) in %.2f s, %.1f MB/s, %.0f IOPS, latency p50 %.1f us p99 %.1f us "
           "max %.1f us, errors %" PRIu64 "\n", what, j->done_ops, j->done_pages, secs, secs > 0 ? mb / secs : 0,
           secs > 0 ? (double)j->done_ops / secs : 0, (double)histo_quantile(&j->h, 0.5) / 1000.0,
           (double)histo_quantile(&j->h, 0.99) / 1000.0, (double)j->max_ns / 1000.0, j->errors);
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
bool job_next_page(struct job *j, uint64_t *page)
{
    if (j->count < j->npages) {
        *page = j->perm[j->count];
        return true;
    }
    uint64_t p = pat_mix(&j->rng) % j->npages;
    for (int tries = 0; j->page_busy[p] && tries < 64; tries++)
        p = pat_mix(&j->rng) % j->npages;
    *page = p;
    return !j->page_busy[p];
}

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
    if (!job_next_page(j, &p))
        return 0;
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

int job_init(struct job *j, struct memxfront *f, const struct args *a, unsigned pages_per_op)
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

void job_free(struct job *j)
{
    /* Requests still in flight complete at memxfront_close, after the command returned:
     * their job (static in every command) and buffers must outlive it. */
    if (j->inflight)
        return;
    for (unsigned i = 0; j->ops && i < j->qd; i++)
        free(j->ops[i].buf);
    free(j->ops);
    free(j->key);
    free(j->page_busy);
    free(j->perm);
}

int cmd_verify(struct memxfront *f, const struct args *a)
{
    static struct job j;
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
    double s = job_run(&j);
    uint64_t written = j.done_pages;
    job_report("write", &j, s);
    printf("write: %" PRIu64 " flushes completed\n", j.flushes);
    errors += j.errors;
    if (a->discard_frac > 0 && !j.disconnected) {
        j.errors = 0;
        j.count = 0;
        j.gen = gen_verify_discard;
        s = job_run(&j);
        job_report("discard", &j, s);
        errors += j.errors;
    }
    uint64_t read = 0;
    if (!j.disconnected) {
        j.errors = 0;
        j.count = 0;
        shuffle(&j);
        j.gen = gen_verify_read;
        s = job_run(&j);
        read = j.done_pages;
        job_report("read", &j, s);
        errors += j.errors;
    }
    printf("verify: pages written=%" PRIu64 " read=%" PRIu64 " verified=%" PRIu64 " zero=%" PRIu64
           " mismatches=%" PRIu64 " io_errors=%" PRIu64 "\n", written, read, j.verified, j.zero_verified,
           j.mismatches, errors);
    int rc = j.mismatches || errors || j.verified != j.npages ? 1 : 0;
    job_free(&j);
    return rc;
}

int cmd_seq(struct memxfront *f, const struct args *a, bool write)
{
    static struct job j;
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
    double s = job_run(&j);
    job_report(write ? "write" : "read", &j, s);
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
