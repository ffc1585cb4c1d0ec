/* metrics_http.h — a daemon's Prometheus endpoint: GET /metrics on a
 * configured host:port ([backend]/[memserver] metrics_listen), text format
 * 0.0.4, rendered on demand by the daemon's own callback.
 *
 * libmicrohttpd runs without a thread of its own (MHD_USE_EPOLL): its epoll
 * fd sits on the daemon's event loop, so the render callback runs on the
 * loop like every other handler and reads the daemon's state without locks;
 * a scrape costs one render.  Bounded: at most METRICS_CONNS connections,
 * each timed out after 10 s, only GET of /metrics (anything else is 404/405),
 * no request body.  The endpoint is read-only and unauthenticated: bind it
 * where only monitoring reaches.
 */
#ifndef MEMX_METRICS_HTTP_H
#define MEMX_METRICS_HTTP_H

#include "evloop.h"

#include <stddef.h>
#include <stdio.h>

#define METRICS_CONNS 16

/* Writes the whole exposition to out; returns 0, or -1 (a 500 is sent). */
typedef int (*metrics_render_cb)(void *arg, FILE *out);

struct metrics_http;

/* Listens on listen ("host:port", numeric IPv4 or IPv6 in brackets).  NULL
 * with a one-line message in err (a bad address, a port in use). */
struct metrics_http *metrics_http_new(struct evloop *el, const char *listen, metrics_render_cb render,
                                      void *arg, char *err, size_t errlen);
void metrics_http_free(struct metrics_http *m);

/* Helpers for renderers: one metric family's HELP and TYPE lines. */
void metrics_family(FILE *out, const char *name, const char *type, const char *help);

struct histo;
/* A histogram of nanosecond values as a Prometheus histogram in seconds:
 * name_bucket{labels,le=...} cumulative over fixed bounds, _sum, _count.
 * labels: "" or 'k="v",k2="v2"'. */
void metrics_histo(FILE *out, const char *name, const char *labels, const struct histo *h);

#endif
