/* metrics_http.c — the Prometheus endpoint on the event loop (metrics_http.h). */
#include "metrics_http.h"
#include "histo.h"
#include "log.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

/* libmicrohttpd's own timeouts (idle connections) need a periodic run. */
#define TICK_MS 500

struct metrics_http {
    struct evloop *el;
    struct MHD_Daemon *d;
    int efd;
    long long timer;
    metrics_render_cb render;
    void *arg;
    char listen[128];
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned code, const char *type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
    struct metrics_http *m = cls;
    (void)version;
    (void)upload;
    if (*upload_size)           /* a body: not ours to read */
        return MHD_NO;
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", strdup("GET /metrics only\n"), 18);
    if (strcmp(url, "/metrics"))
        return answer(c, MHD_HTTP_NOT_FOUND, "text/plain", strdup("GET /metrics\n"), 13);
    if (!*state) {              /* the headers: answer on the next call, as MHD wants */
        *state = m;
        return MHD_YES;
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return MHD_NO;
    int rc = m->render(m->arg, f);
    if (fclose(f) || rc) {
        free(buf);
        mx_warn("metrics %s: rendering failed", m->listen);
        return answer(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", strdup("render failed\n"), 14);
    }
    return answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf, len);
}

static void on_ready(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct metrics_http *m = arg;
    (void)el;
    (void)fd;
    (void)events;
    MHD_run(m->d);
}

static int on_tick(struct evloop *el, long long id, void *arg)
{
    struct metrics_http *m = arg;
    (void)el;
    (void)id;
    MHD_run(m->d);
    return TICK_MS;
}

/* "host:port" or "[v6]:port" into a socket address. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    size_t hl = colon ? (size_t)(colon - s) : 0;
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || hl == 0 || hl >= sizeof(host) || !colon[1] || *end || port < 1 || port > 65535) {
        snprintf(err, errlen, "metrics_listen '%s' is not host:port (a numeric address and a port 1-65535)", s);
        return -1;
    }
    memcpy(host, s, hl);
    host[hl] = '\0';
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons((uint16_t)port);
            return 0;
        }
    }
    snprintf(err, errlen, "metrics_listen '%s': '%s' is not a numeric IPv4 or [IPv6] address", s, host);
    return -1;
}

struct metrics_http *metrics_http_new(struct evloop *el, const char *listen, metrics_render_cb render,
                                      void *arg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    if (parse_listen(listen, &ss, err, errlen))
        return NULL;
    struct metrics_http *m = xcalloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "metrics %s: out of memory", listen);
        return NULL;
    }
    m->el = el;
    m->render = render;
    m->arg = arg;
    snprintf(m->listen, sizeof(m->listen), "%s", listen);
    unsigned flags = MHD_USE_EPOLL | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    m->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNS,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!m->d) {
        snprintf(err, errlen, "metrics %s: cannot listen: %s", listen, strerror(errno ? errno : EADDRINUSE));
        free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD);
    m->efd = i ? i->epoll_fd : -1;
    if (m->efd < 0 || evloop_add_fd(el, m->efd, EV_READ, on_ready, m) ||
        (m->timer = evloop_add_timer(el, TICK_MS, on_tick, m)) <= 0) {
        snprintf(err, errlen, "metrics %s: cannot watch its sockets", listen);
        if (m->efd >= 0)
            evloop_del_fd(el, m->efd);
        MHD_stop_daemon(m->d);
        free(m);
        return NULL;
    }
    mx_info("metrics: serving http://%s/metrics", listen);
    return m;
}

void metrics_http_free(struct metrics_http *m)
{
    if (!m)
        return;
    evloop_del_timer(m->el, m->timer);
    evloop_del_fd(m->el, m->efd);
    MHD_stop_daemon(m->d);
    free(m);
}

void metrics_family(FILE *out, const char *name, const char *type, const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_histo(FILE *out, const char *name, const char *labels, const struct histo *h)
{
    /* Bounds from a microsecond (a ring pickup) to a second (a stalled server). */
    static const uint64_t le_ns[] = { 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000,
                                      1000000, 2000000, 5000000, 10000000, 100000000, 1000000000 };
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < sizeof(le_ns) / sizeof(le_ns[0]); i++)
        fprintf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, (double)le_ns[i] / 1e9,
                (unsigned long long)histo_count_le(h, le_ns[i]));
    fprintf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)h->count);
    fprintf(out, "%s_sum{%s} %.9f\n", name, labels, (double)h->sum / 1e9);
    fprintf(out, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}
