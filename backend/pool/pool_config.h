/* pool_config.h — struct pool_opts from the daemon's configuration, for
 * whoever starts a pool from memx.conf (memx-backd, memx-dedupbench, the
 * pool's tests).  Kept out of pool.h so the pool and its users below the
 * daemon never see struct memx_config.  The options point into cfg: keep it
 * alive until pool_new returns.
 */
#ifndef MEMX_POOL_CONFIG_H
#define MEMX_POOL_CONFIG_H

#include "config.h"
#include "pool.h"

static inline void pool_opts_from_config(struct pool_opts *o, const struct memx_config *cfg)
{
    pool_opts_init(o);
    _Static_assert(sizeof(cfg->servers[0]) == POOL_ADDR_MAX, "[cluster] servers entries are pool addresses");
    o->servers = cfg->servers;
    o->nservers = cfg->nservers;
    o->replicas = cfg->replicas;
    o->slab_size = cfg->slab_size;
    o->provider = cfg->provider;
    o->node_id = cfg->node_id;
    o->gather_reads = cfg->gather_reads;
}

#endif
