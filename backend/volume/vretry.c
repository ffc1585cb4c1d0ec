/* vretry.c — page operations the pool could not do now, held and tried again.
 *
 * A page operation is held instead of failing its guest request when the
 * pool says it could not be done *now*:
 *
 *  - EAGAIN: the memory servers cannot prove our claim of the volume current
 *    (their etcd view is stale).  Stores are sent again until they can; a
 *    record (vol_publish_again) for up to PUB_AGAIN_MS.
 *  - EHOSTUNREACH: every server that holds the page, or could take it, is
 *    unreachable (a flap of every replica, a host starved long enough to be
 *    declared down).  Reads, read-modify-write reads, stores and records are
 *    held for up to the table's io_hold_ms ([backend] io_hold_s), so a flap
 *    costs the guest a pause, not an I/O error: a swap page the guest could
 *    not write or read back is a process it kills.  After that, -EIO.
 *
 * Held operations wait on the volume's again list and are all tried once
 * per tick (HOLD_RETRY_MS while any waits for the claim, else
 * UNREACH_RETRY_MS).  The order they are retried in does not matter: a
 * write keeps the sequence numbers it took at issue, so the later-issued
 * write still wins (volume.c).  Memory: a held operation is the pop it was
 * already, so the list is bounded by the requests in flight.
 */
#include "volume_int.h"

#include <errno.h>

static int retry_tick(struct evloop *el, long long id, void *arg)
{
    struct volume *v = arg;
    (void)el;
    (void)id;
    struct pop *p = v->again;
    v->again = NULL;
    v->again_timer = 0;
    for (struct pop *next; p; p = next) {
        next = p->again_next;
        switch (p->again_kind) {
        case AG_PUBLISH: vol_publish(v, p->idx, p->rseq, &p->ent, vol_published, p); break;
        case AG_STORE:   vstore_again(p); break;
        case AG_READ:    vol_read_again(p); break;
        case AG_RMW:     vol_rmw_read_again(p); break;
        }
    }
    return -1;
}

/* Puts p on v's again list; false (p not held) without a timer. */
static bool hold(struct pop *p, enum again_kind kind, unsigned ms)
{
    struct volume *v = p->r->v;
    p->again_kind = kind;
    p->again_next = v->again;
    v->again = p;
    if (!v->again_timer)
        v->again_timer = evloop_add_timer(v->vs->el, ms, retry_tick, v);
    if (v->again_timer > 0)
        return true;
    v->again_timer = 0;
    v->again = p->again_next;
    return false;
}

static const char *kind_name(enum again_kind k)
{
    switch (k) {
    case AG_PUBLISH: return "records";
    case AG_STORE:   return "writes";
    case AG_READ:    return "reads";
    case AG_RMW:     return "partial writes";
    }
    return "operations";
}

bool vol_hold_again(struct pop *p, enum again_kind kind)
{
    struct volume *v = p->r->v;
    if (!v->meta || volmeta_fenced(v->meta))
        return false;
    if (kind == AG_PUBLISH) {
        uint64_t now = evloop_now_ms();
        if (!p->pub_again) {
            p->pub_again = true;
            p->again_since = now;
        } else if (now - p->again_since >= PUB_AGAIN_MS) {
            return false;
        }
    }
    if (mx_ratelimit_ok(&v->rl_again, 5000))
        vol_warn(v, "memory servers cannot prove our claim current (their etcd view is stale): %s sent again "
                 "(%u such suppressed)", kind_name(kind), v->rl_again.last_suppressed);
    return hold(p, kind, HOLD_RETRY_MS);
}

bool vol_unreach_wait(struct volume *v, uint64_t idx, uint64_t *since, const char *what)
{
    uint64_t now = evloop_now_ms();
    if (!v->vs->io_hold_ms || (v->meta && volmeta_fenced(v->meta)))
        return false;
    if (!*since) {
        *since = now;
        v->st.held_unreach++;
    } else if (now - *since >= v->vs->io_hold_ms) {
        /* Once per 5 s, not per page: a whole queue of held pages gives up together. */
        if (mx_ratelimit_ok(&v->rl_unreach_fail, 5000))
            vol_err(v, "page %llu: memory servers unreachable for %u ms: %s fail with EIO ([backend] io_hold_s) "
                    "(%u such suppressed)", (unsigned long long)idx, v->vs->io_hold_ms, what,
                    v->rl_unreach_fail.last_suppressed);
        return false;
    }
    if (mx_ratelimit_ok(&v->rl_unreach, 5000))
        vol_warn(v, "memory servers unreachable: %s held, tried again every %d ms for up to %u ms (%u such suppressed)",
                 what, UNREACH_RETRY_MS, v->vs->io_hold_ms, v->rl_unreach.last_suppressed);
    return true;
}

bool vol_hold_unreach(struct pop *p, enum again_kind kind)
{
    return vol_unreach_wait(p->r->v, p->idx, &p->unreach_since, kind_name(kind)) &&
           hold(p, kind, UNREACH_RETRY_MS);
}
