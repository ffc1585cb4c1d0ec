/* memd.h — the memory server: RAM handed out in slabs to authenticated peers.
 *
 * One RDM endpoint serves every backend.  A peer is a session keyed by its
 * fabric address; it must prove the cluster key (auth.h) before anything else
 * is answered.  Each slab belongs to one session: page writes are messages the
 * server checks against that ownership before copying; page reads are one-sided
 * RMA reads through a per-slab registration whose key only the owner is told.
 * A new HELLO from a peer ends its previous session and frees its slabs (it
 * restarted or gave up on us), so memory is never stranded.
 */
#ifndef MEMX_MEMD_H
#define MEMX_MEMD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct evloop;
struct memd;

/* Uses cfg->listen, capacity, slab_size and provider.  NULL with a one-line
 * message in err. */
struct memd *memd_new(struct evloop *el, const struct memx_config *cfg,
                      const uint8_t key[MEMX_KEY_BYTES], char *err, size_t errlen);
void memd_free(struct memd *m);

struct memd_stats { uint64_t capacity, used; uint32_t slabs, sessions; };
void memd_get_stats(const struct memd *m, struct memd_stats *st);

#endif
