/* slabdir.h — the slab directory in etcd (slabdir.c): where each of this
 * backend's slabs has its replicas, as the pool's directory ops
 * (pool_dir_ops in pool.h).  memx-backd makes one when [cluster] etcd is set.
 */
#ifndef MEMX_SLABDIR_H
#define MEMX_SLABDIR_H

#include <stdint.h>

#include "pool.h"

struct coord;
struct evloop;
struct slabdir;

struct slabdir_stats {
    uint64_t writes, failures;  /* puts and deletes sent; of those, failed (retried) */
    uint64_t reads;             /* reads of the whole directory (one per attach burst) */
    uint64_t lookups, hits;     /* slabs asked for by adoption; of those, known */
};

/* node: this backend's identity, in the keys (slabs/<node>/<uid>). */
struct slabdir *slabdir_new(struct evloop *el, struct coord *c, const char *node);
const struct pool_dir_ops *slabdir_ops(struct slabdir *d);
void slabdir_get_stats(const struct slabdir *d, struct slabdir_stats *st);
/* After coord_close (no callback may come) and after pool_set_directory(p, NULL). */
void slabdir_free(struct slabdir *d);

#endif
