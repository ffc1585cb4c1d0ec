/* ownership.h — this backend's volume claims in etcd (ownership.c), handed
 * to the volume layer as its volclaim_ops (volmeta.h).  memx-backd makes one
 * when [cluster] etcd is set.
 */
#ifndef MEMX_OWNERSHIP_H
#define MEMX_OWNERSHIP_H

#include <stdint.h>

#include "coord.h"
#include "volmeta.h"

struct ownership;

/* A claim was renewed under a new epoch after a lost lease, or (epoch 0)
 * lost to another backend meanwhile: volumes_claim_changed. */
typedef void (*ownership_changed_cb)(void *arg, const char *volume, uint64_t epoch);

/* node: this backend's identity ([backend] node_id), as the memory servers know it. */
struct ownership *ownership_new(struct coord *c, const char *node, ownership_changed_cb changed, void *arg);
const struct volclaim_ops *ownership_ops(struct ownership *o);
/* The lease's health changed (coord_on_health, relayed by memx-backd):
 * claims are renewed once a lost lease is replaced. */
void ownership_health(struct ownership *o, enum coord_health h);
/* While on, claims of name (volclaim_ops.claim) are exclusive: refused with
 * -EBUSY and a message naming the owner when another backend holds a live
 * claim (its owners/ key exists), instead of taking the volume over; the
 * check and the claim are one compare-and-swap (a claim in between makes it
 * read again).  For deleting an orphan (catalog.c).  0 or -ENOMEM/-EINVAL. */
int  ownership_set_exclusive(struct ownership *o, const char *name, bool on);
void ownership_free(struct ownership *o);

#endif
