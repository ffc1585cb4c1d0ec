/* membership.c — etcd's servers/ keys into the pool (membership.h).
 *
 * The watch delivers a snapshot (RESET, PUTs, SYNC) and then changes.  A key
 * not repeated in a new snapshot was deleted while the watch was broken: at
 * the SYNC it is removed like a DEL.  A value that does not parse is reported
 * once per revision and never acted on (a foreign or corrupt key must not add,
 * drain or remove a server).
 */
#include "membership.h"

#include "ckeys.h"
#include "coord.h"
#include "log.h"
#include "pool.h"
#include "xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


struct member {
    char addr[CK_ADDR_MAX];
    bool draining, seen, skipped;
};

struct membership {
    struct coord *c;
    struct pool *pool;
    char provider[64];
    struct coord_watch *w;
    struct member *m;
    size_t n, cap;
    unsigned bad;               /* keys that did not parse */
    int64_t bad_rev;            /* the last one reported */
    bool syncing;
};

static struct member *find(struct membership *ms, const char *addr)
{
    for (size_t i = 0; i < ms->n; i++)
        if (!strcmp(ms->m[i].addr, addr))
            return &ms->m[i];
    return NULL;
}

static void drop(struct membership *ms, struct member *x, const char *why)
{
    if (!x->skipped) {
        mx_info("backd: memory server %s left the membership (%s): removed", x->addr, why);
        pool_remove_server(ms->pool, x->addr);
    }
    *x = ms->m[--ms->n];
}

static void on_put(struct membership *ms, const struct coord_kv *kv, int64_t rev)
{
    struct ck_server s;
    char why[200], err[200];
    if (ck_server_decode(kv->key, kv->val, kv->vlen, &s, why, sizeof(why)) < 0) {
        ms->bad++;
        if (rev != ms->bad_rev)
            mx_warn("backd: etcd key %s is not a MemX server registration (%s): ignored", kv->key, why);
        ms->bad_rev = rev;
        return;
    }
    struct member *x = find(ms, s.addr);
    if (!x) {
        if (ms->n == ms->cap) {
            size_t cap = ms->cap ? ms->cap * 2 : 16;
            struct member *nm = xreallocarray(ms->m, cap, sizeof(*nm));
            if (!nm)
                return;     /* seen again at the next snapshot */
            ms->m = nm;
            ms->cap = cap;
        }
        x = &ms->m[ms->n++];
        memset(x, 0, sizeof(*x));
        snprintf(x->addr, sizeof(x->addr), "%s", s.addr);
        if (strcmp(s.provider, ms->provider)) {
            x->skipped = true;
            mx_warn("backd: memory server %s registered with provider %s, we use %s: skipped", s.addr,
                    s.provider, ms->provider);
        } else if (pool_add_server(ms->pool, s.addr, err, sizeof(err)) < 0) {
            mx_warn("backd: memory server %s: %s", s.addr, err);
            ms->n--;
            return;
        } else {
            mx_info("backd: memory server %s joined (capacity %llu MiB%s)", s.addr,
                    (unsigned long long)(s.capacity >> 20), s.draining ? ", draining" : "");
        }
    }
    x->seen = true;
    if (!x->skipped && s.draining != x->draining) {
        if (pool_drain(ms->pool, s.addr, s.draining, err, sizeof(err)) < 0)
            mx_warn("backd: memory server %s: %s", s.addr, err);
        else if (s.draining)
            mx_info("backd: memory server %s is draining: its replicas move elsewhere", s.addr);
    }
    x->draining = s.draining;
}

static void on_event(void *arg, enum coord_ev ev, const struct coord_kv *kv, int64_t rev)
{
    struct membership *ms = arg;
    switch (ev) {
    case COORD_EV_RESET:
        ms->syncing = true;
        for (size_t i = 0; i < ms->n; i++)
            ms->m[i].seen = false;
        break;
    case COORD_EV_PUT:
        on_put(ms, kv, rev);
        break;
    case COORD_EV_DEL: {
        const char *addr = kv->key + strlen(CK_SERVERS);
        struct member *x = strncmp(kv->key, CK_SERVERS, strlen(CK_SERVERS)) ? NULL : find(ms, addr);
        if (x)
            drop(ms, x, "deregistered or its lease expired");
        break;
    }
    case COORD_EV_SYNC:
        if (ms->syncing) {
            for (size_t i = 0; i < ms->n;) {
                if (!ms->m[i].seen)
                    drop(ms, &ms->m[i], "gone while the watch was broken");
                else
                    i++;
            }
        }
        ms->syncing = false;
        break;
    }
}

struct membership *membership_new(struct coord *c, struct pool *p, const char *provider)
{
    struct membership *ms = xcalloc(1, sizeof(*ms));
    if (!ms)
        return NULL;
    ms->c = c;
    ms->pool = p;
    snprintf(ms->provider, sizeof(ms->provider), "%s", provider);
    ms->w = coord_watch(c, CK_SERVERS, on_event, ms);
    if (!ms->w) {
        free(ms);
        return NULL;
    }
    return ms;
}

void membership_free(struct membership *ms)
{
    if (!ms)
        return;
    coord_unwatch(ms->w);
    free(ms->m);
    free(ms);
}

const char *membership_describe(const struct membership *ms, char *buf, size_t len)
{
    size_t draining = 0, skipped = 0;
    for (size_t i = 0; i < ms->n; i++) {
        draining += ms->m[i].draining;
        skipped += ms->m[i].skipped;
    }
    snprintf(buf, len, "%zu server(s) registered (%zu draining, %zu skipped: other provider), %u bad key(s)",
             ms->n, draining, skipped, ms->bad);
    return buf;
}
