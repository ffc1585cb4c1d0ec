/* coord_watch.c — watching a prefix: a snapshot, then the change stream, and
 * the freshness proof (coord.h).
 *
 * A watch is a loop of three requests: a range of the prefix (the snapshot:
 * RESET, PUT..., SYNC at its revision R), a /v3/watch stream from R + 1 (PUT
 * and DEL as they commit), and every COORD_CHECK_MS a linearizable range of
 * the keys under the prefix with mod_revision > the last delivered revision.
 * When that check finds none, every put committed before the check was sent
 * has been delivered: fresh = its send time.  A broken stream, a compaction or
 * a cancel starts the loop over from a new snapshot. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_int.h"
#include "evloop.h"
#include "xalloc.h"

#define RESTART_MS 200          /* after a broken stream: no hot loop on a dead etcd */

struct coord_watch {
    struct coord *c;
    char *full, *rel;           /* the prefix, absolute and as given */
    coord_watch_cb cb;
    void *arg;
    int64_t rev;                /* every event up to it has been delivered */
    int64_t base;               /* the snapshot's revision: the stream starts after it */
    bool live;                  /* the stream said "created" */
    uint64_t fresh;
    struct coord_req *snap, *stream, *check;
    long long check_timer, restart_timer;
    json_tokener *tok;
    LIST_ENTRY(coord_watch) link;
};

static void restart(struct coord_watch *w);

static void deliver(struct coord_watch *w, enum coord_ev ev, const struct coord_kv *kv, int64_t rev)
{
    if (ev == COORD_EV_PUT || ev == COORD_EV_DEL)
        w->c->st.watch_events++;
    w->cb(w->arg, ev, kv, rev);
}

/* Strips the watch's own prefix so callers see keys relative to the cluster's. */
static long on_stream(struct coord_req *r, const char *buf, size_t len)
{
    struct coord_watch *w = r->owner;
    struct coord *c = w->c;
    size_t used = 0;
    while (used < len) {
        json_object *o = json_tokener_parse_ex(w->tok, buf + used, (int)(len - used));
        enum json_tokener_error e = json_tokener_get_error(w->tok);
        if (e == json_tokener_continue)
            return (long)len;   /* the tokener keeps the partial object */
        size_t off = (size_t)w->tok->char_offset;
        used += off ? off : len - used;
        if (e != json_tokener_success || !o) {
            chttp_fail_log(c, "watch", r->ep, "the stream is not JSON");
            json_object_put(o);
            goto again;
        }
        struct cj_reply rep;
        char why[160] = "";
        int st = cj_parse_obj(CJ_WATCH, o, c->prefix, &rep, why, sizeof(why));
        json_object_put(o);
        if (st || rep.canceled || rep.compact_rev) {
            chttp_fail_log(c, "watch", r->ep, st ? why : rep.compact_rev ? "compacted" : "canceled");
            cj_reply_free(&rep);
            goto again;
        }
        if (rep.created)
            w->live = true;
        for (size_t i = 0; i < rep.nkv; i++) {
            /* Not <= w->rev: one transaction's events share a revision. */
            if (rep.kvs[i].mod_rev <= w->base)
                continue;       /* already in the snapshot */
            struct coord_kv kv = rep.kvs[i];
            if (rep.evs[i] == COORD_EV_DEL)
                kv.vlen = 0, kv.val = "";
            w->rev = kv.mod_rev;
            deliver(w, rep.evs[i], &kv, kv.mod_rev);
        }
        cj_reply_free(&rep);
        json_tokener_reset(w->tok);
    }
    return (long)len;
again:
    w->stream = NULL;           /* the HTTP layer ends it */
    restart(w);
    return -1;
}

static void on_stream_end(struct coord_req *r, int st, const char *body, size_t len)
{
    struct coord_watch *w = r->owner;
    (void)body;
    (void)len;
    (void)st;
    w->stream = NULL;
    restart(w);
}

static void on_snapshot(struct coord_req *r, int st, const char *body, size_t len)
{
    struct coord_watch *w = r->owner;
    struct coord *c = w->c;
    struct cj_reply rep = { 0 };
    char why[160] = "";
    w->snap = NULL;
    if (st == 0)
        st = cj_parse(CJ_RANGE, body, len, c->prefix, &rep, why, sizeof(why));
    if (st) {
        if (why[0])
            chttp_fail_log(c, "watch snapshot", r->ep, why);
        cj_reply_free(&rep);
        restart(w);
        return;
    }
    char *wb = cj_watch_body(w->full, rep.rev + 1);
    w->stream = chttp_post(c, "/v3/watch", wb, on_stream_end, on_stream);
    if (!w->stream) {
        cj_reply_free(&rep);
        restart(w);
        return;
    }
    w->stream->owner = w;
    json_tokener_reset(w->tok);
    w->rev = w->base = rep.rev;
    deliver(w, COORD_EV_RESET, NULL, rep.rev);
    for (size_t i = 0; i < rep.nkv; i++)
        deliver(w, COORD_EV_PUT, &rep.kvs[i], rep.kvs[i].mod_rev);
    deliver(w, COORD_EV_SYNC, NULL, rep.rev);
    cj_reply_free(&rep);
}

static void start(struct coord_watch *w)
{
    w->live = false;
    char *body = cj_range_body(w->full, true, 0, false, 0);
    w->snap = chttp_post(w->c, "/v3/kv/range", body, on_snapshot, NULL);
    if (w->snap)
        w->snap->owner = w;
    else
        restart(w);
}

static int on_restart(struct evloop *el, long long id, void *arg)
{
    struct coord_watch *w = arg;
    (void)el;
    (void)id;
    w->restart_timer = 0;
    start(w);
    return -1;
}

static void restart(struct coord_watch *w)
{
    if (w->snap)
        chttp_cancel(w->snap);
    if (w->stream)
        chttp_cancel(w->stream);
    w->snap = w->stream = NULL;
    w->live = false;
    if (!w->restart_timer) {
        w->restart_timer = evloop_add_timer(w->c->el, RESTART_MS, on_restart, w);
        if (w->restart_timer < 0)
            w->restart_timer = 0;       /* the check timer tries again */
    }
}

static void on_check(struct coord_req *r, int st, const char *body, size_t len)
{
    struct coord_watch *w = r->owner;
    struct coord *c = w->c;
    struct cj_reply rep = { 0 };
    char why[160] = "";
    w->check = NULL;
    c->st.checks++;
    if (st == 0)
        st = cj_parse(CJ_RANGE, body, len, c->prefix, &rep, why, sizeof(why));
    if (st && why[0])
        chttp_fail_log(c, "watch check", r->ep, why);
    if (st == -ETIMEDOUT || st == -ECONNREFUSED) {
        /* The stream may hang on an endpoint that no longer answers (a
         * partition sends no RST): start over, on whichever answers now. */
        cj_reply_free(&rep);
        restart(w);
        return;
    }
    /* No put under the prefix newer than what had been delivered when the check
     * was sent (r->ival): every put committed before r->sent_ms is known. */
    if (st == 0 && rep.nkv == 0 && w->rev >= r->ival && r->sent_ms > w->fresh)
        w->fresh = r->sent_ms;
    cj_reply_free(&rep);
}

static int on_check_timer(struct evloop *el, long long id, void *arg)
{
    struct coord_watch *w = arg;
    (void)el;
    (void)id;
    if (!w->snap && !w->stream && !w->restart_timer)
        start(w);
    if (w->live && !w->check) {
        char *body = cj_range_body(w->full, true, w->rev + 1, true, 1);
        w->check = chttp_post(w->c, "/v3/kv/range", body, on_check, NULL);
        if (w->check) {
            w->check->owner = w;
            w->check->ival = w->rev;
        }
    }
    return COORD_CHECK_MS;
}

struct coord_watch *coord_watch(struct coord *c, const char *prefix, coord_watch_cb cb, void *arg)
{
    struct coord_watch *w = xcalloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->c = c;
    w->cb = cb;
    w->arg = arg;
    w->rel = strdup(prefix);
    w->full = cj_full_key(c, prefix);
    w->tok = json_tokener_new();
    if (!w->rel || !w->full || !w->tok) {
        free(w->rel);
        free(w->full);
        if (w->tok)
            json_tokener_free(w->tok);
        free(w);
        return NULL;
    }
    LIST_INSERT_HEAD(&c->watches, w, link);
    w->check_timer = evloop_add_timer(c->el, COORD_CHECK_MS, on_check_timer, w);
    if (w->check_timer < 0) {
        w->check_timer = 0;
        coord_unwatch(w);
        return NULL;
    }
    start(w);
    return w;
}

void coord_unwatch(struct coord_watch *w)
{
    struct coord *c = w->c;
    if (w->snap)
        chttp_cancel(w->snap);
    if (w->stream)
        chttp_cancel(w->stream);
    if (w->check)
        chttp_cancel(w->check);
    if (w->check_timer)
        evloop_del_timer(c->el, w->check_timer);
    if (w->restart_timer)
        evloop_del_timer(c->el, w->restart_timer);
    LIST_REMOVE(w, link);
    json_tokener_free(w->tok);
    free(w->full);
    free(w->rel);
    free(w);
}

uint64_t coord_watch_fresh_ms(const struct coord_watch *w) { return w->fresh; }

void cwatch_free_all(struct coord *c)
{
    while (!LIST_EMPTY(&c->watches))
        coord_unwatch(LIST_FIRST(&c->watches));
}
