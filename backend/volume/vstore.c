/* vstore.c — storing one full page for a write, with de-duplication.
 *
 * A full page about to be stored is hashed (dedup.h holds the content index),
 * and each stored page with that hash is compared byte for byte (from the
 * index's byte cache, else read back from the pool) before the new entry
 * shares it.  Sharing is copy-on-write for free: writes go out of place
 * anyway, so an overwrite or discard of one copy only drops a reference.  A
 * replayed write of the same bytes shares the page its entry already holds:
 * the refcount ends where it was.
 *
 * Invariant preventing data loss: a candidate is held (pageref_get) from the
 * lookup until it is shared or rejected, so it cannot be freed and its handle
 * reused while it is being compared.
 *
 * Memory: a failed allocation here only costs the sharing (the page is stored
 * anew); the request never fails for it.
 */
#include "volume_int.h"
#include "xalloc.h"

#include <errno.h>
#include <string.h>

static void written(void *arg, int status, pool_page_t page);

/* Stores a fresh copy of the page, under the volume's ownership, with its
 * record (one round trip: the page's replicas keep both). */
static void store_new(struct pop *p, const void *data)
{
    struct volume *v = p->r->v;
    if (v->meta) {
        struct pool_wrec rec = { .lpn = p->idx, .seq = p->rseq };
        memcpy(rec.hash, p->phash, 16);
        pool_write_vol(v->vs->pool, data, volmeta_vid(v->meta), volmeta_epoch(v->meta), &rec, written, p);
    } else
        pool_write_new(v->vs->pool, data, written, p);
}

/* Lets go of the candidates not tried yet, from cand[from]. */
static void drop_cands(struct pop *p, unsigned from)
{
    for (unsigned i = from; i < p->ncand; i++)
        pageref_put(&p->r->v->vs->refs, p->cand[i]);
    p->ci = p->ncand;
}

static void share(struct pop *p)
{
    struct volumes *vs = p->r->v->vs;
    pool_page_t page = p->cand[p->ci];
    drop_cands(p, p->ci + 1);
    vs->hits++;
    vol_stored(p, 0, (struct pm_ent){ .kind = PM_PAGE, .page = page, .dup = true });
}

static void written(void *arg, int status, pool_page_t page)
{
    struct pop *p = arg;
    struct volumes *vs = p->r->v->vs;
    struct volume *v = p->r->v;
    if (status == -ESTALE && v->meta)
        volmeta_fence(v->meta);
    /* Invariant: nothing was acknowledged, and the write keeps its place
     * (its sequence numbers were taken at issue): it is only sent again,
     * placed anew (the pool gave its slot back). */
    if ((status == -EAGAIN && vol_hold_again(p, AG_STORE)) ||
        (status == -EHOSTUNREACH && vol_hold_unreach(p, AG_STORE)))
        return;
    if (status == -EAGAIN || status == -EHOSTUNREACH)
        status = -EIO;
    if (status < 0) {
        vol_stored(p, status, (struct pm_ent){ .kind = PM_NONE });
        return;
    }
    /* POOL_WRITE_FEW: stored, but its record is not on R servers: published the slow way. */
    p->held = v->meta && status == 0;
    pageref_new(&vs->refs, page);
    if (p->hashed) {
        /* An equal page may have been stored while this one was in flight
         * (guests booting together write the same pages at once): share that
         * one and give this back, so concurrency costs a write, not space. */
        pool_page_t c[MAX_CAND];
        size_t n = dedup_lookup(vs->dd, p->hash, c, MAX_CAND);
        for (size_t i = 0; i < n; i++) {
            const void *b = dedup_cached(vs->dd, c[i]);
            if (b && memcmp(b, p->data, VOLUME_PAGE_SIZE) == 0) {
                if (pageref_get(&vs->refs, c[i]) < 0)
                    break;      /* keep our own copy */
                if (v->meta) {
                    /* The servers' record of this write names our copy: the
                     * shared page's record goes out as seq + 1, which wins
                     * over it and loses to any later write, and our copy
                     * stays until that record is published (volume.c). */
                    p->rseq++;
                    p->late_copy = page;
                } else {
                    pageref_put(&vs->refs, page);   /* never indexed, one reference: freed */
                }
                vs->late_hits++;
                vol_stored(p, 0, (struct pm_ent){ .kind = PM_PAGE, .page = c[i], .dup = true });
                return;
            }
        }
    }
    if (p->hashed)
        dedup_insert(vs->dd, p->hash, page, p->data);
    vol_stored(p, 0, (struct pm_ent){ .kind = PM_PAGE, .page = page });
}

void vstore_again(struct pop *p)
{
    store_new(p, p->data);
}

static void compared(void *arg, int status);

/* Tries the remaining candidates, from the byte cache where it can; writes a
 * new page when none is equal. */
static void try_next(struct pop *p)
{
    struct volumes *vs = p->r->v->vs;
    while (p->ci < p->ncand) {
        pool_page_t c = p->cand[p->ci];
        const void *b = dedup_cached(vs->dd, c);
        if (!b) {
            if (!p->cmp)
                p->cmp = xcalloc(1, VOLUME_PAGE_SIZE);
            if (!p->cmp) {
                (void)xalloc_fail("volume %s: a de-dup compare buffer", p->r->v->name);
                drop_cands(p, p->ci);
                break;
            }
            vs->compare_reads++;
            const uint8_t *rh = dedup_record_hash(vs->dd, c);
            if (rh)
                pool_read_checked(vs->pool, c, rh, p->cmp, compared, p);
            else
                pool_read(vs->pool, c, p->cmp, compared, p);
            return;
        }
        if (memcmp(b, p->data, VOLUME_PAGE_SIZE) == 0) {
            share(p);
            return;
        }
        vs->collisions++;
        pageref_put(&vs->refs, c);
        p->ci++;
    }
    store_new(p, p->data);
}

static void compared(void *arg, int status)
{
    struct pop *p = arg;
    struct volumes *vs = p->r->v->vs;
    pool_page_t c = p->cand[p->ci];
    /* A failed read only costs the sharing: the page is stored anew. */
    if (status == 0) {
        dedup_cache_put(vs->dd, c, p->cmp);
        if (memcmp(p->cmp, p->data, VOLUME_PAGE_SIZE) == 0) {
            share(p);
            return;
        }
        vs->collisions++;
    }
    pageref_put(&vs->refs, c);
    p->ci++;
    try_next(p);
}

void vstore_page(struct pop *p, const uint8_t *data)
{
    struct volumes *vs = p->r->v->vs;
    p->data = data;
    if (!vol_dd(p->r->v)) {
        if (p->r->v->meta)
            dedup_hash_page(data, p->phash);
        store_new(p, data);
        return;
    }
    /* One pass gives the index's hash and the record's check alike. */
    p->hash = dedup_hash_page(data, p->r->v->meta ? p->phash : NULL);
    p->hashed = true;
    p->ncand = (unsigned)dedup_lookup(vs->dd, p->hash, p->cand, MAX_CAND);
    /* Held across the compares (the invariant above); a candidate that
     * cannot be held is not tried. */
    for (unsigned i = 0; i < p->ncand; i++)
        if (pageref_get(&vs->refs, p->cand[i]) < 0) {
            p->ncand = i;
            break;
        }
    p->ci = 0;
    try_next(p);
}
