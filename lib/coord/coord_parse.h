/* coord_parse.h — validating etcd's JSON gateway replies (coord_json.c).
 *
 * Pure: bytes in, a struct out, no I/O; the fuzz target (tests/fuzz/fuzz_coord.c)
 * drives it directly.  etcd's int64 fields arrive as JSON strings, keys and
 * values as base64, and a field at its default value (0, false, PUT) is left
 * out: each is checked for exactly that, and anything else is -EPROTO. */
#ifndef MEMX_COORD_PARSE_H
#define MEMX_COORD_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord.h"

enum cj_kind {
    CJ_GRANT,       /* /v3/lease/grant: ID, TTL */
    CJ_KEEPALIVE,   /* /v3/lease/keepalive: {"result":{ID, TTL}} (no TTL: the lease is gone) */
    CJ_PUT,         /* /v3/kv/put, /v3/kv/deleterange, /v3/lease/revoke: header.revision */
    CJ_TXN,         /* /v3/kv/txn: + succeeded */
    CJ_RANGE,       /* /v3/kv/range: + kvs[], count */
    CJ_WATCH,       /* one /v3/watch stream message: + events[], created, canceled, compact_revision */
    CJ_NKINDS
};

struct cj_reply {
    int64_t rev;                /* header.revision */
    int64_t id, ttl;            /* lease */
    bool succeeded;             /* txn */
    bool created, canceled;     /* watch */
    int64_t compact_rev;        /* watch */
    int64_t count;              /* range */
    struct coord_kv *kvs;       /* range: the keys; watch: the events' keys */
    enum coord_ev *evs;         /* watch: PUT or DEL, one per kvs[] */
    size_t nkv;
};

/* Parses one reply; keys must lie under prefix (+ "/") and are returned
 * relative to it.  0, -EPROTO (a reply not to trust), -EIO (etcd's own error
 * object: its message in why), or -ENOMEM.  out is always safe to free. */
int  cj_parse(enum cj_kind kind, const char *buf, size_t len, const char *prefix, struct cj_reply *out,
              char *why, size_t whylen);
void cj_reply_free(struct cj_reply *r);

#endif
