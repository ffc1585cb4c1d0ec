/* pool.h — the backend's pool client: memory-server connections, slab
 * placement, replication and the page I/O the volume layer needs.
 *
 * The volume layer sees only opaque page handles.  The pool owns where a page
 * lives (which servers, which slab, which offset), allocates slabs from the
 * memory servers as it needs them, and reports a write complete only when
 * every live replica has it (remote completion).  All calls are asynchronous
 * and complete from the backend's event loop; callbacks never run inside the
 * call that started them.
 */
#ifndef MEMX_POOL_H
#define MEMX_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histo.h"

#include "config.h"

#define POOL_PAGE_SIZE 4096u

struct evloop;
struct pool;

typedef uint64_t pool_page_t;       /* opaque; 0 is never a valid page */

typedef void (*pool_write_cb)(void *arg, int status, pool_page_t page); /* status 0 or -errno */
typedef void (*pool_io_cb)(void *arg, int status);

/* Connects to cfg->servers in the background (with the cluster key).  NULL with
 * a one-line message in err on a configuration or libfabric error. */
struct pool *pool_new(struct evloop *el, const struct memx_config *cfg,
                      const uint8_t key[MEMX_KEY_BYTES], char *err, size_t errlen);
void pool_free(struct pool *p);

/* The loop the pool completes on.  The volume layer defers its own
 * completions (zero pages, never-written reads) there, so its callbacks too
 * never run inside the call that started them. */
struct evloop *pool_evloop(const struct pool *p);

/* Number of memory servers currently connected and authenticated. */
int pool_live_servers(const struct pool *p);

/* Stores one 4 KiB page in a fresh location on R servers.  data must stay
 * valid until cb runs.  -ENOSPC when no server has room; -EIO when no replica
 * could be written. */
void pool_write_new(struct pool *p, const void *data, pool_write_cb cb, void *arg);
/* Reads a page written earlier.  -EIO when no replica can be read: never zeros. */
void pool_read(struct pool *p, pool_page_t page, void *data, pool_io_cb cb, void *arg);
/* Gives the page back; the caller guarantees no I/O on it is in flight. */
void pool_free_page(struct pool *p, pool_page_t page);

struct pool_server_info {
    char addr[128];
    char provider[64];          /* the provider the connection really uses */
    const char *state;          /* "connecting", "up", "down", "refused", "draining", "drained" */
    uint64_t capacity, used;    /* bytes, as the server reported them */
    uint32_t replicas;          /* good slab replicas it holds for us */
};

struct pool_stats {
    uint64_t pages_stored;      /* pages allocated (one count per page, not per replica) */
    uint64_t slabs;
    uint64_t writes, reads, errors;     /* pages */
    uint64_t xport_reads;       /* RMA reads that brought them: a run, or reads gathered, count once */
    int servers, live_servers;
    /* Degraded mode: slabs with fewer than R good copies (lost: none at all;
     * their pages read as -EIO).  Re-replication copies one slab at a time. */
    uint64_t degraded_slabs, lost_slabs, rereplicated_pages;
    bool rebuilding;
};

void pool_get_stats(const struct pool *p, struct pool_stats *st);

/* Where the pool's time goes (memxctl stats), ns.  Per request, issue to
 * completion (queueing, every replica, retries); per replica operation, the
 * network round trip less the time the memory server says it spent on it
 * (transport), and that server time.  Reads are one-sided RMA reads: the
 * server's provider answers them, so they have no server time. */
enum { POOL_T_READ, POOL_T_WRITE, POOL_T_XPORT_READ, POOL_T_XPORT_WRITE, POOL_T_SERVER, POOL_T_N };
void pool_get_timing(const struct pool *p, struct histo out[POOL_T_N]);

/* ---- what volume metadata needs (see volmeta.h) ---- */

struct proto_msg;

/* XXH3-128 of a page: the content check kept in volume records. */
void pool_hash(const void *page, uint8_t out[16]);

/* Like pool_write_new, for volume vid under epoch: a server that has seen a
 * newer claim of the volume refuses it, and the write fails with -ESTALE. */
void pool_write_vol(struct pool *p, const void *data, uint64_t vid, uint64_t epoch,
                    pool_write_cb cb, void *arg);
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

/* The cluster-wide name of a page: its slab's uid and its index there. */
void pool_page_locate(const struct pool *p, pool_page_t page, uint64_t *uid, uint32_t *idx);
/* Finds slab uid on the live servers (or knows it already) so its pages can
 * be read: cb gets 0 and a slab handle for pool_page_in, or -ENOENT when no
 * live server holds it. */
typedef void (*pool_adopt_cb)(void *arg, int status, uint32_t slab);
void pool_adopt(struct pool *p, uint64_t uid, pool_adopt_cb cb, void *arg);
pool_page_t pool_page_in(const struct pool *p, uint32_t slab, uint32_t idx);
/* A loaded volume holds page (of an adopted slab): true if nobody here did
 * yet (the holder then owns the page's one reference, and frees it with
 * pool_free_page like any other). */
bool pool_page_hold(struct pool *p, pool_page_t page);

/* A request to one server, for the volume metadata protocol.  reply is NULL
 * when the server went down before answering.  -1 if the server is not up. */
typedef void (*pool_ctl_cb)(void *arg, int srv, const struct proto_msg *reply);
int pool_ctl(struct pool *p, int srv, const struct proto_msg *m, pool_ctl_cb cb, void *arg);
/* Indexes of the servers up now; returns how many. */
int pool_up_servers(const struct pool *p, int *out, int max);
const char *pool_server_addr(const struct pool *p, int srv);
/* Drain (on) or undrain a configured server ("host:port"): it takes no new
 * slabs and its replicas are re-created elsewhere, then freed on it; it shows
 * as "drained" when it can be stopped without losing redundancy.  -1 with a
 * message if addr is not configured. */
int  pool_drain(struct pool *p, const char *addr, bool on, char *err, size_t errlen);
/* Fills up to max entries; returns the number of configured servers. */
int  pool_get_servers(const struct pool *p, struct pool_server_info *out, int max);

#endif
