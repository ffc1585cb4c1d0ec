/* volmeta_int.h — what volmeta.c (ownership, loading) and volpub.c
 * (publishing records) share: the volume metadata object itself.
 */
#ifndef MEMX_VOLMETA_INT_H
#define MEMX_VOLMETA_INT_H

#include "volmeta.h"
#include "cluster.h"

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
/* Batches in flight per volume.  Their order does not matter (the servers
 * keep the highest sequence number per page), and one at a time would cap a
 * busy volume's writes at one batch per round trip. */
#define MAX_BATCHES   4
/* Records a server that missed some is owed, kept to re-send it; past this
 * it is owed everything (a copy from a server that has all of them). */
#define MISSED_MAX    8192

enum stage { IDLE, COORD, QUERY, CLAIM, FENCE, LIST, INSYNC, ADOPT, CHECK, REFETCH, RECHECK };

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

/* What the volume keeps per memory server (pool index), for every server
 * seen so far: the array grows when the pool reports a higher index
 * (membership changes at run time).  A server past the end is one this
 * volume has not dealt with yet: not claimed, not known, owed nothing. */
struct msrv {
    bool claimed;               /* loading: it took this load's claim */
    uint64_t cursor;            /* loading: where its listing goes on */
    bool known;                 /* took our claim or records: owed what it misses */
    uint64_t inc;               /* the process (pool_server_inc) it was when it became known */
    /* A batch was completed without its answer; cleared by its next answer.
     * Later batches do not wait for it at all, so a stalled server costs one
     * POOL_LATE_MS, not one per batch until it is down. */
    bool late;
    struct owed owed;
    /* The in-sync set (coordinator mode): insync, committed in etcd; adding
     * or dropping, a change of it on its way there.  A server in the set or
     * being added counts for every batch: one that lacks its
     * acknowledgement waits until the set without it is committed. */
    bool insync, adding, dropping;
    bool sent_add;              /* its adding went out with the set_insync in flight */
    uint64_t left_ms;           /* when it last left the in-sync set */
};

struct batch;
TAILQ_HEAD(batch_list, batch);

struct pubdone {                /* a record's callback, due from the loop */
    volmeta_pub_cb cb;
    void *arg;
    int st;
};

struct volmeta {
    struct pool *pool;
    char name[PROTO_ID_MAX];
    uint64_t vid, size, epoch, counter;
    bool fenced;
    const struct volclaim_ops *claimer;     /* NULL: static mode */
    uint64_t claimed_ms;        /* when the coordinator's claim committed */
    bool takeover;              /* it took the volume from a live owner */
    int prev_ninsync;           /* the claim's in-sync set (volclaim_result), -1: none recorded */
    char (*prev_insync)[128];
    bool set_busy, set_dirty;   /* a set_insync in flight; another change waits for it */
    long long fence_timer;

    /* loading */
    enum stage stage;
    int tries, pending;
    int answered;               /* recheck: servers that reported the volume's epoch */
    uint64_t max_epoch;
    int err;
    char msg[200];
    struct volstore *merge;
    uint64_t *uids;
    uint32_t *slabs;
    int *slab_st;
    size_t nuids, next_uid;
    struct volcheck *chk;       /* who reported each page's newest record (volcheck.c) */
    volmeta_rec_cb each;
    volmeta_done_cb done;
    void *arg;
    struct ev_defer finish;     /* ends the load from the loop */

    /* publishing (volpub.c) */
    struct pubrec *q;
    size_t qn, qcap;
    int inflight;               /* batches the guest still waits for */
    struct ev_defer nomem;      /* fails the queued records no batch could be made for */
    struct pubdone *dq;         /* completed records' callbacks, run by dq_defer */
    size_t dqn, dqcap;
    struct ev_defer dq_defer;
    struct mx_ratelimit rl_slow;    /* "records waited" */
    struct msrv *srv;           /* nsrv entries: every server index seen so far */
    int nsrv;
    struct batch_list batches;  /* every batch or catch-up with an answer outstanding */
    long long timer;            /* the lateness and catch-up tick; 0: not armed */

    /* forwarding new records to an old copy's servers (volfwd.c) */
    struct fwdq **fwd;
    size_t nfwd;
    long long fwd_timer;        /* the flush, while records wait */
    struct volmeta_fwd_stats fwd_st;
};

/* volcheck.c: a loaded page's newest record that no holder of its page
 * reported is checked against the page before it is served. */
struct volcheck;
int  volcheck_note(struct volmeta *m, int srv, const struct proto_rec *r);      /* LIST: srv listed r */
/* After adoption: 0 nothing to check, 1 reads out (volmeta_checked follows), -ENOMEM. */
int  volcheck_begin(struct volmeta *m, pool_page_t (*page_of)(struct volmeta *m, const struct proto_rec *r));
bool volcheck_bad(const struct volmeta *m);     /* records to replace by older ones */
void volcheck_refetch_begin(struct volmeta *m);
int  volcheck_refetched(struct volmeta *m, int srv, const struct proto_rec *r); /* REFETCH: srv listed r */
int  volcheck_rebuild(struct volmeta *m);       /* the merge without the bad records, with their elders */
void volcheck_free(struct volmeta *m);
void volmeta_checked(struct volmeta *m);        /* volcheck.c's reads are done */

/* volfwd.c */
void volfwd_free(struct volmeta *m);

/* volpub.c */
/* The servers up now, in *up (the caller frees it), and m->srv covering
 * each of them; their count, or -1 out of memory (*up NULL). */
int  volmeta_up(struct volmeta *m, int **up);
/* Server srv (< m->nsrv) took our claim or records: it is known (and which process it is). */
void volpub_known(struct volmeta *m, int srv);
void volpub_fail_queued(struct evloop *el, void *arg);
void volpub_run_done(struct evloop *el, void *arg);
/* Forgets the catch-up state; batches still waiting for a late answer are
 * orphaned (they free themselves when it comes). */
void volpub_free(struct volmeta *m);
/* Coordinator mode, at the end of loading: the servers read from (and
 * claimed) join the in-sync set, the others are owed every record; the set
 * goes to etcd and volmeta_insync_done(m, status) follows. */
void volpub_begin_insync(struct volmeta *m);
/* Sends the in-sync set as it should be now to etcd (after the one in flight). */
void volpub_sync_insync(struct volmeta *m);
/* volmeta.c: the load's in-sync set is committed (0) or could not be (-errno). */
void volmeta_insync_done(struct volmeta *m, int status);
/* Whether server s is in the claim's recorded in-sync set. */
bool volmeta_was_insync(const struct volmeta *m, int s);

#endif
