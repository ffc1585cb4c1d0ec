/* pageref.c — pool page reference counts; see pageref.h.
 *
 * A row exists only for counts of 2 and more, so the common page (one map
 * entry, nothing in flight) costs no memory here at all.
 */
#include "pageref.h"

#include "cluster.h"
#include "dedup.h"

#include <errno.h>
#include <stdlib.h>

struct pref {
    struct hnode h;         /* key: pool page */
    uint64_t refs;          /* always >= 2: a page with one reference has no row */
};

int pagerefs_init(struct pagerefs *pr, struct pool *pool, struct dedup *dd)
{
    pr->pool = pool;
    pr->dd = dd;
    pr->live = 0;
    return ht_init(&pr->rows);
}

void pagerefs_fini(struct pagerefs *pr)
{
    ht_each(&pr->rows, n)
        free(n);
    ht_fini(&pr->rows);
}

void pageref_new(struct pagerefs *pr, pool_page_t page)
{
    (void)page;
    pr->live++;
}

int pageref_get(struct pagerefs *pr, pool_page_t page)
{
    struct pref *r = (struct pref *)ht_find(&pr->rows, page);
    if (r) {
        r->refs++;
        return 0;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->h.key = page;
    r->refs = 2;
    ht_insert(&pr->rows, &r->h);
    return 0;
}

void pageref_put(struct pagerefs *pr, pool_page_t page)
{
    struct pref *r = (struct pref *)ht_find(&pr->rows, page);
    if (!r) {
        /* The last reference: nothing names the page any more. */
        if (pr->dd)
            dedup_forget(pr->dd, page);
        pr->live--;
        pool_free_page(pr->pool, page);
        return;
    }
    if (--r->refs == 1) {
        ht_remove(&pr->rows, &r->h);
        free(r);
    }
}

int pageref_loaded(struct pagerefs *pr, pool_page_t page)
{
    if (pool_page_hold(pr->pool, page)) {
        pr->live++;
        return 1;
    }
    return pageref_get(pr, page);
}
