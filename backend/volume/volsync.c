/* volsync.c — bringing a volume's metadata servers back in sync (volmeta.h):
 * a server that missed records (late, down, new, restarted) is "behind" and
 * is sent what it is owed, the records themselves or a full copy listed from
 * a caught-up server; and, with a coordinator (etcd), the in-sync set that
 * names the servers holding every acknowledged record: a server leaves it
 * (committed in etcd) before a record it missed is acknowledged, and joins
 * it again once it holds every record.  Batches are volpub.c's.
 */
#include "volpub_int.h"

#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A server that left the in-sync set rejoins no sooner than this. */
#define REJOIN_MS       1000

static void recheck(struct volmeta *m);
static void on_copy_listed(void *arg, int srv, const struct proto_msg *r);

/* Coordinator mode: whether every server of the in-sync set (or on its
 * way into it) acknowledged b; if not, those that did not are dropped from
 * it first.  Invariant: a record is acknowledged only once every server the
 * set in etcd names holds it. */
bool volpub_insync_ready(struct volmeta *m, struct batch *b)
{
    if (!m->claimer)
        return true;
    bool ready = true;
    for (int s = 0; s < m->nsrv; s++) {
        struct msrv *v = &m->srv[s];
        if (!(v->insync || v->adding) || has(b, s, F_ACKED))
            continue;
        ready = false;
        if (!v->dropping) {
            v->dropping = true;
            meta_warn(m, "memd %s missed records: it leaves the in-sync set (in etcd) before they are acknowledged",
                      pool_server_addr(m->pool, s));
            volpub_sync_insync(m);
        }
    }
    return ready;
}

static void insync_set(void *arg, int status)
{
    struct volmeta *m = arg;
    m->set_busy = false;
    if (status == 0) {
        for (int s = 0; s < m->nsrv; s++) {
            struct msrv *v = &m->srv[s];
            if (v->dropping) {
                v->insync = v->dropping = false;
                v->left_ms = evloop_now_ms();
            }
            else if (v->adding && !v->sent_add)
                ;       /* asked for after this request went out */
            else if (v->adding) {
                v->insync = true;
                v->adding = false;
            }
            v->sent_add = false;
        }
    } else {
        for (int s = 0; s < m->nsrv; s++)
            m->srv[s].sent_add = false;
        if (status == -ESTALE)
            volmeta_fence(m);
        else
            m->set_dirty = true;        /* the tick tries again */
    }
    volmeta_insync_done(m, status);
    if (m->set_dirty && status != -EAGAIN)
        volpub_sync_insync(m);
    volpub_recheck_all(m);
}

void volpub_sync_insync(struct volmeta *m)
{
    if (!m->claimer || m->fenced)
        return;
    if (m->set_busy) {
        m->set_dirty = true;
        return;
    }
    m->set_dirty = false;
    const char **addrs = xreallocarray(NULL, (size_t)(m->nsrv ? m->nsrv : 1), sizeof(*addrs));
    if (!addrs) {
        m->set_dirty = true;
        return;
    }
    int n = 0;
    for (int s = 0; s < m->nsrv; s++) {
        struct msrv *v = &m->srv[s];
        v->sent_add = v->adding;
        if ((v->insync || v->adding) && !v->dropping)
            addrs[n++] = pool_server_addr(m->pool, s);
    }
    m->set_busy = true;
    if (m->claimer->set_insync(m->claimer->ctx, m->name, addrs, n, insync_set, m) < 0) {
        m->set_busy = false;
        m->set_dirty = true;
    }
    free(addrs);
    volpub_arm(m);
}

void volpub_begin_insync(struct volmeta *m)
{
    int joined = 0;
    for (int s = 0; s < m->nsrv; s++) {
        struct msrv *v = &m->srv[s];
        if (!v->claimed)
            continue;
        if (volmeta_was_insync(m, s)) {
            v->adding = true;
            joined++;
        } else {
            volpub_owe_all(m, s);      /* it lacks records the previous owner acknowledged */
        }
    }
    meta_info(m, "in-sync set: %d memory server(s)", joined);
    volpub_sync_insync(m);
}

/* Some request of ours has been unanswered by s for POOL_LATE_MS: it is not answering yet. */
static bool late_on(const struct volmeta *m, int s, uint64_t now)
{
    const struct batch *b;
    TAILQ_FOREACH(b, &m->batches, link)
        if (silent(b, s) && now >= b->t_ms + POOL_LATE_MS)
            return true;
    return false;
}

/* Every batch not ended yet looks again (the in-sync set changed). */
void volpub_recheck_all(struct volmeta *m)
{
    uint64_t now = evloop_now_ms();
    struct batch *b, *nb;
    TAILQ_FOREACH_SAFE(b, &m->batches, link, nb)
        if (b->kind == B_PUB && !b->done)
            volpub_try_end(b, now);
}

/* A server caught up again joins the in-sync set (coordinator mode): not
 * while a batch in flight went out without it (it may lack those records),
 * nor within REJOIN_MS of leaving it (a server late now and then would
 * otherwise cost etcd two writes per stall). */
void volpub_maybe_join(struct volmeta *m, int s)
{
    struct msrv *v = &m->srv[s];
    if (!m->claimer || m->fenced || !v->known || volpub_behind(m, s) || v->insync || v->adding ||
        evloop_now_ms() < v->left_ms + REJOIN_MS)
        return;
    const struct batch *b;
    TAILQ_FOREACH(b, &m->batches, link)
        if (b->kind == B_PUB && !b->done && !has(b, s, F_SENT))
            return;
    v->adding = true;
    meta_info(m, "memd %s holds every record: it joins the in-sync set", pool_server_addr(m->pool, s));
    volpub_sync_insync(m);
}

/* The batches that waited for a server to be caught up may end. */
static void recheck(struct volmeta *m)
{
    uint64_t now = evloop_now_ms();
    struct batch *b, *nb;
    TAILQ_FOREACH_SAFE(b, &m->batches, link, nb)
        if (b->kind == B_PUB && !b->done && !b->pending)
            volpub_try_end(b, now);
}

static struct batch *ctx_new(struct volmeta *m, enum bkind kind, int tgt, int src)
{
    struct batch *c = volpub_batch_alloc(m);
    if (!c)
        return NULL;
    c->m = m;
    c->kind = kind;
    c->tgt = tgt;
    c->src = src;
    c->t_ms = evloop_now_ms();
    TAILQ_INSERT_TAIL(&m->batches, c, link);
    return c;
}

/* Sends one request of a catch-up to server srv; false (and c freed) if it could not go. */
static bool ctx_send(struct volmeta *m, struct batch *c, int srv, const struct proto_msg *q, pool_ctl_cb cb)
{
    if (pool_ctl(m->pool, srv, q, cb, c) < 0) {
        volpub_unlink_free(m, c);
        return false;
    }
    c->pending = 1;
    mark(c, srv, F_SENT);
    return true;
}

static void copy_end(struct volmeta *m, int tgt, bool ok)
{
    struct owed *o = &m->srv[tgt].owed;
    o->busy = false;
    if (!ok)
        o->full = true;         /* tried again on a later tick */
    else
        meta_info(m, "memd %s has a full copy of the records", pool_server_addr(m->pool, tgt));
    volpub_maybe_join(m, tgt);
    recheck(m);
}

static bool copy_list(struct volmeta *m, int tgt, int src, uint64_t cursor)
{
    struct batch *c = ctx_new(m, B_LIST, tgt, src);
    struct proto_msg q = { .type = PROTO_META_LIST };
    q.u.meta.vid = m->vid;
    q.u.meta.epoch = m->epoch;
    q.u.meta.cursor = cursor;
    return c && ctx_send(m, c, src, &q, on_copy_listed);
}

static void on_copy_put(void *arg, int srv, const struct proto_msg *r)
{
    struct batch *c = arg;
    struct volmeta *m = c->m;
    int tgt = c->tgt, src = c->src;
    uint64_t cursor = c->cursor;
    (void)srv;
    volpub_unlink_free(m, c);
    if (!m)
        return;
    if (r && r->status == ESTALE)
        volmeta_fence(m);
    if (!r || r->status)
        copy_end(m, tgt, false);
    else if (!cursor)
        copy_end(m, tgt, true);
    else if (!copy_list(m, tgt, src, cursor))
        copy_end(m, tgt, false);
}

static void on_copy_listed(void *arg, int srv, const struct proto_msg *r)
{
    static struct proto_rec recs[PROTO_REC_MAX];
    struct batch *c = arg;
    struct volmeta *m = c->m;
    int tgt = c->tgt, src = c->src;
    (void)srv;
    volpub_unlink_free(m, c);
    if (!m)
        return;
    if (r && r->status == ENOENT) {
        copy_end(m, tgt, true);             /* the caught-up server holds no record of it */
        return;
    }
    if (!r || r->status || r->u.meta.n > PROTO_REC_MAX) {
        copy_end(m, tgt, false);
        return;
    }
    for (uint32_t i = 0; i < r->u.meta.n; i++)
        proto_rec_get(r->u.meta.raw, i, &recs[i]);
    struct batch *p = ctx_new(m, B_COPY, tgt, src);
    struct proto_msg q = { .type = PROTO_META_PUT };
    q.u.meta.vid = m->vid;
    q.u.meta.epoch = m->epoch;
    q.u.meta.n = r->u.meta.n;
    q.u.meta.recs = recs;
    if (p)
        p->cursor = r->u.meta.cursor;
    if (!p || !ctx_send(m, p, tgt, &q, on_copy_put))
        copy_end(m, tgt, false);
}

static void on_resent(void *arg, int srv, const struct proto_msg *r)
{
    struct batch *c = arg;
    struct volmeta *m = c->m;
    uint32_t n = c->n;
    (void)srv;
    int tgt = c->tgt;
    volpub_unlink_free(m, c);
    if (!m)
        return;
    struct owed *o = &m->srv[tgt].owed;
    o->busy = false;
    if (r && r->status == ESTALE)
        volmeta_fence(m);
    if (!r || r->status)
        return;                     /* tried again on a later tick */
    if (!o->full) {                 /* (full: what was owed is gone, a copy replaces it) */
        n = n < o->n ? n : o->n;
        memmove(o->recs, o->recs + n, (o->n - n) * sizeof(*o->recs));
        o->n -= n;
    }
    if (!volpub_behind(m, tgt))
        meta_info(m, "memd %s has every record again", pool_server_addr(m->pool, tgt));
    volpub_maybe_join(m, tgt);
    recheck(m);
}

/* Servers behind that answer again get what they are owed, one request each at a time. */
void volpub_catch_up(struct volmeta *m, uint64_t now)
{
    if (m->fenced)
        return;
    volpub_check_restarts(m);
    int *up, k = volmeta_up(m, &up);
    for (int i = 0; i < k; i++) {
        int s = up[i];
        struct owed *o = &m->srv[s].owed;   /* m->srv does not move below: only volmeta_up grows it */
        if (!volpub_behind(m, s) || o->busy || late_on(m, s, now))
            continue;
        if (o->full) {
            int src = -1;
            for (int j = 0; j < k && src < 0; j++)
                if (up[j] != s && m->srv[up[j]].known && !volpub_behind(m, up[j]) && !late_on(m, up[j], now))
                    src = up[j];
            if (src < 0)
                continue;           /* no caught-up server to copy from yet */
            meta_info(m, "memd %s: copying every record to it from memd %s", pool_server_addr(m->pool, s),
                      pool_server_addr(m->pool, src));
            o->full = false;
            o->busy = true;
            if (!copy_list(m, s, src, 0))
                copy_end(m, s, false);
            continue;
        }
        struct batch *c = ctx_new(m, B_RESEND, s, -1);
        if (!c)
            continue;
        c->n = o->n > PROTO_REC_MAX ? PROTO_REC_MAX : o->n;
        struct proto_msg q = { .type = PROTO_META_PUT };
        q.u.meta.vid = m->vid;
        q.u.meta.epoch = m->epoch;
        q.u.meta.n = c->n;
        q.u.meta.recs = o->recs;
        o->busy = true;
        if (!ctx_send(m, c, s, &q, on_resent))
            o->busy = false;
    }
    free(up);
}
