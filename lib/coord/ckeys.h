/* ckeys.h — what MemX keeps in etcd: the key names and their values.
 *
 * Under the cluster's prefix (coord_opts.prefix):
 *
 *   servers/<addr>        a memory server, leased by it (membership: gone
 *                         when its lease expires or it deletes the key)
 *                         {"addr":"10.0.0.5:7480","capacity":1073741824,
 *                          "provider":"tcp;ofi_rxm","incarnation":"<hex16>",
 *                          "state":"up"|"draining"}
 *   backends/<node>       a backend, leased by it {"node":"backd@h1","pid":123}
 *   volumes/<name>        a volume, not leased: it outlives its owners
 *                         {"vid":"<hex16>","size":4294967296,"epoch":7,
 *                          "insync":["10.0.0.5:7480",...]}
 *                         insync: the memory servers that hold every
 *                         acknowledged record of the volume (its owner keeps
 *                         it so, with a compare-and-swap on this key, before
 *                         it acknowledges a write that some server missed);
 *                         attaching reads the records from those.
 *   owners/<name>         its owner, leased by the owner backend
 *                         {"node":"backd@h1","vid":"<hex16>","epoch":7}
 *                         The epoch is the volume's fencing epoch.  A claim
 *                         is one transaction: if volumes/<name> is unchanged
 *                         since it was read (compare its mod_revision), put
 *                         it with epoch + 1 and put owners/<name> with the
 *                         same epoch under the claimer's lease.  So epochs
 *                         only grow, two claims cannot both win, and a dead
 *                         owner's owners/ key goes with its lease while the
 *                         epoch stays.  Memory servers watch owners/.
 *   slabs/<node>/<uid>    where a backend's slab lives (the slab directory)
 *                         {"size":8388608,"replicas":["10.0.0.5:7480",...]}
 *
 * Values are validated field by field: a key that does not parse (corrupt,
 * or written by something that is not MemX) is reported with the reason and
 * never acted on.  Pure: no I/O, no logging.
 */
#ifndef MEMX_CKEYS_H
#define MEMX_CKEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CK_ADDR_MAX   128       /* "host:port" */
#define CK_NODE_MAX   64        /* a backend's node id (proto's identity limit) */
#define CK_NAME_MAX   64        /* a volume name */
#define CK_REPLICAS   3
#define CK_INSYNC_MAX 32        /* a subset of the in-sync servers is still in sync: more are not recorded */

#define CK_SERVERS  "servers/"
#define CK_BACKENDS "backends/"
#define CK_VOLUMES  "volumes/"
#define CK_OWNERS   "owners/"
#define CK_SLABS    "slabs/"

struct ck_server {
    char addr[CK_ADDR_MAX];
    uint64_t capacity;
    char provider[64];
    uint64_t incarnation;
    bool draining;
};

struct ck_backend {
    char node[CK_NODE_MAX];
    int64_t pid;
};

struct ck_volume {
    uint64_t vid;
    uint64_t size;
    uint64_t epoch;
    int ninsync;                /* -1: not recorded (a volume no owner published it for yet) */
    char insync[CK_INSYNC_MAX][CK_ADDR_MAX];
};

struct ck_owner {
    char node[CK_NODE_MAX];
    uint64_t vid;
    uint64_t epoch;
};

struct ck_slab {
    uint64_t size;
    int nrep;
    char replicas[CK_REPLICAS][CK_ADDR_MAX];
};

/* Encoders write NUL-terminated JSON; they return its length, or -1 when it
 * does not fit in len.  Decoders return 0, or -1 with the reason in why
 * (e.g. "servers/x: \"capacity\" is not a number"). */
int ck_server_encode(const struct ck_server *s, char *buf, size_t len);
int ck_server_decode(const char *key, const char *val, size_t vlen, struct ck_server *s, char *why,
                     size_t whylen);
int ck_backend_encode(const struct ck_backend *b, char *buf, size_t len);
int ck_backend_decode(const char *key, const char *val, size_t vlen, struct ck_backend *b, char *why,
                      size_t whylen);
/* The volume's name comes from the key (volumes/<name>, owners/<name>). */
int ck_volume_encode(const struct ck_volume *v, char *buf, size_t len);
int ck_volume_decode(const char *key, const char *val, size_t vlen, char name[CK_NAME_MAX],
                     struct ck_volume *v, char *why, size_t whylen);
int ck_owner_encode(const struct ck_owner *o, char *buf, size_t len);
int ck_owner_decode(const char *key, const char *val, size_t vlen, char name[CK_NAME_MAX],
                    struct ck_owner *o, char *why, size_t whylen);
int ck_slab_encode(const struct ck_slab *s, char *buf, size_t len);
/* node and uid come from the key (slabs/<node>/<uid hex>). */
int ck_slab_decode(const char *key, const char *val, size_t vlen, char node[CK_NODE_MAX], uint64_t *uid,
                   struct ck_slab *s, char *why, size_t whylen);

/* Key builders: "servers/<addr>", "backends/<node>", "volumes/<name>",
 * "owners/<name>", "slabs/<node>/<uid hex16>".
 * -1 when it does not fit, or when a name holds '/' or is empty. */
int ck_server_key(const char *addr, char *buf, size_t len);
int ck_backend_key(const char *node, char *buf, size_t len);
int ck_volume_key(const char *volume, char *buf, size_t len);
int ck_owner_key(const char *volume, char *buf, size_t len);
int ck_slab_key(const char *node, uint64_t uid, char *buf, size_t len);

#endif
