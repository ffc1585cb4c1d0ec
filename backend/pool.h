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
    uint64_t writes, reads, errors;
    int servers, live_servers;
    /* Degraded mode: slabs with fewer than R good copies (lost: none at all;
     * their pages read as -EIO).  Re-replication copies one slab at a time. */
    uint64_t degraded_slabs, lost_slabs, rereplicated_pages;
    bool rebuilding;
};

void pool_get_stats(const struct pool *p, struct pool_stats *st);
/* Drain (on) or undrain a configured server ("host:port"): it takes no new
 * slabs and its replicas are re-created elsewhere, then freed on it; it shows
 * as "drained" when it can be stopped without losing redundancy.  -1 with a
 * message if addr is not configured. */
int  pool_drain(struct pool *p, const char *addr, bool on, char *err, size_t errlen);
/* Fills up to max entries; returns the number of configured servers. */
int  pool_get_servers(const struct pool *p, struct pool_server_info *out, int max);

#endif
