/* ctl.c — the control socket; see ctl.h. */
#include "ctl.h"
#include "ctl_int.h"

#include "blkback.h"
#include "config.h"
#include "evloop.h"
#include "log.h"
#include "pool.h"
#include "volumes.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- replies ---------------------------------------------------------- */

/* Replaces, in place, every byte of s that does not begin or continue a whole UTF-8 character
 * with '?': a reply is JSON text, which is UTF-8 (RFC 8259), yet an error echoes request bytes
 * json-c accepted without checking, and cuts them at a byte count. */
static void utf8_clean(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p;) {
        int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2 : (*p & 0xf0) == 0xe0 ? 3
              : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4 : 0;
        int ok = n > 0;
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        /* No overlong 3/4-byte forms, no surrogates, nothing past U+10FFFF. */
        if (ok && n == 3)
            ok = !(p[0] == 0xe0 && p[1] < 0xa0) && !(p[0] == 0xed && p[1] >= 0xa0);
        if (ok && n == 4)
            ok = !(p[0] == 0xf0 && p[1] < 0x90) && !(p[0] == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static json_object *error_reply(const char *fmt, const char *arg)
{
    char msg[448];
    snprintf(msg, sizeof(msg), fmt, arg);
    utf8_clean(msg);
    json_object *o = json_object_new_object();
    add_str(o, "error", msg);
    return o;
}

static int device_count(struct ctl *c) { return ctl_device_count(&c->ctx); }

static json_object *cmd_status(struct ctl *c)
{
    json_object *o = json_object_new_object();
    add_str(o, "version", PACKAGE_VERSION);
    add_str(o, "platform", c->ctx.platform);
    add_str(o, "device_type", c->ctx.device_type);
    add_str(o, "provider", c->ctx.provider);
    add_u64(o, "uptime_s", (evloop_now_ms() - c->start_ms) / 1000);
    json_object_object_add(o, "devices", json_object_new_int(device_count(c)));
    size_t nv = 0;
    while (volumes_at(c->ctx.vols, nv))
        nv++;
    add_u64(o, "volumes", nv);
    struct pool_stats ps;
    pool_get_stats(c->ctx.pool, &ps);
    json_object_object_add(o, "servers_live", json_object_new_int(pool_live_servers(c->ctx.pool)));
    json_object_object_add(o, "servers_total", json_object_new_int(ps.servers));
    if (c->ctx.upgrade_status)
        c->ctx.upgrade_status(c->ctx.upgrade_arg, o);
    if (c->ctx.etcd_status)
        c->ctx.etcd_status(c->ctx.etcd_arg, o);
    else
        add_str(o, "etcd", "off (static [cluster] servers list: one host, no cross-host fencing)");
    return o;
}

static json_object *cmd_volumes(struct ctl *c)
{
    json_object *arr = json_object_new_array();
    struct volume *v;
    for (size_t i = 0; (v = volumes_at(c->ctx.vols, i)); i++) {
        struct volume_stats st;
        volume_get_stats(v, &st);
        json_object *o = json_object_new_object();
        add_str(o, "name", volume_name(v));
        add_u64(o, "size", volume_size(v));
        add_str(o, "owner", volume_owner(v));
        add_str(o, "state", volume_state_name(v));
        add_u64(o, "epoch", volume_epoch(v));
        json_object_object_add(o, "dedup", json_object_new_boolean(st.dedup));
        add_pages(o, &st);
        json_object_array_add(arr, o);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "volumes", arr);
    return r;
}

static json_object *cmd_devices(struct ctl *c)
{
    json_object *arr = json_object_new_array();
    int n = device_count(c);
    struct blkback_dev_info *d = n > 0 ? calloc((size_t)n, sizeof(*d)) : NULL;
    if (d) {
        n = blkback_list(c->ctx.bb, d, n);
        for (int i = 0; i < n; i++) {
            json_object *o = json_object_new_object();
            json_object_object_add(o, "domid", json_object_new_int(d[i].domid));
            add_u64(o, "devid", d[i].devid);
            add_str(o, "state", d[i].state);
            add_str(o, "volume", d[i].volume);
            add_str(o, "protocol", d[i].protocol);
            json_object_object_add(o, "queues", json_object_new_int(d[i].nr_queues));
            json_object_object_add(o, "ring_pages", json_object_new_int(d[i].ring_pages));
            json_object_object_add(o, "indirect", json_object_new_boolean(d[i].indirect));
            json_object_object_add(o, "flush", json_object_new_boolean(d[i].flush));
            json_object_object_add(o, "discard", json_object_new_boolean(d[i].discard));
            add_u64(o, "requests", d[i].requests);
            add_u64(o, "errors", d[i].errors);
            add_u64(o, "bad_requests", d[i].bad_requests);
            json_object_array_add(arr, o);
        }
        free(d);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "devices", arr);
    return r;
}

static json_object *cmd_pool(struct ctl *c)
{
    /* Every server the pool knows (membership changes at run time), gone
     * ones included: they show as "gone". */
    int n = pool_get_servers(c->ctx.pool, NULL, 0);
    struct pool_server_info *s = n > 0 ? calloc((size_t)n, sizeof(*s)) : NULL;
    if (n > 0 && !s)
        return error_reply("%s", "out of memory");
    if (n > 0)
        pool_get_servers(c->ctx.pool, s, n);
    json_object *arr = json_object_new_array();
    for (int i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        add_str(o, "addr", s[i].addr);
        add_str(o, "provider", s[i].provider);
        add_str(o, "state", s[i].state);
        add_u64(o, "capacity", s[i].capacity);
        add_u64(o, "used", s[i].used);
        add_u64(o, "replicas", s[i].replicas);
        json_object_array_add(arr, o);
    }
    free(s);
    struct pool_stats ps;
    pool_get_stats(c->ctx.pool, &ps);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "servers", arr);
    add_u64(r, "pages_stored", ps.pages_stored);
    add_u64(r, "slabs", ps.slabs);
    add_u64(r, "writes", ps.writes);
    add_u64(r, "writes_few", ps.writes_few);
    add_u64(r, "reads", ps.reads);
    add_u64(r, "errors", ps.errors);
    add_str(r, "state", ps.lost_slabs ? "lost pages" : ps.degraded_slabs ? "degraded" : "ok");
    add_u64(r, "degraded_slabs", ps.degraded_slabs);
    add_u64(r, "lost_slabs", ps.lost_slabs);
    add_u64(r, "rereplicated_pages", ps.rereplicated_pages);
    add_u64(r, "nospace_writes", ps.nospace_writes);
    json_object_object_add(r, "rebuilding", json_object_new_boolean(ps.rebuilding));
    return r;
}

/* {"cmd":"pool-drain","server":"host:port"[,"undo":true]} */
static json_object *cmd_pool_drain(struct ctl *c, json_object *req)
{
    json_object *js, *ju;
    if (!json_object_object_get_ex(req, "server", &js) || !json_object_is_type(js, json_type_string))
        return error_reply("%s", "pool-drain needs \"server\": a memory server's host:port");
    bool undo = json_object_object_get_ex(req, "undo", &ju) && json_object_get_boolean(ju);
    char err[200];
    if (pool_drain(c->ctx.pool, json_object_get_string(js), !undo, err, sizeof(err)))
        return error_reply("%s", err);
    return cmd_pool(c);
}


static void wait_unlink(struct ctl_wait *w)
{
    for (struct ctl_wait **pp = &w->c->waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
}

static void wait_reply(void *arg, json_object *r)
{
    struct ctl_wait *w = arg;
    if (w->inside) {
        w->now = json_object_get(r);
        return;
    }
    wait_unlink(w);
    struct client *cl = w->cl;
    free(w);
    if (cl) {
        char *s = strdup(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
        if (s)
            utf8_clean(s);
        ctl_client_reply(cl, s);
    }
}

static struct ctl_wait *wait_new(struct ctl *c)
{
    struct ctl_wait *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    *w = (struct ctl_wait){ .c = c, .cl = c->cur, .inside = true, .next = c->waits };
    c->waits = w;
    return w;
}

/* The call that was given w returned: its answer now, or NULL (given later). */
static json_object *wait_started(struct ctl *c, struct ctl_wait *w)
{
    w->inside = false;
    json_object *r = w->now;
    if (r) {
        wait_unlink(w);
        free(w);
        return r;
    }
    c->deferred = true;
    return NULL;
}

/* A valid volume name (target.h's rule), so nothing else is echoed or sent to etcd. */
static bool volume_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n >= VOLUME_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* {"cmd":"volume-list"[,"all":true]}: this backend's volumes (orphan: no
 * device uses it), or with all every volume etcd knows (catalog.h). */
static json_object *cmd_volume_list(struct ctl *c, json_object *req)
{
    json_object *ja;
    bool all = json_object_object_get_ex(req, "all", &ja) && json_object_get_boolean(ja);
    if (all && !c->ctx.volume_list_all)
        return error_reply("%s", "volume list --all needs etcd ([cluster] etcd): in static servers mode this "
                                 "backend knows only the volumes it has loaded (memxctl volume list)");
    if (all) {
        struct ctl_wait *w = wait_new(c);
        if (!w)
            return error_reply("%s", "out of memory");
        c->ctx.volume_list_all(c->ctx.catalog_arg, wait_reply, w);
        return wait_started(c, w);
    }
    json_object *arr = json_object_new_array();
    struct volume *v;
    for (size_t i = 0; (v = volumes_at(c->ctx.vols, i)); i++) {
        json_object *o = json_object_new_object();
        add_str(o, "name", volume_name(v));
        add_u64(o, "size", volume_size(v));
        add_u64(o, "epoch", volume_epoch(v));
        add_str(o, "owner", "");
        json_object_object_add(o, "owner_here", json_object_new_boolean(volume_epoch(v) != 0));
        json_object_object_add(o, "loaded", json_object_new_boolean(1));
        add_str(o, "device", volume_owner(v));
        add_str(o, "state", volume_state_name(v));
        json_object_object_add(o, "orphan", json_object_new_boolean(volume_owner(v)[0] == '\0'));
        json_object_array_add(arr, o);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "volumes", arr);
    return r;
}

static json_object *cmd_volume_delete(struct ctl *c, json_object *req)
{
    json_object *jn;
    if (!json_object_object_get_ex(req, "name", &jn) || !json_object_is_type(jn, json_type_string))
        return error_reply("%s", "volume-delete needs \"name\": a volume name");
    const char *name = json_object_get_string(jn);
    struct volume *v = volumes_find(c->ctx.vols, name);
    if (!v && volume_name_ok(name) && c->ctx.volume_delete_far) {
        /* Not loaded here: an orphan the cluster knows (catalog.h claims it first). */
        struct ctl_wait *w = wait_new(c);
        if (!w)
            return error_reply("%s", "out of memory");
        c->ctx.volume_delete_far(c->ctx.catalog_arg, name, wait_reply, w);
        return wait_started(c, w);
    }
    if (!v && !c->ctx.volume_delete_far)
        return error_reply("no volume named '%.64s' loaded here (without etcd this backend can delete only the "
                           "volumes it has loaded)", name);
    char owner[64] = "";
    struct volume_stats st = { 0 };
    if (v) {
        snprintf(owner, sizeof(owner), "%s", volume_owner(v));
        volume_get_stats(v, &st);
    }
    switch (volume_delete(c->ctx.vols, name)) {
    case 0:
        mx_info("volume %s: deleted (control socket)", name);
        break;
    case -ENOENT:
        return error_reply("no volume named '%.64s'", name);
    case -EBUSY:
        return error_reply("volume is attached (by %s): detach the device first", owner);
    default:
        return error_reply("cannot delete volume '%.64s'", name);
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    add_str(r, "deleted", name);
    add_u64(r, "pages", st.stored_pages + st.dup_pages);
    return r;
}

static void upgrade_reply(void *arg, json_object *r)
{
    struct ctl *c = arg;
    if (c->in_upgrade) {
        c->now_reply = json_object_get(r);
        return;
    }
    struct client *cl = c->held;
    c->held = NULL;
    if (cl)
        ctl_client_reply(cl, strdup(json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN)));
}

/* {"cmd":"upgrade"[,"binary":"/abs/path"]}: NULL when answered later. */
static json_object *cmd_upgrade(struct ctl *c, json_object *req)
{
    json_object *jb;
    const char *binary = NULL;
    if (json_object_object_get_ex(req, "binary", &jb)) {
        if (!json_object_is_type(jb, json_type_string))
            return error_reply("%s", "upgrade's \"binary\" must be a string: an absolute path");
        binary = json_object_get_string(jb);
    }
    if (!c->ctx.upgrade)
        return error_reply("%s", "this memx-backd cannot hand over to another binary");
    if (c->held)
        return error_reply("%s", "a hand-over is already under way");
    c->in_upgrade = true;
    c->now_reply = NULL;
    c->ctx.upgrade(c->ctx.upgrade_arg, binary, upgrade_reply, c);
    c->in_upgrade = false;
    if (c->now_reply)
        return c->now_reply;
    c->held = c->cur;
    return NULL;
}

/* The commands a client of the read-only socket may send: they report and change nothing. */
static bool read_only_cmd(const char *cmd)
{
    static const char *const ok[] = { "status", "volumes", "stats", "devices", "pool", "volume-list", "health" };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(cmd, ok[i]) == 0)
            return true;
    return false;
}

char *ctl_handle(struct ctl *c, const char *line, size_t len)
{
    json_object *reply;
    c->deferred = false;
    enum json_tokener_error jerr = json_tokener_success;
    json_tokener *tok = json_tokener_new();
    json_object *req = tok ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
    if (tok) {
        jerr = json_tokener_get_error(tok);
        /* Trailing bytes after a complete object are garbage, not a second request. */
        if (req && jerr == json_tokener_success && (size_t)json_tokener_get_parse_end(tok) != len) {
            size_t end = json_tokener_get_parse_end(tok);
            while (end < len && (line[end] == ' ' || line[end] == '\t' || line[end] == '\r'))
                end++;
            if (end != len) {
                json_object_put(req);
                req = NULL;
            }
        }
        json_tokener_free(tok);
    }
    json_object *jc;
    if (!req) {
        reply = error_reply("malformed request: %s (send one JSON object per line, e.g. {\"cmd\":\"status\"})",
                            jerr == json_tokener_success || jerr == json_tokener_continue
                                ? "not a complete JSON object" : json_tokener_error_desc(jerr));
    } else if (!json_object_is_type(req, json_type_object) || !json_object_object_get_ex(req, "cmd", &jc) ||
               !json_object_is_type(jc, json_type_string)) {
        reply = error_reply("%s", "malformed request: needs \"cmd\": a string");
    } else if (c->cur && c->cur->ro && !read_only_cmd(json_object_get_string(jc))) {
        char why[400];
        snprintf(why, sizeof(why), "'%.32s' changes the backend: refused on the read-only socket %s (use %s, as root)",
                 json_object_get_string(jc), c->ro.path, c->main.path);
        reply = error_reply("%s", why);
    } else {
        const char *cmd = json_object_get_string(jc);
        if (strcmp(cmd, "status") == 0)
            reply = cmd_status(c);
        else if (strcmp(cmd, "volumes") == 0)
            reply = cmd_volumes(c);
        else if (strcmp(cmd, "stats") == 0)
            reply = ctl_stats_reply(&c->ctx);
        else if (strcmp(cmd, "devices") == 0)
            reply = cmd_devices(c);
        else if (strcmp(cmd, "pool") == 0)
            reply = cmd_pool(c);
        else if (strcmp(cmd, "pool-drain") == 0)
            reply = cmd_pool_drain(c, req);
        else if (strcmp(cmd, "volume-delete") == 0)
            reply = cmd_volume_delete(c, req);
        else if (strcmp(cmd, "volume-list") == 0)
            reply = cmd_volume_list(c, req);
        else if (strcmp(cmd, "upgrade") == 0)
            reply = cmd_upgrade(c, req);
        else if (strcmp(cmd, "health") == 0)
            reply = ctl_health_reply(&c->ctx);
        else if (strcmp(cmd, "log-level") == 0)
            reply = ctl_log_level_reply(req);
        else if (strcmp(cmd, "reload") == 0)
            reply = c->ctx.reload ? c->ctx.reload(c->ctx.reload_arg) : error_reply("%s", "reload is not offered here");
        else
            reply = error_reply("unknown command '%.64s' (status, volumes, stats, devices, pool, pool-drain, "
                                "volume-list, volume-delete, upgrade, health, log-level, reload)", cmd);
    }
    if (!reply) {
        json_object_put(req);
        return NULL;
    }
    char *s = strdup(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
    json_object_put(reply);
    json_object_put(req);
    return s;
}
