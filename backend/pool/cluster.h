/* cluster.h — what the volume metadata (volmeta.c, and volume loading) needs
 * from the pool beyond pages: the cluster-wide names of pages, adoption of the
 * slabs a loaded volume's records point into, and a request/reply channel to
 * one memory server for the metadata protocol (VOL_CLAIM, META_PUT, ...).
 *
 * Kept apart from pool.h so the page I/O path (volume.c's requests, dedup)
 * depends only on the page API, and so whoever speaks the metadata protocol
 * is easy to find: its messages are proto.h's, and pool_ctl carries them
 * opaquely (the pool only matches the reply to the request).
 *
 * pool_hash stays in pool.h: it defines what the hashes given to
 * pool_read_checked/pool_read_run mean, and de-dup uses it on the data path.
 */
#ifndef MEMX_CLUSTER_H
#define MEMX_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "pool.h"

struct proto_msg;

/* The cluster-wide name of a page: its slab's uid and its index there. */
void pool_page_locate(const struct pool *p, pool_page_t page, uint64_t *uid, uint32_t *idx);
/* Finds slab uid on the live servers (or knows it already) so its pages can
 * be read: cb gets 0 and a slab handle for pool_page_in, or -ENOENT when no
 * live server holds it, or -ENOMEM.  cb never runs inside the call. */
typedef void (*pool_adopt_cb)(void *arg, int status, uint32_t slab);
void pool_adopt(struct pool *p, uint64_t uid, pool_adopt_cb cb, void *arg);
pool_page_t pool_page_in(const struct pool *p, uint32_t slab, uint32_t idx);
/* The loading volume holds the pages of adopted slab (pool_page_hold) it
 * needs: from now on the slab may go back to its servers once every page of
 * it is free.  Until then it never does (its pages are unheld, not empty). */
void pool_adopt_settled(struct pool *p, uint32_t slab);
/* A loaded volume holds page (of an adopted slab): true if nobody here did
 * yet (the holder then owns the page's one reference, and frees it with
 * pool_free_page like any other). */
bool pool_page_hold(struct pool *p, pool_page_t page);

/* A request to one server, for the volume metadata protocol.  reply is NULL
 * when the server went down before answering.  0: cb runs later, once, never
 * inside this call; -1 (the server is not up, or the post failed and took it
 * down): cb never runs. */
typedef void (*pool_ctl_cb)(void *arg, int srv, const struct proto_msg *reply);
int pool_ctl(struct pool *p, int srv, const struct proto_msg *m, pool_ctl_cb cb, void *arg);
/* Indexes of the servers up now; returns how many. */
int pool_up_servers(const struct pool *p, int *out, int max);
const char *pool_server_addr(const struct pool *p, int srv);
/* Servers in the membership, up or not (a removed one is not). */
int pool_member_servers(const struct pool *p);
/* Whether some member server is still being connected to for the first
 * time (its records cannot be read yet, and it may well be up). */
bool pool_connecting(const struct pool *p);
/* R: the copies of every slab (pool_opts.replicas). */
int pool_replicas(const struct pool *p);
/* Which process of server srv we talk to: it changes when the server came
 * back as a new one (kill -9, restart), which holds none of our records. */
uint64_t pool_server_inc(const struct pool *p, int srv);

/* The servers (indexes) holding a live copy of page's slab, at most max;
 * how many. */
int pool_page_servers(const struct pool *p, pool_page_t page, int *out, int max);
/* Records travel with pages (pool_write_vol), so a slab's copies hold the
 * records of its pages; a copy made by re-replication (after a server died,
 * restarted or was drained) holds only the pages.  The pool flags such a slab
 * and calls cb(arg) from the loop; the owner (volumes.c) then publishes the
 * records of the pages pool_page_recopied names another way (volpub.c) and
 * calls pool_recopied_clear, so every record is again on R servers. */
void pool_set_recopy_cb(struct pool *p, void (*cb)(void *arg), void *arg);
bool pool_page_recopied(const struct pool *p, pool_page_t page);
void pool_recopied_clear(struct pool *p);

#endif
