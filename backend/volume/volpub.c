/* volpub.c — publishing a volume's page-map records to the memory servers
 * (volmeta.h), without letting one late server hold the guest up.
 *
 * Records are queued and sent in batches, one META_PUT per live server and
 * batch.  A batch completes (its records' callbacks run, the guest's write
 * goes on) once every server it went to answered, or once the ones still
 * silent are POOL_LATE_MS late (pool.h: the same budget a late page-write
 * replica gets) and at least one server that was caught up acknowledged it:
 * never on zero answers.  -ESTALE from any server before that fails it, as
 * a fenced owner's write must.
 *
 * A known server (one that took our claim or records) that a completed batch
 * did not reach — late, down, or refusing — is owed its records (struct
 * owed: a copy of each, up to MISSED_MAX; past that, everything).  Once it
 * answers again (no batch of ours late on it) it is sent what it is owed
 * (volsync.c): the records themselves, or a full copy listed from a
 * caught-up server.  Until then it is "behind": its acknowledgements do not count as holding the
 * volume's records, so the rule above (one caught-up server acknowledged every
 * completed record) holds across any sequence of stalls.  With a
 * coordinator the rule is the in-sync set's (volsync.c, volmeta.h): a batch
 * waits until etcd no longer names a server that did not acknowledge it.
 *
 * Servers are pool indexes, as many as the pool has (membership grows at
 * run time): a batch keeps one byte of flags per server that existed when
 * it was sent; a server added later is simply not part of it.  A server
 * first seen after the claim (it joined) holds none of the earlier records:
 * it is owed everything, so it is behind until a full copy reaches it.
 *
 * A batch still waiting for a late answer after its records completed stays
 * on m->batches until the answer (or the pool's "down": a NULL reply) comes;
 * volmeta_free orphans such leftovers and they free themselves.
 */
#include "volpub_int.h"

#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A batch only acknowledged by servers that are behind waits this long for
 * one of them to be caught up, then fails (-EIO). */
#define CATCHUP_WAIT_MS 5000
/* The catch-up tick with no batch in flight, only servers behind. */
#define IDLE_TICK_MS    250
/* A publish slower than this is logged (rate-limited), with why it waited. */
#define SLOW_MS         500

static void flush(struct volmeta *m);

/* A batch sized for every server m knows now; NULL out of memory. */
struct batch *volpub_batch_alloc(struct volmeta *m)
{
    struct batch *b = xcalloc(1, sizeof(*b) + (size_t)m->nsrv);
    if (b)
        b->nst = m->nsrv;
    return b;
}


int volmeta_up(struct volmeta *m, int **up)
{
    *up = NULL;
    for (int cap = m->nsrv > 8 ? m->nsrv + 1 : 8;; cap *= 2) {
        int *a = xreallocarray(NULL, (size_t)cap, sizeof(*a));
        if (!a)
            return xalloc_fail("volume %s: the list of memory servers", m->name);
        int n = pool_up_servers(m->pool, a, cap);
        if (n == cap) {         /* maybe more: ask again with room to spare */
            free(a);
            continue;
        }
        int hi = 0;
        for (int i = 0; i < n; i++)
            hi = a[i] + 1 > hi ? a[i] + 1 : hi;
        if (hi > m->nsrv) {
            struct msrv *ns = xreallocarray(m->srv, (size_t)hi, sizeof(*ns));
            if (!ns) {
                free(a);
                return xalloc_fail("volume %s: state for %d memory servers", m->name, hi);
            }
            memset(ns + m->nsrv, 0, (size_t)(hi - m->nsrv) * sizeof(*ns));
            m->srv = ns;
            m->nsrv = hi;
        }
        *up = a;
        return n;
    }
}

bool volpub_behind(const struct volmeta *m, int s)
{
    const struct owed *o = &m->srv[s].owed;
    return o->n || o->full || o->busy;
}

static bool any_behind(const struct volmeta *m)
{
    for (int s = 0; s < m->nsrv; s++)
        if (volpub_behind(m, s))
            return true;
    return false;
}

/* Whether a server that acknowledged b is up now (true out of memory: b
 * then waits CATCHUP_WAIT_MS, as if it were). */
static bool acked_up(struct volmeta *m, const struct batch *b)
{
    int *up, k = volmeta_up(m, &up);
    bool any = k < 0;
    for (int i = 0; i < k && !any; i++)
        any = has(b, up[i], F_ACKED);
    free(up);
    return any;
}

void volpub_unlink_free(struct volmeta *m, struct batch *b)
{
    /* A fenced batch's end may be deferred (flush) while a tick ends it
     * first: the deferred call must not find it freed. */
    if (m) {
        evloop_defer_cancel(pool_evloop(m->pool), &b->later);
        TAILQ_REMOVE(&m->batches, b, link);
    }
    free(b->recs);
    free(b);
}

void volpub_known(struct volmeta *m, int srv)
{
    m->srv[srv].known = true;
    m->srv[srv].inc = pool_server_inc(m->pool, srv);
}

/* s is owed everything: a full copy from a caught-up server. */
void volpub_owe_all(struct volmeta *m, int s)
{
    struct owed *o = &m->srv[s].owed;
    free(o->recs);
    o->recs = NULL;
    o->n = o->cap = 0;
    o->full = true;
}

/* A known server that came back as a new process holds none of our records. */
void volpub_check_restarts(struct volmeta *m)
{
    int *up, k = volmeta_up(m, &up);
    for (int i = 0; i < k; i++) {
        int s = up[i];
        uint64_t inc = pool_server_inc(m->pool, s);
        if (!m->srv[s].known || inc == m->srv[s].inc)
            continue;
        meta_warn(m, "memd %s is a new process: it gets a full copy of the records",
                  pool_server_addr(m->pool, s));
        m->srv[s].inc = inc;
        volpub_owe_all(m, s);
    }
    free(up);
}

/* Server s missed b's records: it is owed them. */
static void owe(struct volmeta *m, int s, const struct batch *b)
{
    struct owed *o = &m->srv[s].owed;
    if (o->full)
        return;
    if (o->n + b->n > MISSED_MAX || o->n + b->n > o->cap) {
        uint32_t cap = o->cap ? o->cap : 256;
        while (cap < o->n + b->n)
            cap *= 2;
        struct proto_rec *r = o->n + b->n <= MISSED_MAX ? xreallocarray(o->recs, cap, sizeof(*r)) : NULL;
        if (!r) {
            /* Too much (or no memory) to keep: it is owed everything, copied from a caught-up server. */
            meta_warn(m, "memd %s missed more than %d records: it gets a full copy once it answers",
                      pool_server_addr(m->pool, s), MISSED_MAX);
            volpub_owe_all(m, s);
            return;
        }
        o->recs = r;
        o->cap = cap;
    }
    for (uint32_t i = 0; i < b->n; i++)
        o->recs[o->n++] = b->recs[i].r;
}

/* Runs the record callbacks pub_end queued, from the loop: the queue is
 * taken first, so one that ends the volume ends nothing the others need. */
void volpub_run_done(struct evloop *el, void *arg)
{
    struct volmeta *m = arg;
    (void)el;
    struct pubdone *q = m->dq;
    size_t n = m->dqn;
    m->dq = NULL;
    m->dqn = m->dqcap = 0;
    for (size_t i = 0; i < n; i++)
        q[i].cb(q[i].arg, q[i].st);
    free(q);
}

static int done_later(struct volmeta *m, const struct pubrec *recs, uint32_t n, int st)
{
    if (m->dqn + n > m->dqcap) {
        size_t cap = m->dqcap ? m->dqcap : 64;
        while (cap < m->dqn + n)
            cap *= 2;
        struct pubdone *q = xreallocarray(m->dq, cap, sizeof(*q));
        if (!q)
            return xalloc_fail("volume %s: record completions", m->name);
        m->dq = q;
        m->dqcap = cap;
    }
    for (uint32_t i = 0; i < n; i++)
        m->dq[m->dqn++] = (struct pubdone){ recs[i].cb, recs[i].arg, st };
    evloop_defer(pool_evloop(m->pool), &m->dq_defer);
    return 0;
}

/* The guest hears of b's records.  st 0: every known server that did not
 * acknowledge them is owed them (never for a failed batch: its records must
 * not come back). */
static void pub_end(struct batch *b, int st)
{
    struct volmeta *m = b->m;
    uint64_t waited = evloop_now_ms() - b->t_ms;
    if (waited >= SLOW_MS && mx_ratelimit_ok(&m->rl_slow, 1000)) {
        int sent = 0, answered = 0, acked = 0, good = 0, nbehind = 0, late = 0;
        for (int s = 0; s < m->nsrv; s++) {
            sent += has(b, s, F_SENT);
            answered += has(b, s, F_ANSWERED);
            acked += has(b, s, F_ACKED);
            good += has(b, s, F_GOOD);
            nbehind += volpub_behind(m, s);
            late += m->srv[s].late;
        }
        meta_warn(m, "records waited %llu ms (%d): sent to %d servers, %d answered, %d acked (%d caught up); "
                  "%d behind, %d late", (unsigned long long)waited, st, sent, answered, acked, good, nbehind, late);
    }
    b->done = true;
    m->inflight--;
    if (st == 0)
        for (int s = 0; s < m->nsrv; s++)
            if (m->srv[s].known && !has(b, s, F_ACKED))
                owe(m, s, b);
    if (b->fenced)
        volmeta_fence(m);
    struct pubrec *recs = b->recs;
    uint32_t n = b->n;
    b->recs = NULL;
    b->n = 0;
    if (!b->pending)
        volpub_unlink_free(m, b);
    /* The guest hears from the loop: a callback may end the volume (its
     * requests done, a fenced device goes), and nothing of volpub's may run
     * on after that in this call chain. */
    if (n && done_later(m, recs, n, st) < 0)
        for (uint32_t i = 0; i < n; i++)
            recs[i].cb(recs[i].arg, st);        /* no memory to queue them: now, as a last resort */
    free(recs);
    flush(m);
}


/* Whether b can end now, and how. */
void volpub_try_end(struct batch *b, uint64_t now)
{
    struct volmeta *m = b->m;
    if (b->done)
        return;
    /* Invariant: good means a server that had every earlier completed record holds these too. */
    bool good = false, acked = false, others_silent = false, replied = false;
    for (int s = 0; s < b->nst; s++) {
        good |= has(b, s, F_GOOD) || (has(b, s, F_ACKED) && !volpub_behind(m, s));
        acked |= has(b, s, F_ACKED);
        replied |= has(b, s, F_REPLIED);
        others_silent |= silent(b, s) && !m->srv[s].late;
    }
    /* Only servers already late are still silent, or the rest are late by now. */
    bool waited = !others_silent || now >= b->t_ms + POOL_LATE_MS;
    if (b->pending && waited && (b->fenced || good))
        for (int s = 0; s < b->nst; s++)
            m->srv[s].late |= silent(b, s);
    if (b->fenced && (!b->pending || waited))
        pub_end(b, -ESTALE);
    else if (good && (!b->pending || waited) && volpub_insync_ready(m, b))
        pub_end(b, 0);
    else if (good && (!b->pending || waited))
        ;   /* waits for etcd to drop the in-sync servers that lack these records */
    else if (!b->pending && (!acked || !acked_up(m, b) || now >= b->t_ms + CATCHUP_WAIT_MS))
        pub_end(b, b->again && !acked ? -EAGAIN : !replied ? -EHOSTUNREACH : -EIO);
    /* else: acknowledged only by servers behind: waits for one to be caught up */
}

static void on_put(void *arg, int srv, const struct proto_msg *r)
{
    struct batch *b = arg;
    struct volmeta *m = b->m;
    b->pending--;
    if (!m) {
        if (!b->pending)
            volpub_unlink_free(NULL, b);
        return;
    }
    mark(b, srv, F_ANSWERED);
    if (r) {
        mark(b, srv, F_REPLIED);
        m->srv[srv].late = false;       /* it answers again */
    }
    if (r && r->status == 0) {
        mark(b, srv, F_ACKED);
        if (!m->srv[srv].known) {
            /* First seen after the claim (it joined, or was down then): it
             * lacks every earlier record.  Invariant: it counts as holding
             * the volume's records only once a full copy reached it. */
            volpub_known(m, srv);
            volpub_owe_all(m, srv);
        } else if (!volpub_behind(m, srv)) {
            mark(b, srv, F_GOOD);
        }
    } else if (r && r->status == ESTALE) {
        b->fenced = true;
        if (b->done)
            volmeta_fence(m);   /* completed on another server's answer, before the new owner's claim reached it */
    } else if (r && r->status == EAGAIN) {
        b->again = true;        /* it cannot prove our claim current now (etcd): the caller tries again */
    } else if (r) {
        meta_warn(m, "memd %s refused records: %s", pool_server_addr(m->pool, srv), strerror(r->status));
    }
    if (!b->done)
        volpub_try_end(b, evloop_now_ms());
    else if (!b->pending)
        volpub_unlink_free(m, b);
}

static void batch_later(struct evloop *el, void *arg)
{
    struct batch *b = arg;
    (void)el;
    pub_end(b, b->fenced ? -ESTALE : -EHOSTUNREACH);   /* no server was up to take it */
}

/* No memory for a batch: the records waiting fail (-ENOMEM), from the loop. */
void volpub_fail_queued(struct evloop *el, void *arg)
{
    struct volmeta *m = arg;
    (void)el;
    size_t n = m->qn;
    struct pubrec *q = m->q;
    m->q = NULL;
    m->qn = m->qcap = 0;
    for (size_t i = 0; i < n; i++)
        q[i].cb(q[i].arg, -ENOMEM);
    free(q);
}

static void flush(struct volmeta *m)
{
    if (m->inflight >= MAX_BATCHES || !m->qn)
        return;
    /* The servers first: the batch has a byte for each (a server added
     * after this is not part of it). */
    int *up, k = volmeta_up(m, &up);
    struct batch *b = k >= 0 ? volpub_batch_alloc(m) : NULL;
    uint32_t n = m->qn > PROTO_REC_MAX ? PROTO_REC_MAX : (uint32_t)m->qn;
    struct proto_rec *recs = xreallocarray(NULL, n, sizeof(*recs));
    struct pubrec *pr = xreallocarray(NULL, n, sizeof(*pr));
    if (!b || !recs || !pr) {
        free(up);
        free(b);
        free(recs);
        free(pr);
        (void)xalloc_fail("volume %s: a batch of records", m->name);
        evloop_defer(pool_evloop(m->pool), &m->nomem);
        return;
    }
    memcpy(pr, m->q, n * sizeof(*pr));
    memmove(m->q, m->q + n, (m->qn - n) * sizeof(*m->q));
    m->qn -= n;
    for (uint32_t i = 0; i < n; i++)
        recs[i] = pr[i].r;
    b->m = m;
    b->kind = B_PUB;
    b->recs = pr;
    b->n = n;
    b->t_ms = evloop_now_ms();
    evloop_defer_init(&b->later, batch_later, b);
    TAILQ_INSERT_TAIL(&m->batches, b, link);
    m->inflight++;
    if (m->fenced) {
        b->fenced = true;
        evloop_defer(pool_evloop(m->pool), &b->later);
        free(recs);
        free(up);
        return;
    }
    volpub_check_restarts(m);
    struct proto_msg q = { .type = PROTO_META_PUT };
    q.u.meta.vid = m->vid;
    q.u.meta.epoch = m->epoch;
    q.u.meta.n = n;
    q.u.meta.recs = recs;
    b->pending = 1;
    for (int i = 0; i < k; i++)
        if (pool_ctl(m->pool, up[i], &q, on_put, b) == 0) {
            b->pending++;
            mark(b, up[i], F_SENT);
        }
    free(up);
    free(recs);     /* pool_ctl encoded them */
    if (--b->pending == 0)
        evloop_defer(pool_evloop(m->pool), &b->later);
    else
        volpub_arm(m);
}

int volmeta_publish(struct volmeta *m, const struct proto_rec *r, volmeta_pub_cb cb, void *arg)
{
    if (m->qn == m->qcap) {
        size_t cap = m->qcap ? m->qcap * 2 : 64;
        struct pubrec *q = xreallocarray(m->q, cap, sizeof(*q));
        if (!q)
            return xalloc_fail("volume %s: the record queue", m->name);
        m->q = q;
        m->qcap = cap;
    }
    m->q[m->qn++] = (struct pubrec){ .r = *r, .cb = cb, .arg = arg };
    flush(m);
    return 0;
}
















/* Every POOL_LATE_MS / 2 while a batch waits, IDLE_TICK_MS while only a server is behind. */
static int tick(struct evloop *el, long long id, void *arg)
{
    struct volmeta *m = arg;
    (void)el;
    (void)id;
    uint64_t now = evloop_now_ms();
    struct batch *b, *nb;
    TAILQ_FOREACH_SAFE(b, &m->batches, link, nb)
        if (b->kind == B_PUB && !b->done)
            volpub_try_end(b, now);
    volpub_catch_up(m, now);
    if (m->set_dirty)
        volpub_sync_insync(m);
    for (int s = 0; m->claimer && s < m->nsrv; s++)
        volpub_maybe_join(m, s);
    if (!TAILQ_EMPTY(&m->batches) || m->set_busy || m->set_dirty)
        return POOL_LATE_MS / 2;
    bool rejoin = false;
    for (int s = 0; m->claimer && !m->fenced && s < m->nsrv && !rejoin; s++)
        rejoin = m->srv[s].known && !m->srv[s].insync && pool_server_inc(m->pool, s) == m->srv[s].inc &&
                 !m->srv[s].late;
    if (any_behind(m) || rejoin)
        return IDLE_TICK_MS;    /* a server behind (maybe gone for good), or one to rejoin: look now and then */
    m->timer = 0;
    return -1;
}

void volpub_arm(struct volmeta *m)
{
    if (!m->timer)
        m->timer = evloop_add_timer(pool_evloop(m->pool), POOL_LATE_MS / 2, tick, m);
}

void volpub_free(struct volmeta *m)
{
    if (m->timer)
        evloop_del_timer(pool_evloop(m->pool), m->timer);
    struct batch *b;
    while ((b = TAILQ_FIRST(&m->batches))) {
        TAILQ_REMOVE(&m->batches, b, link);
        evloop_defer_cancel(pool_evloop(m->pool), &b->later);
        b->m = NULL;
        if (!b->pending)
            volpub_unlink_free(NULL, b);
    }
    for (int s = 0; s < m->nsrv; s++)
        free(m->srv[s].owed.recs);
    free(m->srv);
    m->srv = NULL;
    m->nsrv = 0;
}

/* ---- fencing, dropping --------------------------------------------------- */

void volmeta_fence(struct volmeta *m)
{
    if (m->fenced)
        return;
    m->fenced = true;
    meta_err(m, "fenced: another backend attached it (our epoch %llu); its writes here fail",
             (unsigned long long)m->epoch);
}

static void on_drop(void *arg, int srv, const struct proto_msg *r)
{
    (void)arg;
    (void)srv;
    (void)r;
}

void volmeta_drop(struct volmeta *m)
{
    int *up, k = volmeta_up(m, &up);
    struct proto_msg q = { .type = PROTO_VOL_DROP };
    q.u.vol.vid = m->vid;
    q.u.vol.epoch = m->epoch;
    q.u.vol.size = m->size;
    snprintf(q.u.vol.name, sizeof(q.u.vol.name), "%s", m->name);
    for (int i = 0; i < k; i++)
        pool_ctl(m->pool, up[i], &q, on_drop, NULL);
    free(up);
}
