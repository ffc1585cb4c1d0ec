/* etcd_harness.c — see etcd_harness.h. */
#include "etcd_harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evloop.h"
#include "log.h"

/* Weak: a test linking pool_harness.c (which defines it too) shares its loop. */
__attribute__((weak)) struct evloop *el;
const char *etcd;

bool eh_run_until(const bool *flag, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (!*flag && evloop_now_ms() < end)
        evloop_run_once(el, 20);
    return *flag;
}

bool eh_run_cond(bool (*cond)(void *), void *arg, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (!cond(arg) && evloop_now_ms() < end)
        evloop_run_once(el, 20);
    return cond(arg);
}

void eh_run_for(int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (evloop_now_ms() < end)
        evloop_run_once(el, 20);
}

struct coord *eh_open_at(const char *url, const char *prefix, int ttl)
{
    struct coord_opts o;
    char err[256] = "";
    coord_opts_init(&o);
    o.endpoints = url;
    o.prefix = prefix;
    o.lease_ttl_s = ttl;
    o.timeout_ms = 1500;
    o.who = "test";
    struct coord *c = coord_open(el, &o, err, sizeof(err));
    if (!c)
        fprintf(stderr, "coord_open: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    return c;
}

struct coord *eh_open(const char *prefix, int ttl) { return eh_open_at(etcd, prefix, ttl); }

struct sdone { bool done; int st; };
static void on_sdone(void *arg, int st, int64_t rev)
{
    struct sdone *d = arg;
    (void)rev;
    d->done = true;
    d->st = st;
}

int eh_put(struct coord *c, const char *key, const char *val)
{
    struct sdone d = { 0 };
    CU_ASSERT_EQUAL_FATAL(coord_put(c, key, val, false, on_sdone, &d), 0);
    CU_ASSERT_FATAL(eh_run_until(&d.done, 3000));
    return d.st;
}

int eh_del(struct coord *c, const char *key, bool prefix)
{
    struct sdone d = { 0 };
    CU_ASSERT_EQUAL_FATAL(coord_del(c, key, prefix, on_sdone, &d), 0);
    CU_ASSERT_FATAL(eh_run_until(&d.done, 3000));
    return d.st;
}

struct rdone { bool done; struct eh_range *r; };
static void on_rdone(void *arg, int st, const struct coord_kv *kv, size_t n, int64_t rev)
{
    struct rdone *d = arg;
    (void)rev;
    d->done = true;
    d->r->st = st;
    d->r->n = n;
    for (size_t i = 0; i < n && i < 16; i++) {
        snprintf(d->r->keys[i], sizeof(d->r->keys[i]), "%s", kv[i].key);
        snprintf(d->r->vals[i], sizeof(d->r->vals[i]), "%s", kv[i].val);
        d->r->lease[i] = kv[i].lease;
    }
}

struct eh_range eh_get(struct coord *c, const char *key, bool prefix)
{
    struct eh_range r = { .st = -1 };
    struct rdone d = { false, &r };
    CU_ASSERT_EQUAL(coord_get(c, key, prefix, 0, on_rdone, &d), 0);
    CU_ASSERT(eh_run_until(&d.done, 3000));
    return r;
}

void eh_revoke(int64_t id)
{
    char url[256], body[64];
    snprintf(url, sizeof(url), "%s/v3/lease/revoke", etcd);
    snprintf(body, sizeof(body), "{\"ID\":\"%" PRId64 "\"}", id);
    CURL *h = curl_easy_init();
    FILE *null = fopen("/dev/null", "w");
    CU_ASSERT_FATAL(h && null);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, null);
    CU_ASSERT_EQUAL(curl_easy_perform(h), CURLE_OK);
    curl_easy_cleanup(h);
    fclose(null);
}

int eh_etcd_pid(void)
{
    const char *pid = getenv("ETCD_PID");
    CU_ASSERT_PTR_NOT_NULL_FATAL(pid);
    return atoi(pid);
}

/* ---- the relay ------------------------------------------------------------ */

#define RELAY_MAX 32
static int relay_lfd = -1;
static char relay_url[64];
static atomic_bool relay_cut;
static struct sockaddr_in etcd_addr;

static void *relay_main(void *arg)
{
    (void)arg;
    int a[RELAY_MAX], b[RELAY_MAX], n = 0;
    for (;;) {
        struct pollfd pf[1 + 2 * RELAY_MAX];
        pf[0] = (struct pollfd){ .fd = relay_lfd, .events = POLLIN };
        for (int i = 0; i < n; i++) {
            pf[1 + 2 * i] = (struct pollfd){ .fd = a[i], .events = POLLIN };
            pf[2 + 2 * i] = (struct pollfd){ .fd = b[i], .events = POLLIN };
        }
        int r = poll(pf, (nfds_t)(1 + 2 * n), 20);
        if (r < 0 && errno != EINTR)
            return NULL;
        bool cut = atomic_load(&relay_cut);
        bool drop[RELAY_MAX] = { false };
        for (int i = 0; i < n; i++) {
            if (cut) {
                drop[i] = true;
                continue;
            }
            for (int side = 0; side < 2 && !drop[i]; side++) {
                short re = pf[1 + 2 * i + side].revents;
                if (!re)
                    continue;
                char buf[16384];
                ssize_t got = read(side ? b[i] : a[i], buf, sizeof(buf));
                if (got <= 0 || write(side ? a[i] : b[i], buf, (size_t)got) != got)
                    drop[i] = true;
            }
        }
        for (int i = n - 1; i >= 0; i--)
            if (drop[i]) {
                struct linger lg = { 1, 0 };    /* an RST, as a broken path gives */
                setsockopt(a[i], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                close(a[i]);
                close(b[i]);
                a[i] = a[n - 1];
                b[i] = b[n - 1];
                n--;
            }
        if (pf[0].revents & POLLIN) {
            int c = accept(relay_lfd, NULL, NULL);
            if (c < 0)
                continue;
            int s = cut || n == RELAY_MAX ? -1 : socket(AF_INET, SOCK_STREAM, 0);
            if (s < 0 || connect(s, (struct sockaddr *)&etcd_addr, sizeof(etcd_addr)) < 0) {
                if (s >= 0)
                    close(s);
                close(c);
                continue;
            }
            a[n] = c;
            b[n++] = s;
        }
    }
}

const char *eh_proxy_url(void)
{
    if (relay_lfd >= 0)
        return relay_url;
    unsigned port = 0;
    CU_ASSERT_FATAL(sscanf(etcd, "http://127.0.0.1:%u", &port) == 1);
    etcd_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    struct sockaddr_in l = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t ll = sizeof(l);
    relay_lfd = socket(AF_INET, SOCK_STREAM, 0);
    CU_ASSERT_FATAL(relay_lfd >= 0 && bind(relay_lfd, (struct sockaddr *)&l, sizeof(l)) == 0 &&
                    listen(relay_lfd, 16) == 0 && getsockname(relay_lfd, (struct sockaddr *)&l, &ll) == 0);
    snprintf(relay_url, sizeof(relay_url), "http://127.0.0.1:%d", ntohs(l.sin_port));
    pthread_t t;
    CU_ASSERT_FATAL(pthread_create(&t, NULL, relay_main, NULL) == 0);
    pthread_detach(t);
    return relay_url;
}

void eh_proxy_cut(bool cut) { atomic_store(&relay_cut, cut); }

int etcd_main(const char *prog, char **argv, const struct cu_suite *suites)
{
    etcd = getenv("MEMX_ETCD");
    if (!etcd || !*etcd) {
        /* etcd.sh stops etcd however this program ends. */
        const char *src = getenv("MEMX_SRCDIR") ? getenv("MEMX_SRCDIR") : MEMX_SRCDIR;
        char sh[4096];
        snprintf(sh, sizeof(sh), "%s/tests/etcd.sh", src);
        execl("/bin/bash", "bash", sh, "run", argv[0], (char *)NULL);
        fprintf(stderr, "%s: exec tests/etcd.sh: %s\n", prog, strerror(errno));
        return 1;
    }
    mx_log_init(prog, getenv("MEMX_LOG_DEBUG") ? MX_LOG_DEBUG : MX_LOG_ERR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    el = evloop_new();
    if (!el)
        return 2;
    int r = cu_run(suites);
    evloop_free(el);
    curl_global_cleanup();
    return r;
}
