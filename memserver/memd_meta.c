/* memd_meta.c — volume claims and records as request -> reply (memd_meta.h).
 *
 * A volume is its current owner's: listing its records, dropping it, putting
 * records and writing its pages need the epoch it holds now and the identity
 * that claimed it (owner_check).  Claiming stays open to every key holder:
 * it is how a backend takes a volume over, and it fences the previous owner
 * visibly (logged here, and the old owner's device goes down).
 *
 * In etcd mode (volstore_etcd_enable) etcd's owners/ keys come first: a
 * request under an epoch below etcd's, or under a deleted owner key's, is
 * ESTALE, etcd's epoch is only its owner's (EPERM), and no write, claim or
 * drop is taken while the server cannot prove its view is recent (EAGAIN);
 * the checks of static mode then still apply (a claim etcd has not shown yet
 * may already have reached this server). */
#include "memd_meta.h"
#include "log.h"
#include "volstore.h"

#include <errno.h>
#include <string.h>

/* A peer may repeat a refused request at will: those are logged at a bounded rate. */
static struct mx_ratelimit rl_refused;

/* etcd's verdict: 0 or a refusal (-1 in static mode reads as 0).  A read
 * (write false) is answered without the freshness proof: stale data read is
 * harmless, a stale write is not. */
static int etcd_check(const struct volstore *vs, const struct memd_meta_peer *who, uint64_t vid,
                      uint64_t epoch, bool write, const char *what)
{
    int st = volstore_etcd_check(vs, vid, epoch, who->client);
    if (st < 0 || (st == EAGAIN && !write))
        return 0;
    if (st != EAGAIN && st && mx_ratelimit_ok(&rl_refused, 2000)) {
        uint64_t e = 0;
        const char *node = "";
        bool gone = false;
        volstore_etcd_owner(vs, vid, &e, &node, &gone);
        mx_warn("%s: %s (%s) %s volume %016llx under epoch %llu: refused, etcd gives epoch %llu to %s%s "
                "(%u such suppressed)", who->server, who->peer, who->client, what, (unsigned long long)vid,
                (unsigned long long)epoch, (unsigned long long)e, node, gone ? " (released or expired)" : "",
                rl_refused.last_suppressed);
    }
    return st;
}

/* 0, EAGAIN (etcd mode, a write without the freshness proof), ESTALE (not
 * the volume's current epoch: fenced, or no claim of it here) or EPERM
 * (another identity holds that epoch).  newer_ok: an epoch above the
 * volume's passes (a put or page write reaching a server that missed the
 * new owner's claim; a put then records who it came from).  An unknown
 * volume passes (a server that joined after the claim). */
static int owner_check(const struct volstore *vs, const struct memd_meta_peer *who, uint64_t vid,
                       uint64_t epoch, bool newer_ok, bool write, const char *what)
{
    uint64_t cur;
    int owner, st = etcd_check(vs, who, vid, epoch, write, what);
    if (st)
        return st;
    if (!volstore_owner(vs, vid, &cur, &owner))
        return 0;
    if (epoch < cur || (epoch > cur && !newer_ok))
        st = ESTALE;
    else if (epoch == cur && owner >= 0 && owner != who->owner)
        st = EPERM;
    if (st == EPERM && mx_ratelimit_ok(&rl_refused, 2000))
        mx_warn("%s: %s (%s) %s volume %016llx under epoch %llu it does not hold: refused (%u such suppressed)",
                who->server, who->peer, who->client, what, (unsigned long long)vid,
                (unsigned long long)epoch, rl_refused.last_suppressed);
    return st;
}

bool memd_meta_handles(int type)
{
    return type == PROTO_VOL_CLAIM || type == PROTO_VOL_DROP || type == PROTO_META_PUT ||
           type == PROTO_META_LIST;
}

static void answer_vol(struct volstore *vs, const struct memd_meta_peer *who, const struct proto_msg *q,
                       struct proto_msg *r)
{
    r->type = q->type == PROTO_VOL_CLAIM ? PROTO_VOL_CLAIM_R : PROTO_VOL_DROP_R;
    r->u.vol = q->u.vol;
    int st;
    if (q->type == PROTO_VOL_DROP) {
        st = owner_check(vs, who, q->u.vol.vid, q->u.vol.epoch, false, true, "drops");
        if (!st)
            st = volstore_drop(vs, q->u.vol.vid, q->u.vol.epoch);
        if (!st)
            mx_info("%s: volume %s dropped by %s", who->server, q->u.vol.name, who->client);
    } else {
        /* epoch 0 only asks; a claim etcd refuses reports the state as it stands. */
        st = q->u.vol.epoch ? etcd_check(vs, who, q->u.vol.vid, q->u.vol.epoch, true, "claims") : 0;
        uint64_t ask = st ? 0 : q->u.vol.epoch;
        int cst = volstore_claim(vs, q->u.vol.vid, q->u.vol.name, q->u.vol.size, ask,
                                  who->owner, &r->u.vol.epoch, &r->u.vol.size, &r->u.vol.nrecs);
        uint64_t ee;
        const char *node;
        bool gone;
        if (st && volstore_etcd_owner(vs, q->u.vol.vid, &ee, &node, &gone) && ee > r->u.vol.epoch)
            r->u.vol.epoch = ee;        /* the epoch that holds is etcd's */
        if (!st)
            st = cst;
        if (q->u.vol.epoch && !st)
            mx_info("%s: volume %s claimed by %s (epoch %llu, %llu records)", who->server,
                    q->u.vol.name, who->client, (unsigned long long)q->u.vol.epoch,
                    (unsigned long long)r->u.vol.nrecs);
        else if (st && st != EAGAIN)
            mx_warn("%s: claim of volume %s by %s (epoch %llu) refused: %s (epoch %llu holds)",
                    who->server, q->u.vol.name, who->client, (unsigned long long)q->u.vol.epoch,
                    strerror(st), (unsigned long long)r->u.vol.epoch);
    }
    r->status = (uint16_t)st;
}

/* What a put found before it went in: a put that moves the epoch up stands
 * for the claim this server missed (its sender holds it). */
struct put_ctx {
    bool known;
    uint64_t cur;
    int owner;
};

static struct put_ctx put_begin(const struct volstore *vs, uint64_t vid)
{
    struct put_ctx c = { .owner = -1 };
    c.known = volstore_owner(vs, vid, &c.cur, &c.owner);
    return c;
}

static void put_end(struct volstore *vs, const struct memd_meta_peer *who, uint64_t vid, uint64_t epoch,
                    const struct put_ctx *c, int st)
{
    uint64_t cur, nr, sz;
    if (!st && (!c->known || epoch > c->cur || c->owner < 0))
        volstore_claim(vs, vid, "", 0, epoch, who->owner, &cur, &sz, &nr);
}

int memd_meta_put_page_recs(struct volstore *vs, const struct memd_meta_peer *who, uint64_t vid,
                            uint64_t epoch, uint64_t uid, const uint32_t *slots,
                            const struct proto_wrec *recs, uint32_t n)
{
    struct put_ctx c = put_begin(vs, vid);
    int st = 0;
    for (uint32_t i = 0; !st && i < n; i++) {
        if (!recs[i].seq)
            continue;
        struct proto_rec r = { .lpn = recs[i].lpn, .seq = recs[i].seq, .uid = uid, .page = slots[i],
                               .kind = PROTO_REC_PAGE };
        memcpy(r.hash, recs[i].hash, 16);
        st = volstore_put_rec(vs, vid, epoch, &r);
    }
    put_end(vs, who, vid, epoch, &c, st);
    return st;
}

static void answer_meta(struct volstore *vs, const struct memd_meta_peer *who, const struct proto_msg *q,
                        struct proto_msg *r)
{
    r->type = q->type == PROTO_META_PUT ? PROTO_META_PUT_R : PROTO_META_LIST_R;
    r->u.meta.vid = q->u.meta.vid;
    r->u.meta.epoch = q->u.meta.epoch;
    if (q->type == PROTO_META_PUT) {
        /* A fenced owner's records never replace the new owner's (volstore_put checks the epoch),
         * and nobody else's records join the owner's. */
        struct put_ctx c = put_begin(vs, q->u.meta.vid);
        int st = owner_check(vs, who, q->u.meta.vid, q->u.meta.epoch, true, true, "puts records of");
        if (!st)
            st = volstore_put(vs, q->u.meta.vid, q->u.meta.epoch, q->u.meta.raw, q->u.meta.n);
        put_end(vs, who, q->u.meta.vid, q->u.meta.epoch, &c, st);
        if (st == ESTALE)
            mx_warn("%s: %s (%s) is fenced off volume %016llx (epoch %llu): records refused",
                    who->server, who->peer, who->client, (unsigned long long)q->u.meta.vid,
                    (unsigned long long)q->u.meta.epoch);
        r->status = (uint16_t)st;
        return;
    }
    /* One reply's worth; the caller encodes it before the next request. */
    static struct proto_rec recs[PROTO_REC_MAX];
    uint64_t cursor = q->u.meta.cursor;
    int st = owner_check(vs, who, q->u.meta.vid, q->u.meta.epoch, false, false, "lists");
    int n = st ? 0 : volstore_list(vs, q->u.meta.vid, &cursor, recs, PROTO_REC_MAX);
    if (st) {
        r->status = (uint16_t)st;
    } else if (n < 0) {
        r->status = ENOENT;
    } else {
        r->u.meta.n = (uint32_t)n;
        r->u.meta.recs = recs;
        r->u.meta.cursor = cursor;
    }
}

int memd_meta_answer(struct volstore *vs, const struct memd_meta_peer *who, const struct proto_msg *q,
                     struct proto_msg *r)
{
    if (!memd_meta_handles(q->type))
        return -1;
    memset(r, 0, sizeof(*r));
    r->req_id = q->req_id;
    if (q->type == PROTO_VOL_CLAIM || q->type == PROTO_VOL_DROP)
        answer_vol(vs, who, q, r);
    else
        answer_meta(vs, who, q, r);
    return 0;
}

int memd_meta_check_write(const struct volstore *vs, const struct memd_meta_peer *who, uint64_t vid,
                          uint64_t epoch)
{
    int st = owner_check(vs, who, vid, epoch, true, true, "writes pages of");
    if (st == ESTALE)
        mx_warn("%s: %s (%s) writes for a volume it no longer owns (epoch %llu): refused",
                who->server, who->peer, who->client, (unsigned long long)epoch);
    return st;
}

int memd_meta_check_free(const struct volstore *vs, const struct memd_meta_peer *who, uint64_t uid,
                         uint32_t flags)
{
    /* A volume (maybe attached elsewhere now) still points into it. */
    if (!(flags & PROTO_FREE_FORCE) && volstore_refs(vs, uid))
        return EBUSY;
    /* Invariant: a force only speaks for the requester's own volumes.  A
     * fenced owner's reconnect, rebuild or settle path believes the good
     * copies live elsewhere, but a volume another backend took over (or one
     * whose claim never reached us) may read this very copy: it stays. */
    if ((flags & PROTO_FREE_FORCE) && volstore_refs_foreign(vs, uid, who->owner)) {
        mx_warn("%s: %s (%s) force-freeing slab %016llx that another owner's volume records use: kept",
                who->server, who->peer, who->client, (unsigned long long)uid);
        return EBUSY;
    }
    return 0;
}
