/* memx-io.h — what memx-io's parts share: the parsed command line and the
 * commands.  memx-io.c is the CLI (options, platform and device set-up, info),
 * memx-io-workload.c the seeded write/verify workloads over an engine that
 * keeps qd requests in flight, memx-io-rawbad.c the malformed requests of the
 * hostile-frontend tests, memx-io-history.c the per-page write history of the
 * fault tests (memx-io-job.h is the engine they share).  Each command returns memx-io's exit status: 0 ok,
 * 1 a mismatch, an I/O error or an accepted bad request, 2 usage or set-up.
 */
#ifndef MEMX_IO_H
#define MEMX_IO_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct memxfront;

#define MEMX_IO_MAX_LOGS 8          /* history-verify: writers' logs */

struct args {
    const char *platform, *sim_dir, *device;
    int domid;
    unsigned ring_order, queues, indirect, timeout_ms;
    uint64_t size, offset, bs, seed;
    unsigned qd, flush_every;
    double discard_frac, zero_frac, dup_frac;
    bool size_set;
    /* hwrite / history-verify */
    uint64_t writer, duration_ms, fence_writer, fence_ns;
    const char *logs[MEMX_IO_MAX_LOGS];
    unsigned nlogs;
};

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* verify: random writes of every page (then overwrites), discards, read-back of every page. */
int cmd_verify(struct memxfront *f, const struct args *a);
/* write / read-verify: the seed's pattern over --offset/--size in --bs blocks. */
int cmd_seq(struct memxfront *f, const struct args *a, bool write);
/* hwrite: stamped pages (writer, page, generation, issue time), each acknowledged write logged. */
int cmd_hwrite(struct memxfront *f, const struct args *a);
/* history-verify: every page is its last acknowledged write or a later one in flight (memx-io-history.c). */
int cmd_history_verify(struct memxfront *f, const struct args *a);
/* raw-bad KIND: one malformed request; the backend must refuse it and keep serving. */
int cmd_raw_bad(struct memxfront *f, const char *kind, unsigned timeout_ms);

#endif
