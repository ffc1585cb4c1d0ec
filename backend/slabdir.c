/* slabdir.c — the slab directory in etcd (slabdir.h): ckeys.h's
 * slabs/<node>/<uid> keys, written as this backend's pool makes, moves and
 * frees slabs, and read when a volume's slabs are adopted.
 *
 * Writes: one key per slab, a low rate (a slab is thousands of pages).  At
 * most one request per slab is in flight; a change made meanwhile is sent
 * when it answers, so etcd ends with the newest replica set whatever order
 * the HTTP requests would have taken.  A failed write is retried with the
 * slab's next change or the next retry tick: the directory is a hint (the
 * pool asks every server when it is missing or wrong), so nothing is lost
 * if it lags.
 *
 * Reads: adopting a volume asks for many slabs in a row; the whole slabs/
 * prefix is read once and the answers served from that copy for a few
 * seconds, so an attach costs one etcd request, not one per slab.
 */
#include "slabdir.h"

#include "ckeys.h"
#include "coord.h"
#include "evloop.h"
#include "htab.h"
#include "log.h"
#include "queue.h"
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_MS 3000        /* a read of the prefix serves adoptions this long */
#define RETRY_MS    1000

struct dent {                   /* one slab of ours */
    struct hnode node;          /* key: uid */
    struct slabdir *d;
    bool inflight, dirty, del, failed;
    struct ck_slab want;        /* the replica set etcd should hold */
};

struct known {                  /* one slab from the last read of the prefix */
    struct hnode node;
    struct ck_slab s;
};

struct waiter {
    STAILQ_ENTRY(waiter) link;
    uint64_t uid;
    pool_dir_cb cb;
    void *arg;
};
STAILQ_HEAD(waiter_list, waiter);

struct slabdir {
    struct coord *c;
    struct evloop *el;
    char node[CK_NODE_MAX];
    struct pool_dir_ops ops;
    struct htab mine;
    struct htab seen;
    uint64_t seen_ms;           /* when the prefix was read; 0: never */
    bool reading;
    struct waiter_list waiting;
    struct ev_defer answer;     /* serves the waiters from the loop */
    long long retry;
    unsigned bad;               /* keys of the prefix that did not parse */
    struct slabdir_stats st;
};

static void send(struct dent *e);

static void sent(void *arg, int status, int64_t rev)
{
    struct dent *e = arg;
    struct slabdir *d = e->d;
    (void)rev;
    e->inflight = false;
    if (status) {
        d->st.failures++;
        e->failed = e->dirty = true;
        return;         /* the retry tick sends it again */
    }
    e->failed = false;
    if (e->dirty) {
        send(e);
        return;
    }
    if (e->del) {
        ht_remove(&d->mine, &e->node);
        free(e);
    }
}

static void send(struct dent *e)
{
    struct slabdir *d = e->d;
    char key[CK_NODE_MAX + 40], val[CK_REPLICAS * (CK_ADDR_MAX + 4) + 64];
    e->dirty = false;
    if (ck_slab_key(d->node, e->node.key, key, sizeof(key)) < 0 ||
        (!e->del && ck_slab_encode(&e->want, val, sizeof(val)) < 0))
        return;     /* cannot happen with names the config checked */
    int rc = e->del ? coord_del(d->c, key, false, sent, e) : coord_put(d->c, key, val, false, sent, e);
    if (rc < 0) {
        e->dirty = e->failed = true;
        return;
    }
    e->inflight = true;
    d->st.writes++;
}

static struct dent *entry(struct slabdir *d, uint64_t uid)
{
    struct hnode *n = ht_find(&d->mine, uid);
    if (n)
        return ht_entry(n, struct dent, node);
    struct dent *e = xcalloc(1, sizeof(*e));
    if (!e)
        return NULL;
    e->node.key = uid;
    e->d = d;
    ht_insert(&d->mine, &e->node);
    return e;
}

static void op_put(void *ctx, uint64_t uid, uint64_t size, const char *const *addrs, int n)
{
    struct slabdir *d = ctx;
    struct dent *e = entry(d, uid);
    if (!e)
        return;     /* the directory lags: adoption falls back to asking every server */
    e->del = false;
    e->want.size = size;
    e->want.nrep = n < CK_REPLICAS ? n : CK_REPLICAS;
    for (int i = 0; i < e->want.nrep; i++)
        snprintf(e->want.replicas[i], sizeof(e->want.replicas[i]), "%s", addrs[i]);
    e->dirty = true;
    if (!e->inflight)
        send(e);
}

static void op_del(void *ctx, uint64_t uid)
{
    struct slabdir *d = ctx;
    struct dent *e = entry(d, uid);
    if (!e)
        return;
    e->del = e->dirty = true;
    if (!e->inflight)
        send(e);
}

/* ---- reads ------------------------------------------------------------- */

static void forget_seen(struct slabdir *d)
{
    for (size_t b = 0; b < d->seen.nb; b++)
        for (struct hnode *n = d->seen.b[b], *next; n; n = next) {
            next = n->next;
            free(ht_entry(n, struct known, node));
        }
    memset(d->seen.b, 0, d->seen.nb * sizeof(*d->seen.b));
    d->seen.n = 0;
}

static void serve(struct evloop *el, void *arg)
{
    struct slabdir *d = arg;
    (void)el;
    struct waiter *w;
    while ((w = STAILQ_FIRST(&d->waiting))) {
        STAILQ_REMOVE_HEAD(&d->waiting, link);
        struct hnode *n = d->seen_ms ? ht_find(&d->seen, w->uid) : NULL;
        struct known *k = n ? ht_entry(n, struct known, node) : NULL;
        d->st.lookups++;
        if (k)
            d->st.hits++;
        w->cb(w->arg, k ? k->s.nrep : -1, k ? (const char (*)[128])k->s.replicas : NULL);
        free(w);
    }
}

static void on_prefix(void *arg, int status, const struct coord_kv *kv, size_t n, int64_t rev)
{
    struct slabdir *d = arg;
    (void)rev;
    d->reading = false;
    forget_seen(d);
    d->seen_ms = 0;
    if (status == 0) {
        d->seen_ms = evloop_now_ms();
        for (size_t i = 0; i < n; i++) {
            char node[CK_NODE_MAX], why[160];
            uint64_t uid;
            struct known *k = xcalloc(1, sizeof(*k));
            if (!k)
                break;      /* those slabs are looked for on every server */
            if (ck_slab_decode(kv[i].key, kv[i].val, kv[i].vlen, node, &uid, &k->s, why, sizeof(why)) < 0) {
                if (d->bad++ == 0)
                    mx_warn("backd: etcd key %s is not a MemX slab directory entry (%s): ignored", kv[i].key, why);
                free(k);
                continue;
            }
            k->node.key = uid;
            ht_insert(&d->seen, &k->node);
        }
    } else {
        mx_warn("backd: reading the slab directory from etcd failed (%s): every server is asked",
                strerror(-status));
    }
    evloop_defer(d->el, &d->answer);
}

static int op_get(void *ctx, uint64_t uid, pool_dir_cb cb, void *arg)
{
    struct slabdir *d = ctx;
    struct waiter *w = xcalloc(1, sizeof(*w));
    if (!w)
        return -1;
    *w = (struct waiter){ .uid = uid, .cb = cb, .arg = arg };
    STAILQ_INSERT_TAIL(&d->waiting, w, link);
    if (d->seen_ms && evloop_now_ms() - d->seen_ms < SNAPSHOT_MS) {
        evloop_defer(d->el, &d->answer);
        return 0;
    }
    if (!d->reading) {
        if (coord_get(d->c, CK_SLABS, true, 0, on_prefix, d) < 0) {
            d->seen_ms = 0;
            evloop_defer(d->el, &d->answer);    /* answered "unknown": every server is asked */
            return 0;
        }
        d->reading = true;
        d->st.reads++;
    }
    return 0;
}

static int retry_tick(struct evloop *el, long long id, void *arg)
{
    struct slabdir *d = arg;
    (void)el;
    (void)id;
    ht_each(&d->mine, n) {
        struct dent *e = ht_entry(n, struct dent, node);
        if (e->failed && !e->inflight)
            send(e);
    }
    return RETRY_MS;
}

struct slabdir *slabdir_new(struct evloop *el, struct coord *c, const char *node)
{
    struct slabdir *d = xcalloc(1, sizeof(*d));
    if (!d || ht_init(&d->mine) < 0 || ht_init(&d->seen) < 0) {
        if (d) {
            ht_fini(&d->mine);
            free(d);
        }
        return NULL;
    }
    d->c = c;
    d->el = el;
    snprintf(d->node, sizeof(d->node), "%s", node);
    STAILQ_INIT(&d->waiting);
    evloop_defer_init(&d->answer, serve, d);
    d->ops = (struct pool_dir_ops){ .put = op_put, .del = op_del, .get = op_get, .ctx = d };
    d->retry = evloop_add_timer(el, RETRY_MS, retry_tick, d);
    return d;
}

const struct pool_dir_ops *slabdir_ops(struct slabdir *d) { return &d->ops; }

void slabdir_get_stats(const struct slabdir *d, struct slabdir_stats *st) { *st = d->st; }

void slabdir_free(struct slabdir *d)
{
    if (!d)
        return;
    evloop_defer_cancel(d->el, &d->answer);
    if (d->retry > 0)
        evloop_del_timer(d->el, d->retry);
    struct waiter *w;
    while ((w = STAILQ_FIRST(&d->waiting))) {
        STAILQ_REMOVE_HEAD(&d->waiting, link);
        free(w);
    }
    forget_seen(d);
    for (size_t b = 0; b < d->mine.nb; b++)
        for (struct hnode *n = d->mine.b[b], *next; n; n = next) {
            next = n->next;
            free(ht_entry(n, struct dent, node));
        }
    ht_fini(&d->mine);
    ht_fini(&d->seen);
    free(d);
}
