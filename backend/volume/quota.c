/* quota.c — a volume's page quota (the target's quota=<size>): how many
 * pages the volume may hold in the pool, so that one guest cannot fill the
 * pool every other guest writes to.
 *
 * What counts: the volume's map entries that name a pool page (stored_pages
 * + dup_pages in its stats): a page written once, or overwritten any number
 * of times, counts once; zero pages, discarded and never-written pages do
 * not.  A shared (de-duplicated) page counts for every volume that maps it:
 * the quota is what the volume holds, not what it alone costs.
 *
 * When: a guest write is admitted or refused as a whole before any of its
 * pages is issued (vquota_admit): if the pages it would add to the map,
 * with the pages other writes in flight will add, exceed the quota, it
 * fails with -ENOSPC and nothing of it is written.  A page that already
 * holds data is never refused (an overwrite adds nothing).  A page being
 * added is reserved by its write state (struct active.quota_held) from
 * issue until its entry is in the map (vquota_settle) or its last write
 * ends (vquota_drop), so concurrent writes cannot overshoot the quota.
 *
 * A volume loaded with more pages than its quota (the quota was lowered)
 * keeps them: overwrites go on, new pages are refused until it is below.
 *
 * Bound: an overwrite of a page with data reserves nothing; if the guest
 * zeroes or discards that page while the overwrite is in flight, the
 * overwrite lands as a new page past the check.  The quota can be exceeded
 * only by pages a guest races against itself that way, never by writes to
 * pages it had not written.
 */
#include "volume_int.h"

#include <errno.h>
#include <string.h>

static bool page_zero(const uint8_t *p)
{
    return p[0] == 0 && memcmp(p, p + 1, VOLUME_PAGE_SIZE - 1) == 0;
}

uint64_t vquota_used(const struct volume *v) { return v->st.stored_pages + v->st.dup_pages; }

/* Whether a write storing data at idx would add a page to what the volume holds. */
static bool adds_page(struct volume *v, uint64_t idx)
{
    if (pagemap_get(&v->map, idx).kind == PM_PAGE)
        return false;
    const struct active *a = (const struct active *)ht_find(&v->active, idx);
    return !(a && a->quota_held);
}

int vquota_admit(struct volume *v, uint64_t sector, uint32_t nsect, const uint8_t *buf)
{
    struct vquota *q = &v->quota;
    if (!q->limit)
        return 0;
    uint64_t byte = sector * VOLUME_SECTOR_SIZE, end = byte + (uint64_t)nsect * VOLUME_SECTOR_SIZE, need = 0;
    while (byte < end) {
        uint64_t idx = byte / VOLUME_PAGE_SIZE, off = byte % VOLUME_PAGE_SIZE;
        uint64_t len = end - byte < VOLUME_PAGE_SIZE - off ? end - byte : VOLUME_PAGE_SIZE - off;
        /* A full page of zeros is recorded, not stored (volume.c write_page). */
        bool zeros = len == VOLUME_PAGE_SIZE && page_zero(buf);
        if (!zeros && adds_page(v, idx))
            need++;
        buf += len;
        byte += len;
    }
    uint64_t have = vquota_used(v) + q->reserved;
    if (!need || have + need <= q->limit)
        return 0;
    q->refused++;
    if (mx_ratelimit_ok(&q->rl, 5000))
        vol_warn(v, "write refused (ENOSPC): it needs %llu new page(s), the volume holds %llu of its quota of "
                 "%llu pages (%u such suppressed)", (unsigned long long)need, (unsigned long long)vquota_used(v),
                 (unsigned long long)q->limit, q->rl.last_suppressed);
    return -ENOSPC;
}

void vquota_hold(struct volume *v, struct active *a, uint64_t idx)
{
    if (!v->quota.limit || a->quota_held || pagemap_get(&v->map, idx).kind == PM_PAGE)
        return;
    a->quota_held = true;
    v->quota.reserved++;
}

void vquota_settle(struct volume *v, struct active *a, struct pm_ent e, struct pm_ent old)
{
    /* The page is in the map now: counted there, no longer reserved. */
    if (a && a->quota_held && e.kind == PM_PAGE && old.kind != PM_PAGE) {
        a->quota_held = false;
        v->quota.reserved--;
    }
}

void vquota_drop(struct volume *v, struct active *a)
{
    if (a->quota_held) {
        a->quota_held = false;
        v->quota.reserved--;
    }
}

void volume_set_quota(struct volume *v, uint64_t bytes)
{
    v->quota.limit = bytes / VOLUME_PAGE_SIZE;
}
