/* coord_int.h — lib/coord's private pieces: the HTTP layer (coord_http.c), the
 * JSON bodies and reply parser (coord_json.c), the watch (coord_watch.c), and
 * struct coord they all share (coord.c owns it: lease, health, requests). */
#ifndef MEMX_COORD_INT_H
#define MEMX_COORD_INT_H

#include <curl/curl.h>
#include <json-c/json.h>

#include "coord.h"
#include "log.h"
#include "queue.h"

struct coord_req;
/* status: 0 with the HTTP 200 body, or -errno (the body then is NULL). */
typedef void (*creq_done_fn)(struct coord_req *r, int status, const char *body, size_t len);
/* A stream's bytes so far (the request keeps what it is not told was used);
 * returns how many it used, or -1 to end the stream (its done is not called). */
typedef long (*creq_data_fn)(struct coord_req *r, const char *buf, size_t len);

struct coord_req {
    struct coord *c;
    CURL *h;
    char path[32];
    char *body;                 /* what is sent (owned) */
    char *in;                   /* what came back */
    size_t inlen, incap;
    bool nomem;                 /* the reply did not fit in memory */
    int ep;                     /* the endpoint it was sent to */
    int tries;                  /* endpoints tried */
    uint64_t start_ms, sent_ms; /* first attempt; this attempt */
    creq_done_fn done;
    creq_data_fn data;          /* a stream (watch): no timeout */
    /* The caller's, for the completion: */
    int kind;
    union { coord_done_cb done; coord_range_cb range; } ucb;
    void *uarg, *owner;
    int64_t ival;
    LIST_ENTRY(coord_req) link;
};
LIST_HEAD(creq_list, coord_req);

struct coord {
    struct evloop *el;
    char **eps;
    int neps, ep;               /* endpoints; the one requests go to now */
    char *prefix;               /* without a trailing '/' */
    char *cacert, *cert, *key, *who;
    int ttl_s, timeout_ms;
    CURLM *multi;
    long long curl_timer;
    struct creq_list reqs;
    LIST_HEAD(, coord_watch) watches;
    /* The session lease. */
    int64_t lease, lease_ttl;
    uint64_t deadline;
    enum coord_health health;
    coord_health_cb hcb;
    void *harg;
    long long ka_timer;
    struct coord_req *ka_req;   /* a keepalive or grant in flight */
    struct coord_stats st;
    struct mx_ratelimit rl_fail;
    bool closing;
};

/* coord_http.c */
int  chttp_init(struct coord *c);
void chttp_fini(struct coord *c);
/* Sends body (taken, freed on every path) to path; NULL on ENOMEM. */
struct coord_req *chttp_post(struct coord *c, const char *path, char *body, creq_done_fn done,
                             creq_data_fn data);
/* Drops a request without calling it back (not from inside its own data_fn). */
void chttp_cancel(struct coord_req *r);
/* A blocking request to one endpoint (coord_open, coord_close): 0 and the reply in *out
 * (malloc'd), or -errno with a curl error in err. */
int  chttp_sync(struct coord *c, int ep, const char *path, const char *body, int timeout_ms, char **out,
                char *err, size_t errlen);
void chttp_fail_log(struct coord *c, const char *what, int ep, const char *msg);

/* coord_json.c: request bodies (malloc'd JSON, NULL on ENOMEM) */
char *cj_full_key(const struct coord *c, const char *rel);
char *cj_range_end(const char *full);     /* the first key after every key under full */
char *cj_put_body(const char *full, const char *val, int64_t lease);
char *cj_del_body(const char *full, bool prefix);
char *cj_range_body(const char *full, bool prefix, int64_t min_mod_rev, bool keys_only, int limit_newest);
char *cj_txn_body(const struct coord *c, const char *cmp_full, int64_t expect, const struct coord_op *ops,
                  size_t nops, int64_t lease);
char *cj_watch_body(const char *full, int64_t start_rev);
char *cj_lease_body(const char *field, int64_t v);

#include "coord_parse.h"
int cj_parse_obj(enum cj_kind kind, json_object *o, const char *prefix, struct cj_reply *out, char *why,
                 size_t whylen);

/* coord_watch.c */
void cwatch_free_all(struct coord *c);

#endif
