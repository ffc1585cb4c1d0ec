/* slabs.h — the slot allocator of one pool slab: which of its pages are in
 * use.  Pure (no event loop, no fabric, no server state): the pool keeps one
 * per slab, and tests/unit/test_slabs.c drives it directly.
 *
 * A slab of n pages (n a multiple of 64) is a bitmap, a free count and a
 * hint word: scans start at the word the last take came from, so a slab that
 * fills front to back costs one word per take, not a pass over the bitmap.
 * Writes that follow each other take the slot right after the previous one
 * when it is free (slots_take_next), so they read back as one run.
 *
 * Nothing here can fail but slots_init (-ENOMEM): every other call is O(n/64)
 * at worst and allocates nothing.  Invariant that keeps data safe: a slot is
 * handed out (take, take_next, hold) only while its bit is clear, so two
 * pages never share a slot.
 */
#ifndef MEMX_SLABS_H
#define MEMX_SLABS_H

#include <stdbool.h>
#include <stdint.h>

struct slots {
    uint64_t *bits;             /* bit set: page in use */
    uint32_t n, nfree, hint;    /* pages, pages free, the word scans start at */
};

/* n: pages, a nonzero multiple of 64.  0, or -ENOMEM. */
int  slots_init(struct slots *s, uint32_t n);
void slots_fini(struct slots *s);

bool slots_in_use(const struct slots *s, uint32_t page);
/* Takes the first free slot from the hint word on; false when full. */
bool slots_take(struct slots *s, uint32_t *page);
/* The first slot of n (1..64) free consecutive slots inside one 64-slot
 * word, from the hint word on, so a run of writes lands in adjacent slots and
 * reads back as one run in a churned slab; false when no word has such a
 * stretch (nothing is taken then).  O(n/64 * n). */
bool slots_take_run(struct slots *s, unsigned n, uint32_t *page);
/* The slot right after `after` if it is free, else as slots_take. */
bool slots_take_next(struct slots *s, uint32_t after, uint32_t *page);
/* Takes this slot if it is free (a loaded volume holds a page it names);
 * false if it was taken already. */
bool slots_hold(struct slots *s, uint32_t page);
/* Gives a taken slot back: true; false (nothing changes) if it was free. */
bool slots_put(struct slots *s, uint32_t page);

#endif
