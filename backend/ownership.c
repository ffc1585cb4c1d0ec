/* ownership.c — volume claims in etcd, for the volume layer (volclaim_ops in
 * volmeta.h): the backend side of ckeys.h's volumes/ and owners/ keys.
 *
 * A claim reads volumes/<name> and writes, in one compare-and-swap on its
 * mod_revision, volumes/<name> with epoch + 1 and owners/<name> with that
 * epoch under this backend's lease.  Two backends claiming at once: one
 * transaction wins, the other is told -ECANCELED and reads again.
 *
 * Self-fencing: may_write is coord_lease_safe(): false from
 * COORD_FENCE_MARGIN_MS before the lease could expire, and while claims are
 * being renewed after a lost lease.  When the lease was lost, owners/ keys
 * went with it; on the new lease every claim this backend holds is renewed
 * with a compare-and-swap on the revision of its own last claim, so it is
 * renewed only if nobody claimed the volume meanwhile (else it is lost: the
 * volume is fenced).
 */
#include "ownership.h"

#include "ckeys.h"
#include "coord.h"
#include "log.h"
#include "queue.h"
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLAIM_TRIES 5

struct claim {
    LIST_ENTRY(claim) link;
    struct ownership *o;
    char name[CK_NAME_MAX];
    uint64_t vid, size, epoch;
    int64_t rev;                /* volumes/<name>'s mod_revision as our claim left it; 0: none yet */
    int64_t rev_seen;           /* ... as the claim in progress read it (0: no such key) */
    bool renewing;
    bool exclusive;             /* claim only if no other backend holds it (ownership_set_exclusive) */
    struct ck_volume cv;        /* volumes/<name> as our last write (or the claim's read) left it */
    /* a claim in progress */
    volclaim_cb cb;
    void *arg;
    int tries;
    bool takeover;
};

struct ownership {
    struct coord *c;
    char node[CK_NODE_MAX];
    struct volclaim_ops ops;
    LIST_HEAD(, claim) claims;
    int renewing;               /* claims being renewed after a lost lease */
    bool lost;                  /* the lease was lost: claims wait for the new one */
    ownership_changed_cb changed;
    void *changed_arg;
};

static struct claim *find(struct ownership *o, const char *name)
{
    struct claim *k;
    LIST_FOREACH(k, &o->claims, link)
        if (!strcmp(k->name, name))
            return k;
    return NULL;
}

static void claim_read(struct claim *k);

static void claim_end(struct claim *k, int status, const char *msg)
{
    volclaim_cb cb = k->cb;
    void *arg = k->arg;
    struct volclaim_result res = { .epoch = k->epoch, .takeover = k->takeover, .ninsync = k->cv.ninsync,
                                   .insync = (const char (*)[128])k->cv.insync };
    k->cb = NULL;
    if (status && !k->rev) {    /* never held: nothing to renew */
        LIST_REMOVE(k, link);
        free(k);
    }
    cb(arg, status, status ? NULL : &res, msg);
}

/* The claim's transaction answered. */
static void on_cas(void *arg, int status, int64_t rev)
{
    struct claim *k = arg;
    char msg[160];
    if (status == -ECANCELED && ++k->tries < CLAIM_TRIES) {
        claim_read(k);          /* somebody claimed (or created it) between our read and our write */
        return;
    }
    if (status) {
        snprintf(msg, sizeof(msg), "claim in etcd failed: %s", status == -ECANCELED ?
                 "other backends keep claiming it" : strerror(-status));
        claim_end(k, status == -ECANCELED ? -EIO : -EAGAIN, msg);
        return;
    }
    k->rev = rev;
    mx_info("backd: volume %s claimed in etcd under epoch %llu%s", k->name, (unsigned long long)k->epoch,
            k->takeover ? " (taken over from another backend)" : "");
    claim_end(k, 0, NULL);
}

static int put_claim(struct claim *k, int64_t expect, uint64_t epoch, coord_done_cb done)
{
    char vkey[CK_NAME_MAX + 16], okey[CK_NAME_MAX + 16], oval[256];
    static char vval[CK_INSYNC_MAX * (CK_ADDR_MAX + 4) + 256];
    struct ck_volume *cv = &k->cv;      /* the in-sync set stays what it was */
    cv->vid = k->vid;
    cv->size = k->size;
    cv->epoch = epoch;
    struct ck_owner co = { .vid = k->vid, .epoch = epoch };
    snprintf(co.node, sizeof(co.node), "%s", k->o->node);
    if (ck_volume_key(k->name, vkey, sizeof(vkey)) < 0 || ck_owner_key(k->name, okey, sizeof(okey)) < 0 ||
        ck_volume_encode(cv, vval, sizeof(vval)) < 0 || ck_owner_encode(&co, oval, sizeof(oval)) < 0)
        return -EINVAL;
    struct coord_op ops[2] = { { vkey, vval, false }, { okey, oval, true } };
    return coord_cas(k->o->c, vkey, expect, ops, 2, done, k);
}

/* owners/<name> as read with volumes/<name>: whose claim we take over. */
static void on_owner(void *arg, int status, const struct coord_kv *kv, size_t n, int64_t rev)
{
    struct claim *k = arg;
    (void)rev;
    char name[CK_NAME_MAX], why[160], msg[400];
    struct ck_owner co = { .node = "" };    /* read below only if it decoded */
    k->takeover = false;
    if (status && k->exclusive) {
        /* Who holds it is unknown: an exclusive claim never goes ahead blind. */
        snprintf(msg, sizeof(msg), "etcd: cannot read who owns it: %s", strerror(-status));
        claim_end(k, -EIO, msg);
        return;
    }
    if (status == 0 && n == 1) {
        bool readable = ck_owner_decode(kv[0].key, kv[0].val, kv[0].vlen, name, &co, why, sizeof(why)) == 0;
        if (!readable && !k->exclusive)
            mx_warn("backd: volume %s: etcd holds an owner key MemX cannot read (%s): taking it over", k->name, why);
        k->takeover = !readable || strcmp(co.node, k->o->node) != 0 || kv[0].lease != coord_lease_id(k->o->c);
        /* owners/ keys are leased: one that exists is a live claim of another backend. */
        if (k->exclusive && k->takeover) {
            if (readable)
                snprintf(msg, sizeof(msg), "in use by %s (its claim, epoch %llu, is under a live etcd lease): "
                         "delete it on that backend, or detach its device there first",
                         co.node, (unsigned long long)co.epoch);
            else
                snprintf(msg, sizeof(msg), "in use: etcd holds an owner key for it that MemX cannot read (%s)", why);
            claim_end(k, -EBUSY, msg);
            return;
        }
    }
    if (put_claim(k, k->rev_seen, k->epoch, on_cas) < 0)
        claim_end(k, -EIO, "out of memory");
}

static void on_volume(void *arg, int status, const struct coord_kv *kv, size_t n, int64_t rev)
{
    struct claim *k = arg;
    (void)rev;
    char name[CK_NAME_MAX], why[200], msg[240], okey[CK_NAME_MAX + 16];
    struct ck_volume *cvp = &k->cv, cv0 = { .ninsync = -1 };
    if (status) {
        snprintf(msg, sizeof(msg), "etcd: %s", strerror(-status));
        claim_end(k, -EAGAIN, msg);
        return;
    }
    k->rev_seen = 0;
    *cvp = cv0;
    if (n == 1) {
        if (ck_volume_decode(kv[0].key, kv[0].val, kv[0].vlen, name, cvp, why, sizeof(why)) < 0) {
            /* Never trusted, never overwritten: an operator looks at it. */
            snprintf(msg, sizeof(msg), "etcd's record of it is not MemX's: %s", why);
            claim_end(k, -EIO, msg);
            return;
        }
        if (cvp->vid != k->vid) {
            snprintf(msg, sizeof(msg), "etcd's record names volume id %016llx, not %016llx",
                     (unsigned long long)cvp->vid, (unsigned long long)k->vid);
            claim_end(k, -EIO, msg);
            return;
        }
        if (cvp->size != k->size) {
            snprintf(msg, sizeof(msg), "it exists in the pool with size %llu bytes, not %llu",
                     (unsigned long long)cvp->size, (unsigned long long)k->size);
            claim_end(k, -EEXIST, msg);
            return;
        }
        k->rev_seen = kv[0].mod_rev;
    }
    k->epoch = cvp->epoch + 1;
    if (ck_owner_key(k->name, okey, sizeof(okey)) < 0 ||
        coord_get(k->o->c, okey, false, 0, on_owner, k) < 0)
        claim_end(k, -EIO, "out of memory");
}

static void claim_read(struct claim *k)
{
    char vkey[CK_NAME_MAX + 16];
    if (ck_volume_key(k->name, vkey, sizeof(vkey)) < 0 || coord_get(k->o->c, vkey, false, 0, on_volume, k) < 0)
        claim_end(k, -EIO, "out of memory");
}

/* The claim record of name, made (unclaimed) when there is none. */
static int find_or_add(struct ownership *o, const char *name, struct claim **out)
{
    struct claim *k = find(o, name);
    if (!k) {
        if (strlen(name) >= CK_NAME_MAX)
            return -EINVAL;
        k = xcalloc(1, sizeof(*k));
        if (!k)
            return -ENOMEM;
        k->o = o;
        snprintf(k->name, sizeof(k->name), "%s", name);
        LIST_INSERT_HEAD(&o->claims, k, link);
    }
    *out = k;
    return 0;
}

static int op_claim(void *ctx, const char *name, uint64_t vid, uint64_t size, volclaim_cb cb, void *arg)
{
    struct ownership *o = ctx;
    struct claim *k;
    int rc = find_or_add(o, name, &k);
    if (rc < 0)
        return rc;
    k->vid = vid;
    k->size = size;
    k->cb = cb;
    k->arg = arg;
    k->tries = 0;
    claim_read(k);
    return 0;
}

struct insync_req {
    struct claim *k;
    volclaim_done_cb cb;
    void *arg;
    struct ck_volume cv;        /* what goes to etcd; k->cv once it is there */
};

static void on_insync(void *arg, int status, int64_t rev)
{
    struct insync_req *q = arg;
    struct claim *k = q->k;
    if (status == 0) {
        k->rev = rev;
        k->cv = q->cv;
    } else if (status == -ECANCELED && (k->renewing || k->cb)) {
        status = -EAGAIN;       /* our own renewal or claim moved the revision: try again */
    } else if (status == -ECANCELED) {
        mx_warn("backd: volume %s: claimed by another backend (its in-sync set could not be written): fenced",
                k->name);
    }
    volclaim_done_cb cb = q->cb;
    void *a = q->arg;
    free(q);
    cb(a, status == 0 ? 0 : status == -ECANCELED ? -ESTALE : -EAGAIN);
}

static int op_set_insync(void *ctx, const char *name, const char *const *addrs, int n, volclaim_done_cb cb,
                         void *arg)
{
    struct ownership *o = ctx;
    struct claim *k = find(o, name);
    if (!k || !k->rev)
        return -ENOENT;
    struct insync_req *q = xcalloc(1, sizeof(*q));
    if (!q)
        return -ENOMEM;
    *q = (struct insync_req){ .k = k, .cb = cb, .arg = arg, .cv = k->cv };
    /* A subset of the in-sync servers is in sync too: past the key's room, some are left out. */
    q->cv.ninsync = n < CK_INSYNC_MAX ? n : CK_INSYNC_MAX;
    for (int i = 0; i < q->cv.ninsync; i++)
        snprintf(q->cv.insync[i], sizeof(q->cv.insync[i]), "%s", addrs[i]);
    char vkey[CK_NAME_MAX + 16];
    static char vval[CK_INSYNC_MAX * (CK_ADDR_MAX + 4) + 256];
    if (ck_volume_key(name, vkey, sizeof(vkey)) < 0 || ck_volume_encode(&q->cv, vval, sizeof(vval)) < 0) {
        free(q);
        return -EINVAL;
    }
    /* Invariant: written only while volumes/<name> is as our claim (or our last write) left it. */
    struct coord_op op = { vkey, vval, false };
    int rc = coord_cas(o->c, vkey, k->rev, &op, 1, on_insync, q);
    if (rc < 0)
        free(q);
    return rc;
}

static void on_forgotten(void *arg, int status, int64_t rev)
{
    (void)rev;
    if (status)
        mx_warn("backd: volume %s: removing it from etcd failed: %s", (char *)arg, strerror(-status));
    free(arg);
}

static void op_forget(void *ctx, const char *name)
{
    struct ownership *o = ctx;
    struct claim *k = find(o, name);
    char vkey[CK_NAME_MAX + 16], okey[CK_NAME_MAX + 16];
    if (!k || !k->rev || ck_volume_key(name, vkey, sizeof(vkey)) < 0 || ck_owner_key(name, okey, sizeof(okey)) < 0)
        return;
    /* Only while our claim is the last one: a volume someone else took stays. */
    struct coord_op ops[2] = { { vkey, NULL, false }, { okey, NULL, false } };
    char *what = strdup(name);
    if (what && coord_cas(o->c, vkey, k->rev, ops, 2, on_forgotten, what) < 0)
        free(what);
    LIST_REMOVE(k, link);
    free(k);
}

int ownership_set_exclusive(struct ownership *o, const char *name, bool on)
{
    struct claim *k = find(o, name);
    if (!k && !on)
        return 0;
    int rc = find_or_add(o, name, &k);
    if (rc < 0)
        return rc;
    k->exclusive = on;
    if (!on && !k->rev && !k->cb && !k->renewing) {     /* never claimed: nothing to keep */
        LIST_REMOVE(k, link);
        free(k);
    }
    return 0;
}

static bool op_may_write(void *ctx)
{
    struct ownership *o = ctx;
    return !o->lost && !o->renewing && coord_lease_safe(o->c);
}

/* ---- renewing claims after a lost lease ------------------------------------ */

static void on_renewed(void *arg, int status, int64_t rev)
{
    struct claim *k = arg;
    struct ownership *o = k->o;
    k->renewing = false;
    o->renewing--;
    if (status == 0) {
        k->rev = rev;
        k->epoch++;
        mx_info("backd: volume %s: claim renewed in etcd under epoch %llu", k->name, (unsigned long long)k->epoch);
        o->changed(o->changed_arg, k->name, k->epoch);
        return;
    }
    if (status == -ECANCELED) {
        /* Invariant: the claim is renewed only if volumes/<name> is as our claim left it; else another
         * backend owns the volume now and every write of ours must be refused: fenced. */
        mx_warn("backd: volume %s: claimed by another backend while our etcd lease was lost: fenced", k->name);
        o->changed(o->changed_arg, k->name, 0);
        LIST_REMOVE(k, link);
        free(k);
        return;
    }
    mx_warn("backd: volume %s: renewing the claim failed (%s): retrying", k->name, strerror(-status));
    k->renewing = true;
    o->renewing++;
    if (put_claim(k, k->rev, k->epoch + 1, on_renewed) < 0) {
        k->renewing = false;
        o->renewing--;
    }
}

void ownership_health(struct ownership *o, enum coord_health h)
{
    if (h == COORD_LEASE_LOST) {
        o->lost = true;
        return;
    }
    if (h != COORD_UP || !o->lost)
        return;
    o->lost = false;
    struct claim *k;
    LIST_FOREACH(k, &o->claims, link) {
        if (!k->rev || k->renewing || k->cb)
            continue;
        k->renewing = true;
        o->renewing++;
        if (put_claim(k, k->rev, k->epoch + 1, on_renewed) < 0) {
            k->renewing = false;
            o->renewing--;
        }
    }
}

struct ownership *ownership_new(struct coord *c, const char *node, ownership_changed_cb changed, void *arg)
{
    struct ownership *o = xcalloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->c = c;
    snprintf(o->node, sizeof(o->node), "%s", node);
    LIST_INIT(&o->claims);
    o->changed = changed;
    o->changed_arg = arg;
    o->ops = (struct volclaim_ops){ .claim = op_claim, .set_insync = op_set_insync, .forget = op_forget,
                                    .may_write = op_may_write,
                                    .fence_wait_ms = COORD_CONFIRM_MS + 500, .ctx = o };
    return o;
}

const struct volclaim_ops *ownership_ops(struct ownership *o) { return &o->ops; }

void ownership_free(struct ownership *o)
{
    if (!o)
        return;
    while (!LIST_EMPTY(&o->claims)) {
        struct claim *k = LIST_FIRST(&o->claims);
        LIST_REMOVE(k, link);
        free(k);
    }
    free(o);
}
