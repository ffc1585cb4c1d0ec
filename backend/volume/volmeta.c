/* volmeta.c — a volume's metadata in the pool; see volmeta.h.
 *
 * Loading is a chain of stages (QUERY the epochs, CLAIM the next one, LIST
 * the records from every server that took the claim, ADOPT the slabs they
 * name), each ended by its last reply.  Publishing is volpub.c's.
 *
 * Memory: the load's arrays are set-up (a failed allocation fails the load);
 * a record that cannot be queued or batched fails its publish with -ENOMEM,
 * completed from the loop, never inside volmeta_publish's caller's batch.
 */
#include "volmeta_int.h"

#include "evloop.h"
#include "log.h"
#include "volstore.h"
#include "xalloc.h"

#define XXH_INLINE_ALL
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

uint64_t volmeta_vid_of(const char *name)
{
    uint64_t v = XXH3_64bits(name, strlen(name));
    return v ? v : 1;
}

static void finish_later(struct evloop *el, void *arg);

struct volmeta *volmeta_new(struct pool *pool, const char *name, uint64_t size,
                            const struct volclaim_ops *claimer)
{
    struct volmeta *m = xcalloc(1, sizeof(*m));
    if (!m)
        return NULL;
    evloop_defer_init(&m->finish, finish_later, m);
    evloop_defer_init(&m->nomem, volpub_fail_queued, m);
    evloop_defer_init(&m->dq_defer, volpub_run_done, m);
    TAILQ_INIT(&m->batches);
    m->pool = pool;
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->vid = volmeta_vid_of(name);
    m->size = size;
    m->claimer = claimer;
    m->prev_ninsync = -1;
    return m;
}

void volmeta_free(struct volmeta *m)
{
    if (!m)
        return;
    evloop_defer_cancel(pool_evloop(m->pool), &m->finish);
    evloop_defer_cancel(pool_evloop(m->pool), &m->nomem);
    evloop_defer_cancel(pool_evloop(m->pool), &m->dq_defer);
    free(m->dq);
    if (m->fence_timer)
        evloop_del_timer(pool_evloop(m->pool), m->fence_timer);
    volpub_free(m);
    volfwd_free(m);
    volstore_free(m->merge);
    volcheck_free(m);
    free(m->prev_insync);
    free(m->uids);
    free(m->slabs);
    free(m->slab_st);
    free(m->q);
    free(m);
}

uint64_t volmeta_vid(const struct volmeta *m) { return m->vid; }
uint64_t volmeta_epoch(const struct volmeta *m) { return m->epoch; }
bool volmeta_fenced(const struct volmeta *m) { return m->fenced; }

void volmeta_set_epoch(struct volmeta *m, uint64_t epoch)
{
    if (epoch <= m->epoch)
        return;
    meta_info(m, "claim renewed under epoch %llu (was %llu)", (unsigned long long)epoch,
              (unsigned long long)m->epoch);
    m->epoch = epoch;
}

bool volmeta_may_write(const struct volmeta *m)
{
    return !m->claimer || m->claimer->may_write(m->claimer->ctx);
}

uint64_t volmeta_next_seq(struct volmeta *m)
{
    /* Even, two apart: seq + 1 is left for a second record of the same write (volmeta.h). */
    m->counter = (m->counter | 1) + 1;
    return m->epoch << SEQ_BITS | m->counter;
}

/* ---- loading -------------------------------------------------------------- */

static void load_step(struct volmeta *m);

static void finish_later(struct evloop *el, void *arg)
{
    struct volmeta *m = arg;
    (void)el;
    m->stage = IDLE;
    volstore_free(m->merge);
    m->merge = NULL;
    volcheck_free(m);
    m->done(m->arg, m->err, m->msg);
}

/* Ends the load from the loop, never inside volmeta_load's caller. */
static void load_end(struct volmeta *m, int err)
{
    m->err = err;
    evloop_defer(pool_evloop(m->pool), &m->finish);
}

static int got_claims(const struct volmeta *m)
{
    int got = 0;
    for (int i = 0; i < m->nsrv; i++)
        got += m->srv[i].claimed;
    return got;
}

static void on_claim(void *arg, int srv, const struct proto_msg *r)
{
    struct volmeta *m = arg;
    if (r && r->status == EEXIST && !m->err) {
        m->err = -EEXIST;
        if (r->u.vol.size && r->u.vol.size != m->size)
            snprintf(m->msg, sizeof(m->msg), "volume %s exists in the pool with size %llu bytes, not %llu",
                     m->name, (unsigned long long)r->u.vol.size, (unsigned long long)m->size);
        else
            snprintf(m->msg, sizeof(m->msg), "volume %s: its id is taken by another volume name",
                     m->name);
    } else if (r && r->status == 0) {
        m->answered++;
        if (r->u.vol.epoch > m->max_epoch)
            m->max_epoch = r->u.vol.epoch;
        if (m->stage == QUERY && r->u.vol.size && r->u.vol.size != m->size && !m->err) {
            m->err = -EEXIST;
            snprintf(m->msg, sizeof(m->msg), "volume %s exists in the pool with size %llu bytes, not %llu",
                     m->name, (unsigned long long)r->u.vol.size, (unsigned long long)m->size);
        }
        if (m->stage == CLAIM) {
            m->srv[srv].claimed = true;
            volpub_known(m, srv);       /* it holds the records we publish from now on */
        }
    } else if (r && r->status == ESTALE && m->stage == CLAIM) {
        /* Another backend claimed at the same moment: ask again, go higher. */
        if (r->u.vol.epoch > m->max_epoch)
            m->max_epoch = r->u.vol.epoch;
        m->err = m->err ? m->err : -EAGAIN;
    }
    if (--m->pending == 0)
        load_step(m);
}

static void send_claims(struct volmeta *m, uint64_t epoch);

static void on_coord_claim(void *arg, int status, const struct volclaim_result *res, const char *msg)
{
    struct volmeta *m = arg;
    if (status) {
        snprintf(m->msg, sizeof(m->msg), "volume %s: %s", m->name, msg && *msg ? msg : strerror(-status));
        load_end(m, status);
        return;
    }
    m->epoch = res->epoch;
    m->takeover = res->takeover;
    m->claimed_ms = evloop_now_ms();
    free(m->prev_insync);
    m->prev_insync = NULL;
    m->prev_ninsync = res->ninsync;
    if (res->ninsync == 0) {
        /* Never written so (the set always keeps a server that acknowledged): not ours to trust. */
        meta_warn(m, "etcd records an empty in-sync set: reading the records from every server");
        m->prev_ninsync = -1;
    } else if (res->ninsync > 0) {
        m->prev_insync = xreallocarray(NULL, (size_t)res->ninsync, sizeof(*m->prev_insync));
        if (!m->prev_insync) {
            snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
            load_end(m, -EIO);
            return;
        }
        memcpy(m->prev_insync, res->insync, (size_t)res->ninsync * sizeof(*m->prev_insync));
    }
    m->stage = CLAIM;
    send_claims(m, res->epoch);
}

bool volmeta_was_insync(const struct volmeta *m, int s)
{
    if (m->prev_ninsync < 0)
        return true;
    for (int i = 0; i < m->prev_ninsync; i++)
        if (!strcmp(m->prev_insync[i], pool_server_addr(m->pool, s)))
            return true;
    return false;
}

static void coord_claim(struct volmeta *m)
{
    m->stage = COORD;
    if (m->claimer->claim(m->claimer->ctx, m->name, m->vid, m->size, on_coord_claim, m) < 0) {
        snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
        load_end(m, -EIO);
    }
}

static int fence_waited(struct evloop *el, long long id, void *arg)
{
    struct volmeta *m = arg;
    (void)el;
    (void)id;
    m->fence_timer = 0;
    load_step(m);
    return -1;
}

static void send_claims(struct volmeta *m, uint64_t epoch)
{
    /* A server that joins after this is not part of this claim (nor of the
     * listing): it is behind until caught up, like one that was down. */
    int *up, n = volmeta_up(m, &up);
    if (n < 0) {
        snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
        load_end(m, -ENOMEM);
        return;
    }
    struct proto_msg q = { .type = PROTO_VOL_CLAIM };
    q.u.vol.vid = m->vid;
    q.u.vol.epoch = epoch;
    q.u.vol.size = m->size;
    snprintf(q.u.vol.name, sizeof(q.u.vol.name), "%s", m->name);
    for (int i = 0; i < m->nsrv; i++)
        m->srv[i].claimed = false;
    m->pending = 1;
    for (int i = 0; i < n; i++)
        if (pool_ctl(m->pool, up[i], &q, on_claim, m) == 0)
            m->pending++;
    free(up);
    if (--m->pending == 0) {
        snprintf(m->msg, sizeof(m->msg), "volume %s: no memory server is up", m->name);
        load_end(m, -EAGAIN);
    }
}

static void on_list(void *arg, int srv, const struct proto_msg *r);

static void list_from(struct volmeta *m, int srv)
{
    struct proto_msg q = { .type = PROTO_META_LIST };
    q.u.meta.vid = m->vid;
    q.u.meta.epoch = m->epoch;
    q.u.meta.cursor = m->srv[srv].cursor;
    if (pool_ctl(m->pool, srv, &q, on_list, m) == 0)
        m->pending++;
}

/* Lists the records of every server that took the claim, from the start;
 * load_step runs once every listing has ended. */
static void list_claimed(struct volmeta *m)
{
    m->pending = 1;
    for (int i = 0; i < m->nsrv; i++) {
        m->srv[i].cursor = 0;
        if (m->srv[i].claimed)
            list_from(m, i);
    }
    if (--m->pending == 0)
        load_step(m);
}

static void on_list(void *arg, int srv, const struct proto_msg *r)
{
    struct volmeta *m = arg;
    if (r && r->status == 0) {
        /* The newest record of each page wins, whichever server had it.
         * Invariant: an older record never wins over an acknowledged newer one, because every
         * acknowledged record is on each of R replicas of its page (it came with the page) or on
         * every server caught up then (volpub.c), those are read, and seq grows. */
        for (uint32_t i = 0; i < r->u.meta.n; i++) {
            struct proto_rec rec;
            proto_rec_get(r->u.meta.raw, i, &rec);
            int st = m->stage == REFETCH ? volcheck_refetched(m, srv, &rec) : volcheck_note(m, srv, &rec);
            if (st && !m->err) {
                snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
                m->err = -EIO;
            }
        }
        if (m->stage != REFETCH)
            volstore_put(m->merge, m->vid, 1, r->u.meta.raw, r->u.meta.n);
        m->srv[srv].cursor = r->u.meta.cursor;
        if (r->u.meta.cursor)
            list_from(m, srv);
    } else if (r && r->status != ENOENT) {
        meta_warn(m, "listing records on memd %s failed: %s",
                  pool_server_addr(m->pool, srv), strerror(r->status));
    }
    if (--m->pending == 0)
        load_step(m);
}

#define UNADOPTED INT_MIN       /* slab_st: not asked yet */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Every distinct slab the records point into, sorted. */
static int collect_uids(struct volmeta *m)
{
    static struct proto_rec recs[PROTO_REC_MAX];
    size_t cap = 64;
    m->uids = malloc(cap * sizeof(*m->uids));
    if (!m->uids)
        return -1;
    uint64_t cursor = 0;
    do {
        int n = volstore_list(m->merge, m->vid, &cursor, recs, PROTO_REC_MAX);
        for (int i = 0; i < n; i++) {
            if (recs[i].kind != PROTO_REC_PAGE)
                continue;
            if ((recs[i].seq & ((1ull << SEQ_BITS) - 1)) > m->counter)
                m->counter = recs[i].seq & ((1ull << SEQ_BITS) - 1);
            if (m->nuids && m->uids[m->nuids - 1] == recs[i].uid)
                continue;
            if (m->nuids == cap) {
                uint64_t *u = realloc(m->uids, (cap *= 2) * sizeof(*u));
                if (!u)
                    return -1;
                m->uids = u;
            }
            m->uids[m->nuids++] = recs[i].uid;
        }
        if (n <= 0)
            break;
    } while (cursor);
    qsort(m->uids, m->nuids, sizeof(*m->uids), cmp_u64);
    size_t k = 0;
    for (size_t i = 0; i < m->nuids; i++)
        if (!k || m->uids[k - 1] != m->uids[i])
            m->uids[k++] = m->uids[i];
    m->nuids = k;
    m->slabs = calloc(k ? k : 1, sizeof(*m->slabs));
    m->slab_st = calloc(k ? k : 1, sizeof(*m->slab_st));
    if (!m->slabs || !m->slab_st)
        return -1;
    for (size_t i = 0; i < k; i++)
        m->slab_st[i] = UNADOPTED;
    return 0;
}

/* The merge changed (volcheck_rebuild): its slabs again, those adopted
 * already keeping their adoption. */
static int recollect_uids(struct volmeta *m)
{
    uint64_t *ou = m->uids;
    uint32_t *os = m->slabs;
    int *ost = m->slab_st;
    size_t on = m->nuids;
    m->uids = NULL;
    m->slabs = NULL;
    m->slab_st = NULL;
    m->nuids = 0;
    int rc = collect_uids(m);
    for (size_t i = 0; !rc && i < m->nuids; i++) {
        uint64_t *u = bsearch(&m->uids[i], ou, on, sizeof(*ou), cmp_u64);
        if (u) {
            m->slabs[i] = os[u - ou];
            m->slab_st[i] = ost[u - ou];
        }
    }
    free(ou);
    free(os);
    free(ost);
    return rc;
}

/* Where record r's page is now (0: its slab was not adopted). */
static pool_page_t page_of(struct volmeta *m, const struct proto_rec *r)
{
    uint64_t *u = bsearch(&r->uid, m->uids, m->nuids, sizeof(*m->uids), cmp_u64);
    size_t k = (size_t)(u - m->uids);
    return u && m->slab_st[k] == 0 ? pool_page_in(m->pool, m->slabs[k], r->page) : 0;
}

void volmeta_checked(struct volmeta *m)
{
    if (m->stage == CHECK)
        load_step(m);
}

static void on_adopted(void *arg, int status, uint32_t slab)
{
    struct volmeta *m = arg;
    m->slabs[m->next_uid] = slab;
    m->slab_st[m->next_uid] = status;
    if (status)
        meta_err(m, "no live memory server holds slab %016llx: its pages are lost",
                 (unsigned long long)m->uids[m->next_uid]);
    m->next_uid++;
    load_step(m);
}

/* Hands every record to the volume, with the page it now names. */
static void emit(struct volmeta *m)
{
    static struct proto_rec recs[PROTO_REC_MAX];
    uint64_t cursor = 0, zero_seq = 0;
    do {
        int n = volstore_list(m->merge, m->vid, &cursor, recs, PROTO_REC_MAX);
        for (int i = 0; i < n; i++) {
            struct proto_rec *r = &recs[i];
            if ((r->seq & ((1ull << SEQ_BITS) - 1)) > zero_seq)
                zero_seq = r->seq & ((1ull << SEQ_BITS) - 1);
            if (r->kind != PROTO_REC_PAGE) {
                m->each(m->arg, r, 0, true);
                continue;
            }
            uint64_t *u = bsearch(&r->uid, m->uids, m->nuids, sizeof(*m->uids), cmp_u64);
            size_t k = (size_t)(u - m->uids);
            bool ok = u && m->slab_st[k] == 0;
            m->each(m->arg, r, ok ? pool_page_in(m->pool, m->slabs[k], r->page) : 0, ok);
        }
        if (n <= 0)
            break;
    } while (cursor);
    if (zero_seq > m->counter)
        m->counter = zero_seq;
}

static void load_step(struct volmeta *m)
{
    switch (m->stage) {
    case QUERY:
        if (m->err) {
            load_end(m, m->err);
            return;
        }
        m->stage = CLAIM;
        m->epoch = m->max_epoch + 1;
        send_claims(m, m->epoch);
        return;
    case CLAIM: {
        if (m->err == -EAGAIN && ++m->tries < CLAIM_TRIES) {
            /* A server knows a newer claim than ours: somebody claimed after us. */
            m->err = 0;
            if (m->claimer) {
                coord_claim(m);
                return;
            }
            m->stage = QUERY;
            send_claims(m, 0);
            return;
        }
        if (m->err) {
            if (m->err == -EAGAIN)
                snprintf(m->msg, sizeof(m->msg), "volume %s: another backend keeps claiming it", m->name);
            load_end(m, m->err == -EAGAIN ? -EIO : m->err);
            return;
        }
        int got = got_claims(m);
        if (!got) {
            snprintf(m->msg, sizeof(m->msg), "volume %s: no memory server accepted the claim", m->name);
            load_end(m, -EAGAIN);
            return;
        }
        meta_info(m, "claimed with epoch %llu on %d memory server(s)%s",
                  (unsigned long long)m->epoch, got, m->claimer ? " (etcd)" : "");
        m->stage = FENCE;
        /* Invariant: the old owner writes nowhere once we read the records:
         * a member server that did not take our claim directly learns it
         * from etcd within fence_wait_ms, or refuses every write it cannot
         * prove current by then. */
        if (m->claimer && m->takeover && got < pool_member_servers(m->pool)) {
            uint64_t until = m->claimed_ms + m->claimer->fence_wait_ms, now = evloop_now_ms();
            if (now < until) {
                meta_info(m, "taken over with %d of %d memory server(s) answering: waiting %llu ms for the others to fence the previous owner",
                          got, pool_member_servers(m->pool), (unsigned long long)(until - now));
                m->fence_timer = evloop_add_timer(pool_evloop(m->pool), (int)(until - now), fence_waited, m);
                if (m->fence_timer > 0)
                    return;
                m->fence_timer = 0;
                snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
                load_end(m, -EIO);
                return;
            }
        }
    }
        /* fall through */
    case FENCE: {
        m->merge = volstore_new();
        if (!m->merge) {
            snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
            load_end(m, -EIO);
            return;
        }
        /* Invariant (coordinator mode): every acknowledged record that did
         * not come with its page is on every server of the recorded in-sync
         * set, so one of those must answer; a page's record is on the
         * servers holding the page, so every server that took the claim is
         * read too (the newest record of each page wins the merge). */
        int sources = 0;
        for (int i = 0; i < m->nsrv; i++)
            sources += m->srv[i].claimed && volmeta_was_insync(m, i);
        if (!sources) {
            snprintf(m->msg, sizeof(m->msg), "volume %s: none of the %d memory server(s) that hold every record "
                     "(%s%s) is reachable", m->name, m->prev_ninsync, m->prev_insync[0], m->prev_ninsync > 1 ? ", ..." : "");
            load_end(m, -EAGAIN);
            return;
        }
        /* Invariant: a page's record that came with it is on R servers, so
         * with fewer than R members unread one of them is read. */
        int unread = pool_member_servers(m->pool) - got_claims(m);
        if (unread >= pool_replicas(m->pool)) {
            snprintf(m->msg, sizeof(m->msg), "volume %s: %d of %d memory servers did not answer; with %d or more "
                     "unread, records of pages stored on them only could be missed", m->name, unread,
                     pool_member_servers(m->pool), pool_replicas(m->pool));
            load_end(m, -EAGAIN);
            return;
        }
        m->stage = LIST;
        list_claimed(m);
        return;
    }
    case LIST:
        if (m->err || collect_uids(m)) {
            snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
            load_end(m, -EIO);
            return;
        }
        m->next_uid = 0;
        if (m->claimer) {
            /* Our in-sync set, in etcd before anything is served: the
             * servers we read from (they hold every earlier record). */
            m->stage = INSYNC;
            volpub_begin_insync(m);
            return;
        }
        m->stage = ADOPT;
        /* fall through */
    case ADOPT:
        while (m->next_uid < m->nuids && m->slab_st[m->next_uid] != UNADOPTED)
            m->next_uid++;
        if (m->next_uid < m->nuids) {
            pool_adopt(m->pool, m->uids[m->next_uid], on_adopted, m);
            return;
        }
        m->stage = CHECK;
        switch (volcheck_begin(m, page_of)) {
        case 1:
            return;
        case 0:
            break;
        default:
            snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
            load_end(m, -EIO);
            return;
        }
        /* fall through */
    case CHECK:
        if (volcheck_bad(m)) {
            /* Invariant: a record is replaced only by the newest older one of its page. */
            m->stage = REFETCH;
            volcheck_refetch_begin(m);
            list_claimed(m);
            return;
        }
        emit(m);
        for (size_t k = 0; k < m->nuids; k++)
            if (m->slab_st[k] == 0)
                pool_adopt_settled(m->pool, m->slabs[k]);
        meta_info(m, "loaded from the pool: %zu slab(s), epoch %llu", m->nuids,
                  (unsigned long long)m->epoch);
        load_end(m, 0);
        return;
    case REFETCH:
        if (m->err || volcheck_rebuild(m) || recollect_uids(m)) {
            snprintf(m->msg, sizeof(m->msg), "volume %s: out of memory", m->name);
            load_end(m, -EIO);
            return;
        }
        m->stage = ADOPT;
        m->next_uid = 0;
        load_step(m);
        return;
    case RECHECK:
        if (!m->err && !m->answered) {
            snprintf(m->msg, sizeof(m->msg), "volume %s: no memory server answered", m->name);
            m->err = -EAGAIN;
        }
        if (!m->err && m->max_epoch > m->epoch) {
            meta_warn(m, "attached by another backend since we let it go (epoch %llu, ours %llu): "
                      "our map of it is stale; it is loaded again",
                      (unsigned long long)m->max_epoch, (unsigned long long)m->epoch);
            m->fenced = true;
        }
        load_end(m, m->err);
        return;
    case IDLE:
    case COORD:
    case INSYNC:
        return;
    }
}

void volmeta_insync_done(struct volmeta *m, int status)
{
    if (m->stage != INSYNC)
        return;
    if (status) {
        snprintf(m->msg, sizeof(m->msg), "volume %s: recording its in-sync servers in etcd failed: %s", m->name,
                 status == -ESTALE ? "another backend claimed it" : strerror(-status));
        load_end(m, status == -ESTALE ? -EIO : -EAGAIN);
        return;
    }
    m->stage = ADOPT;
    load_step(m);
}

/* What a load and a recheck both start from: who is told, nothing learnt yet. */
static void op_begin(struct volmeta *m, volmeta_rec_cb each, volmeta_done_cb done, void *arg)
{
    m->each = each;
    m->done = done;
    m->arg = arg;
    m->err = 0;
    m->msg[0] = 0;
    m->max_epoch = 0;
}

void volmeta_recheck(struct volmeta *m, volmeta_done_cb done, void *arg)
{
    op_begin(m, NULL, done, arg);
    m->answered = 0;
    m->stage = RECHECK;
    /* The servers hear of every claim (with a coordinator too: the claimer
     * sends VOL_CLAIM to every live server), so the highest epoch they
     * report is the newest claim. */
    send_claims(m, 0);
}

void volmeta_load(struct volmeta *m, volmeta_rec_cb each, volmeta_done_cb done, void *arg)
{
    op_begin(m, each, done, arg);
    m->tries = 0;
    m->takeover = false;
    m->prev_ninsync = -1;
    /* Every member holds records of the pages it stores: a backend just
     * started reads none until its first connections are through. */
    if (pool_connecting(m->pool)) {
        snprintf(m->msg, sizeof(m->msg), "volume %s: memory servers are still being connected to", m->name);
        load_end(m, -EAGAIN);
        return;
    }
    if (m->claimer) {
        coord_claim(m);
        return;
    }
    m->stage = QUERY;
    send_claims(m, 0);
}

