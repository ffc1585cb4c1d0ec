/* coord.c — struct coord: opening, the session lease (grant, keepalive,
 * loss and re-grant, health), and the key-value requests (put, del, cas, get).
 * The HTTP transport is coord_http.c, the JSON coord_json.c, watches
 * coord_watch.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_int.h"
#include "evloop.h"
#include "xalloc.h"

enum { K_PUT, K_DEL, K_CAS, K_GET };

void coord_opts_init(struct coord_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->endpoints = "http://127.0.0.1:2379";
    o->prefix = "/memx/default";
    o->lease_ttl_s = 10;
    o->timeout_ms = 2000;
    o->who = "memx";
}

static char *dup_opt(const char *s, bool *bad)
{
    if (!s || !*s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *bad = true;
    return d;
}

static int split_endpoints(struct coord *c, const char *list)
{
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        return -ENOMEM;
    for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        size_t n = strlen(t);
        while (n && t[n - 1] == '/')
            t[--n] = '\0';
        char **e = xreallocarray(c->eps, (size_t)c->neps + 1, sizeof(*e));
        if (!e || !(e[c->neps] = strdup(t))) {
            if (e)
                c->eps = e;
            free(copy);
            return -ENOMEM;
        }
        c->eps = e;
        c->neps++;
    }
    free(copy);
    return c->neps ? 0 : -EINVAL;
}

static void coord_free(struct coord *c)
{
    cwatch_free_all(c);
    if (c->ka_timer)
        evloop_del_timer(c->el, c->ka_timer);
    chttp_fini(c);
    for (int i = 0; i < c->neps; i++)
        free(c->eps[i]);
    free(c->eps);
    free(c->prefix);
    free(c->cacert);
    free(c->cert);
    free(c->key);
    free(c->who);
    free(c);
}

static void set_health(struct coord *c, enum coord_health h)
{
    if (c->health == h)
        return;
    c->health = h;
    if (h == COORD_LEASE_LOST)
        mx_warn("%s: etcd lease %016" PRIx64 " lost: granting a new one", c->who, (uint64_t)c->lease);
    else
        mx_info("%s: etcd %s: lease %016" PRIx64, c->who, h == COORD_UP ? "up" : "degraded",
                (uint64_t)c->lease);
    if (c->hcb)
        c->hcb(c->harg, h);
}

static int ka_interval(const struct coord *c)
{
    int ms = (int)(c->lease_ttl > 0 ? c->lease_ttl : c->ttl_s) * 1000 / 3;
    if (c->health != COORD_UP && ms > 500)
        ms = 500;       /* retry sooner while the lease is at risk */
    return ms > 0 ? ms : 1;
}

static void lease_lost(struct coord *c);

static void on_grant(struct coord_req *r, int st, const char *body, size_t len)
{
    struct coord *c = r->c;
    struct cj_reply rep = { 0 };
    char why[160] = "";
    c->ka_req = NULL;
    if (st == 0 && (st = cj_parse(CJ_GRANT, body, len, c->prefix, &rep, why, sizeof(why))) == 0) {
        c->lease = rep.id;
        c->lease_ttl = rep.ttl;
        c->deadline = r->sent_ms + (uint64_t)rep.ttl * 1000;
        set_health(c, COORD_UP);
    } else if (why[0]) {
        chttp_fail_log(c, "lease grant", r->ep, why);
    }
    cj_reply_free(&rep);
}

static void on_keepalive(struct coord_req *r, int st, const char *body, size_t len)
{
    struct coord *c = r->c;
    struct cj_reply rep;
    char why[160] = "";
    c->ka_req = NULL;
    c->st.keepalives++;
    memset(&rep, 0, sizeof(rep));
    if (st == 0)
        st = cj_parse(CJ_KEEPALIVE, body, len, c->prefix, &rep, why, sizeof(why));
    if (st == 0 && rep.id != c->lease)
        st = -EPROTO, snprintf(why, sizeof(why), "keepalive answered for another lease");
    if (st == 0 && rep.ttl <= 0) {
        lease_lost(c);          /* etcd no longer knows the lease */
    } else if (st == 0) {
        /* The send time, not the answer's: etcd restarted its timer later. */
        uint64_t d = r->sent_ms + (uint64_t)rep.ttl * 1000;
        if (d > c->deadline)
            c->deadline = d;
        c->lease_ttl = rep.ttl;
        set_health(c, COORD_UP);
    } else {
        if (why[0])
            chttp_fail_log(c, "keepalive", r->ep, why);
        if (evloop_now_ms() >= c->deadline)
            lease_lost(c);
        else
            set_health(c, COORD_DEGRADED);
    }
    cj_reply_free(&rep);
}

static void send_grant(struct coord *c)
{
    c->ka_req = chttp_post(c, "/v3/lease/grant", cj_lease_body("TTL", c->ttl_s), on_grant, NULL);
}

static void lease_lost(struct coord *c)
{
    set_health(c, COORD_LEASE_LOST);
    if (c->health == COORD_LEASE_LOST && !c->ka_req)
        send_grant(c);
}

static int on_ka_timer(struct evloop *el, long long id, void *arg)
{
    struct coord *c = arg;
    (void)el;
    (void)id;
    if (!c->ka_req) {
        if (c->health == COORD_LEASE_LOST) {
            send_grant(c);
        } else if (evloop_now_ms() >= c->deadline) {
            lease_lost(c);
        } else {
            c->ka_req = chttp_post(c, "/v3/lease/keepalive", cj_lease_body("ID", c->lease), on_keepalive,
                                   NULL);
        }
    }
    return ka_interval(c);
}

struct coord *coord_open(struct evloop *el, const struct coord_opts *o, char *err, size_t errlen)
{
    struct coord *c = xcalloc(1, sizeof(*c));
    bool bad = false;
    snprintf(err, errlen, "out of memory");
    if (!c)
        return NULL;
    c->el = el;
    c->ttl_s = o->lease_ttl_s > 0 ? o->lease_ttl_s : 10;
    c->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    c->who = strdup(o->who && *o->who ? o->who : "memx");
    c->prefix = strdup(o->prefix && *o->prefix ? o->prefix : "/memx/default");
    c->cacert = dup_opt(o->cacert, &bad);
    c->cert = dup_opt(o->cert, &bad);
    c->key = dup_opt(o->key, &bad);
    LIST_INIT(&c->watches);
    LIST_INIT(&c->reqs);
    if (!c->who || !c->prefix || bad || chttp_init(c)) {
        coord_free(c);
        return NULL;
    }
    for (size_t n = strlen(c->prefix); n > 1 && c->prefix[n - 1] == '/'; n--)
        c->prefix[n - 1] = '\0';
    int r = split_endpoints(c, o->endpoints ? o->endpoints : "");
    if (r) {
        if (r == -EINVAL)
            snprintf(err, errlen, "etcd: no endpoint given");
        coord_free(c);
        return NULL;
    }
    char body[64], cerr[CURL_ERROR_SIZE + 64] = "", *msg = NULL;
    snprintf(body, sizeof(body), "{\"TTL\":\"%d\"}", c->ttl_s);
    size_t off = 0;
    uint64_t start = evloop_now_ms();
    for (int i = 0; i < c->neps; i++) {
        uint64_t spent = evloop_now_ms() - start;
        int left = spent >= (uint64_t)c->timeout_ms ? 1 : c->timeout_ms - (int)spent;
        uint64_t sent = evloop_now_ms();
        struct cj_reply rep = { 0 };
        char why[160] = "";
        r = chttp_sync(c, i, "/v3/lease/grant", body, left, &msg, why, sizeof(why));
        if (r == 0 && (r = cj_parse(CJ_GRANT, msg, strlen(msg), c->prefix, &rep, why, sizeof(why))) == 0) {
            c->ep = i;
            c->lease = rep.id;
            c->lease_ttl = rep.ttl;
            c->deadline = sent + (uint64_t)rep.ttl * 1000;
            cj_reply_free(&rep);
            free(msg);
            c->ka_timer = evloop_add_timer(el, ka_interval(c), on_ka_timer, c);
            if (c->ka_timer < 0) {
                c->ka_timer = 0;
                coord_free(c);
                return NULL;
            }
            mx_info("%s: etcd at %s: lease %016" PRIx64 " (TTL %" PRId64 " s), prefix %s", c->who, c->eps[i],
                    (uint64_t)c->lease, c->lease_ttl, c->prefix);
            return c;
        }
        cj_reply_free(&rep);
        free(msg);
        msg = NULL;
        off += (size_t)snprintf(cerr + off, off < sizeof(cerr) ? sizeof(cerr) - off : 0, "%s%s: %s",
                                i ? "; " : "", c->eps[i], why);
        if (off >= sizeof(cerr))
            off = sizeof(cerr) - 1;
    }
    snprintf(err, errlen, "etcd at %s", cerr);
    coord_free(c);
    return NULL;
}

void coord_close(struct coord *c)
{
    if (!c)
        return;
    c->closing = true;
    if (c->lease && c->health != COORD_LEASE_LOST) {
        /* Revoked, the session's leased keys go now rather than at expiry. */
        char body[64], *out = NULL, why[CURL_ERROR_SIZE + 32];
        snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", c->lease);
        if (chttp_sync(c, c->ep, "/v3/lease/revoke", body, c->timeout_ms, &out, why, sizeof(why)) != 0)
            mx_warn("%s: etcd at %s: revoking lease %016" PRIx64 ": %s (its keys go at expiry)", c->who,
                    c->eps[c->ep], (uint64_t)c->lease, why);
        free(out);
    }
    coord_free(c);
}

void coord_on_health(struct coord *c, coord_health_cb cb, void *arg)
{
    c->hcb = cb;
    c->harg = arg;
}

enum coord_health coord_health(const struct coord *c) { return c->health; }
int64_t coord_lease_id(const struct coord *c) { return c->lease; }
uint64_t coord_lease_deadline_ms(const struct coord *c) { return c->health == COORD_LEASE_LOST ? 0 : c->deadline; }

bool coord_lease_safe(const struct coord *c)
{
    return c->health != COORD_LEASE_LOST && evloop_now_ms() + COORD_FENCE_MARGIN_MS < c->deadline;
}

const char *coord_describe(const struct coord *c, char *buf, size_t len)
{
    static const char *const names[] = { "up", "degraded", "lease lost" };
    uint64_t now = evloop_now_ms(), d = coord_lease_deadline_ms(c);
    double left = d > now ? (double)(d - now) / 1000.0 : 0.0;
    snprintf(buf, len, "%s: %s, lease %016" PRIx64 " (%.1f s left), prefix %s", names[c->health],
             c->eps[c->ep], (uint64_t)c->lease, left, c->prefix);
    return buf;
}

void coord_get_stats(const struct coord *c, struct coord_stats *st) { *st = c->st; }

/* ---- key-value requests ---- */

static void on_kv(struct coord_req *r, int st, const char *body, size_t len)
{
    struct coord *c = r->c;
    static const enum cj_kind kinds[] = { [K_PUT] = CJ_PUT, [K_DEL] = CJ_PUT, [K_CAS] = CJ_TXN, [K_GET] = CJ_RANGE };
    struct cj_reply rep;
    char why[160] = "";
    memset(&rep, 0, sizeof(rep));
    if (st == 0)
        st = cj_parse(kinds[r->kind], body, len, c->prefix, &rep, why, sizeof(why));
    if (st && why[0])
        chttp_fail_log(c, r->path, r->ep, why);
    if (st == 0 && r->kind == K_CAS && !rep.succeeded)
        st = -ECANCELED;
    if (r->kind == K_GET)
        r->ucb.range(r->uarg, st, st ? NULL : rep.kvs, st ? 0 : rep.nkv, rep.rev);
    else if (r->ucb.done)
        r->ucb.done(r->uarg, st, rep.rev);
    cj_reply_free(&rep);
}

static int send_kv(struct coord *c, const char *path, char *body, int kind, coord_done_cb dcb,
                   coord_range_cb rcb, void *arg)
{
    struct coord_req *r = chttp_post(c, path, body, on_kv, NULL);
    if (!r)
        return -ENOMEM;
    r->kind = kind;
    if (kind == K_GET)
        r->ucb.range = rcb;
    else
        r->ucb.done = dcb;
    r->uarg = arg;
    return 0;
}

int coord_put(struct coord *c, const char *key, const char *val, bool leased, coord_done_cb cb, void *arg)
{
    char *full = cj_full_key(c, key);
    char *body = full ? cj_put_body(full, val, leased ? c->lease : 0) : NULL;
    free(full);
    return body ? send_kv(c, "/v3/kv/put", body, K_PUT, cb, NULL, arg) : -ENOMEM;
}

int coord_del(struct coord *c, const char *key, bool prefix, coord_done_cb cb, void *arg)
{
    char *full = cj_full_key(c, key);
    char *body = full ? cj_del_body(full, prefix) : NULL;
    free(full);
    return body ? send_kv(c, "/v3/kv/deleterange", body, K_DEL, cb, NULL, arg) : -ENOMEM;
}

int coord_cas(struct coord *c, const char *cmp_key, int64_t expect_mod_rev, const struct coord_op *ops,
              size_t nops, coord_done_cb cb, void *arg)
{
    if (nops > 8)
        return -EINVAL;
    char *full = cj_full_key(c, cmp_key);
    char *body = full ? cj_txn_body(c, full, expect_mod_rev, ops, nops, c->lease) : NULL;
    free(full);
    return body ? send_kv(c, "/v3/kv/txn", body, K_CAS, cb, NULL, arg) : -ENOMEM;
}

int coord_get(struct coord *c, const char *key, bool prefix, int64_t min_mod_rev, coord_range_cb cb,
              void *arg)
{
    char *full = cj_full_key(c, key);
    char *body = full ? cj_range_body(full, prefix, min_mod_rev, false, 0) : NULL;
    free(full);
    return body ? send_kv(c, "/v3/kv/range", body, K_GET, NULL, cb, arg) : -ENOMEM;
}
