/* barrier.h — the memory barriers of MemX's shared rings, for the backend
 * (backend/xen/ring.c) and the frontend (frontend/front_ring.c) alike, in the
 * style of liburing's barrier.h.
 *
 * A blkif ring is shared with another domain (or, on the sim platform,
 * another process) running on another CPU.  Its indices are plain uint32_t
 * in the shared page, so they are read and written with relaxed atomics
 * (MX_READ_ONCE / MX_WRITE_ONCE: one access each, never torn, never cached
 * in a register) and ordered with explicit fences placed where Xen's
 * xen/io/ring.h macros place xen_rmb/xen_wmb/xen_mb:
 *
 *   mx_smp_wmb()  earlier stores (entries) before later stores (the producer index)
 *   mx_smp_rmb()  earlier loads (the producer index) before later loads (entries)
 *   mx_smp_mb()   a store (an index or event field) before a later load (the
 *                 other side's index): the "one of us sees the other" handshake
 *                 that decides whether an event must be sent
 *
 * As C11 fences: rmb is an acquire fence and wmb a release fence (each a
 * little stronger than the Linux macro of the same name, which costs nothing
 * on x86 and is what C11 offers); mb is seq_cst, the only fence that orders a
 * store before a later load.  Every use says which fence on the other side
 * it pairs with; a fence without a partner orders nothing.
 *
 * mx_load_acquire / mx_store_release are for a single flag or index that
 * carries its own ordering (tests polling a ring use them).
 */
#ifndef MEMX_BARRIER_H
#define MEMX_BARRIER_H

#define mx_smp_mb()  __atomic_thread_fence(__ATOMIC_SEQ_CST)
#define mx_smp_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define mx_smp_wmb() __atomic_thread_fence(__ATOMIC_RELEASE)

/* x is an lvalue in shared memory (e.g. sring->req_prod). */
#define MX_READ_ONCE(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define MX_WRITE_ONCE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* p points into shared memory. */
#define mx_load_acquire(p)     __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define mx_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)

#endif
