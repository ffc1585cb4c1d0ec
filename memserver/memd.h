/* memd.h — the memory server: RAM handed out in slabs to authenticated peers.
 *
 * One RDM endpoint serves every backend.  A peer is a session found by its
 * fabric address and bound to the keys of its handshake: it must prove the
 * cluster key (auth.h) before anything else is answered, and every message
 * after that must open with the session's key (forged, tampered and replayed
 * ones are dropped and logged).  Page writes are messages the server checks
 * against slab ownership and the volume's owner before copying; page reads
 * are one-sided RMA reads through a per-slab registration whose key only the
 * owner (or a backend that finds the slab) is told.
 *
 * Slabs belong to the client's identity (its HELLO id, one per backend host;
 * proto.h), not to a session.  Only a completed handshake of the same
 * identity (or from the same endpoint) ends the old session (its address is
 * no longer answered); a HELLO or a failed AUTH never does: a backend whose
 * link was cut finds its slabs where it left them.  A slab is
 * freed when its owner frees it, or when the identity says HELLO with
 * PROTO_HELLO_FRESH (a backend process starting afresh): then each of its
 * slabs that no volume record points at is freed, so memory is never
 * stranded, and the ones a volume still uses are kept.
 *
 * Volume claims and records (the epoch fence, the page maps) are memd_meta.h's.
 */
#ifndef MEMX_MEMD_H
#define MEMX_MEMD_H

#include <stdbool.h>
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

/* Stops the server's event loop: at once (now, a second signal, or static
 * mode), or in etcd mode after a drain (memd_etcd.h): the server is marked
 * draining, backends move their slabs away, then its key is deleted. */
void memd_shutdown(struct memd *m, bool now);

struct memd_stats { uint64_t capacity, used; uint32_t slabs, sessions; };
void memd_get_stats(const struct memd *m, struct memd_stats *st);

#endif
