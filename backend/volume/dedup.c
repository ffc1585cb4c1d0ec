/* dedup.c — the content index and its byte cache; see dedup.h.
 *
 * One entry per indexed page, in two tables (htab.h): by hash (lookups on
 * write; several pages may share a key) and by page handle (forget on free).  The cache is a ring of page-sized slots
 * replaced in FIFO order: duplicates of a guest image arrive close together
 * when guests boot together, and FIFO costs nothing per hit.
 *
 * The cache is faulted in a chunk at a time as the FIFO hand first reaches it
 * (MADV_POPULATE_WRITE): on these VMs a first touch costs 13-20 us per page
 * against about 1 us per page populated in bulk, and each of the first 16 MiB
 * of pages stored would otherwise pay it on a guest's write.  Measured per new
 * page indexed (hash, lookup, insert, cache copy): 12-17 us into a fresh cache
 * faulted page by page, 3-5 us populated by chunk (the rest is this VM's
 * first access to a new mapping), 0.4-0.5 us once the ring is warm.
 */
#include "dedup.h"

#include "htab.h"
#include "log.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23      /* Linux 5.14; older kernels say EINVAL and pages fault in one by one */
#endif

#define POPULATE_CHUNK 256u         /* cache slots faulted in at once: 1 MiB, about 0.2 ms */

/* Inlined, as built (SSE2 unless CFLAGS say -mavx2): 115-240 ns per 4 KiB
 * page here; libxxhash's runtime-dispatched XXH3_128bits_dispatch (AVX2 or
 * AVX-512) takes 80 ns but needs -lxxhash.  Either is well under 1% of a
 * page write through the pool. */
#define XXH_INLINE_ALL
#include <xxhash.h>

struct dent {
    struct dedup_hash h;
    pool_page_t page;
    struct hnode byhash;        /* key: h.lo */
    struct hnode bypage;        /* key: page */
    size_t slot;                /* cache slot + 1, or 0 */
    bool loaded;                /* from a volume record: canon is its hash */
    uint8_t canon[16];
};

struct dedup {
    struct htab byhash, bypage;
    size_t n;
    size_t cap;                 /* cache slots */
    uint8_t *bytes;             /* cap pages, mapped on first use */
    size_t populated;           /* slots below this are faulted in */
    struct dent **owner;        /* the entry each slot holds, or NULL */
    size_t hand, cached;
};

static dedup_hash_fn test_hash;
static long test_cache = -1;

void dedup_test_hooks(dedup_hash_fn hash, long cache_pages)
{
    test_hash = hash;
    test_cache = cache_pages;
}

struct dedup_hash dedup_hash_page(const void *page, uint8_t canon[16])
{
    if (test_hash && !canon)
        return test_hash(page);
    XXH128_hash_t x = XXH3_128bits(page, POOL_PAGE_SIZE);
    if (canon) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, x);
        memcpy(canon, c.digest, 16);
    }
    return test_hash ? test_hash(page) : (struct dedup_hash){ x.low64, x.high64 };
}

struct dedup_hash dedup_hash(const void *page) { return dedup_hash_page(page, NULL); }

struct dedup *dedup_new(size_t cache_pages)
{
    struct dedup *d = xcalloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->cap = test_cache >= 0 ? (size_t)test_cache : cache_pages;
    int rh = ht_init_n(&d->byhash, 1024), rp = ht_init_n(&d->bypage, 1024);
    if (d->cap)
        d->owner = xcalloc(d->cap, sizeof(*d->owner));
    if (rh < 0 || rp < 0 || (d->cap && !d->owner)) {
        dedup_free(d);
        return NULL;
    }
    return d;
}

void dedup_free(struct dedup *d)
{
    if (!d)
        return;
    ht_each(&d->bypage, n)
        free(ht_entry(n, struct dent, bypage));
    ht_fini(&d->byhash);
    ht_fini(&d->bypage);
    free(d->owner);
    if (d->bytes)
        munmap(d->bytes, d->cap * POOL_PAGE_SIZE);
    free(d);
}

size_t dedup_lookup(const struct dedup *d, struct dedup_hash h, pool_page_t *out, size_t max)
{
    size_t n = 0;
    ht_each_key(&d->byhash, h.lo, node) {
        const struct dent *e = ht_entry(node, struct dent, byhash);
        if (n == max)
            break;
        if (e->h.lo == h.lo && e->h.hi == h.hi)
            out[n++] = e->page;
    }
    return n;
}

static struct dent *find_page(const struct dedup *d, pool_page_t page)
{
    struct hnode *n = ht_find(&d->bypage, page);
    return n ? ht_entry(n, struct dent, bypage) : NULL;
}

static void cache_drop(struct dedup *d, struct dent *e)
{
    d->owner[e->slot - 1] = NULL;
    e->slot = 0;
    d->cached--;
}

static void cache_fill(struct dedup *d, struct dent *e, const void *bytes)
{
    if (!d->cap || e->slot)
        return;
    if (!d->bytes) {
        void *m = mmap(NULL, d->cap * POOL_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            /* Compares then read the stored page back: slower, never wrong. */
            mx_err("dedup: cannot map the %zu-page byte cache: running without it", d->cap);
            d->cap = 0;
            return;
        }
        d->bytes = m;
    }
    size_t s = d->hand;
    if (s >= d->populated) {
        size_t n = d->cap - s < POPULATE_CHUNK ? d->cap - s : POPULATE_CHUNK;
        /* Best effort: without it the pages fault in as they are written. */
        (void)madvise(d->bytes + s * POOL_PAGE_SIZE, n * POOL_PAGE_SIZE, MADV_POPULATE_WRITE);
        d->populated = s + n;
    }
    d->hand = (d->hand + 1) % d->cap;
    if (d->owner[s])
        cache_drop(d, d->owner[s]);
    memcpy(d->bytes + s * POOL_PAGE_SIZE, bytes, POOL_PAGE_SIZE);
    d->owner[s] = e;
    e->slot = s + 1;
    d->cached++;
}

static struct dent *insert(struct dedup *d, struct dedup_hash h, pool_page_t page)
{
    struct dent *e = xcalloc(1, sizeof(*e));
    if (!e) {
        /* Not indexed: later equal pages are stored anew, nothing is lost. */
        (void)xalloc_fail("dedup: an index entry");
        return NULL;
    }
    e->h = h;
    e->page = page;
    e->byhash.key = h.lo;
    e->bypage.key = page;
    ht_insert(&d->byhash, &e->byhash);
    ht_insert(&d->bypage, &e->bypage);
    d->n++;
    return e;
}

void dedup_insert(struct dedup *d, struct dedup_hash h, pool_page_t page, const void *bytes)
{
    struct dent *e = insert(d, h, page);
    if (e)
        cache_fill(d, e, bytes);
}

void dedup_insert_loaded(struct dedup *d, const uint8_t canon[16], pool_page_t page)
{
    if (test_hash)
        return;
    XXH128_canonical_t c;
    memcpy(c.digest, canon, 16);
    XXH128_hash_t x = XXH128_hashFromCanonical(&c);
    struct dent *e = insert(d, (struct dedup_hash){ x.low64, x.high64 }, page);
    if (!e)
        return;
    e->loaded = true;
    memcpy(e->canon, canon, 16);
}

const uint8_t *dedup_record_hash(const struct dedup *d, pool_page_t page)
{
    const struct dent *e = find_page(d, page);
    return e && e->loaded ? e->canon : NULL;
}

void dedup_forget(struct dedup *d, pool_page_t page)
{
    struct dent *e = find_page(d, page);
    if (!e)
        return;
    ht_remove(&d->bypage, &e->bypage);
    ht_remove(&d->byhash, &e->byhash);
    if (e->slot)
        cache_drop(d, e);
    d->n--;
    free(e);
}

const void *dedup_cached(struct dedup *d, pool_page_t page)
{
    struct dent *e = find_page(d, page);
    return e && e->slot ? d->bytes + (e->slot - 1) * POOL_PAGE_SIZE : NULL;
}

void dedup_cache_put(struct dedup *d, pool_page_t page, const void *bytes)
{
    struct dent *e = find_page(d, page);
    if (e)
        cache_fill(d, e, bytes);
}

void dedup_get_stats(const struct dedup *d, struct dedup_stats *st)
{
    st->entries = d->n;
    st->cached = d->cached;
    st->cache_bytes = (uint64_t)d->cap * POOL_PAGE_SIZE;
}
