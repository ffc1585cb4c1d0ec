/* ctl_int.h — what the control socket's two halves share: ctl.c (the
 * socket, the commands) and ctl_stats.c (the stats reply, the largest).
 * Not an API: only those two include it. */
#ifndef MEMX_CTL_INT_H
#define MEMX_CTL_INT_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "blkback.h"
#include "ctl.h"
#include "volumes.h"

static inline void add_str(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, json_object_new_string(v ? v : ""));
}

static inline void add_u64(json_object *o, const char *k, uint64_t v)
{
    json_object_object_add(o, k, json_object_new_uint64(v));
}

static inline void add_us(json_object *o, const char *k, uint64_t ns)
{
    char buf[32];
    double us = (double)ns / 1000.0;
    snprintf(buf, sizeof(buf), "%.1f", us);
    json_object_object_add(o, k, json_object_new_double_s(us, buf));
}

static inline void add_pages(json_object *o, const struct volume_stats *st)
{
    add_u64(o, "logical_pages", st->logical_pages);
    add_u64(o, "stored_pages", st->stored_pages);
    add_u64(o, "zero_pages", st->zero_pages);
    add_u64(o, "dup_pages", st->dup_pages);
}

static inline int ctl_device_count(const struct ctl_ctx *ctx)
{
    return ctx->bb ? blkback_list(ctx->bb, NULL, 0) : 0;
}

/* The stats command's reply: per-volume and total pages, requests and
 * latencies, de-duplication, the backend's stages, the transport's traffic. */
json_object *ctl_stats_reply(const struct ctl_ctx *ctx);

/* pool_full is reported while page writes failed for lack of room this recently. */
#define POOL_FULL_RECENT_MS 60000

/* ctl_admin.c: {"status","code" (0 ok, 1 degraded, 2 failed),"conditions":[{name,severity,detail}]}. */
json_object *ctl_health_reply(const struct ctl_ctx *ctx);
/* {"cmd":"log-level","level":"debug"} -> {"level","was"}. */
json_object *ctl_log_level_reply(json_object *req);

#endif
