/* volumes.h — the table of volumes this backend knows, for the XenBus device
 * code (attach on connect, detach on close) and the control socket (list,
 * stats, delete).  I/O on an attached volume is volume.h.
 *
 * A volume outlives the devices that attach it: a guest's save/restore or
 * migration detaches and re-attaches the same volume by name, and its pages
 * stay put.  Only an explicit delete frees its pages.
 */
#ifndef MEMX_VOLUMES_H
#define MEMX_VOLUMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histo.h"
#include "target.h"
#include "volume.h"

struct pool;
struct volumes;
struct volclaim_ops;

struct volume_stats {
    uint64_t size_bytes;
    uint64_t logical_pages;   /* pages holding data the guest wrote (zero pages included) */
    uint64_t stored_pages;    /* pages whose write stored them in the pool (logical = stored + zero + dup) */
    uint64_t zero_pages;      /* written as zeros: recorded, not stored */
    uint64_t dup_pages;       /* pages whose write shared an equal page already stored (de-duplication) */
    bool dedup;               /* its writes are de-duplicated now (host switch and volume option both on) */
    uint64_t reads, writes, discards, flushes, errors;
    uint64_t held_unreach;    /* page operations held while their memory servers were unreachable (vretry.c) */
    uint64_t quota_pages;     /* the volume's quota in pages (0: none); it counts stored + dup pages */
    uint64_t quota_refused;   /* guest writes refused (ENOSPC) because they did not fit in the quota */
    struct histo read_ns, write_ns;
};

/* The table of volumes this backend knows. */
struct volumes *volumes_new(struct pool *pool, bool dedup);
/* Claims go through the cluster's coordinator (etcd) from now on; ops
 * outlives the table.  Before any attach. */
void volumes_set_claimer(struct volumes *vs, const struct volclaim_ops *ops);
/* How long a page operation waits for unreachable memory servers before it
 * fails (default 60 s; 0: at once).  Live: applies to operations held now. */
void volumes_set_io_hold(struct volumes *vs, unsigned ms);
/* The coordinator renewed this backend's claim of name under a new epoch
 * (after its lease was lost and nobody else claimed it), or, epoch 0, lost
 * it to another backend: the volume is fenced. */
void volumes_claim_changed(struct volumes *vs, const char *name, uint64_t epoch);
void volumes_free(struct volumes *vs);

/* Creates the volume or returns the existing one of that name.  Fails with a
 * message if it exists with another size or is attached already (one owner). */
struct volume *volume_attach(struct volumes *vs, const char *name, uint64_t size, const char *owner,
                             char *err, size_t errlen);
/* A volume attached for the first time here is loaded from the pool (its
 * metadata lives there: volmeta.h) before it serves I/O; I/O that arrives
 * meanwhile waits.  0 ready, 1 still loading, -1 unusable (*err says why: it
 * could not be loaded, or another backend has attached it since: fenced). */
int volume_state(const struct volume *v, const char **err);
/* For people: "loading", "ready", "failed" or "fenced"; and the owner epoch
 * this backend holds the volume under (0 without metadata in the pool). */
const char *volume_state_name(const struct volume *v);
uint64_t volume_epoch(const struct volume *v);
/* Drops the attachment (after in-flight I/O is done); the volume keeps its pages. */
void volume_detach(struct volume *v);
/* Frees every page of a detached volume and forgets it.  -EBUSY if attached, -ENOENT if unknown. */
int  volume_delete(struct volumes *vs, const char *name);

struct volume *volumes_find(struct volumes *vs, const char *name);
/* Host-wide page counts.  A shared page is charged to the volume whose write
 * stored it; once that copy is overwritten the others keep it alive, so the
 * per-volume stored/dup split stops adding up to the pool.  These are exact:
 * stored_pages is the pool pages held, each once however many entries share it. */
struct volumes_stats {
    bool dedup;
    uint64_t logical_pages, stored_pages, zero_pages, dup_pages;
    uint64_t dedup_hits;      /* writes that shared an equal stored page */
    uint64_t late_hits;       /* of those, found only after their own write (concurrent equal writes) */
    uint64_t collisions;      /* hash hits whose bytes differed */
    uint64_t compare_reads;   /* byte compares that read the stored page back (byte cache missed) */
    uint64_t index_pages, cached_pages;
};
void volumes_get_stats(const struct volumes *vs, struct volumes_stats *st);

/* Iteration for the control socket: returns the i-th volume or NULL. */
struct volume *volumes_at(struct volumes *vs, size_t i);

const char *volume_owner(const struct volume *v);      /* "" when detached */
void        volume_get_stats(const struct volume *v, struct volume_stats *st);
/* Per-volume de-duplication (on by default; the host's switch overrides it).
 * Off, the volume's writes neither share stored pages nor offer theirs to
 * other volumes; pages it shares already stay shared until overwritten. */
void        volume_set_dedup(struct volume *v, bool on);
/* The target's quota=<size>, in bytes (0: none): writes that would make the
 * volume hold more pages than that fail with -ENOSPC (quota.c).  Applies to
 * writes issued from now on. */
void        volume_set_quota(struct volume *v, uint64_t bytes);
bool        volume_dedup(const struct volume *v);

#endif
