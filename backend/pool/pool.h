/* pool.h — the backend's pool client: memory-server connections, slab
 * placement, replication and the page I/O the volume layer needs.
 *
 * The volume layer sees only opaque page handles.  The pool owns where a page
 * lives (which servers, which slab, which offset), allocates slabs from the
 * memory servers as it needs them, and reports a write complete only when a
 * replica has it (remote completion): every live one, unless some leave it
 * unanswered for tens of ms (a stalled or cut-off server); those are never
 * read for that page until it is copied to them.  All calls are asynchronous
 * and complete from the backend's event loop; callbacks never run inside the
 * call that started them (one exception: when more than 64 requests in one
 * loop turn could not get memory, the rest fail with -ENOMEM inside the
 * call, rather than never).
 *
 * This is the page API the volume layer uses; cluster.h adds what volume
 * metadata needs (page names, adoption, requests to one server).  How the
 * pool is built inside: backend/pool/pool_int.h.
 */
#ifndef MEMX_POOL_H
#define MEMX_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histo.h"

#define POOL_PAGE_SIZE 4096u
#define POOL_KEY_BYTES 32u          /* the cluster key (config.h's MEMX_KEY_BYTES) */
#define POOL_ADDR_MAX 128           /* a server's "host:port", with its NUL */

struct evloop;
struct pool;

typedef uint64_t pool_page_t;       /* opaque; 0 is never a valid page */

/* How long a server may leave a request unanswered while another has already
 * acknowledged it before the guest stops waiting for it: a page write's late
 * replica (it then misses those slots) and a late server's answer to volume
 * records (volpub.c: it is then owed them).  The one place this is said: the
 * issue's budget for a stalled server is 50 ms of guest stall, and a busy
 * 2-core host shows pool writes of 20 ms at p99 (README), so less than this
 * turns ordinary jitter into degraded slabs and re-sends. */
#define POOL_LATE_MS 50

typedef void (*pool_write_cb)(void *arg, int status, pool_page_t page); /* status 0 or -errno */
typedef void (*pool_io_cb)(void *arg, int status);

/* What the pool needs to know, filled by its owner (backd.c: from [cluster]
 * and [backend]); the pool never reads the daemon's configuration itself.
 * pool_opts_init() sets the defaults of every field. */
struct pool_opts {
    /* The static membership (no etcd): nservers "host:port" strings of
     * POOL_ADDR_MAX bytes each, as [cluster] servers holds them (copied by
     * pool_new).  None is fine: servers then come with pool_add_server. */
    const char (*servers)[POOL_ADDR_MAX];
    int nservers;
    int replicas;               /* 1..3: copies of every slab */
    uint64_t slab_size;         /* bytes, a multiple of 256 KiB, as every memd is configured */
    const char *provider;       /* libfabric provider, e.g. "tcp;ofi_rxm" */
    const char *node_id;        /* who we are to the servers; NULL or "": "backd@<hostname>" */
    bool gather_reads;          /* reads to a busy server go out gathered, per loop turn */
};
void pool_opts_init(struct pool_opts *o);

/* Connects to o->servers in the background (with the cluster key).  NULL with
 * a one-line message in err on a configuration or libfabric error.  With no
 * server, writes wait for one as they wait for a first connection (a
 * handshake's time, 2 s), then fail with -EIO. */
struct pool *pool_new(struct evloop *el, const struct pool_opts *o, const uint8_t key[POOL_KEY_BYTES],
                      char *err, size_t errlen);
void pool_free(struct pool *p);

/* The loop the pool completes on.  The volume layer defers its own
 * completions (zero pages, never-written reads) there, so its callbacks too
 * never run inside the call that started them. */
struct evloop *pool_evloop(const struct pool *p);
/* The slab directory (etcd: backend/slabdir.c): where each slab's replicas
 * live, told as slabs are made, re-replicated, trimmed and freed, so that
 * adopting a loaded volume's slab asks only the servers listed for it (and
 * every server only when the directory does not know it, or none of them
 * has it).  Optional; the pool works without one. */
typedef void (*pool_dir_cb)(void *arg, int n, const char (*addrs)[128]);
struct pool_dir_ops {
    /* The slab's replica set is now addrs (n of them). */
    void (*put)(void *ctx, uint64_t uid, uint64_t size, const char *const *addrs, int n);
    void (*del)(void *ctx, uint64_t uid);
    /* Where slab uid lives: cb(arg, n, addrs) from the loop, n < 0 when
     * unknown.  0, or -1 (cb not called: every server is asked). */
    int (*get)(void *ctx, uint64_t uid, pool_dir_cb cb, void *arg);
    void *ctx;
};
void pool_set_directory(struct pool *p, const struct pool_dir_ops *ops);

/* Who this backend is to the memory servers (pool_opts.node_id, or backd@host). */
const char *pool_node_id(const struct pool *p);

/* Number of memory servers currently connected and authenticated. */
int pool_live_servers(const struct pool *p);

/* Stores one 4 KiB page in a fresh location on R servers.  data must stay
 * valid until cb runs.  -ENOSPC when no server has room; -EHOSTUNREACH when
 * no replica took it because their servers were unreachable (down, cut off,
 * none connected): nothing was stored, the caller may try again later; -EIO
 * when every replica refused it; -ENOMEM when the pool could not get memory
 * for it. */
void pool_write_new(struct pool *p, const void *data, pool_write_cb cb, void *arg);
/* Reads a page written earlier.  -EIO when no replica can be read: never
 * zeros; -EHOSTUNREACH when none can be read now but a server that is down
 * holds a copy that may come back (a flap of every replica): try again. */
void pool_read(struct pool *p, pool_page_t page, void *data, pool_io_cb cb, void *arg);
/* Gives the page back; the caller guarantees no I/O on it is in flight. */
void pool_free_page(struct pool *p, pool_page_t page);

struct pool_server_info {
    char addr[128];
    char provider[64];          /* the provider the connection really uses */
    const char *state;          /* "connecting", "up", "down", "refused", "draining", "drained",
                                 * "gone" (left the membership: pool_remove_server) */
    uint64_t capacity, used;    /* bytes, as the server reported them */
    uint32_t replicas;          /* good slab replicas it holds for us */
};

struct pool_stats {
    uint64_t pages_stored;      /* pages allocated (one count per page, not per replica) */
    uint64_t slabs;
    uint64_t writes, reads, errors;     /* pages */
    uint64_t writes_few;        /* writes with a record stored on fewer than R replicas (POOL_WRITE_FEW) */
    uint64_t xport_reads;       /* RMA reads that brought them: a run, or reads gathered, count once */
    uint64_t hedged_reads;      /* reads also asked of a second replica (the first was late) */
    int servers, live_servers;
    /* Degraded mode: slabs with fewer than R good copies (lost: none at all;
     * their pages read as -EIO).  Re-replication copies one slab at a time. */
    uint64_t degraded_slabs, lost_slabs, rereplicated_pages;
    bool rebuilding;
    /* Pool full: page writes failed with -ENOSPC because no server had room
     * for another slab, and when the last one was (monotonic ms; 0: never). */
    uint64_t nospace_writes, nospace_last_ms;
};

void pool_get_stats(const struct pool *p, struct pool_stats *st);

/* Where the pool's time goes (memxctl stats), ns.  Per request, issue to
 * completion (queueing, every replica, retries); per replica operation, the
 * network round trip less the time the memory server says it spent on it
 * (transport), and that server time.  Reads are one-sided RMA reads: the
 * server's provider answers them, so they have no server time. */
enum { POOL_T_READ, POOL_T_WRITE, POOL_T_XPORT_READ, POOL_T_XPORT_WRITE, POOL_T_SERVER, POOL_T_N };
void pool_get_timing(const struct pool *p, struct histo out[POOL_T_N]);

/* XXH3-128 of a page: the content check the hashes of pool_read_checked and
 * pool_read_run are compared with (and what volume records keep). */
void pool_hash(const void *page, uint8_t out[16]);

/* The volume record a page write carries (proto.h's proto_wrec): each
 * replica stores it with the page, in the same message, so the page and
 * what finds it again after a crash or on another host cost one round trip
 * to R servers.  The server completes it with the slab's uid and the slot. */
struct pool_wrec {
    uint64_t lpn, seq;
    uint8_t hash[16];
};
/* A write with a record (pool_write_vol) that completed with status
 * POOL_WRITE_FEW is stored, but fewer than R replicas hold it (some were
 * late, down or missing): its record is not on R servers, and the caller
 * must make it durable another way (volpub.c) before acknowledging. */
#define POOL_WRITE_FEW 1

/* Like pool_write_new, for volume vid under epoch: a server that has seen a
 * newer claim of the volume refuses it, and the write fails with -ESTALE.
 * rec (copied; NULL: none) goes with the page to every replica: status 0
 * then means every one of R replicas holds both, POOL_WRITE_FEW see above. */
void pool_write_vol(struct pool *p, const void *data, uint64_t vid, uint64_t epoch,
                    const struct pool_wrec *rec, pool_write_cb cb, void *arg);
/* Like pool_read; where the page's slab was adopted, a replica whose bytes
 * do not hash to hash is skipped (it missed writes) and the next is tried. */
void pool_read_checked(struct pool *p, pool_page_t page, const uint8_t hash[16], void *data,
                       pool_io_cb cb, void *arg);
/* Up to this many pages are read in one transport operation. */
#define POOL_RUN_MAX 16
/* Reads n (1..POOL_RUN_MAX) pages held in consecutive slots, first, first + 1,
 * ..., into data (n pages): one transport read instead of n.  Pages written
 * one after another land in consecutive slots of a slab, so sequential and
 * clustered I/O (swap readahead) forms such runs; a handle that does not
 * continue the run in the same slab is -EINVAL.  hashes (NULL, or one per
 * page) checks each page as pool_read_checked does; a replica failing any
 * page is skipped for the whole run. */
void pool_read_run(struct pool *p, pool_page_t first, unsigned n, const uint8_t (*hashes)[16], void *data,
                   pool_io_cb cb, void *arg);
/* Whether b is the slot right after a in the same slab (b may extend a run
 * ending at a). */
bool pool_page_follows(pool_page_t a, pool_page_t b);

/* ---- operator controls (memxctl, through ctl.c) ---- */

/* Drain (on) or undrain a known server ("host:port"): it takes no new
 * slabs and its replicas are re-created elsewhere, then freed on it; it shows
 * as "drained" when it can be stopped without losing redundancy.  -1 with a
 * message if addr is not known.  Membership's "draining" state maps to it. */
int  pool_drain(struct pool *p, const char *addr, bool on, char *err, size_t errlen);
/* Servers the pool knows (every one ever added, gone ones included). */
int  pool_nservers(const struct pool *p);
/* Fills up to max entries (out may be NULL when max is 0); returns
 * pool_nservers(p). */
int  pool_get_servers(const struct pool *p, struct pool_server_info *out, int max);

/* ---- membership ---- */

/* Membership (etcd, or the static list at pool_new): a new server joins
 * and is connected; an address already known is left as it is (0), one
 * that was removed comes back (reconnected, its replicas revalidated as
 * after any reconnect).  0, or -1 with the reason in err. */
int pool_add_server(struct pool *p, const char *addr, char *err, size_t errlen);
/* The server left the membership (its lease expired, or it deregistered
 * after draining): it is disconnected and not retried, its replicas are
 * no longer trusted and are re-replicated elsewhere, like a dead server's.
 * Its slot stays (for pool_add_server of the same address).  -1 if unknown. */
int pool_remove_server(struct pool *p, const char *addr);

/* ---- transport traffic (traffic.c) ---- */

/* What the pool's connections to the memory servers carried since it
 * started, reconnects included (lib/net/fabric.h's counts): messages are the
 * pool's requests and the servers' answers; page messages are those carrying
 * page data (4 KiB or more: page writes), the rest are headers, volume
 * records and control; RMA reads are how pages come back (a gathered one
 * counts once, its pieces each).  memxctl stats divides them by the guest's
 * requests. */
struct pool_traffic {
    uint64_t msgs_sent, bytes_sent;
    uint64_t page_msgs, page_bytes;     /* of those sent */
    uint64_t msgs_recvd, bytes_recvd;
    uint64_t rma_reads, rma_pieces, rma_bytes;
};
void pool_get_traffic(const struct pool *p, struct pool_traffic *out);

#endif
