/* pool_int.h — the pool's shared structures, for its own files only.
 *
 * Who owns what:
 *   pool.c     lifecycle (pool_new from struct pool_opts, pool_free), the
 *              tick, the done queue, stats, the server hooks below;
 *   srvconn.c  one server's connection and op slots (srvconn.h);
 *   sop.c      ops: the free list, their encoding on the wire, and what a
 *              reply, a read's bytes or a failure means for each kind;
 *   slabs.c    the slot bitmap of a slab (pure); place.c placement (pure);
 *   pwrite.c   replicated writes: gathering, runs, building new slabs;
 *   pread.c    reads, runs, gathered reads, content checks;
 *   rebuild.c  re-replication, revalidation and drain, degraded accounting;
 *   replica.c  how far a replica is trusted (missed slots), and when a copy
 *              may be freed;
 *   adopt.c    adoption of a loaded volume's slabs and the cluster RPC.
 *
 * A pool slab is R server slabs (replicas) of the same size; a page handle is
 * (slab index + 1) << 32 | page index, so per-page state is one bit.  When a
 * replica misses a write (its server is unreachable, or failed the write),
 * the slots it missed are recorded (replica.c): reads are only ever served
 * from a replica for slots it has every acknowledged write of, and a
 * replica whose server comes back as the same process is revalidated, not
 * freed.
 *
 * Every user callback goes through the done queue, drained by a deferred call
 * (evloop_defer), so none runs inside the call that started it.
 */
#ifndef MEMX_POOL_INT_H
#define MEMX_POOL_INT_H

#include "cluster.h"
#include "evloop.h"
#include "histo.h"
#include "place.h"
#include "pool.h"
#include "proto.h"
#include "queue.h"
#include "slabs.h"
#include "srvconn.h"

#define MAX_REPLICAS      3
#define REP_SLOTS         (MAX_REPLICAS + 1)   /* R good copies, and one away or being replaced */
#define TICK_MS           100
#define RB_QD             16        /* page copies in flight while re-replicating */
#define OOM_FAILS         64        /* requests that could not be allocated, failed next turn */
#define HEDGE_MS          4         /* a read unanswered this long also goes to another replica */
#define WRITE_LATE_MS     POOL_LATE_MS     /* pool.h says why 50 ms */

/* Log lines about the pool as a whole. */
#define pool_warn(...) mx_warn("pool: " __VA_ARGS__)
#define pool_info(...) mx_info("pool: " __VA_ARGS__)

enum req_kind { R_WRITE, R_READ };

struct req {
    enum req_kind kind;
    int status;
    pool_page_t page;
    const void *data;           /* write source */
    void *out;                  /* read destination */
    pool_write_cb wcb;
    pool_io_cb rcb;
    void *arg;
    int pending, acked;         /* write: replica writes outstanding (+1 while launching) / acknowledged */
    unsigned sent, answered;    /* write: replicas (bit per rep[] index) it went to / that answered */
    unsigned tried;             /* read: replicas tried, bit per replica */
    unsigned nsops;             /* read: its sops in flight (2 while hedged); it is reused only at 0 */
    bool hedged;                /* read: a second replica was asked (or none could be) */
    bool finished;              /* answered (a write: maybe before a late replica); sops still out only drop out */
    bool delivered;             /* its callback ran; the last sop puts it back */
    unsigned npages;            /* read: pages in the run (consecutive slots from page) */
    uint64_t vid, epoch;        /* write: the volume it is for (0: none) */
    bool fenced;                /* write: a server said another backend owns the volume */
    bool again;                 /* write: a server could not prove our claim current (EAGAIN) */
    bool unreach;               /* write: a replica was skipped or lost as unreachable (not refused) */
    bool verify;                /* read: check each page's bytes against its hash */
    uint64_t t_ns;              /* issued */
    bool has_rec;               /* write: rec goes with the page */
    struct pool_wrec rec;
    STAILQ_ENTRY(req) link;
    uint8_t hash[POOL_RUN_MAX][16];     /* last: req_new clears only what comes before */
};
STAILQ_HEAD(req_list, req);

/* SOP_CREAD / SOP_CWRITE: one page of a re-replication copy (read from a good
 * replica, written to the new one).  SOP_READV: reads of one loop turn to one
 * server, gathered into one RMA read (its members are SOP_READs that never go
 * on the wire themselves). */
enum sop_kind { SOP_ALLOC, SOP_FREE, SOP_WRITE, SOP_READ, SOP_READV, SOP_CREAD, SOP_CWRITE, SOP_STATS, SOP_CTL };

struct sop {
    enum sop_kind kind;
    uint64_t req_id;
    uint64_t started_ms;
    uint64_t t_ns;              /* on the wire */
    struct req *req;
    uint32_t slab;              /* pool slab index */
    int rep;                    /* replica index in that slab */
    uint32_t page;
    uint32_t srv_slab;          /* SOP_FREE, SOP_CWRITE: the server's slab id */
    bool rebuild;               /* SOP_ALLOC: for the re-replication target */
    bool abandoned;             /* SOP_ALLOC: late, its slab went on without it (allocs_late): an answer
                                 * only frees what it allocated */
    uint64_t rgen;              /* re-replication ops: the rebuild they belong to */
    uint8_t *buf;               /* SOP_CWRITE: the page being copied; SOP_CTL: the message */
    uint32_t flags;             /* SOP_FREE: PROTO_FREE_* */
    unsigned npages;            /* SOP_WRITE: the requests it carries (pages of one slab) */
    struct req *run[PROTO_RUN_MAX];
    unsigned nmem;              /* SOP_READV: its reads */
    struct sop *mem[FAB_RMA_MAX];
    size_t blen;                /* SOP_CTL: encoded length of buf */
    pool_ctl_cb ccb;            /* SOP_CTL */
    void *carg;
    STAILQ_ENTRY(sop) link;
};

/* How far a replica is trusted: replica.c. */
struct replica {
    int srv;
    uint32_t id;                /* the server's slab id */
    uint64_t raddr, rkey;
    uint64_t gen;               /* the server's session (srv.gen) it was allocated in */
    uint64_t inc;               /* the server's incarnation (srv.inc) it lives in; 0: SLAB_ALLOC unanswered */
    bool ok;                    /* live and has every acknowledged write: a good copy */
    bool dead;                  /* untrusted for good: never read, written, or revalidated */
    uint64_t *missed;           /* slots whose write it may lack (NULL: none); owned */
    uint32_t nmissed;
};

struct pslab {
    bool used, ready;
    /* Adopted for a volume still loading: its pages hold data although
     * none is held yet (pool_adopt_settled ends it).  Never given back. */
    bool unsettled;
    /* adopted: found through SLAB_FIND (a volume's records name it: written
     * by an earlier run of this backend or by another one).  Nothing new is
     * placed in it, and what is read from it is checked against the
     * record's hash, since a replica there may have missed writes. */
    bool adopted;
    bool recopied;              /* re-replicated: the new copy holds none of its pages' records (cluster.h) */
    uint64_t uid;               /* cluster-wide name, in every volume record that points here */
    int nrep;                   /* replicas placed (or being placed) */
    int allocating;             /* SLAB_ALLOCs in flight */
    struct replica rep[REP_SLOTS];
    struct slots slots;         /* page in use */
    int wpending;               /* guest writes in flight into this slab */
    int rpending;               /* reads in flight from it (they name a replica by index) */
};

/* Re-replication: one slab at a time gets a new replica.  Pages are written
 * once and never overwritten (the volume layer writes new pages), so while the
 * slab hands out no new pages and has no write in flight, its pages can be
 * copied from any good replica; the new replica joins the slab only when every
 * page is copied, so nothing reads it early. */
struct rebuild {
    bool active, aborting;
    bool reval;                 /* revalidation: rep[slot] exists and gets only the slots it missed */
    uint64_t gen;               /* bumps per rebuild; stale copy completions are ignored */
    uint32_t slab;
    int slot;                   /* rep[] index the new replica takes */
    int target;                 /* server index */
    uint64_t target_gen;
    bool allocated;
    struct replica nr;          /* the new replica, once allocated */
    uint32_t next;              /* next page index to look at */
    int inflight;
    uint64_t started_ms, pages;
};

/* A request or adoption that could not get memory: failed through the done
 * queue like any other, from a fixed array (there is nothing to allocate). */
struct oom_fail {
    enum { OOM_WRITE, OOM_READ, OOM_ADOPT } kind;
    union { pool_write_cb w; pool_io_cb r; pool_adopt_cb a; } cb;
    void *arg;
};

struct pool {
    struct evloop *el;
    const struct pool_dir_ops *dir;     /* the slab directory, or NULL */
    void (*recopy_cb)(void *arg);       /* pool_set_recopy_cb */
    void *recopy_arg;
    struct ev_defer recopy;
    char provider[64];
    uint8_t key[POOL_KEY_BYTES];
    char id[PROTO_ID_MAX];
    int replicas;
    uint64_t slab_size;
    uint32_t pages_per_slab;
    /* Every server ever added, each allocated once: a server's index and
     * pointer stay valid for the pool's life (sops and replicas hold both);
     * a removed one is marked gone, never freed or reused for another. */
    struct server **srv;
    int nsrv, srv_cap;
    struct place_srv *place_sv; /* pool_place_view's snapshot: srv_cap entries, grows with srv */
    uint64_t born_ms;           /* pool_new: with no server yet, writes wait SRV_HELLO_TIMEOUT_MS from here */
    struct pslab *slabs;
    uint32_t nslabs;
    uint32_t alloc_hint;        /* the slab take_page looks at first */
    int building;               /* slab being allocated, -1 if none */
    struct req_list waiting;    /* writes waiting for a slab */
    struct req_list done;       /* completions to deliver */
    struct sop_list free_sops;
    struct req_list gather;     /* writes of this loop turn, not yet placed */
    bool gather_reads;          /* pool_opts.gather_reads: see issue_read */
    struct ev_defer turn_end;   /* queued while writes or reads wait for the turn's end */
    struct req_list free_reqs;  /* finished requests, for reuse: no allocation per page */
    long long tick;
    struct ev_defer deliver;    /* queued while done (or oom) is non-empty */
    struct oom_fail oom[OOM_FAILS];
    unsigned noom;
    LIST_HEAD(, adopt) adopts;  /* adoptions in progress (adopt.c) */
    bool degraded_warned;
    bool degraded;              /* some slab has fewer than R good replicas (logged on change) */
    struct rebuild rb;
    uint64_t rerep_pages;       /* pages copied by re-replication, ever */
    struct pool_stats st;
    struct histo t[POOL_T_N];   /* pool_get_timing */
    int (*rnd)(void);           /* placement's random source: rand(), or a test's */
    long long hedge_timer;      /* armed while reads are in flight (pread.c); 0: not */
    struct sop *ctl_posting;    /* the SOP_CTL pool_ctl is submitting (adopt.c) */
    bool ctl_post_failed;       /* it failed inside the submit: pool_ctl says -1, no callback */
};

/* ---- pool.c ---- */
/* Tells the slab directory the slab's replica set now (or that it is gone). */
void dir_note(struct pool *p, uint32_t slab);
void dir_forget(struct pool *p, uint64_t uid);
void finish(struct pool *p, struct req *r, int status);
/* A request could not be allocated: its callback gets -ENOMEM next turn. */
void fail_oom(struct pool *p, const struct oom_fail *f);
struct req *req_new(struct pool *p, enum req_kind kind, void *arg);
pool_page_t make_page(uint32_t slab, uint32_t page);
bool split_page(const struct pool *p, pool_page_t pg, uint32_t *slab, uint32_t *page);
bool any_first_connect(const struct pool *p);
/* Server hooks (srvconn.c, or a test's fake connection, calls them). */
void pool_srv_down(struct server *s, bool was_up);  /* after the state change: stale, flush, ... */
void pool_srv_up(struct server *s, bool same_incarnation);
void pool_no_server_check(struct pool *p);          /* waiting writes fail when nothing can come up */
/* A snapshot of the servers for place.c (p->nsrv entries, valid until the
 * next call or the next server added). */
const struct place_srv *pool_place_view(struct pool *p);
int  pool_rep_view(const struct pslab *ps, struct place_rep out[REP_SLOTS]);
void orphan_add(struct server *s, uint32_t id);

/* ---- sop.c ---- */
struct sop *sop_new(struct pool *p, enum sop_kind kind);
void sop_free(struct pool *p, struct sop *o);
/* Encodes o (its req_id set) and posts it on s's endpoint; the transport
 * reports back through sent (sends) or read_done (reads).  0, or -1 with why. */
int  sop_post(struct server *s, struct sop *o, fab_done_fn sent, fab_done_fn read_done, const char **why);
/* A reply m matched o (taken off its slot).  Frees o. */
void sop_reply(struct server *s, struct sop *o, const struct proto_msg *m);
/* A read o finished: status 0 and data/len its bytes, or -errno.  Frees o. */
void sop_read_done(struct server *s, struct sop *o, int status, const void *data, size_t len);
/* s went down with o in a slot or queued.  Frees o. */
void sop_fail(struct server *s, struct sop *o);

/* ---- pwrite.c ---- */
void write_replica_done(struct pool *p, struct sop *o, int status);
void alloc_done(struct pool *p, struct server *s, struct sop *o, const struct proto_msg *m);
void kick_slab(struct pool *p);
void fail_waiting(struct pool *p, int status);
void place_writes(struct pool *p, struct req_list *l);
int64_t slab_slot(struct pool *p);
void turn_end_arm(struct pool *p);
void turn_end(struct evloop *el, void *arg);
/* slab got a copy by re-replication: its pages' records are owed (cluster.h). */
void recopy_note(struct pool *p, uint32_t slab);
/* The hedge timer's pass over s: its writes late by WRITE_LATE_MS complete without it. */
void writes_late(struct pool *p, struct server *s, uint64_t now);
/* The hedge timer's pass over the slab being built: a SLAB_ALLOC late by
 * WRITE_LATE_MS, another replica allocated, is given up (the slab is usable
 * degraded, re-replication restores it) so writes do not wait for it. */
void allocs_late(struct pool *p, uint64_t now);
/* pool_free: a write sop is dropped; frees its request when nothing else holds it. */
void write_sop_drop(struct req *r);

/* ---- pread.c ---- */
void issue_read(struct pool *p, struct req *r);
void read_failed(struct pool *p, struct sop *o, const char *why, bool flushed);
void read_landed(struct pool *p, struct sop *o, const void *data);
void flush_reads(struct pool *p, struct server *s);
/* pool_free: a read sop is dropped; frees its request when nothing else holds it. */
void read_sop_drop(struct req *r);
/* The hedge timer runs while reads or writes are in flight. */
void hedge_arm(struct pool *p);

/* ---- rebuild.c ---- */
void rb_step(struct pool *p);
void rb_check_state(struct pool *p);
void rb_copy_done(struct pool *p, struct sop *o, int status);
void rb_read_done(struct pool *p, struct sop *o, int status, const void *data);
void rb_alloc_done(struct pool *p, struct server *s, struct sop *o, const struct proto_msg *m);
void rb_free_remote(struct pool *p, int srv, uint32_t id, bool force);

/* ---- replica.c ---- */
bool rep_live(const struct pool *p, const struct replica *rp);     /* takes writes */
bool rep_readable(const struct pool *p, const struct replica *rp, uint32_t page, unsigned n);
bool rep_missed(const struct replica *rp, uint32_t page);
void rep_dead(struct pool *p, uint32_t slab, int rep, const char *why);
bool rep_away(struct pool *p, uint32_t slab, int rep);     /* its server is unreachable; true if it was good */
void rep_miss(struct pool *p, uint32_t slab, int rep, uint32_t page, const char *why);
void rep_unmiss(struct pool *p, uint32_t slab, int rep, uint32_t page);     /* the slot was copied to it */
void slot_unmiss(struct pool *p, uint32_t slab, uint32_t page);             /* the slot is free */
void rep_valid(struct pool *p, uint32_t slab, int rep);                     /* revalidated: nothing missed */
void rep_release(struct replica *rp);                                       /* frees what it owns */
int  good_elsewhere(const struct pool *p, const struct pslab *ps, int srv);
void slab_trim(struct pool *p, uint32_t slab);
void slab_give_back(struct pool *p, uint32_t slab);     /* an empty, quiet slab to its servers */                              /* drops surplus copies */
void reps_server_down(struct pool *p, struct server *s);
void reps_server_up(struct pool *p, struct server *s, bool same_incarnation);

/* ---- adopt.c ---- */
void adopt_free_all(struct pool *p);

#endif
