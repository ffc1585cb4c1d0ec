/* dedup.h — the content index behind page de-duplication.
 *
 * Maps the XXH3-128 hash of a stored pool page to that page, for every page
 * the volume layer holds (host-wide: all volumes of all guests).  A hash hit is
 * only a candidate: the caller compares the bytes before sharing, so a
 * collision can never return wrong data, and several pages may carry one hash.
 * Pool pages are immutable once written (volumes write out of place), so an
 * entry is valid until its page is freed; the caller forgets it then.
 *
 * Refcounts are not kept here: they live in the volume layer's one refcount
 * table.  Beside the index sits a bounded cache of the bytes of recently
 * stored or compared pages, so that the byte compare of a duplicate usually
 * needs no pool read (a round trip to a memory server).
 *
 * Memory: dedup_new returns NULL (set-up).  Nothing else fails: an entry that
 * cannot be allocated is not indexed (later equal pages are stored anew), a
 * cache that cannot be mapped is done without (compares read the page back).
 * Never wrong, at worst less shared.
 */
#ifndef MEMX_DEDUP_H
#define MEMX_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool.h"

#define DEDUP_CACHE_PAGES 4096u     /* default byte cache: 16 MiB */

struct dedup;

struct dedup_hash {
    uint64_t lo, hi;
};

typedef struct dedup_hash (*dedup_hash_fn)(const void *page);

struct dedup_stats {
    uint64_t entries;           /* pages in the index */
    uint64_t cached;            /* of those, with bytes in the cache */
    uint64_t cache_bytes;       /* memory the cache may use */
};

struct dedup *dedup_new(size_t cache_pages);
void dedup_free(struct dedup *d);

/* XXH3-128 of a 4 KiB page (or the test hook's hash). */
struct dedup_hash dedup_hash(const void *page);
/* The same, and when canon is not NULL the page's real XXH3-128 in canonical
 * form (what pool_hash() writes, the volume record's check) from the same
 * pass: a stored page is hashed once, not once per use. */
struct dedup_hash dedup_hash_page(const void *page, uint8_t canon[16]);

/* Fills up to max pages stored under h, most recently inserted first. */
size_t dedup_lookup(const struct dedup *d, struct dedup_hash h, pool_page_t *out, size_t max);
/* Records a freshly stored page and caches its bytes. */
void dedup_insert(struct dedup *d, struct dedup_hash h, pool_page_t page, const void *bytes);
/* Records a page known only by its volume record's hash (canonical XXH3-128),
 * as a restarted backend loads its volumes: the index is rebuilt from the
 * records in the pool, no bytes are read.  The hash is kept for the compare
 * read (dedup_record_hash).  Under a test hash hook (whose key the record
 * cannot give) the page is not indexed. */
void dedup_insert_loaded(struct dedup *d, const uint8_t canon[16], pool_page_t page);
/* The record hash an entry was loaded with, or NULL: reading it back for a
 * compare must check it (an adopted slab's replica may have missed writes). */
const uint8_t *dedup_record_hash(const struct dedup *d, pool_page_t page);
/* The page is being freed: drop its entry (a no-op for pages never inserted). */
void dedup_forget(struct dedup *d, pool_page_t page);
/* The page's bytes if cached, else NULL.  Valid until the next call. */
const void *dedup_cached(struct dedup *d, pool_page_t page);
/* Caches the bytes of an indexed page (read back for a compare). */
void dedup_cache_put(struct dedup *d, pool_page_t page, const void *bytes);

void dedup_get_stats(const struct dedup *d, struct dedup_stats *st);

/* Test and benchmark hooks, process-wide: a hash function to force collisions
 * (NULL: XXH3-128), and the cache size later dedup_new() calls use instead of
 * theirs (negative: theirs). */
void dedup_test_hooks(dedup_hash_fn hash, long cache_pages);

#endif
