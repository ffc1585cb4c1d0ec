/* test_coord.c — lib/coord against a real etcd.
 *
 * Run without MEMX_ETCD, the program re-executes itself under
 * `tests/etcd.sh run`, which starts a throw-away etcd on free loopback ports
 * and stops it however the program ends; without etcd that fails (no skip).
 * Each test works under its own prefix so none sees another's keys. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord.h"
#include "coord_parse.h"
#include "cu_main.h"
#include "evloop.h"
#include "log.h"

static struct evloop *el;
static const char *etcd;

static bool run_until(const bool *flag, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (!*flag && evloop_now_ms() < end)
        evloop_run_once(el, 20);
    return *flag;
}

static void run_for(int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (evloop_now_ms() < end)
        evloop_run_once(el, 20);
}

static struct coord *open_at(const char *eps, const char *prefix, int ttl, char *err, size_t errlen)
{
    struct coord_opts o;
    coord_opts_init(&o);
    o.endpoints = eps;
    o.prefix = prefix;
    o.lease_ttl_s = ttl;
    o.timeout_ms = 1500;
    o.who = "test_coord";
    return coord_open(el, &o, err, errlen);
}

static struct coord *open_ok(const char *prefix, int ttl)
{
    char err[256] = "";
    struct coord *c = open_at(etcd, prefix, ttl, err, sizeof(err));
    if (!c)
        fprintf(stderr, "coord_open: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    return c;
}

/* A loopback URL nothing listens on (the kernel's pick, released). */
static void dead_url(char *buf, size_t len)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                    getsockname(s, (struct sockaddr *)&a, &al) == 0);
    close(s);
    snprintf(buf, len, "http://127.0.0.1:%d", ntohs(a.sin_port));
}

struct done { bool done; int st; int64_t rev; };
static void on_done(void *arg, int st, int64_t rev)
{
    struct done *d = arg;
    d->done = true;
    d->st = st;
    d->rev = rev;
}

struct range { bool done; int st; size_t n; int64_t rev; char keys[8][64], vals[8][64]; int64_t mod[8]; };
static void on_range(void *arg, int st, const struct coord_kv *kv, size_t n, int64_t rev)
{
    struct range *r = arg;
    r->done = true;
    r->st = st;
    r->n = n;
    r->rev = rev;
    for (size_t i = 0; i < n && i < 8; i++) {
        snprintf(r->keys[i], 64, "%s", kv[i].key);
        snprintf(r->vals[i], 64, "%s", kv[i].val);
        r->mod[i] = kv[i].mod_rev;
    }
}

static int put_sync(struct coord *c, const char *k, const char *v, bool leased, int64_t *rev)
{
    struct done d = { 0 };
    CU_ASSERT_EQUAL_FATAL(coord_put(c, k, v, leased, on_done, &d), 0);
    CU_ASSERT_FATAL(run_until(&d.done, 3000));
    if (rev)
        *rev = d.rev;
    return d.st;
}

static struct range get_sync(struct coord *c, const char *k, bool prefix, int64_t min)
{
    struct range r = { 0 };
    CU_ASSERT_EQUAL(coord_get(c, k, prefix, min, on_range, &r), 0);
    CU_ASSERT(run_until(&r.done, 3000));
    return r;
}

static void test_dead_endpoint(void)
{
    char url[64], err[256] = "";
    dead_url(url, sizeof(url));
    struct coord *c = open_at(url, "/t/dead", 5, err, sizeof(err));
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, url));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "onnect"));      /* curl's "Couldn't connect to server" */
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
}

static void test_failover(void)
{
    char url[64], eps[256], err[256] = "";
    dead_url(url, sizeof(url));
    snprintf(eps, sizeof(eps), "%s,%s", url, etcd);
    struct coord *c = open_at(eps, "/t/failover", 5, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(put_sync(c, "k", "v", false, NULL), 0);
    struct range r = get_sync(c, "k", false, 0);
    CU_ASSERT_EQUAL(r.st, 0);
    CU_ASSERT_EQUAL(r.n, 1);
    char d[256];
    CU_ASSERT_PTR_NOT_NULL(strstr(coord_describe(c, d, sizeof(d)), etcd));
    coord_close(c);
}

static void test_put_get(void)
{
    struct coord *c = open_ok("/t/kv", 5);
    int64_t r1, r2, r3;
    CU_ASSERT_EQUAL(put_sync(c, "servers/a", "A", false, &r1), 0);
    CU_ASSERT_EQUAL(put_sync(c, "servers/b", "B", false, &r2), 0);
    CU_ASSERT_EQUAL(put_sync(c, "serversX", "X", false, &r3), 0);
    CU_ASSERT(r1 > 0 && r2 > r1 && r3 > r2);
    struct range r = get_sync(c, "servers/a", false, 0);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_STRING_EQUAL(r.keys[0], "servers/a");
    CU_ASSERT_STRING_EQUAL(r.vals[0], "A");
    CU_ASSERT_EQUAL(r.mod[0], r1);
    r = get_sync(c, "servers/", true, 0);
    CU_ASSERT_EQUAL(r.n, 2);            /* not serversX */
    CU_ASSERT(r.rev >= r3);
    r = get_sync(c, "servers/", true, r2);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_STRING_EQUAL(r.keys[0], "servers/b");
    struct done d = { 0 };
    CU_ASSERT_EQUAL(coord_del(c, "servers/", true, on_done, &d), 0);
    CU_ASSERT(run_until(&d.done, 3000));
    CU_ASSERT_EQUAL(d.st, 0);
    r = get_sync(c, "", true, 0);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_STRING_EQUAL(r.keys[0], "serversX");
    struct coord_stats st;
    coord_get_stats(c, &st);
    CU_ASSERT(st.requests >= 7 && st.bytes_in > 0 && st.bytes_out > 0);
    coord_close(c);
}

static void test_cas(void)
{
    struct coord *c = open_ok("/t/cas", 5);
    struct coord_op ops[2] = { { "volumes/v", "{\"epoch\":1}", false }, { "owners/v", "me", true } };
    struct done d = { 0 };
    CU_ASSERT_EQUAL(coord_cas(c, "volumes/v", 0, ops, 2, on_done, &d), 0);   /* 0: it does not exist */
    CU_ASSERT(run_until(&d.done, 3000));
    CU_ASSERT_EQUAL(d.st, 0);
    int64_t rev = d.rev;
    struct range r = get_sync(c, "", true, 0);
    CU_ASSERT_EQUAL(r.n, 2);
    memset(&d, 0, sizeof(d));
    CU_ASSERT_EQUAL(coord_cas(c, "volumes/v", 0, ops, 1, on_done, &d), 0);   /* exists now */
    CU_ASSERT(run_until(&d.done, 3000));
    CU_ASSERT_EQUAL(d.st, -ECANCELED);
    struct coord_op op2[2] = { { "volumes/v", "{\"epoch\":2}", false }, { "owners/v", NULL, false } };
    memset(&d, 0, sizeof(d));
    CU_ASSERT_EQUAL(coord_cas(c, "volumes/v", rev, op2, 2, on_done, &d), 0);
    CU_ASSERT(run_until(&d.done, 3000));
    CU_ASSERT_EQUAL(d.st, 0);
    r = get_sync(c, "", true, 0);
    CU_ASSERT_EQUAL(r.n, 1);
    CU_ASSERT_STRING_EQUAL(r.vals[0], "{\"epoch\":2}");
    memset(&d, 0, sizeof(d));
    CU_ASSERT_EQUAL(coord_cas(c, "volumes/v", rev, op2, 1, on_done, &d), 0);   /* stale */
    CU_ASSERT(run_until(&d.done, 3000));
    CU_ASSERT_EQUAL(d.st, -ECANCELED);
    coord_close(c);
}

static void test_leased_key_revoked(void)
{
    struct coord *a = open_ok("/t/lease", 30), *b = open_ok("/t/lease", 30);
    CU_ASSERT_EQUAL(put_sync(b, "servers/b", "x", true, NULL), 0);
    struct range r = get_sync(a, "servers/", true, 0);
    CU_ASSERT_EQUAL(r.n, 1);
    coord_close(b);
    r = get_sync(a, "servers/", true, 0);
    CU_ASSERT_EQUAL(r.st, 0);
    CU_ASSERT_EQUAL(r.n, 0);
    coord_close(a);
}

struct evlog { int n; enum coord_ev ev[32]; char key[32][32]; char val[32][32]; int64_t rev[32]; };
static void on_watch(void *arg, enum coord_ev ev, const struct coord_kv *kv, int64_t rev)
{
    struct evlog *l = arg;
    if (l->n >= 32)
        return;
    l->ev[l->n] = ev;
    snprintf(l->key[l->n], 32, "%s", kv ? kv->key : "");
    snprintf(l->val[l->n], 32, "%s", kv ? kv->val : "");
    l->rev[l->n] = rev;
    l->n++;
}

static bool wait_events(struct evlog *l, int n, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (l->n < n && evloop_now_ms() < end)
        evloop_run_once(el, 20);
    return l->n >= n;
}

static void test_watch(void)
{
    struct coord *c = open_ok("/t/watch", 5);
    CU_ASSERT_EQUAL(put_sync(c, "owners/a", "1", false, NULL), 0);
    CU_ASSERT_EQUAL(put_sync(c, "owners/b", "2", false, NULL), 0);
    CU_ASSERT_EQUAL(put_sync(c, "other", "z", false, NULL), 0);
    struct evlog l = { 0 };
    struct coord_watch *w = coord_watch(c, "owners/", on_watch, &l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_FATAL(wait_events(&l, 4, 3000));
    CU_ASSERT_EQUAL(l.ev[0], COORD_EV_RESET);
    CU_ASSERT_EQUAL(l.ev[1], COORD_EV_PUT);
    CU_ASSERT_STRING_EQUAL(l.key[1], "owners/a");
    CU_ASSERT_STRING_EQUAL(l.val[2], "2");
    CU_ASSERT_EQUAL(l.ev[3], COORD_EV_SYNC);
    run_for(300);       /* the stream is set up */
    int64_t r1, r2;
    CU_ASSERT_EQUAL(put_sync(c, "owners/c", "3", false, &r1), 0);
    CU_ASSERT_EQUAL(put_sync(c, "other2", "z", false, NULL), 0);
    struct done d = { 0 };
    CU_ASSERT_EQUAL(coord_del(c, "owners/a", false, on_done, &d), 0);
    CU_ASSERT(run_until(&d.done, 3000));
    r2 = d.rev;
    CU_ASSERT_FATAL(wait_events(&l, 6, 3000));
    CU_ASSERT_EQUAL(l.ev[4], COORD_EV_PUT);
    CU_ASSERT_STRING_EQUAL(l.key[4], "owners/c");
    CU_ASSERT_EQUAL(l.rev[4], r1);
    CU_ASSERT_EQUAL(l.ev[5], COORD_EV_DEL);
    CU_ASSERT_STRING_EQUAL(l.key[5], "owners/a");
    CU_ASSERT_EQUAL(l.rev[5], r2);
    /* One transaction, two events at one revision: both delivered. */
    struct coord_op ops[2] = { { "owners/d", "4", false }, { "owners/e", "5", false } };
    memset(&d, 0, sizeof(d));
    CU_ASSERT_EQUAL(coord_cas(c, "owners/d", 0, ops, 2, on_done, &d), 0);
    CU_ASSERT(run_until(&d.done, 3000));
    CU_ASSERT_EQUAL(d.st, 0);
    CU_ASSERT_FATAL(wait_events(&l, 8, 3000));
    CU_ASSERT_STRING_EQUAL(l.key[6], "owners/d");
    CU_ASSERT_STRING_EQUAL(l.key[7], "owners/e");
    CU_ASSERT(l.rev[6] == d.rev && l.rev[7] == d.rev);
    run_for(200);
    CU_ASSERT_EQUAL(l.n, 8);            /* nothing from outside the prefix */
    coord_unwatch(w);
    coord_close(c);
}

static void test_fresh(void)
{
    struct coord *c = open_ok("/t/fresh", 5);
    struct evlog l = { 0 };
    struct coord_watch *w = coord_watch(c, "owners/", on_watch, &l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL(coord_watch_fresh_ms(w), 0);
    uint64_t t0 = evloop_now_ms();
    run_for(3 * COORD_CHECK_MS);
    uint64_t f1 = coord_watch_fresh_ms(w);
    CU_ASSERT(f1 >= t0);
    CU_ASSERT(put_sync(c, "owners/x", "1", false, NULL) == 0);
    uint64_t t1 = evloop_now_ms();
    run_for(3 * COORD_CHECK_MS);
    uint64_t f2 = coord_watch_fresh_ms(w);
    CU_ASSERT(f2 > f1 && f2 >= t1 - 5 && f2 <= evloop_now_ms());
    /* Fresh after the put means the put was delivered. */
    CU_ASSERT(l.n == 3 && l.ev[2] == COORD_EV_PUT);     /* RESET, SYNC, PUT */
    struct coord_stats st;
    coord_get_stats(c, &st);
    CU_ASSERT(st.checks >= 4 && st.watch_events >= 1);
    coord_unwatch(w);
    coord_close(c);
}

/* etcd frozen (SIGSTOP: a partition, no RST): the proof stops advancing and
 * the lease degrades; thawed, the watch starts over from a new snapshot. */
static void test_watch_frozen_etcd(void)
{
    const char *pid = getenv("ETCD_PID");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pid);
    struct coord *c = open_ok("/t/frozen", 5);
    CU_ASSERT_EQUAL(put_sync(c, "owners/a", "1", false, NULL), 0);
    struct evlog l = { 0 };
    struct coord_watch *w = coord_watch(c, "owners/", on_watch, &l);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    run_for(3 * COORD_CHECK_MS);
    CU_ASSERT_EQUAL_FATAL(l.n, 3);      /* RESET, PUT, SYNC */
    CU_ASSERT(coord_watch_fresh_ms(w) > 0);
    pid_t p = (pid_t)atoi(pid);
    CU_ASSERT_EQUAL_FATAL(kill(p, SIGSTOP), 0);
    uint64_t frozen = evloop_now_ms();
    run_for(3500);      /* the first keepalive (at TTL/3) times out within it */
    uint64_t f = coord_watch_fresh_ms(w);
    kill(p, SIGCONT);
    CU_ASSERT(f <= frozen);             /* nothing proven while etcd was silent */
    CU_ASSERT_EQUAL(coord_health(c), COORD_DEGRADED);
    uint64_t end = evloop_now_ms() + 5000;
    while (evloop_now_ms() < end && !(l.n >= 6 && coord_health(c) == COORD_UP && coord_watch_fresh_ms(w) > frozen))
        evloop_run_once(el, 20);
    CU_ASSERT(l.n >= 6 && l.ev[3] == COORD_EV_RESET && l.ev[4] == COORD_EV_PUT && l.ev[5] == COORD_EV_SYNC);
    CU_ASSERT(coord_watch_fresh_ms(w) > frozen);
    CU_ASSERT_EQUAL(coord_health(c), COORD_UP);
    coord_unwatch(w);
    coord_close(c);
}

struct hlog { int n; enum coord_health h[8]; };
static void on_health(void *arg, enum coord_health h)
{
    struct hlog *l = arg;
    if (l->n < 8)
        l->h[l->n++] = h;
}

static void revoke_raw(int64_t id)
{
    char url[256], body[64];
    snprintf(url, sizeof(url), "%s/v3/lease/revoke", etcd);
    snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", id);
    CURL *h = curl_easy_init();
    FILE *null = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, null);
    CU_ASSERT_EQUAL(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    fclose(null);
}

static void test_lease_lost(void)
{
    struct coord *c = open_ok("/t/lost", 3);
    struct hlog l = { 0 };
    coord_on_health(c, on_health, &l);
    CU_ASSERT_EQUAL(coord_health(c), COORD_UP);
    CU_ASSERT(coord_lease_safe(c));
    uint64_t d0 = coord_lease_deadline_ms(c);
    /* A keepalive answered (one per TTL/3; later on a loaded machine): the deadline moves on. */
    for (uint64_t end = evloop_now_ms() + 2500; coord_lease_deadline_ms(c) <= d0 && evloop_now_ms() < end;)
        evloop_run_once(el, 20);
    CU_ASSERT(coord_lease_deadline_ms(c) > d0);
    int64_t old = coord_lease_id(c);
    revoke_raw(old);
    uint64_t end = evloop_now_ms() + 4000;
    while (l.n < 2 && evloop_now_ms() < end)
        evloop_run_once(el, 20);
    CU_ASSERT_EQUAL_FATAL(l.n, 2);
    CU_ASSERT_EQUAL(l.h[0], COORD_LEASE_LOST);
    CU_ASSERT_EQUAL(l.h[1], COORD_UP);
    CU_ASSERT(coord_lease_id(c) != old && coord_lease_id(c) != 0);
    CU_ASSERT(coord_lease_deadline_ms(c) > evloop_now_ms() + 2000);   /* the new lease's TTL */
    CU_ASSERT_EQUAL(put_sync(c, "servers/me", "x", true, NULL), 0);
    coord_close(c);
}

static void test_lease_safe_margin(void)
{
    struct coord *c = open_ok("/t/safe", 10);
    uint64_t now = evloop_now_ms(), d = coord_lease_deadline_ms(c);
    CU_ASSERT(d > now + 9000 && d <= now + 10000);
    CU_ASSERT(coord_lease_safe(c));
    coord_close(c);
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "", "nope", "[]", "{}", "{\"header\":{}}", "{\"header\":{\"revision\":5}}",
        "{\"header\":{\"revision\":\"-1\"}}", "{\"header\":{\"revision\":\"5x\"}}",
        "{\"header\":{\"revision\":\"5\"}} trailing",
        "{\"header\":{\"revision\":\"5\"},\"kvs\":{}}",
        "{\"header\":{\"revision\":\"5\"},\"count\":\"1\",\"kvs\":[{\"key\":\"!!!\",\"mod_revision\":\"2\"}]}",
        /* "/other/k": outside the prefix */
        "{\"header\":{\"revision\":\"5\"},\"count\":\"1\",\"kvs\":[{\"key\":\"L290aGVyL2s=\",\"mod_revision\":\"2\"}]}",
        /* "/p/k" without a mod_revision */
        "{\"header\":{\"revision\":\"5\"},\"count\":\"1\",\"kvs\":[{\"key\":\"L3Avaw==\"}]}",
        /* more kvs than count */
        "{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"key\":\"L3Avaw==\",\"mod_revision\":\"2\"}]}",
    };
    struct cj_reply r;
    char why[160];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int st = cj_parse(CJ_RANGE, bad[i], strlen(bad[i]), "/p", &r, why, sizeof(why));
        if (st != -EPROTO)
            fprintf(stderr, "malformed %zu: %d\n", i, st);
        CU_ASSERT_EQUAL(st, -EPROTO);
        CU_ASSERT(why[0] != '\0');
        cj_reply_free(&r);
    }
    const char *ok = "{\"header\":{\"revision\":\"5\"},\"count\":\"1\",\"kvs\":[{\"key\":\"L3Avaw==\","
                     "\"value\":\"dg==\",\"mod_revision\":\"2\",\"create_revision\":\"2\"}]}";
    CU_ASSERT_EQUAL_FATAL(cj_parse(CJ_RANGE, ok, strlen(ok), "/p", &r, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(r.nkv, 1);
    CU_ASSERT_STRING_EQUAL(r.kvs[0].key, "k");
    CU_ASSERT_STRING_EQUAL(r.kvs[0].val, "v");
    CU_ASSERT_EQUAL(r.rev, 5);
    cj_reply_free(&r);
    const char *err = "{\"error\":\"etcdserver: requested lease not found\",\"code\":5}";
    CU_ASSERT_EQUAL(cj_parse(CJ_PUT, err, strlen(err), "/p", &r, why, sizeof(why)), -EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "lease not found"));
    const char *ka = "{\"result\":{\"header\":{\"revision\":\"1\"},\"ID\":\"1234\"}}";
    CU_ASSERT_EQUAL(cj_parse(CJ_KEEPALIVE, ka, strlen(ka), "/p", &r, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(r.ttl, 0);      /* the lease is gone */
    const char *ev = "{\"result\":{\"header\":{\"revision\":\"9\"},\"events\":[{\"type\":\"BOGUS\","
                     "\"kv\":{\"key\":\"L3Avaw==\",\"mod_revision\":\"8\"}}]}}";
    CU_ASSERT_EQUAL(cj_parse(CJ_WATCH, ev, strlen(ev), "/p", &r, why, sizeof(why)), -EPROTO);
    cj_reply_free(&r);
    const char *gr = "{\"header\":{\"revision\":\"1\"},\"ID\":\"77\"}";
    CU_ASSERT_EQUAL(cj_parse(CJ_GRANT, gr, strlen(gr), "/p", &r, why, sizeof(why)), -EPROTO);
}

static int init(void)
{
    el = evloop_new();
    return el ? 0 : 1;
}

static int fini(void)
{
    evloop_free(el);
    return 0;
}

static const struct cu_test tests[] = {
    { "malformed_replies", test_malformed },
    { "dead_endpoint", test_dead_endpoint },
    { "failover", test_failover },
    { "put_get_prefix_min_mod_rev", test_put_get },
    { "cas", test_cas },
    { "leased_key_revoked_on_close", test_leased_key_revoked },
    { "lease_safe_margin", test_lease_safe_margin },
    { "watch_snapshot_then_events", test_watch },
    { "watch_freshness", test_fresh },
    { "lease_lost_then_up", test_lease_lost },
    { "watch_restarts_after_frozen_etcd", test_watch_frozen_etcd },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "coord", init, fini, tests }, { NULL, NULL, NULL, NULL } };

int main(int argc, char **argv)
{
    (void)argc;
    etcd = getenv("MEMX_ETCD");
    if (!etcd || !*etcd) {
        /* etcd.sh stops etcd however this program ends. */
        const char *src = getenv("MEMX_SRCDIR") ? getenv("MEMX_SRCDIR") : MEMX_SRCDIR;
        char sh[4096];
        snprintf(sh, sizeof(sh), "%s/tests/etcd.sh", src);
        execl("/bin/bash", "bash", sh, "run", argv[0], (char *)NULL);
        perror("test_coord: exec tests/etcd.sh");
        return 1;
    }
    mx_log_init("test_coord", getenv("MEMX_LOG_DEBUG") ? MX_LOG_DEBUG : MX_LOG_ERR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int r = cu_run(suites);
    curl_global_cleanup();
    return r;
}
