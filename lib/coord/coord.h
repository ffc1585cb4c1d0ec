/* coord.h — MemX's client of etcd, the cluster's source of truth.
 *
 * Membership, volume ownership (with its fencing epoch) and the slab
 * directory live in etcd (the v3 API through its JSON gateway, over libcurl
 * and json-c); ckeys.h says which keys MemX keeps there.  One struct coord per
 * daemon: it holds the daemon's session lease and keeps it alive, and runs
 * every request asynchronously on the daemon's evloop (libcurl's multi
 * interface: no threads, no blocking), except coord_open, which checks at
 * start-up that etcd answers, so a daemon pointed at a dead etcd fails with
 * a line naming the endpoints.
 *
 * Requests go to the first endpoint that answers and move on to the next on
 * a connection failure; a request is given up after opts.timeout_ms.  Every
 * reply is validated (JSON shape, base64, revisions): a malformed reply is
 * -EPROTO, never trusted.
 *
 * Lease and self-fencing: coord_lease_deadline_ms() is the latest monotonic
 * time at which the lease is provably still alive (the send time of the last
 * keepalive etcd answered, plus the TTL it answered with: etcd's own timer
 * started later, so it cannot expire first, up to clock drift).
 * coord_lease_safe() is false from COORD_FENCE_MARGIN_MS before that deadline:
 * a backend issues no write for a volume it owns past that point.  When the
 * lease is lost (expired, or etcd says it is unknown) coord grants a new one
 * and reports COORD_LEASE_LOST then COORD_UP: whoever put leased keys must put
 * them again (a volume owner must claim again: a new epoch).
 *
 * Watches: a prefix's current keys are delivered as a snapshot (COORD_EV_RESET,
 * a COORD_EV_PUT per key, COORD_EV_SYNC), then changes as they happen (PUT,
 * DEL, each with its revision, in revision order).  After a broken stream or a
 * compacted revision the watch starts over with a new snapshot.
 * coord_watch_fresh_ms() is the proof a memory server needs before it accepts
 * a write: the send time of the last check in which etcd (a linearizable read)
 * had no put under the prefix newer than what the watch had delivered.  So
 * every put committed before that time is known to the watcher.  (Deletes are
 * not covered by that proof; MemX never relies on seeing one in time: a
 * deleted owner key means its owner stopped writing or was fenced.)
 *
 * Errors, for every callback: 0, -ECANCELED (a transaction's compare failed),
 * -ETIMEDOUT, -ECONNREFUSED (no endpoint answered), -EPROTO (a reply MemX
 * cannot trust), -EIO (etcd said no: the message is logged).  Calls that take
 * a callback return 0, or -ENOMEM with the callback never called.
 */
#ifndef MEMX_COORD_H
#define MEMX_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;
struct coord;
struct coord_watch;

/* The backend stops writing this long before its lease can expire. */
#define COORD_FENCE_MARGIN_MS 2000
/* A watch is checked for freshness this often; a memory server refuses writes
 * once its ownership watch has not been proven fresh for COORD_CONFIRM_MS. */
#define COORD_CHECK_MS   250
#define COORD_CONFIRM_MS 1500

struct coord_opts {
    const char *endpoints;      /* "http://h:p[,https://h:p...]" */
    const char *prefix;         /* this MemX cluster's keys, e.g. "/memx/default" */
    const char *cacert, *cert, *key;    /* TLS: CA bundle, client certificate, its key (PEM); NULL or "" = none */
    int lease_ttl_s;            /* the session lease's TTL (default 10) */
    int timeout_ms;             /* one request (default 2000) */
    const char *who;            /* for logs: "memd 10.0.0.5:7480", "backd@host" */
};
void coord_opts_init(struct coord_opts *o);

/* Grants the session lease, synchronously, trying each endpoint.  NULL with
 * one line in err, e.g. "etcd at http://127.0.0.1:2379: Connection refused". */
struct coord *coord_open(struct evloop *el, const struct coord_opts *o, char *err, size_t errlen);
/* Revokes the lease (waits at most timeout_ms) and frees everything; watches
 * and requests still open are dropped without their callbacks. */
void coord_close(struct coord *c);

enum coord_health {
    COORD_UP,                   /* the last keepalive was answered */
    COORD_DEGRADED,             /* keepalives fail; the lease is not yet provably lost */
    COORD_LEASE_LOST,           /* the lease expired: a new one is being granted */
};
typedef void (*coord_health_cb)(void *arg, enum coord_health h);
/* One callback, called on each change. */
void coord_on_health(struct coord *c, coord_health_cb cb, void *arg);
enum coord_health coord_health(const struct coord *c);
int64_t coord_lease_id(const struct coord *c);
uint64_t coord_lease_deadline_ms(const struct coord *c);
bool coord_lease_safe(const struct coord *c);
/* One line for memxctl status and logs, e.g.
 * "up: http://127.0.0.1:2379, lease 694d7a1b2c3d4e5f (8.1 s left), prefix /memx/default" */
const char *coord_describe(const struct coord *c, char *buf, size_t len);

/* Traffic, for memxctl stats and the scale tests. */
struct coord_stats {
    uint64_t requests, failures, bytes_out, bytes_in;
    uint64_t keepalives, watch_events, checks;
};
void coord_get_stats(const struct coord *c, struct coord_stats *st);

/* A key as etcd holds it; key is relative to the prefix ("servers/h:p"),
 * val is NUL-terminated (vlen bytes before the NUL), all valid for the
 * callback only. */
struct coord_kv {
    const char *key;
    const char *val;
    size_t vlen;
    int64_t create_rev, mod_rev, lease;
};

typedef void (*coord_done_cb)(void *arg, int status, int64_t rev);
typedef void (*coord_range_cb)(void *arg, int status, const struct coord_kv *kv, size_t n, int64_t rev);

/* Puts key (relative to the prefix); leased: bound to the session lease.
 * rev: the put's revision. */
int coord_put(struct coord *c, const char *key, const char *val, bool leased, coord_done_cb cb, void *arg);
/* Deletes key, or every key under it (prefix). */
int coord_del(struct coord *c, const char *key, bool prefix, coord_done_cb cb, void *arg);
/* One write of a transaction. */
struct coord_op {
    const char *key;            /* relative to the prefix */
    const char *val;            /* NULL: delete the key */
    bool leased;                /* a put bound to the session lease */
};
/* Compare-and-swap in one transaction: when cmp_key's mod_revision is
 * expect_mod_rev (0: the key does not exist), every op is applied, all or
 * none; rev is the transaction's revision.  -ECANCELED when cmp_key had
 * changed (nothing applied).  At most 8 ops. */
int coord_cas(struct coord *c, const char *cmp_key, int64_t expect_mod_rev, const struct coord_op *ops,
              size_t nops, coord_done_cb cb, void *arg);
/* Reads key, or every key under it (prefix), with mod_revision >= min_mod_rev
 * (0: all).  rev: the store's revision when etcd answered. */
int coord_get(struct coord *c, const char *key, bool prefix, int64_t min_mod_rev, coord_range_cb cb,
              void *arg);

enum coord_ev { COORD_EV_RESET, COORD_EV_PUT, COORD_EV_DEL, COORD_EV_SYNC };
/* kv is NULL for RESET and SYNC; rev is the event's revision (SYNC: the
 * snapshot's).  A DEL's kv has no value (vlen 0). */
typedef void (*coord_watch_cb)(void *arg, enum coord_ev ev, const struct coord_kv *kv, int64_t rev);
/* Watches every key under prefix (relative to the cluster prefix).  NULL on ENOMEM. */
struct coord_watch *coord_watch(struct coord *c, const char *prefix, coord_watch_cb cb, void *arg);
/* Not from inside the watch's own callback. */
void coord_unwatch(struct coord_watch *w);
/* See the header comment; 0 until first proven. */
uint64_t coord_watch_fresh_ms(const struct coord_watch *w);

#endif
