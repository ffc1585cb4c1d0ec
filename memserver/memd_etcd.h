/* memd_etcd.h — a memory server in a cluster whose source of truth is etcd
 * ([cluster] etcd): its membership key, the volume owners it learns, the
 * freshness proof its writes need, and its drain.
 *
 * servers/<advertise> is put under the server's session lease (so it goes
 * when the server dies) and again after the lease was lost.  owners/ is
 * watched into the volume store (memd_owners.h), which then fences by etcd's
 * view (volstore_etcd_*).  A drain marks the key "draining" (backends move
 * their slabs away and place no new ones here), waits until no backend holds
 * a slab here or MEMD_DRAIN_MS passed, then deletes the key.
 */
#ifndef MEMX_MEMD_ETCD_H
#define MEMX_MEMD_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct evloop;
struct volstore;
struct memd_etcd;

#define MEMD_DRAIN_MS 60000

struct memd_etcd_self {
    const char *name;           /* for logs: "memd 127.0.0.1:7480" */
    const char *addr;           /* the advertised address */
    uint64_t capacity, incarnation;
    const char *provider;
};

/* NULL with one line in err when etcd does not answer (it names the
 * endpoints) or on ENOMEM. */
struct memd_etcd *memd_etcd_open(struct evloop *el, const struct memx_config *cfg, struct volstore *vs,
                                 const struct memd_etcd_self *self, char *err, size_t errlen);
/* Revokes the lease (the server's key goes with it). */
void memd_etcd_close(struct memd_etcd *e);

/* Whether the server may take a write now (sets the store's proof, and logs
 * when that changes). */
bool memd_etcd_proven(struct memd_etcd *e);

/* Starts the drain; done(arg) once the key is deleted (or deleting it
 * failed: the lease goes at close).  busy(arg): whether a backend still
 * holds a slab here. */
void memd_etcd_drain(struct memd_etcd *e, bool (*busy)(void *arg), void (*done)(void *arg), void *arg);

#endif
