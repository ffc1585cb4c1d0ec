/* ctl_int.h — what the control socket's parts share: ctl.c (the commands),
 * ctl_socket.c (listening, connections), ctl_stats.c (the stats reply, the
 * largest) and ctl_admin.c (health, log level).  Not an API: only they
 * include it. */
#ifndef MEMX_CTL_INT_H
#define MEMX_CTL_INT_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "blkback.h"
#include "ctl.h"
#include "volumes.h"

#include <stdbool.h>
#include <sys/un.h>

/* Replies a client has not read yet; past this it is dropped. */
#define CTL_OUT_MAX (4u << 20)

struct client {
    struct ctl *ctl;
    int fd;
    bool ro;                /* came in on the read-only socket: commands that change nothing only */
    char in[CTL_LINE_MAX];
    size_t inlen;
    bool skipping;          /* inside an over-long line: drop bytes until its newline */
    char *out;
    size_t outlen, outoff, outcap;
    struct client *next;
};

/* A listening socket: the full one (0600) or the read-only one (0666). */
struct listener {
    struct ctl *c;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int fd;
    bool ro;
};

struct ctl {
    struct evloop *el;
    struct ctl_ctx ctx;
    struct listener main, ro;   /* ro.fd < 0: no read-only socket */
    uint64_t start_ms;
    struct client *clients;
    /* upgrade: the client whose request is being handled (NULL: a direct
     * ctl_handle), the one waiting for its later answer, and an answer given
     * at once (inside ctx.upgrade). */
    struct client *cur, *held;
    bool in_upgrade;
    json_object *now_reply;
    bool deferred;          /* the request being handled is answered later (no reply now) */
    struct ctl_wait *waits; /* answers owed by the catalog (volume-list --all, remote delete) */
};

/* An answer owed to a client (NULL once it left, or for a direct ctl_handle). */
struct ctl_wait {
    struct ctl *c;
    struct client *cl;
    bool inside;            /* still inside the call that started it: the answer is the reply now */
    json_object *now;
    struct ctl_wait *next;
};

/* ctl_socket.c: queues s (malloc'd, taken) as a reply line to cl; -1 when
 * the client was dropped (it does not read its replies, or no memory). */
int ctl_client_reply(struct client *cl, char *s);

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
