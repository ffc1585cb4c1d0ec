/* volume.h — the I/O API of a volume, for the blkif dataplane (vbd.c).
 *
 * A volume is a cluster object named by the toolstack's target string
 * "memx:<volume>:<size>" (target.h); the table that finds, attaches and loads
 * volumes is volumes.h.  This side knows nothing about Xen (the vbd layer
 * calls it with validated, in-range requests) and nothing about the network
 * (pages are stored through pool.h).
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

#define VOLUME_SECTOR_SIZE 512u
#define VOLUME_PAGE_SIZE   4096u
#define VOLUME_NAME_MAX    64

struct volume;

typedef void (*volume_cb)(void *arg, int status);   /* 0 or -errno */

const char *volume_name(const struct volume *v);
uint64_t    volume_size(const struct volume *v);        /* bytes */

/* I/O.  Ranges are in 512-byte sectors and already validated by the caller;
 * buf must stay valid until cb runs.  Callbacks never run inside the call.
 * A request that cannot get memory completes with -ENOMEM. */
void volume_read(struct volume *v, uint64_t sector, uint32_t nsect, void *buf, volume_cb cb, void *arg);
void volume_write(struct volume *v, uint64_t sector, uint32_t nsect, const void *buf, volume_cb cb, void *arg);
/* Frees the whole pages inside the range; partial pages at the edges are zeroed. */
void volume_discard(struct volume *v, uint64_t sector, uint64_t nsect, volume_cb cb, void *arg);
/* Completes once every write that completed or was issued before it is durable in the pool. */
void volume_flush(struct volume *v, volume_cb cb, void *arg);

#endif
