/* vmap.c — changing a volume's page map: the per-page ordering check (a
 * write issued earlier never replaces one issued later), the statistics every
 * change moves, and the record that tells the pool's servers (volmeta.h).
 *
 * Invariant preventing data loss: the page an entry replaces is let go only
 * once the record replacing it is published, and never when that failed with
 * -ESTALE (fenced: the volume's new owner may read it).
 *
 * Records of stored pages come with the pages (pool_write_vol): a slab
 * copied by re-replication lacks them, so vol_republish_recopied sends the
 * records of its pages the other way (volpub.c).
 */
#include "volume_int.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void count(struct volume *v, struct pm_ent e, int64_t d)
{
    struct volumes *vs = v->vs;
    if (e.kind == PM_PAGE) {
        if (e.dup)
            v->st.dup_pages += (uint64_t)d;
        else
            v->st.stored_pages += (uint64_t)d;
        vs->entries += (uint64_t)d;
    } else if (e.kind == PM_ZERO) {
        v->st.zero_pages += (uint64_t)d;
        vs->zero += (uint64_t)d;
    }
    if (e.kind != PM_NONE) {
        v->st.logical_pages += (uint64_t)d;
        vs->logical += (uint64_t)d;
    }
}

int vol_map_set(struct volume *v, uint64_t idx, struct pm_ent e, struct pm_ent *old)
{
    struct pm_ent was = pagemap_get(&v->map, idx);
    /* A replayed write that shared the page it already had keeps its accounting. */
    if (e.kind == PM_PAGE && was.kind == PM_PAGE && e.page == was.page)
        e.dup = was.dup;
    int rc = pagemap_set(&v->map, idx, &e, NULL);
    if (rc < 0)
        return rc;
    count(v, was, -1);
    count(v, e, 1);
    *old = was;
    return 0;
}

/* Applies a finished page write unless a later-issued one got there first:
 * 1 installed, 0 superseded, -ENOMEM (no leaf).  Unless installed, e's page
 * reference is let go.  The replaced entry is handed back in *old instead of
 * let go: with metadata in the pool it may be let go only once the servers
 * hold the record that replaces it (a fenced write must not free a page the
 * volume's new owner still reads). */
int vol_install(struct volume *v, struct active *a, uint64_t idx, uint64_t seq, struct pm_ent e,
                   struct pm_ent *old)
{
    old->kind = PM_NONE;
    if (a && seq <= a->applied) {
        if (e.kind == PM_PAGE)
            pageref_put(&v->vs->refs, e.page);
        return 0;
    }
    if (vol_map_set(v, idx, e, old) < 0) {
        /* The old entry stays as it was; nothing names the new page. */
        if (e.kind == PM_PAGE)
            pageref_put(&v->vs->refs, e.page);
        return xalloc_fail("volume %s: a page map leaf", v->name);
    }
    if (a)
        a->applied = seq;
    vquota_settle(v, a, e, *old);
    return 1;
}

/* vol_install() without metadata: the replaced page goes at once. */
int vol_apply(struct volume *v, struct active *a, uint64_t idx, uint64_t seq, struct pm_ent e)
{
    struct pm_ent old;
    int rc = vol_install(v, a, idx, seq, e, &old);
    if (old.kind == PM_PAGE)
        pageref_put(&v->vs->refs, old.page);
    return rc;
}

/* The record replacing old is published (status 0) or not.  Invariant:
 * old goes only once a record replaces it on the servers; else their newest
 * record still names it (or, fenced, the new owner's may), and a slot let go
 * would be reused by another page that an attach after a crash would read
 * in its place.  So it stays, unreferenced by the map, until the volume is
 * deleted (a page per failed write; the write failed to the guest). */
void vol_release_old(struct volume *v, struct pm_ent old, int status)
{
    if (old.kind != PM_PAGE)
        return;
    if (status) {
        if (status == -ESTALE)
            return;         /* the new owner's now */
        if (mx_ratelimit_ok(&v->rl_kept, 5000))
            vol_warn(v, "a write's record did not reach the servers (%s): the page it replaces is kept "
                     "(%u such suppressed)", strerror(-status), v->rl_kept.last_suppressed);
        /* Let go when the volume is deleted (its records go with it); out
         * of memory for the list, only then: never before. */
        if (v->nkept == v->capkept) {
            size_t cap = v->capkept ? v->capkept * 2 : 8;
            pool_page_t *k = xreallocarray(v->kept, cap, sizeof(*k));
            if (!k)
                return;
            v->kept = k;
            v->capkept = cap;
        }
        v->kept[v->nkept++] = old.page;
        return;
    }
    pageref_put(&v->vs->refs, old.page);
}

/* Tells the pool's servers what page idx now is (volmeta.h); cb runs when
 * they have it (at once with -ENOMEM if the record cannot be queued).  Only
 * for volumes that keep metadata in the pool. */
/* The servers' record of map entry e at idx, numbered rseq. */
static struct proto_rec record_of(const struct volume *v, uint64_t idx, uint64_t rseq, const struct pm_ent *e)
{
    struct proto_rec r = { .lpn = idx, .seq = rseq };
    if (e->kind == PM_PAGE) {
        r.kind = PROTO_REC_PAGE;
        pool_page_locate(v->vs->pool, e->page, &r.uid, &r.page);
        memcpy(r.hash, e->hash, 16);
    } else {
        r.kind = e->kind == PM_ZERO ? PROTO_REC_ZERO : PROTO_REC_NONE;
    }
    return r;
}

void vol_publish(struct volume *v, uint64_t idx, uint64_t rseq, const struct pm_ent *e,
                    volmeta_pub_cb cb, void *arg)
{
    struct proto_rec r = record_of(v, idx, rseq, e);
    if (volmeta_publish(v->meta, &r, cb, arg) < 0)
        cb(arg, -ENOMEM);
}

/* The record that replaced old at idx (rseq, e) is on R servers: the
 * servers of old's copy that are not among e's get it too (volfwd.c).  Before
 * old is let go: its slab may leave with it.  A shared copy's record was
 * published to every server already. */
void vol_forward(struct volume *v, struct pm_ent old, uint64_t idx, uint64_t rseq, const struct pm_ent *e)
{
    if (!v->meta || old.kind != PM_PAGE || old.dup)
        return;
    struct pool *pool = v->vs->pool;
    int was[8], now[8], to[8], n = 0;
    int nw = pool_page_servers(pool, old.page, was, 8);
    int nn = e->kind == PM_PAGE ? pool_page_servers(pool, e->page, now, 8) : 0;
    for (int i = 0; i < nw; i++) {
        bool has = false;
        for (int k = 0; k < nn && !has; k++)
            has = now[k] == was[i];
        if (!has)
            to[n++] = was[i];
    }
    if (!n)
        return;
    struct proto_rec r = record_of(v, idx, rseq, e);
    volmeta_forward(v->meta, to, n, &r);
}

uint64_t vol_next_rseq(struct volume *v) { return v->meta ? volmeta_next_seq(v->meta) : 0; }

static void republished(void *arg, int status)
{
    struct volume *v = arg;
    if (status && status != -ESTALE && mx_ratelimit_ok(&v->rl_again, 5000))
        vol_warn(v, "a record of a re-replicated page could not be published again: %s (%u such suppressed)",
                 strerror(-status), v->rl_again.last_suppressed);
}

/* Invariant: a page whose record came with it is on R servers with that
 * record, or its record is sent here to the in-sync servers.  A page with a
 * write in flight is skipped: that write's own record is newer and goes out
 * with it (and a record sent now, numbered after the write's, would win over
 * it).  Others get a new number: nothing issued earlier is still open. */
unsigned vol_republish_recopied(struct volume *v)
{
    struct pool *pool = v->vs->pool;
    unsigned n = 0;
    if (!v->meta || v->state != V_READY || volmeta_fenced(v->meta))
        return 0;
    for (uint64_t idx = 0; idx < v->npages; idx++) {
        if (!pagemap_has_leaf(&v->map, idx)) {
            idx |= PAGEMAP_LEAF_N - 1;
            continue;
        }
        struct pm_ent e = pagemap_get(&v->map, idx);
        if (e.kind != PM_PAGE || e.dup || !pool_page_recopied(pool, e.page) || ht_find(&v->active, idx))
            continue;
        vol_publish(v, idx, vol_next_rseq(v), &e, republished, v);
        n++;
    }
    return n;
}

/* Invariant: a page whose record is on servers is let go only once a newer
 * record of its page is durable; else an attach after a crash could find
 * its record, the newest there, naming a slot another page took since. */
int vol_defer_free(struct volume *v, uint64_t idx, pool_page_t page, uint64_t seq)
{
    struct hnode *n = ht_find(&v->active, idx);
    if (n && ht_entry(n, struct active, h)->durable > seq)
        return 1;
    struct dfree *d = xcalloc(1, sizeof(*d));
    if (!d)
        return xalloc_fail("volume %s: a superseded page", v->name);
    *d = (struct dfree){ .idx = idx, .seq = seq, .page = page, .next = v->dfree };
    v->dfree = d;
    return 0;
}

void vol_durable(struct volume *v, uint64_t idx, uint64_t seq)
{
    struct hnode *n = ht_find(&v->active, idx);
    if (n && ht_entry(n, struct active, h)->durable < seq)
        ht_entry(n, struct active, h)->durable = seq;
    for (struct dfree **pp = &v->dfree, *d; (d = *pp);) {
        if (d->idx == idx && d->seq < seq) {
            *pp = d->next;
            pageref_put(&v->vs->refs, d->page);
            free(d);
        } else {
            pp = &d->next;
        }
    }
}
