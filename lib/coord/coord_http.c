/* coord_http.c — HTTP to etcd: libcurl's multi interface on the daemon's evloop.
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION -> evloop fds)
 * and when to call it back (CURLMOPT_TIMERFUNCTION -> one evloop timer); we
 * hand it readiness with curl_multi_socket_action and collect completions
 * with curl_multi_info_read.  Completions and stream bytes are delivered only
 * after curl has returned, never from inside a curl callback, so a callback
 * may start or cancel requests freely.
 *
 * Failover: a request that could not connect is sent again to the next
 * endpoint (nothing reached etcd, so nothing can apply twice), and later
 * requests go there too.  A request that did reach etcd is never resent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_int.h"
#include "evloop.h"
#include "xalloc.h"

void chttp_fail_log(struct coord *c, const char *what, int ep, const char *msg)
{
    c->st.failures++;
    if (mx_ratelimit_ok(&c->rl_fail, 2000)) {
        unsigned sup = c->rl_fail.last_suppressed;
        if (sup)
            mx_warn("%s: etcd at %s: %s: %s (%u similar failures not logged)", c->who, c->eps[ep], what,
                    msg, sup);
        else
            mx_warn("%s: etcd at %s: %s: %s", c->who, c->eps[ep], what, msg);
    }
}

static size_t on_write(char *p, size_t sz, size_t n, void *arg)
{
    struct coord_req *r = arg;
    size_t len = sz * n;
    if (r->inlen + len + 1 > r->incap) {
        size_t cap = (r->inlen + len + 1) * 2;
        char *b = cap > (64u << 20) ? NULL : realloc(r->in, cap);
        if (!b) {
            r->nomem = true;
            return 0;           /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        r->in = b;
        r->incap = cap;
    }
    memcpy(r->in + r->inlen, p, len);
    r->inlen += len;
    r->in[r->inlen] = '\0';
    r->c->st.bytes_in += len;
    return len;
}

static int setup(struct coord *c, CURL *h, int ep, const char *path, const char *body, long timeout_ms,
                 struct curl_slist *hdrs)
{
    char url[512];
    snprintf(url, sizeof(url), "%s%s", c->eps[ep], path);
    long cto = timeout_ms > 0 && timeout_ms < c->timeout_ms ? timeout_ms : c->timeout_ms;
    if (curl_easy_setopt(h, CURLOPT_URL, url) || curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) ||
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) || curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms) ||
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cto / 2 > 0 ? cto / 2 : 1) ||
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"))
        return -ENOMEM;
    if (c->cacert && curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert))
        return -ENOMEM;
    if (c->cert && curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert))
        return -ENOMEM;
    if (c->key && curl_easy_setopt(h, CURLOPT_SSLKEY, c->key))
        return -ENOMEM;
    c->st.requests++;
    c->st.bytes_out += strlen(body);
    return 0;
}

static struct curl_slist *json_hdrs(void)
{
    static struct curl_slist one = { "Content-Type: application/json", NULL };
    return &one;
}

/* Starts (or restarts, on the current endpoint) r's transfer. */
static int launch(struct coord_req *r)
{
    struct coord *c = r->c;
    long left = 0;
    if (!r->data) {
        uint64_t spent = evloop_now_ms() - r->start_ms;
        left = spent >= (uint64_t)c->timeout_ms ? 1 : c->timeout_ms - (long)spent;
    }
    r->ep = c->ep;
    r->tries++;
    r->inlen = 0;
    r->sent_ms = evloop_now_ms();
    curl_easy_reset(r->h);
    if (setup(c, r->h, r->ep, r->path, r->body, left, json_hdrs()) ||
        curl_easy_setopt(r->h, CURLOPT_WRITEFUNCTION, on_write) || curl_easy_setopt(r->h, CURLOPT_WRITEDATA, r) ||
        curl_easy_setopt(r->h, CURLOPT_PRIVATE, r) || curl_multi_add_handle(c->multi, r->h) != CURLM_OK)
        return -ENOMEM;
    return 0;
}

static void req_free(struct coord_req *r)
{
    LIST_REMOVE(r, link);
    if (r->h)
        curl_easy_cleanup(r->h);
    free(r->body);
    free(r->in);
    free(r);
}

struct coord_req *chttp_post(struct coord *c, const char *path, char *body, creq_done_fn done,
                             creq_data_fn data)
{
    struct coord_req *r = body ? xcalloc(1, sizeof(*r)) : NULL;
    if (!r) {
        free(body);
        return NULL;
    }
    r->c = c;
    r->body = body;
    r->done = done;
    r->data = data;
    snprintf(r->path, sizeof(r->path), "%s", path);
    r->start_ms = evloop_now_ms();
    LIST_INSERT_HEAD(&c->reqs, r, link);
    if (!(r->h = curl_easy_init()) || launch(r)) {
        req_free(r);
        return NULL;
    }
    return r;
}

void chttp_cancel(struct coord_req *r)
{
    curl_multi_remove_handle(r->c->multi, r->h);
    req_free(r);
}

static bool connect_failed(CURLcode e)
{
    return e == CURLE_COULDNT_CONNECT || e == CURLE_COULDNT_RESOLVE_HOST || e == CURLE_SSL_CONNECT_ERROR;
}

static void next_endpoint(struct coord *c, int from)
{
    if (c->ep == from && c->neps > 1) {
        c->ep = (from + 1) % c->neps;
        mx_info("%s: etcd: trying %s (after %s failed)", c->who, c->eps[c->ep], c->eps[from]);
    }
}

/* A transfer ended: resend it elsewhere, or tell its owner. */
static void finished(struct coord_req *r, CURLcode e)
{
    struct coord *c = r->c;
    long code = 0;
    curl_multi_remove_handle(c->multi, r->h);
    if (e == CURLE_OK)
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &code);
    int st = 0;
    if (e == CURLE_OPERATION_TIMEDOUT) {
        next_endpoint(c, r->ep);
        st = -ETIMEDOUT;
    } else if (r->nomem) {
        st = -ENOMEM;
    } else if (e != CURLE_OK) {
        chttp_fail_log(c, r->path, r->ep, curl_easy_strerror(e));
        next_endpoint(c, r->ep);
        if (connect_failed(e) && r->tries < c->neps && !c->closing &&
            evloop_now_ms() - r->start_ms < (uint64_t)c->timeout_ms && launch(r) == 0)
            return;
        st = -ECONNREFUSED;
    } else if (code != 200 && !(r->in && r->inlen && strstr(r->in, "\"error\""))) {
        char m[64];
        snprintf(m, sizeof(m), "HTTP status %ld", code);
        chttp_fail_log(c, r->path, r->ep, m);
        st = -EIO;
    }
    if (st == -ETIMEDOUT)
        chttp_fail_log(c, r->path, r->ep, "timed out");
    if (r->data && st == 0)
        st = -ECONNRESET;       /* a stream does not end while its watch lives */
    if (r->done)
        r->done(r, st, st ? NULL : (r->in ? r->in : ""), st ? 0 : r->inlen);
    req_free(r);
}

/* Streams' new bytes, then completions: outside every curl callback. */
static void drain(struct coord *c)
{
    struct coord_req *r;
again:
    LIST_FOREACH(r, &c->reqs, link) {
        if (r->data && r->inlen) {
            long used = r->data(r, r->in, r->inlen);
            if (used < 0) {
                chttp_cancel(r);
            } else if (used > 0) {
                memmove(r->in, r->in + used, r->inlen - (size_t)used);
                r->inlen -= (size_t)used;
                if (!r->inlen)
                    goto again;
                r->in[r->inlen] = '\0';
            }
            if (used < 0 || used > 0)
                goto again;
        }
    }
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct coord_req *rq = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&rq);
        if (rq) {
            if (rq->data && rq->inlen && rq->data(rq, rq->in, rq->inlen) < 0) {
                chttp_cancel(rq);   /* the last bytes of a stream first */
                continue;
            }
            finished(rq, m->data.result);
        }
    }
}

static void on_fd(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct coord *c = arg;
    int running;
    (void)el;
    curl_multi_socket_action(c->multi, fd, (events & EV_READ ? CURL_CSELECT_IN : 0) |
                                           (events & EV_WRITE ? CURL_CSELECT_OUT : 0), &running);
    drain(c);
}

static int on_socket(CURL *h, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct coord *c = arg;
    unsigned ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    (void)h;
    if (what == CURL_POLL_REMOVE) {
        if (sockp)
            evloop_del_fd(c->el, s);
        curl_multi_assign(c->multi, s, NULL);
    } else if (!sockp) {
        if (evloop_add_fd(c->el, s, ev, on_fd, c) == 0)
            curl_multi_assign(c->multi, s, c);
        else
            return -1;
    } else {
        evloop_mod_fd(c->el, s, ev);
    }
    return 0;
}

static int on_timer_fire(struct evloop *el, long long id, void *arg)
{
    struct coord *c = arg;
    int running;
    (void)el;
    (void)id;
    c->curl_timer = 0;      /* curl may set a new one from inside the call */
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain(c);
    return -1;
}

static int on_timer(CURLM *m, long ms, void *arg)
{
    struct coord *c = arg;
    (void)m;
    if (c->curl_timer)
        evloop_del_timer(c->el, c->curl_timer);
    c->curl_timer = 0;
    if (ms >= 0) {
        c->curl_timer = evloop_add_timer(c->el, (int)ms, on_timer_fire, c);
        if (c->curl_timer < 0) {
            c->curl_timer = 0;
            return -1;
        }
    }
    return 0;
}

int chttp_init(struct coord *c)
{
    LIST_INIT(&c->reqs);
    if (!(c->multi = curl_multi_init()))
        return -ENOMEM;
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket) ||
        curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer) ||
        curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c))
        return -ENOMEM;
    return 0;
}

void chttp_fini(struct coord *c)
{
    while (!LIST_EMPTY(&c->reqs))
        chttp_cancel(LIST_FIRST(&c->reqs));
    if (c->multi)
        curl_multi_cleanup(c->multi);
    c->multi = NULL;
    if (c->curl_timer)
        evloop_del_timer(c->el, c->curl_timer);
    c->curl_timer = 0;
}

int chttp_sync(struct coord *c, int ep, const char *path, const char *body, int timeout_ms, char **out,
               char *err, size_t errlen)
{
    struct coord_req r = { .c = c };
    CURL *h = curl_easy_init();
    char detail[CURL_ERROR_SIZE] = "";
    int st = -ENOMEM;
    *out = NULL;
    snprintf(err, errlen, "out of memory");
    if (h && setup(c, h, ep, path, body, timeout_ms, json_hdrs()) == 0 &&
        !curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write) && !curl_easy_setopt(h, CURLOPT_WRITEDATA, &r) &&
        !curl_easy_setopt(h, CURLOPT_ERRORBUFFER, detail)) {
        CURLcode e = curl_easy_perform(h);
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        if (r.nomem) {
            st = -ENOMEM;
        } else if (e != CURLE_OK) {
            /* curl's detail ("SSL certificate problem: unable to get local issuer
             * certificate") says what to fix; its code's text alone often does not. */
            /* With TLS 1.3 a server that demands a client certificate refuses it only after
             * the handshake: curl sees a reset, which alone points nowhere. */
            bool nocert = !c->cert && !strncmp(c->eps[ep], "https://", 8) &&
                          (e == CURLE_SEND_ERROR || e == CURLE_RECV_ERROR || e == CURLE_SSL_CONNECT_ERROR ||
                           e == CURLE_GOT_NOTHING);
            snprintf(err, errlen, "%s%s", detail[0] ? detail : curl_easy_strerror(e),
                     nocert ? " (no client certificate given: does etcd demand one?)" : "");
            st = e == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
        } else if (code != 200 && !(r.in && strstr(r.in, "\"error\""))) {
            snprintf(err, errlen, "HTTP status %ld", code);
            st = -EIO;
        } else {
            *out = r.in ? r.in : strdup("");
            r.in = NULL;
            st = *out ? 0 : -ENOMEM;
        }
    }
    free(r.in);
    if (h)
        curl_easy_cleanup(h);
    return st;
}
