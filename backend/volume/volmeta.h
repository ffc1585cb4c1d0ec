/* volmeta.h — a volume's metadata in the pool: ownership by epoch, and the
 * page-map records that let any backend attach the volume with all its pages.
 *
 * Attaching (volmeta_load) claims the volume through the coordinator when
 * there is one (volclaim_ops below), or else asks every live memory server
 * for the volume's epoch and claims it with the highest one plus one (which
 * fences the previous owner: the servers refuse its page writes and records
 * from then on), reads the records back from every server that took the
 * claim, keeps the newest of each page, and finds the slabs they point into
 * (pool_adopt).
 *
 * Where records live.  A stored page's record rides in its PAGE_WRITE
 * (pool_write_vol): each of the page's R replicas keeps it with the page, so
 * a write costs one round trip to R servers, whatever the cluster's size.
 * Every other record (zeros and discards, a page shared with another, a write
 * that fewer than R replicas acknowledged, the records of a slab that
 * re-replication copied) is published (volmeta_publish, volpub.c) to every
 * live server before the guest's request completes: in batches (one
 * META_PUT per server and batch, a few batches in flight).  A server
 * POOL_LATE_MS late is not waited for once a caught-up server acknowledged
 * the batch: it is owed those records and sent them when it answers again.
 *
 * So an attach finds every acknowledged record if it reads one replica of
 * each page and one caught-up server: it waits while R or more member
 * servers are unread (any page could have had both copies there).
 *
 * With a coordinator (etcd) the rule for published records is stronger and
 * does not depend on which servers are up: the volume's in-sync set, kept in
 * etcd, names the servers that hold every acknowledged published record.  A
 * batch that some server of the set did not acknowledge completes only after
 * the set without that server is committed; a server caught up again joins
 * the set once that is committed; attaching needs one server of the set (and
 * waits while none of them is reachable).
 *
 * Knows nothing about the page map or Xen: volume.c calls it.
 */
#ifndef MEMX_VOLMETA_H
#define MEMX_VOLMETA_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"
#include "proto.h"

struct volmeta;

/* A record of the loaded map; slab_ok false when no live server holds the
 * slab it names (its pages are lost: reads must fail, not return zeros). */
typedef void (*volmeta_rec_cb)(void *arg, const struct proto_rec *r, pool_page_t page, bool slab_ok);
/* Loading ended: 0, -EAGAIN (no memory server up yet: try again later),
 * -EEXIST (the volume exists with another size: msg says so) or -EIO. */
typedef void (*volmeta_done_cb)(void *arg, int status, const char *msg);
/* A publish ended: 0, -ESTALE (fenced: another backend took the volume),
 * -EAGAIN (the servers could not prove our claim current: their etcd view is
 * stale; nothing took the records, publish them again later) or -EIO (no
 * live server took the records). */
typedef void (*volmeta_pub_cb)(void *arg, int status);

/* Ownership decided outside the pool, by the cluster's coordinator (etcd:
 * backend/ownership.c).  Without one the memory servers' epochs decide
 * (static mode: one host, no fencing across hosts).  With one, attaching
 * claims the volume there first (the epoch comes from etcd), then tells every
 * live server directly (VOL_CLAIM: fenced at once); a server that did not
 * answer learns the claim from etcd itself, and loading waits fence_wait_ms
 * for it to have done so (or to refuse writes it cannot prove current). */
/* What a claim found and made.  takeover: another backend held the claim
 * until now (it may still be writing: servers it can reach and we cannot
 * must have fenced it before we read the records).  insync: the servers the
 * previous owner kept holding every acknowledged record (ninsync < 0: none
 * recorded, a volume nobody published records for under a coordinator). */
struct volclaim_result {
    uint64_t epoch;
    bool takeover;
    int ninsync;
    const char (*insync)[128];
};
typedef void (*volclaim_cb)(void *arg, int status, const struct volclaim_result *res, const char *msg);
typedef void (*volclaim_done_cb)(void *arg, int status);
struct volclaim_ops {
    /* A new, higher epoch for this backend: cb(0, res), or -EEXIST (msg:
     * another size), -EAGAIN (try later: msg says why) or -EIO.  Never calls
     * cb inside the call; 0, or -ENOMEM (cb not called). */
    int (*claim)(void *ctx, const char *name, uint64_t vid, uint64_t size, volclaim_cb cb, void *arg);
    /* Records that exactly addrs hold every acknowledged record of the
     * volume, only while our claim is the last one: cb(0), -ESTALE (another
     * backend claimed it: fenced) or -EAGAIN (etcd did not answer: try
     * again).  0, or -ENOMEM (cb not called). */
    int (*set_insync)(void *ctx, const char *name, const char *const *addrs, int n, volclaim_done_cb cb,
                      void *arg);
    /* The volume was deleted. */
    void (*forget)(void *ctx, const char *name);
    /* False while this backend cannot prove its claims current (its lease
     * is close to expiry): writes wait, reads go on. */
    bool (*may_write)(void *ctx);
    unsigned fence_wait_ms;
    void *ctx;
};

/* claimer: NULL for static mode; kept by reference (it outlives the volume). */
struct volmeta *volmeta_new(struct pool *pool, const char *name, uint64_t size,
                            const struct volclaim_ops *claimer);
/* Whether writes may be issued now (see volclaim_ops.may_write). */
bool volmeta_may_write(const struct volmeta *m);
/* Only with nothing in flight (no load, no publish). */
void volmeta_free(struct volmeta *m);

void volmeta_load(struct volmeta *m, volmeta_rec_cb each, volmeta_done_cb done, void *arg);
/* Whether our claim of a loaded volume is still the newest: asks every live
 * server for the volume's epoch (no claim is made).  done(0) with the volume
 * fenced (volmeta_fenced) when a server knows a higher epoch than ours:
 * another backend attached it since, and our map of it is stale; done(0)
 * otherwise, -EAGAIN (no server answered: ask again later) or -EEXIST.
 * Needed before a backend serves a volume it let go of again (a guest
 * migrated away and back): nothing tells it of a claim made elsewhere
 * until one of its writes is refused. */
void volmeta_recheck(struct volmeta *m, volmeta_done_cb done, void *arg);

/* The sequence number for the next change of the map: later changes of a
 * page must carry higher numbers (taken in issue order).  Always even: a
 * write that ends up with a second record (it shared a page stored while it
 * was in flight, after its own record went out with its copy) gives that one
 * seq + 1, newer than its first and older than any later change. */
uint64_t volmeta_next_seq(struct volmeta *m);
uint64_t volmeta_vid(const struct volmeta *m);
uint64_t volmeta_epoch(const struct volmeta *m);
bool volmeta_fenced(const struct volmeta *m);
/* The coordinator renewed our claim under a higher epoch: later changes
 * carry it (their sequence numbers stay above every earlier one). */
void volmeta_set_epoch(struct volmeta *m, uint64_t epoch);
/* A server refused a page write of ours for the volume: we are fenced. */
void volmeta_fence(struct volmeta *m);

/* Queues r; cb runs from the loop once the servers hold it (or it failed,
 * -ENOMEM included).  -ENOMEM at once, cb not called, if r cannot be queued. */
int volmeta_publish(struct volmeta *m, const struct proto_rec *r, volmeta_pub_cb cb, void *arg);

/* The volume was deleted: the servers forget its records (best effort). */
void volmeta_drop(struct volmeta *m);

/* The 64-bit id of a volume name (XXH3-64; servers also keep the name and
 * refuse a claim whose name differs). */
uint64_t volmeta_vid_of(const char *name);

/* Sends record r, now on R servers, also to the n servers srvs that hold
 * the page it replaced (volfwd.c): after the guest's write, best effort. */
void volmeta_forward(struct volmeta *m, const int *srvs, int n, const struct proto_rec *r);
struct volmeta_fwd_stats {
    uint64_t msgs, recs, failed;    /* META_PUTs sent, records in them; records not sent (down, no memory) */
};
void volmeta_forward_stats(const struct volmeta *m, struct volmeta_fwd_stats *st);

#endif
