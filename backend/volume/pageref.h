/* pageref.h — the one place a pool page's reference count lives.
 *
 * Every pool page the volume layer holds has one implicit reference (normally
 * its map entry).  Only pages with more have a row: a read in flight on a page
 * being replaced, a candidate held across a de-dup compare, de-duplicated
 * pages shared by entries of any volumes.  The last put frees the page in the
 * pool and drops it from the content index, so no caller frees a page itself.
 *
 * Invariant preventing data loss: a page is freed only by the put that takes
 * its count to zero; every map entry, in-flight read and held candidate owns
 * exactly one reference.
 *
 * Failure contract: pagerefs_init -ENOMEM (set-up); pageref_get and
 * pageref_loaded -ENOMEM when a row must be allocated (the count is then
 * unchanged and the caller fails its operation); the others never fail.
 */
#ifndef MEMX_PAGEREF_H
#define MEMX_PAGEREF_H

#include <stdbool.h>
#include <stdint.h>

#include "htab.h"
#include "pool.h"

struct dedup;

struct pagerefs {
    struct pool *pool;
    struct dedup *dd;           /* NULL: no content index to keep in step */
    struct htab rows;           /* pages with more than one reference */
    uint64_t live;              /* pool pages held (each counted once however shared) */
};

int  pagerefs_init(struct pagerefs *pr, struct pool *pool, struct dedup *dd);
/* Forgets the counts; the pages stay in the pool (volumes outlive the table). */
void pagerefs_fini(struct pagerefs *pr);

/* A page this backend just stored: it has its one implicit reference. */
void pageref_new(struct pagerefs *pr, pool_page_t page);
/* One more reference to a held page. */
int  pageref_get(struct pagerefs *pr, pool_page_t page);
/* Drops one reference; the last frees the page. */
void pageref_put(struct pagerefs *pr, pool_page_t page);
/* A page named by a loaded volume record: 1 when this is its first holder
 * here (it now has its implicit reference: index it), 0 when it was held
 * already (one more reference: the entry shares it), or -ENOMEM. */
int  pageref_loaded(struct pagerefs *pr, pool_page_t page);

#endif
