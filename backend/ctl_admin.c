/* ctl_admin.c — the control socket's operator commands (ctl_int.h):
 * health (named conditions with a Nagios-style code: 0 ok, 1 degraded,
 * 2 failed, for a monitoring check; capacity: near_full, pool_full,
 * quota_near_full, quota_full), log-level (at run time) and reload
 * (re-read memx.conf; memx-backd says what it applied and what needs a
 * restart). */
#include "ctl_int.h"
#include "evloop.h"
#include "log.h"
#include "pool.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void cond(json_object *arr, int *code, int sev, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void cond(json_object *arr, int *code, int sev, const char *name, const char *fmt, ...)
{
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    json_object *o = json_object_new_object();
    add_str(o, "name", name);
    add_str(o, "severity", sev == 2 ? "failed" : "degraded");
    add_str(o, "detail", detail);
    json_object_array_add(arr, o);
    if (sev > *code)
        *code = sev;
}

static void servers_health(const struct ctl_ctx *ctx, json_object *arr, int *code)
{
    int n = pool_get_servers(ctx->pool, NULL, 0);
    struct pool_server_info *s = n > 0 ? calloc((size_t)n, sizeof(*s)) : NULL;
    n = s ? pool_get_servers(ctx->pool, s, n) : 0;
    int up = 0, members = 0, connecting = 0;
    uint64_t cap = 0, used = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(s[i].state, "gone"))
            continue;
        members++;
        if (!strcmp(s[i].state, "up") || !strcmp(s[i].state, "draining")) {
            up++;
            cap += s[i].capacity;
            used += s[i].used;
        } else if (!strcmp(s[i].state, "connecting")) {
            connecting++;
        } else if (strcmp(s[i].state, "drained")) {
            cond(arr, code, 1, "server_down", "memd %s is %s", s[i].addr, s[i].state);
        }
    }
    free(s);
    if (members && !up && connecting)
        cond(arr, code, 1, "no_server", "none of the %d memory server(s) is up yet (%d connecting)", members,
             connecting);
    else if (members && !up)
        cond(arr, code, 2, "no_server", "none of the %d memory server(s) is up", members);
    else if (!members)
        cond(arr, code, 2, "no_server", "no memory server is known (check [cluster] servers or etcd)");
    int full = ctx->nearfull ? *ctx->nearfull : 85;
    if (cap && used * 100 >= cap * (uint64_t)full)
        cond(arr, code, 1, "near_full", "the pool is %llu%% full (nearfull %d%%): writes needing room will fail "
             "once it is full; add memory servers or delete volumes",
             (unsigned long long)(used * 100 / cap), full);
    struct pool_stats ps;
    pool_get_stats(ctx->pool, &ps);
    /* Writes are being refused for lack of room now (not: once, long ago). */
    uint64_t now = evloop_now_ms();
    if (ps.nospace_writes && ps.nospace_last_ms && now - ps.nospace_last_ms < POOL_FULL_RECENT_MS)
        cond(arr, code, 2, "pool_full", "no memory server has room for another slab: %llu page write(s) failed "
             "with ENOSPC, the last %llu s ago; guests got I/O errors, earlier data is intact; add memory "
             "servers or delete volumes",
             (unsigned long long)ps.nospace_writes, (unsigned long long)((now - ps.nospace_last_ms) / 1000));
    if (ps.lost_slabs)
        cond(arr, code, 2, "pages_lost", "%llu slab(s) have no good copy: their pages read as errors",
             (unsigned long long)ps.lost_slabs);
    if (ps.degraded_slabs)
        cond(arr, code, 1, "degraded", "%llu slab(s) have fewer copies than replicas%s",
             (unsigned long long)ps.degraded_slabs, ps.rebuilding ? " (re-replicating)" : "");
}

/* A volume at or near its quota (target option quota=): its guest's writes of new pages fail. */
static void quota_health(const struct ctl_ctx *ctx, struct volume *v, json_object *arr, int *code)
{
    struct volume_stats st;
    volume_get_stats(v, &st);
    if (!st.quota_pages)
        return;
    uint64_t used = st.stored_pages + st.dup_pages;
    int full = ctx->nearfull ? *ctx->nearfull : 85;
    if (used >= st.quota_pages)
        cond(arr, code, 1, "quota_full", "volume %s holds %llu of its quota of %llu pages: writes of new pages "
             "fail with ENOSPC (%llu refused so far); overwrites and reads go on",
             volume_name(v), (unsigned long long)used, (unsigned long long)st.quota_pages,
             (unsigned long long)st.quota_refused);
    else if (used * 100 >= st.quota_pages * (uint64_t)full)
        cond(arr, code, 1, "quota_near_full", "volume %s holds %llu of its quota of %llu pages (%llu%%, nearfull "
             "%d%%)", volume_name(v), (unsigned long long)used, (unsigned long long)st.quota_pages,
             (unsigned long long)(used * 100 / st.quota_pages), full);
}

json_object *ctl_health_reply(const struct ctl_ctx *ctx)
{
    json_object *arr = json_object_new_array();
    int code = 0;
    if (ctx->pool)
        servers_health(ctx, arr, &code);
    struct volume *v;
    for (size_t i = 0; (v = volumes_at(ctx->vols, i)); i++) {
        const char *why = NULL;
        int st = volume_state(v, &why);
        if (st < 0 && why && strstr(why, "fenced"))
            cond(arr, &code, 2, "fenced_volume", "volume %s: %s", volume_name(v), why);
        else if (st < 0)
            cond(arr, &code, 2, "volume_failed", "volume %s: %s", volume_name(v), why ? why : "failed");
        quota_health(ctx, v, arr, &code);
    }
    int n = ctl_device_count(ctx);
    struct blkback_dev_info *d = n > 0 ? calloc((size_t)n, sizeof(*d)) : NULL;
    n = d ? blkback_list(ctx->bb, d, n) : 0;
    for (int i = 0; i < n; i++)
        if (d[i].bad_requests)
            cond(arr, &code, 1, "bad_requests", "domain %u device %u (volume %s) sent %llu malformed request(s)",
                 d[i].domid, d[i].devid, d[i].volume[0] ? d[i].volume : "-", (unsigned long long)d[i].bad_requests);
    free(d);
    json_object *r = json_object_new_object();
    add_str(r, "status", code == 0 ? "ok" : code == 1 ? "degraded" : "failed");
    json_object_object_add(r, "code", json_object_new_int(code));
    json_object_object_add(r, "conditions", arr);
    return r;
}

json_object *ctl_log_level_reply(json_object *req)
{
    json_object *jl;
    int lvl = -1;
    if (json_object_object_get_ex(req, "level", &jl) && json_object_is_type(jl, json_type_string))
        lvl = mx_log_parse_level(json_object_get_string(jl));
    json_object *r = json_object_new_object();
    if (lvl < 0) {
        add_str(r, "error", "log-level needs \"level\": error, warn, info or debug");
        return r;
    }
    static const char *const names[] = { "error", "warn", "info", "debug" };
    enum mx_log_level was = mx_log_level();
    mx_log_set_level((enum mx_log_level)lvl);
    mx_info("backd: log level %s (was %s), set by memxctl", names[lvl], names[was]);
    add_str(r, "level", names[lvl]);
    add_str(r, "was", names[was]);
    return r;
}
