/* memx-io-job.h — memx-io's I/O engine, shared by its workloads
 * (memx-io-workload.c: seeded write/verify; memx-io-history.c: per-page
 * write history).  A job keeps qd requests in flight, asks its generator for
 * the next one and checks every completed read against the key it expects
 * per page; a job with a done hook hands completions to it instead.
 */
#ifndef MEMX_IO_JOB_H
#define MEMX_IO_JOB_H

#include "histo.h"

#include <stdbool.h>
#include <stdint.h>

struct args;
struct memxfront;

#define KEY_UNKNOWN UINT64_MAX   /* a failed write: contents undefined, not verified */
#define DUP_BASE    (1ull << 62) /* keys shared by many pages: exercises de-duplication */

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
    uint64_t max_ns;            /* its longest I/O: the stall a fault costs the guest */
    uint64_t done_ops, done_pages, errors, mismatches, verified, zero_verified, flushes;
    bool disconnected;
    /* generator state */
    uint64_t rng, next, count;
    uint64_t *perm;
    int (*gen)(struct job *j, struct op *o);
    /* Set: every completion goes here (after the engine's own bookkeeping) instead of the key check. */
    void (*done)(struct job *j, struct op *o, int status);
    void *ctx;                  /* the done hook's state */
    uint64_t give_up_ns;        /* set: run stops waiting for I/Os still in flight at this time (now_ns) */
};

/* The page the next write goes to: the shuffled order for a first pass,
 * then random pages not in flight.  false when none is free now. */
bool job_next_page(struct job *j, uint64_t *page);
/* Sets the job up over --offset/--size with ops of pages_per_op pages; -1 on a bad range or OOM. */
int job_init(struct job *j, struct memxfront *f, const struct args *a, unsigned pages_per_op);
void job_free(struct job *j);
/* Runs the generator to its end (and every I/O to its completion, or give_up_ns); wall seconds. */
double job_run(struct job *j);
/* "<what>: N ops (N pages) in S s, MB/s, IOPS, latency p50 p99 max, errors N". */
void job_report(const char *what, struct job *j, double secs);

#endif
