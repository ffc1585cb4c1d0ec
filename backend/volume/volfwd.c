/* volfwd.c — telling the servers of a page's previous copy what replaced it.
 *
 * A page's record rides with the page to the page's own servers
 * (pool_write_vol), so when a page is written anew elsewhere the servers of
 * the old copy keep its old record.  The data is safe either way (the newest
 * record wins wherever it is read), but an attach that found the new copy's
 * servers all lost would read the old record and serve the page's older
 * bytes instead of failing it; and that record keeps the old slab referenced
 * on those servers, so they never free it on their own.  So once the new
 * record is on R servers, it is also sent to the old copy's servers that did
 * not get it: off the guest's path, batched per server for FWD_MS (one
 * META_PUT carries up to PROTO_REC_MAX: a QD1 writer's forwards share one
 * message per server and few milliseconds instead of one each), best effort
 * (a server that is down or refuses is not retried: the old record is only
 * stale, never wrong).
 *
 * Memory: at most PROTO_REC_MAX records per server wait for the flush; a
 * record that finds no memory is dropped (counted), like a refused one.
 */
#include "volmeta_int.h"

#include "evloop.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct fwdq {
    int srv;
    uint32_t n;
    struct proto_rec recs[PROTO_REC_MAX];
};

/* Best effort: the answer changes nothing (and may come after the volume is gone). */
static void on_fwd(void *arg, int srv, const struct proto_msg *r)
{
    (void)arg;
    (void)srv;
    (void)r;
}

/* Sends the records waiting for server k's queue. */
static void send_one(struct volmeta *m, struct fwdq *f)
{
    struct proto_msg q = { .type = PROTO_META_PUT };
    q.u.meta.vid = m->vid;
    q.u.meta.epoch = m->epoch;
    q.u.meta.n = f->n;
    q.u.meta.recs = f->recs;
    m->fwd_st.msgs++;
    m->fwd_st.recs += f->n;
    if (pool_ctl(m->pool, f->srv, &q, on_fwd, NULL) < 0)
        m->fwd_st.failed++;
    f->n = 0;
}

#define FWD_MS 2

static int flush(struct evloop *el, long long id, void *arg)
{
    struct volmeta *m = arg;
    (void)el;
    (void)id;
    m->fwd_timer = 0;
    for (size_t i = 0; i < m->nfwd; i++)
        if (m->fwd[i]->n)
            send_one(m, m->fwd[i]);
    return -1;
}

static struct fwdq *queue_for(struct volmeta *m, int srv)
{
    for (size_t i = 0; i < m->nfwd; i++)
        if (m->fwd[i]->srv == srv)
            return m->fwd[i];
    struct fwdq **nf = xreallocarray(m->fwd, m->nfwd + 1, sizeof(*nf));
    if (!nf)
        return NULL;
    m->fwd = nf;
    struct fwdq *f = xcalloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->srv = srv;
    m->fwd[m->nfwd++] = f;
    return f;
}

void volmeta_forward(struct volmeta *m, const int *srvs, int n, const struct proto_rec *r)
{
    if (m->fenced)
        return;
    for (int i = 0; i < n; i++) {
        struct fwdq *f = queue_for(m, srvs[i]);
        if (!f) {
            m->fwd_st.failed++;
            continue;
        }
        f->recs[f->n++] = *r;
        if (f->n == PROTO_REC_MAX)
            send_one(m, f);
    }
    if (!m->fwd_timer && (m->fwd_timer = evloop_add_timer(pool_evloop(m->pool), FWD_MS, flush, m)) <= 0) {
        m->fwd_timer = 0;
        flush(pool_evloop(m->pool), 0, m);     /* no timer: now */
    }
}

void volfwd_free(struct volmeta *m)
{
    if (m->fwd_timer)
        evloop_del_timer(pool_evloop(m->pool), m->fwd_timer);
    m->fwd_timer = 0;
    for (size_t i = 0; i < m->nfwd; i++)
        free(m->fwd[i]);
    free(m->fwd);
    m->fwd = NULL;
    m->nfwd = 0;
}

void volmeta_forward_stats(const struct volmeta *m, struct volmeta_fwd_stats *st) { *st = m->fwd_st; }
