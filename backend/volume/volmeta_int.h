/* volmeta_int.h — what volmeta.c (ownership, loading) and volpub.c
 * (publishing records) share: the volume metadata object itself.
 */
#ifndef MEMX_VOLMETA_INT_H
#define MEMX_VOLMETA_INT_H

#include "volmeta.h"
#include "cluster.h"
#include "config.h"

#include "evloop.h"
#include "log.h"
#include "queue.h"

/* Logs name the volume. */
#define meta_log(m, lvl, fmt, ...) mx_log((lvl), "volume %s: " fmt, (m)->name, ##__VA_ARGS__)
#define meta_err(m, ...)  meta_log((m), MX_LOG_ERR, __VA_ARGS__)
#define meta_warn(m, ...) meta_log((m), MX_LOG_WARN, __VA_ARGS__)
#define meta_info(m, ...) meta_log((m), MX_LOG_INFO, __VA_ARGS__)

#define SEQ_BITS      40            /* seq = epoch << SEQ_BITS | write counter */
#define CLAIM_TRIES   5             /* racing claims by two backends: the loser retries */
#define MAX_SRV       MEMX_MAX_SERVERS
/* Batches in flight per volume.  Their order does not matter (the servers
 * keep the highest sequence number per page), and one at a time would cap a
 * busy volume's writes at one batch per round trip. */
#define MAX_BATCHES   4
/* Records a server that missed some is owed, kept to re-send it; past this
 * it is owed everything (a copy from a server that has all of them). */
#define MISSED_MAX    8192

enum stage { IDLE, COORD, QUERY, CLAIM, FENCE, LIST, ADOPT };

struct pubrec {
    struct proto_rec r;
    volmeta_pub_cb cb;
    void *arg;
};

/* What one server is owed: the records it missed (a batch completed without
 * its answer, or went out while it was down), or, past MISSED_MAX, all of
 * them (full).  A server owed anything is "behind": its answers do not count
 * as holding the volume's records until it is caught up (volpub.c). */
struct owed {
    struct proto_rec *recs;
    uint32_t n, cap;
    bool full;
    bool busy;                  /* a re-send or a copy to it is in flight */
};

struct batch;
TAILQ_HEAD(batch_list, batch);

struct volmeta {
    struct pool *pool;
    char name[PROTO_ID_MAX];
    uint64_t vid, size, epoch, counter;
    bool fenced;
    const struct volclaim_ops *claimer;     /* NULL: static mode */
    uint64_t claimed_ms;        /* when the coordinator's claim committed */
    bool takeover;              /* it took the volume from a live owner */
    long long fence_timer;

    /* loading */
    enum stage stage;
    int tries, pending;
    uint64_t max_epoch;
    int err;
    char msg[200];
    bool claimed[MAX_SRV];
    uint64_t cursor[MAX_SRV];
    struct volstore *merge;
    uint64_t *uids;
    uint32_t *slabs;
    int *slab_st;
    size_t nuids, next_uid;
    volmeta_rec_cb each;
    volmeta_done_cb done;
    void *arg;
    struct ev_defer finish;     /* ends the load from the loop */

    /* publishing (volpub.c) */
    struct pubrec *q;
    size_t qn, qcap;
    int inflight;               /* batches the guest still waits for */
    struct ev_defer nomem;      /* fails the queued records no batch could be made for */
    uint32_t known;             /* servers that took our claim or records: owed what they miss */
    uint64_t inc[MAX_SRV];      /* the process (pool_server_inc) of each known server */
    /* Servers a batch was completed without (late); cleared by their next
     * answer.  Later batches do not wait for them at all, so a stalled
     * server costs one POOL_LATE_MS, not one per batch until it is down. */
    uint32_t late;
    struct mx_ratelimit rl_slow;    /* "records waited" */
    struct owed owed[MAX_SRV];
    struct batch_list batches;  /* every batch or catch-up with an answer outstanding */
    long long timer;            /* the lateness and catch-up tick; 0: not armed */
};

/* volpub.c */
/* Server srv took our claim or records: it is known (and which process it is). */
void volpub_known(struct volmeta *m, int srv);
void volpub_fail_queued(struct evloop *el, void *arg);
/* Forgets the catch-up state; batches still waiting for a late answer are
 * orphaned (they free themselves when it comes). */
void volpub_free(struct volmeta *m);

#endif
