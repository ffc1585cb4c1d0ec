/* volume.h — named volumes: sectors -> 4 KiB pages, the page map, zero pages,
 * discard, flush.  Knows nothing about Xen (the vbd layer calls it with
 * validated, in-range requests) and nothing about the network (it stores pages
 * through pool.h).
 *
 * A volume is a cluster object named by the toolstack's target string
 * "memx:<volume>:<size>".  It outlives the devices that attach it: a guest's
 * save/restore or migration detaches and re-attaches the same volume by name,
 * and its pages stay put.  Only an explicit delete frees its pages.
 *
 * Page writes go out of place (a fresh pool page, then the map is switched on
 * completion) so a torn or failed write never damages the old contents, and
 * concurrent sub-page read-modify-writes of one page are serialised.
 */
#ifndef MEMX_VOLUME_H
#define MEMX_VOLUME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histo.h"

#define VOLUME_SECTOR_SIZE 512u
#define VOLUME_PAGE_SIZE   4096u
#define VOLUME_NAME_MAX    64

struct pool;
struct volume;
struct volumes;

typedef void (*volume_cb)(void *arg, int status);   /* 0 or -errno */

struct volume_stats {
    uint64_t size_bytes;
    uint64_t logical_pages;   /* pages holding data the guest wrote (zero pages included) */
    uint64_t stored_pages;    /* pages whose write stored them in the pool (logical = stored + zero + dup) */
    uint64_t zero_pages;      /* written as zeros: recorded, not stored */
    uint64_t dup_pages;       /* pages whose write shared an equal page already stored (de-duplication) */
    bool dedup;               /* its writes are de-duplicated now (host switch and volume option both on) */
    uint64_t reads, writes, discards, flushes, errors;
    struct histo read_ns, write_ns;
};

/* Parses "memx:<volume>:<size>[:<option>...]" (size like 2G; name [A-Za-z0-9._-],
 * 1..63 chars).  Options: "dedup=yes|no" (default yes).  opts may be NULL:
 * options are then checked and dropped. */
struct volume_opts {
    bool dedup;
};
int volume_parse_target_opts(const char *target, char *name, size_t namelen, uint64_t *size,
                             struct volume_opts *opts, char *err, size_t errlen);
int volume_parse_target(const char *target, char *name, size_t namelen, uint64_t *size,
                        char *err, size_t errlen);

/* The table of volumes this backend knows. */
struct volumes *volumes_new(struct pool *pool, bool dedup);
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

const char *volume_name(const struct volume *v);
const char *volume_owner(const struct volume *v);      /* "" when detached */
uint64_t    volume_size(const struct volume *v);        /* bytes */
void        volume_get_stats(const struct volume *v, struct volume_stats *st);
/* Per-volume de-duplication (on by default; the host's switch overrides it).
 * Off, the volume's writes neither share stored pages nor offer theirs to
 * other volumes; pages it shares already stay shared until overwritten. */
void        volume_set_dedup(struct volume *v, bool on);
bool        volume_dedup(const struct volume *v);

/* I/O.  Ranges are in 512-byte sectors and already validated by the caller;
 * buf must stay valid until cb runs.  Callbacks never run inside the call. */
void volume_read(struct volume *v, uint64_t sector, uint32_t nsect, void *buf, volume_cb cb, void *arg);
void volume_write(struct volume *v, uint64_t sector, uint32_t nsect, const void *buf, volume_cb cb, void *arg);
/* Frees the whole pages inside the range; partial pages at the edges are zeroed. */
void volume_discard(struct volume *v, uint64_t sector, uint64_t nsect, volume_cb cb, void *arg);
/* Completes once every write that completed or was issued before it is durable in the pool. */
void volume_flush(struct volume *v, volume_cb cb, void *arg);

#endif
