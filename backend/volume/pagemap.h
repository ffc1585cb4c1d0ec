/* pagemap.h — a volume's page map: logical page index -> what the page holds.
 *
 * PURE: no I/O, no pool calls, no refcounts (the caller keeps those, pageref.h),
 * no statistics.  It only remembers entries.
 *
 * Each entry is one of
 *   PM_NONE  never written (or discarded): reads return zeros, costs nothing;
 *   PM_ZERO  written as zeros: recorded, not stored;
 *   PM_PAGE  a pool page handle, with the XXH3-128 of its bytes (the volume
 *            record's check) and whether its write shared a stored page (dup);
 *   PM_LOST  the volume's records name a page no live server holds: reads must
 *            fail, never return zeros.
 *
 * Cost model (as nbdkit's allocators state theirs): two levels, a top array of
 * leaf pointers sized at init (8 bytes per PAGEMAP_LEAF_N pages: 512 KiB for a
 * 1 TiB volume, calloc'ed so untouched parts are never faulted in) and leaves of
 * PAGEMAP_LEAF_N entries (about 100 KiB each) allocated on the first entry that
 * is not PM_NONE and freed when the last such entry goes.  get and set are O(1),
 * two loads; a sparse volume pays only for the leaves it has written.
 *
 * Failure contract, per call:
 *   pagemap_init     may fail (-ENOMEM): set-up path, nothing to undo.
 *   pagemap_get      never fails.
 *   pagemap_set      fails (-ENOMEM) only when it must allocate a leaf, that is
 *                    when the entry is not PM_NONE and its leaf is empty; the map
 *                    is then unchanged.  Setting PM_NONE never fails.
 *   pagemap_has_leaf, pagemap_fini, pagemap_leaves  never fail.
 * Indexes must be below the npages given to init (asserted).
 */
#ifndef MEMX_PAGEMAP_H
#define MEMX_PAGEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PAGEMAP_LEAF_BITS 12
#define PAGEMAP_LEAF_N    (1u << PAGEMAP_LEAF_BITS)

enum pm_kind { PM_NONE, PM_ZERO, PM_PAGE, PM_LOST };

struct pm_ent {
    enum pm_kind kind;
    uint64_t page;          /* PM_PAGE: the pool page handle (never 0) */
    bool dup;               /* PM_PAGE: the write shared a page already stored */
    uint8_t hash[16];       /* PM_PAGE: XXH3-128 of its bytes */
};

struct pm_leaf;

struct pagemap {
    struct pm_leaf **top;
    size_t ntop;
    uint64_t npages;
    size_t leaves;          /* leaves allocated */
};

int pagemap_init(struct pagemap *m, uint64_t npages);
/* Frees the map; each (may be NULL) is called first for every PM_PAGE entry. */
void pagemap_fini(struct pagemap *m, void (*each)(void *arg, uint64_t page), void *arg);

struct pm_ent pagemap_get(const struct pagemap *m, uint64_t idx);
/* Installs e at idx and returns in *old what was there (may be NULL). */
int pagemap_set(struct pagemap *m, uint64_t idx, const struct pm_ent *e, struct pm_ent *old);
/* Whether idx's leaf exists (some entry within PAGEMAP_LEAF_N of it is not PM_NONE):
 * lets a walk over a huge, sparse range skip what was never written. */
bool pagemap_has_leaf(const struct pagemap *m, uint64_t idx);
size_t pagemap_leaves(const struct pagemap *m);

#endif
