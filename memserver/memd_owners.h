/* memd_owners.h — etcd's owners/ keys, as a memory server's watch delivers
 * them, into its volume store's etcd view (volstore_etcd_*).
 *
 * Pure (no I/O, no logging): memd_etcd.c logs what this refuses, and the
 * unit tests drive it with made-up events.  A value that does not decode
 * (corrupt, or written by something that is not MemX) is never trusted:
 * the name it was put under loses what it said before (whoever held that
 * key no longer vouches for it), and nothing new is learnt from it.
 */
#ifndef MEMX_MEMD_OWNERS_H
#define MEMX_MEMD_OWNERS_H

#include <stddef.h>

#include "coord.h"

struct volstore;

/* Applies one watch event.  0, or -1 with the reason in why (the event was
 * not trusted). */
int memd_owners_event(struct volstore *vs, enum coord_ev ev, const struct coord_kv *kv, char *why,
                      size_t whylen);

#endif
