/* xalloc.h — MemX's one allocation policy.
 *
 * Nothing in a MemX daemon aborts on out-of-memory: memx-backd serves every
 * guest of the host, so one guest's request (or one pool operation) that
 * cannot get memory fails alone.
 *
 *   set-up paths (start, attach, config, a new connection): a failed
 *       allocation is an error returned to the caller (NULL or -ENOMEM), who
 *       reports it with the object's name;
 *   data paths (guest requests, pool and metadata operations): objects come
 *       from free lists or per-device arrays sized at set-up, so the steady
 *       state allocates nothing; where one must still be allocated and that
 *       fails, the operation completes with -ENOMEM through its normal
 *       completion path and the failure is logged rate-limited (xalloc_fail).
 *
 * The wrappers below only add overflow checks; they never exit.
 */
#ifndef MEMX_XALLOC_H
#define MEMX_XALLOC_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "log.h"

/* calloc(n, size), NULL on overflow or exhaustion. */
static inline void *xcalloc(size_t n, size_t size) { return calloc(n, size); }

/* realloc(p, n * size), NULL (p untouched) on overflow or exhaustion. */
static inline void *xreallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, n * size);
}

/* Logs that a data-path allocation for `what` (e.g. "vbd 3/51728: indirect
 * buffer") failed, at most once per second per call site, and returns
 * -ENOMEM for the caller to complete its operation with. */
#define xalloc_fail(...)                                                                            \
    ({                                                                                              \
        static struct mx_ratelimit xalloc_rl_;                                                      \
        if (mx_ratelimit_ok(&xalloc_rl_, 1000))                                                     \
            mx_err("out of memory: " __VA_ARGS__);                                                  \
        -ENOMEM;                                                                                    \
    })

#endif
