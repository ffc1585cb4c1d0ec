/* volume_int.h — the volume layer's own structures, shared by its files and by
 * nothing outside backend/volume/ (the rest of MemX sees volume.h and volumes.h).
 *
 *   volume.c   requests, per-page ordering (the active hash), read-modify-write,
 *              read runs
 *   vmap.c     applying finished writes to the map, and publishing them
 *   vstore.c   storing one full page, with de-duplication
 *   volumes.c  the table: attach, load from the pool, detach, delete, stats
 *   quota.c    the page quota (target option quota=): writes admitted or refused
 *   pagemap.c  the map itself (pure), pageref.c the refcounts, target.c parsing
 *
 * A request (struct req) is split into page operations (struct pop); it
 * completes when its last pop does, and never inside the call that issued it.
 */
#ifndef MEMX_VOLUME_INT_H
#define MEMX_VOLUME_INT_H

#include "dedup.h"
#include "evloop.h"
#include "htab.h"
#include "log.h"
#include "pageref.h"
#include "pagemap.h"
#include "cluster.h"
#include "pool.h"
#include "volmeta.h"
#include "volumes.h"

#include <string.h>

#define SECTORS_PER_PAGE (VOLUME_PAGE_SIZE / VOLUME_SECTOR_SIZE)
#define MAX_CAND  4     /* stored pages compared per hash hit (more than one only after a collision) */
#define NOMEM_MAX 64    /* requests failed for want of memory, completed from the loop */

/* Logs name the volume. */
#define vol_log(v, lvl, fmt, ...) mx_log((lvl), "volume %s: " fmt, (v)->name, ##__VA_ARGS__)
#define vol_err(v, ...)  vol_log((v), MX_LOG_ERR, __VA_ARGS__)
#define vol_warn(v, ...) vol_log((v), MX_LOG_WARN, __VA_ARGS__)
#define vol_info(v, ...) vol_log((v), MX_LOG_INFO, __VA_ARGS__)

enum req_kind { REQ_READ, REQ_WRITE, REQ_DISCARD, REQ_FLUSH };

struct req {
    struct volume *v;
    enum req_kind kind;
    volume_cb cb;
    void *arg;
    int status;             /* first error wins */
    unsigned pending;       /* page ops in flight, +1 while the request is being issued */
    uint64_t t0;
    uint64_t wid;           /* writes/discards: issue order; flush: the last wid it covers */
    struct req *prev, *next;/* writes/discards: the in-flight list; flush: the flush queue */
    struct req *dnext;      /* the deferred-completion queue */
    struct pop *run;        /* reads: the run of pages being gathered, not yet issued */
};

/* A page with writes in flight. */
struct active {
    struct hnode h;         /* key: logical page index */
    uint64_t issued, applied;
    uint64_t durable;       /* the highest record seq of the page durable meanwhile (vol_durable) */
    unsigned busy;          /* page writes in flight, including a running RMW */
    bool quota_held;        /* one page of the volume's quota is reserved for it (quota.c) */
    struct pop *wq, **wq_tail;  /* RMWs waiting for busy == 0 */
};

struct pop {
    struct req *r;
    struct active *a;
    uint64_t idx;
    uint32_t off, len;      /* byte range inside the page */
    uint8_t *buf;           /* the caller's bytes for this range; NULL: zeros (discard edge) */
    uint64_t seq;
    uint64_t rseq;          /* the volume record's sequence number, taken at issue */
    struct pm_ent old;      /* what a finished write replaced, kept until its record is published */
    uint8_t phash[16];      /* storing: XXH3-128 of the page (the record's check) */
    bool held;              /* stored with its record on R servers: nothing more to publish */
    struct pm_ent ent;      /* what the write installed (its record is forwarded to old's servers) */
    pool_page_t late_copy;  /* shared after it was stored: our copy, let go once the sharing record is out */
    pool_page_t src;        /* RMW/read: the page being read (a reference is held) */
    unsigned n;             /* read: pages in the run, src and the slots after it (a reference on each) */
    uint8_t (*rhash)[16];   /* read: the run's record hashes, once it has more than one page */
    bool was_none;          /* RMW: the page was never written (a discard edge keeps it so) */
    uint8_t *bounce;
    struct pop *next;
    /* storing a full page (vstore.c) */
    const uint8_t *data;
    struct dedup_hash hash;
    bool hashed;                    /* de-duplicated: hash is set */
    pool_page_t cand[MAX_CAND];     /* stored pages with the same hash, a reference held on each untried one */
    unsigned ncand, ci;
    uint8_t *cmp;                   /* a candidate's bytes read back from the pool */
    struct pop *again_next;         /* on v->again: tried again (vretry.c) */
    enum again_kind { AG_STORE, AG_PUBLISH, AG_READ, AG_RMW } again_kind;
    bool pub_again;                 /* its record was refused for now (EAGAIN) since again_since */
    uint64_t again_since;
    uint64_t unreach_since;         /* held since then: the servers were unreachable (0: never) */
};

/* A request that arrived while the volume was loading from the pool. */
enum held_kind { H_READ, H_WRITE, H_DISCARD, H_FLUSH };
struct held {
    enum held_kind kind;
    uint64_t sector, nsect;
    void *buf;
    volume_cb cb;
    void *arg;
    struct held *next;
};

/* A volume's page quota (quota.c). */
struct vquota {
    uint64_t limit;         /* pages; 0: none */
    uint64_t reserved;      /* pages being added by writes in flight (active.quota_held) */
    uint64_t refused;       /* guest writes refused with -ENOSPC */
    struct mx_ratelimit rl;
};

struct volume {
    struct volumes *vs;
    char name[VOLUME_NAME_MAX];
    char owner[64];
    uint64_t size, npages;
    struct pagemap map;
    struct htab active;
    struct req *wfirst, *wlast;     /* in-flight writes/discards, oldest first */
    struct req *ffirst, *flast;     /* flushes waiting, oldest first */
    uint64_t next_wid;
    unsigned inflight;              /* requests of every kind not yet completed */
    bool nodedup;                   /* the target said dedup=no */
    /* Metadata in the pool (volmeta.h): the volume is usable once loaded;
     * I/O that arrives while it loads waits in held. */
    struct volmeta *meta;
    enum { V_LOADING, V_READY, V_FAILED } state;
    bool load_nomem;                /* a loaded record found no memory: the map is partial */
    char load_err[200];
    struct held *held, **held_tail;
    int load_tries;                 /* tries of the load or recheck waited on (the log every 30 s) */
    long long load_timer;
    bool rechecking;                /* what load_timer tries again: the recheck, not the load */
    /* Let go of while ready (volume_detach) by last_owner: another backend
     * may have attached it since, so before another device here serves it
     * the servers are asked whether our claim is still the newest
     * (volume_attach, volmeta_recheck). */
    bool recheck;
    char last_owner[64];
    long long hold_timer;       /* armed while writes wait for the claim to be provable (may_write) */
    struct pop *again;          /* page operations held to be tried again (vretry.c) */
    long long again_timer;
    struct mx_ratelimit rl_again, rl_unreach, rl_unreach_fail;
    struct mx_ratelimit rl_kept;    /* "the page it replaces is kept" */
    pool_page_t *kept;          /* pages replaced by writes whose records failed (vol_release_old) */
    size_t nkept, capkept;
    struct dfree *dfree;        /* superseded pages whose records are out (vol_defer_free) */
    struct volume_stats st;
    struct vquota quota;
};

struct volumes {
    struct pool *pool;
    struct evloop *el;
    bool dedup;
    bool persist;                   /* volumes keep their metadata in the pool (volmeta.h) */
    const struct volclaim_ops *claimer;     /* etcd's claims (volmeta.h), NULL: static mode */
    int efd;
    struct req *dfirst, *dlast;     /* requests done during their own issue, to complete from the loop */
    struct { volume_cb cb; void *arg; } nomem[NOMEM_MAX];
    unsigned nnomem;                /* requests that got no struct req: failed from the loop */
    struct pagerefs refs;
    struct dedup *dd;               /* NULL: de-duplication off */
    uint64_t logical, zero, entries;/* host-wide sums of the maps' entries */
    uint64_t hits, late_hits, collisions, compare_reads;
    struct volume **v;
    size_t n, cap;
    struct pop *free_pops;
    unsigned io_hold_ms;            /* how long an operation waits for unreachable servers (vretry.c) */
};

/* The content index this volume's writes use, or NULL. */
#define HOLD_RETRY_MS 100          /* how often held writes look at may_write again */
#define PUB_AGAIN_MS  10000        /* how long a record the servers refused for now (EAGAIN) is retried */
#define UNREACH_RETRY_MS 250       /* how often operations held for unreachable servers are tried again */

/* Runs the requests held in v->held, in their order (they are gated again). */
void vol_replay_held(struct volume *v);

static inline struct dedup *vol_dd(const struct volume *v) { return v->nodedup ? NULL : v->vs->dd; }

/* vmap.c */
/* Installs e at idx with the statistics; the caller releases what *old holds. */
int  vol_map_set(struct volume *v, uint64_t idx, struct pm_ent e, struct pm_ent *old);
/* A finished page write, unless a later-issued one got there first (a is the
 * page's write state, NULL when it has none): 1 installed, 0 superseded,
 * -ENOMEM.  Unless installed, e's page reference is let go; what it replaced
 * is handed back in *old for vol_release_old once its record is published. */
int  vol_install(struct volume *v, struct active *a, uint64_t idx, uint64_t seq, struct pm_ent e,
                 struct pm_ent *old);
/* vol_install for volumes without metadata: the replaced page goes at once. */
int  vol_apply(struct volume *v, struct active *a, uint64_t idx, uint64_t seq, struct pm_ent e);
void vol_release_old(struct volume *v, struct pm_ent old, int status);
/* Publishes idx's new entry (volumes with metadata only); cb runs when the
 * servers hold it, or at once with -ENOMEM if it cannot be queued. */
void vol_publish(struct volume *v, uint64_t idx, uint64_t rseq, const struct pm_ent *e,
                 volmeta_pub_cb cb, void *arg);
/* The record sequence number of the next change (0 without metadata). */
uint64_t vol_next_rseq(struct volume *v);
void vol_published(void *arg, int status);
/* A superseded write's page whose record (seq) is on servers already: it
 * stays until a newer record of idx is durable (vol_durable): 0, or 1 when
 * one is already (the caller lets it go), or -ENOMEM. */
struct dfree {
    uint64_t idx, seq;
    pool_page_t page;
    struct dfree *next;
};
int  vol_defer_free(struct volume *v, uint64_t idx, pool_page_t page, uint64_t seq);
/* A record of idx numbered seq is durable: superseded pages under it go. */
void vol_durable(struct volume *v, uint64_t idx, uint64_t seq);
/* The record replacing old is durable: tells old's servers (volfwd.c). */
void vol_forward(struct volume *v, struct pm_ent old, uint64_t idx, uint64_t rseq, const struct pm_ent *e);
/* Publishes the records of the pages in slabs re-replication copied (cluster.h); how many. */
unsigned vol_republish_recopied(struct volume *v);

/* volume.c */
static inline bool vol_page_is_zero(const uint8_t *p)
{
    return p[0] == 0 && memcmp(p, p + 1, VOLUME_PAGE_SIZE - 1) == 0;
}
/* Puts e in the map for p's page and ends p (at once, or once its record is out). */
void vol_pop_set(struct volume *v, struct pop *p, struct pm_ent e);
/* A page write (full or read-modify-write) ended with status: the page goes idle. */
void vol_wr_end(struct pop *p, int status);
/* The page is in the pool, stored anew or shared (vstore.c): e holds a reference for the map. */
void vol_stored(struct pop *p, int status, struct pm_ent e);
/* Completes the requests queued for the loop (the eventfd handler). */
void vol_on_deferred(struct evloop *el, int fd, unsigned events, void *arg);

/* vretry.c: p is held and tried again later (true), or must fail now
 * (false): for the claim to be provable (EAGAIN: stores and records), or
 * for unreachable servers (EHOSTUNREACH: up to the table's io_hold_ms). */
bool vol_hold_again(struct pop *p, enum again_kind kind);
bool vol_hold_unreach(struct pop *p, enum again_kind kind);
/* The clock behind vol_hold_unreach, for what is not a pop (a zero page's
 * record): true while it may wait on (since: 0 at the first failure). */
bool vol_unreach_wait(struct volume *v, uint64_t idx, uint64_t *since, const char *what);
/* What vretry.c tries again: a read (volume.c), a read-modify-write's read, a store (vstore.c). */
void vol_read_again(struct pop *p);
void vol_rmw_read_again(struct pop *p);
void vstore_again(struct pop *p);

/* quota.c */
/* Pages the quota counts: map entries naming a pool page. */
uint64_t vquota_used(const struct volume *v);
/* A guest write of nsect sectors at sector (buf: its bytes): 0 admitted, or
 * -ENOSPC (counted, logged) when its new pages do not fit in the quota. */
int  vquota_admit(struct volume *v, uint64_t sector, uint32_t nsect, const uint8_t *buf);
/* A data write to idx was issued under a (its write state): reserves a page if it adds one. */
void vquota_hold(struct volume *v, struct active *a, uint64_t idx);
/* e replaced old in the map under a (may be NULL): a reserved page that is in the map now is counted there. */
void vquota_settle(struct volume *v, struct active *a, struct pm_ent e, struct pm_ent old);
/* a's last write ended: what it still reserves goes back. */
void vquota_drop(struct volume *v, struct active *a);

/* vrmw.c: writes part of p's page (p->off, p->len) once the page is idle. */
void vol_rmw_start(struct volume *v, struct pop *p);

/* vstore.c */
/* Stores the full page at data (valid until the pop ends) and calls vol_stored().
 * May complete inside the call: the request's issue reference keeps that from
 * reaching the caller's callback. */
void vstore_page(struct pop *p, const uint8_t *data);

#endif
