/* volstore.h — what a memory server keeps about volumes: their owner epoch
 * and their page-map records, so volumes belong to the cluster and not to the
 * backend that wrote them.
 *
 * Every backend write leaves a record (logical page -> slab uid + page, or
 * zero) under the volume's epoch: a page's record on the servers that hold
 * the page (it came in the same PAGE_WRITE), other records (zeros, shared
 * pages, writes some replica missed) on the volume's in-sync servers.  A backend that
 * attaches a volume claims it with a higher epoch (fencing the previous owner:
 * its puts and page writes are refused from then on) and reads the records
 * back from the servers, keeping per page the one with the highest sequence
 * number (epoch << 40 | write counter, so a new owner's records always win).
 *
 * The store also counts, per slab uid, how many records point into it, so a
 * server never frees a slab some volume still needs just because the backend
 * that allocated it restarted.  Pure data structure: no I/O, no logging.
 * The backend uses the same store to merge what the servers return when it
 * loads a volume (the newest record of each page wins).
 */
#ifndef MEMX_VOLSTORE_H
#define MEMX_VOLSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct volstore;

struct volstore *volstore_new(void);
void volstore_free(struct volstore *vs);

/* VOL_CLAIM.  epoch 0 only reports.  Otherwise the claim succeeds when epoch
 * is higher than the volume's, or equal and from the same owner (a
 * reconnecting backend); an unknown volume is created.  Fills *cur_epoch,
 * *cur_size, *nrecs with the state afterwards.  0, ESTALE (an equal or newer
 * claim holds) or EEXIST (another size, or another name with this vid). */
int volstore_claim(struct volstore *vs, uint64_t vid, const char *name, uint64_t size,
                   uint64_t epoch, int owner, uint64_t *cur_epoch, uint64_t *cur_size,
                   uint64_t *nrecs);

/* May a writer under epoch write pages for vid?  0 or ESTALE.  An unknown
 * volume (a server that joined after the claim) accepts. */
int volstore_check(const struct volstore *vs, uint64_t vid, uint64_t epoch);

/* META_PUT: stores n records (each replaces an older-sequence record of its
 * page; older ones are ignored).  A newer epoch than the volume's moves it
 * forward (the new owner's first put may reach a server before its claim
 * did); an unknown volume is created.  0 or ESTALE. */
int volstore_put(struct volstore *vs, uint64_t vid, uint64_t epoch, const uint8_t *raw, uint32_t n);

/* One record that came with its page (PAGE_WRITE, proto_wrec): as
 * volstore_put of that one record.  0, ESTALE or ENOMEM. */
int volstore_put_rec(struct volstore *vs, uint64_t vid, uint64_t epoch, const struct proto_rec *r);

/* META_LIST: up to max records from position *cursor (0 = start); *cursor
 * becomes where to go on, 0 when done.  Returns the count, or -1 (ENOENT). */
int volstore_list(const struct volstore *vs, uint64_t vid, uint64_t *cursor, struct proto_rec *out,
                  uint32_t max);

/* VOL_DROP: forgets a volume and its records.  0, ENOENT or ESTALE. */
int volstore_drop(struct volstore *vs, uint64_t vid, uint64_t epoch);

/* Who holds vid: its epoch in *epoch and the owner of that epoch (-1 when
 * the epoch was learned from a put and nobody claimed it here yet).  Returns
 * false for an unknown volume. */
bool volstore_owner(const struct volstore *vs, uint64_t vid, uint64_t *epoch, int *owner);

/* Records pointing into slab uid, over every volume. */
uint64_t volstore_refs(const struct volstore *vs, uint64_t uid);
/* Whether a record of a volume that owner does not hold (another owner's
 * claim, or no claim seen here: only puts) points into slab uid.  A scan of
 * those volumes' records: for slab frees, not the data path. */
bool volstore_refs_foreign(const struct volstore *vs, uint64_t uid, int owner);

size_t volstore_volumes(const struct volstore *vs);

/* etcd mode (a memory server in a cluster with [cluster] etcd): etcd's
 * owners/ keys, as the server's watch delivers them, are the authority on
 * who may write a volume; the claims and puts above only add what etcd's
 * view has not shown yet.  Kept apart from the volumes above (a volume etcd
 * names is not one this server holds records of).  Until
 * volstore_etcd_enable, volstore_etcd_check answers -1 (static mode). */
void volstore_etcd_enable(struct volstore *vs);
/* Whether the server can prove now that its view holds every claim committed
 * up to a recent time (coord_watch_fresh_ms within COORD_CONFIRM_MS): the
 * server sets it before each request. */
void volstore_etcd_proven(struct volstore *vs, bool proven);
bool volstore_etcd_is_proven(const struct volstore *vs);
/* The watch's snapshot begins: every volume is unconfirmed until it is put
 * again; at the snapshot's end (sync) those that were not are gone (their
 * owner key went while the watch was broken). */
void volstore_etcd_reset(struct volstore *vs);
void volstore_etcd_sync(struct volstore *vs);
/* owners/<name> was put: volume vid is node's under epoch.  An epoch lower
 * than one already seen for that name is ignored (epochs only grow): 0, or
 * ESTALE for such a put, ENOMEM. */
int volstore_etcd_put(struct volstore *vs, const char *name, uint64_t vid, uint64_t epoch, const char *node);
/* owners/<name> was deleted: nobody may write under its epoch any more. */
void volstore_etcd_del(struct volstore *vs, const char *name);
/* May node write vid under epoch, by etcd's view?  -1 in static mode; else
 * 0, EAGAIN (not proven: cannot prove ownership now), ESTALE (lower than
 * etcd's epoch, or etcd's owner of that epoch is gone) or EPERM (etcd gives
 * that epoch to another node).  An epoch above etcd's passes: the claimer
 * just committed it and the watch has not shown it yet. */
int volstore_etcd_check(const struct volstore *vs, uint64_t vid, uint64_t epoch, const char *node);
/* The server's clock (evloop_now_ms) for the request about to be handled: a
 * claim or put that moves a volume above etcd's view is stamped with it. */
void volstore_etcd_now(struct volstore *vs, uint64_t now_ms);
/* The watch's proof reached fresh_ms (coord_watch_fresh_ms): a volume moved
 * above etcd's view before then by an epoch etcd still does not show was
 * claimed without committing it (etcd would show it by now), so the volume
 * goes back to etcd's epoch, its owner unknown, and cb(arg, vid, bogus
 * epoch, etcd's epoch) is told.  Returns how many. */
size_t volstore_etcd_catch_up(struct volstore *vs, uint64_t fresh_ms,
                              void (*cb)(void *arg, uint64_t vid, uint64_t bogus, uint64_t epoch), void *arg);
/* etcd's view of vid: false when etcd names no owner of it. */
bool volstore_etcd_owner(const struct volstore *vs, uint64_t vid, uint64_t *epoch, const char **node,
                         bool *gone);

#endif
