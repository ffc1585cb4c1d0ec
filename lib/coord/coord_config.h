/* coord_config.h — struct coord_opts from the daemons' configuration
 * ([cluster] etcd, etcd_prefix, etcd_cacert/cert/key, etcd_lease_ttl), for
 * memx-memd and memx-backd alike.  Kept out of coord.h so the client never
 * sees struct memx_config.  The options point into cfg: keep it alive until
 * coord_open returns.
 */
#ifndef MEMX_COORD_CONFIG_H
#define MEMX_COORD_CONFIG_H

#include "config.h"
#include "coord.h"

static inline void coord_opts_from_config(struct coord_opts *o, const struct memx_config *cfg, const char *who)
{
    coord_opts_init(o);
    o->endpoints = cfg->etcd;
    o->prefix = cfg->etcd_prefix;
    o->cacert = cfg->etcd_cacert;
    o->cert = cfg->etcd_cert;
    o->key = cfg->etcd_key;
    o->lease_ttl_s = cfg->etcd_lease_ttl;
    o->who = who;
}

#endif
