/* memd_etcd.c — the memory server's side of etcd (memd_etcd.h). */
#include "memd_etcd.h"
#include "memd_owners.h"
#include "ckeys.h"
#include "coord.h"
#include "coord_config.h"
#include "evloop.h"
#include "log.h"
#include "volstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct memd_etcd {
    struct evloop *el;
    struct coord *c;
    struct coord_watch *w;
    struct volstore *vs;
    char name[160];
    char key[CK_ADDR_MAX + 16];
    struct ck_server self;
    bool registering, reput;            /* a put under way; another wanted after it */
    bool lost;                          /* the lease was lost: the key must be put again */
    bool proven;                        /* as last logged */
    long long tick;                     /* freshness and drain timer (-1: none) */
    /* The drain. */
    bool draining, deleting;
    uint64_t drain_end;
    bool (*busy)(void *arg);
    void (*done)(void *arg);
    void *arg;
};

static void put_self(struct memd_etcd *e);

static void on_put(void *arg, int status, int64_t rev)
{
    struct memd_etcd *e = arg;
    e->registering = false;
    if (status)
        mx_warn("%s: cannot register in etcd (%s): %s; trying again", e->name, e->key, strerror(-status));
    else
        mx_info("%s: registered in etcd as %s (%s, revision %lld)", e->name, e->key,
                e->self.draining ? "draining" : "up", (long long)rev);
    if (status || e->reput) {
        e->reput = false;
        put_self(e);
    }
}

static void put_self(struct memd_etcd *e)
{
    char val[512];
    if (e->registering) {
        e->reput = true;
        return;
    }
    if (ck_server_encode(&e->self, val, sizeof(val)) < 0) {
        mx_err("%s: its etcd value does not fit", e->name);
        return;
    }
    if (coord_put(e->c, e->key, val, true, on_put, e) == 0)
        e->registering = true;
}

static void on_health(void *arg, enum coord_health h)
{
    struct memd_etcd *e = arg;
    char d[256];
    coord_describe(e->c, d, sizeof(d));
    if (h == COORD_UP)
        mx_info("%s: etcd %s", e->name, d);
    else
        mx_warn("%s: etcd %s: %s", e->name,
                h == COORD_DEGRADED ? "unanswered (keepalives fail)" : "lease lost (its key is gone)", d);
    if (h == COORD_LEASE_LOST)
        e->lost = true;
    else if (h == COORD_UP && e->lost && !e->deleting) {
        e->lost = false;
        put_self(e);        /* the new lease's key */
    }
}

static void on_owner(void *arg, enum coord_ev ev, const struct coord_kv *kv, int64_t rev)
{
    struct memd_etcd *e = arg;
    char why[256];
    if (memd_owners_event(e->vs, ev, kv, why, sizeof(why)))
        mx_warn("%s: etcd owner key ignored, not trusted: %s", e->name, why);
    else if (ev == COORD_EV_PUT)
        mx_debug("%s: etcd: %s (revision %lld)", e->name, kv->key, (long long)rev);
}

bool memd_etcd_proven(struct memd_etcd *e)
{
    uint64_t fresh = coord_watch_fresh_ms(e->w), now = evloop_now_ms();
    /* Invariant (fencing): a claimer waits COORD_CONFIRM_MS after its claim commits before it
     * uses the volume, and a write is taken here only while fresh (a time after which every
     * committed claim is in this view) is less than COORD_CONFIRM_MS old: so a write the new
     * claim does not fence lands before that wait is over, never after. */
    bool ok = fresh && now - fresh < COORD_CONFIRM_MS;
    volstore_etcd_proven(e->vs, ok);
    volstore_etcd_now(e->vs, now);
    if (ok != e->proven) {
        if (ok)
            mx_info("%s: etcd's owner view is current again: taking writes", e->name);
        else
            mx_warn("%s: cannot prove ownership now (etcd's owner view is %s): writes refused (EAGAIN) until it is",
                    e->name, fresh ? "stale" : "not loaded yet");
        e->proven = ok;
    }
    return ok;
}

static void on_del(void *arg, int status, int64_t rev)
{
    struct memd_etcd *e = arg;
    if (status)
        mx_warn("%s: cannot delete %s from etcd: %s (its lease goes at exit)", e->name, e->key,
                strerror(-status));
    else
        mx_info("%s: deregistered from etcd (%s)", e->name, e->key);
    e->done(e->arg);
}

static void deregister(struct memd_etcd *e)
{
    e->deleting = true;
    if (coord_del(e->c, e->key, false, on_del, e))
        e->done(e->arg);
}

static void on_revert(void *arg, uint64_t vid, uint64_t bogus, uint64_t epoch)
{
    struct memd_etcd *e = arg;
    mx_warn("%s: volume %016llx: epoch %llu was claimed here but etcd never showed it: back to etcd's "
            "epoch %llu", e->name, (unsigned long long)vid, (unsigned long long)bogus, (unsigned long long)epoch);
}

static int on_tick(struct evloop *el, long long id, void *arg)
{
    struct memd_etcd *e = arg;
    memd_etcd_proven(e);
    volstore_etcd_catch_up(e->vs, coord_watch_fresh_ms(e->w), on_revert, e);
    if (e->draining && !e->deleting) {
        if (!e->busy(e->arg)) {
            mx_info("%s: drained: no connected backend holds a slab here", e->name);
            deregister(e);
        } else if (evloop_now_ms() >= e->drain_end) {
            mx_warn("%s: drain gave up after %d s: backends still hold slabs here", e->name, MEMD_DRAIN_MS / 1000);
            deregister(e);
        }
    }
    return COORD_CHECK_MS;
}

void memd_etcd_drain(struct memd_etcd *e, bool (*busy)(void *arg), void (*done)(void *arg), void *arg)
{
    e->busy = busy;
    e->done = done;
    e->arg = arg;
    e->draining = true;
    e->drain_end = evloop_now_ms() + MEMD_DRAIN_MS;
    e->self.draining = true;
    mx_info("%s: draining: %s marked draining in etcd; waiting up to %d s for backends to move their slabs",
            e->name, e->key, MEMD_DRAIN_MS / 1000);
    put_self(e);
}

struct memd_etcd *memd_etcd_open(struct evloop *el, const struct memx_config *cfg, struct volstore *vs,
                                 const struct memd_etcd_self *self, char *err, size_t errlen)
{
    struct memd_etcd *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "%s: out of memory", self->name);
        return NULL;
    }
    e->el = el;
    e->vs = vs;
    e->tick = -1;
    snprintf(e->name, sizeof(e->name), "%s", self->name);
    snprintf(e->self.addr, sizeof(e->self.addr), "%s", self->addr);
    snprintf(e->self.provider, sizeof(e->self.provider), "%s", self->provider);
    e->self.capacity = self->capacity;
    e->self.incarnation = self->incarnation;
    if (ck_server_key(self->addr, e->key, sizeof(e->key)) < 0) {
        snprintf(err, errlen, "%s: [memserver] advertise = %s cannot name an etcd key", self->name, self->addr);
        free(e);
        return NULL;
    }
    struct coord_opts o;
    coord_opts_from_config(&o, cfg, e->name);
    char cerr[384];
    if (!(e->c = coord_open(el, &o, cerr, sizeof(cerr)))) {
        snprintf(err, errlen, "%s: %s", self->name, cerr);
        free(e);
        return NULL;
    }
    volstore_etcd_enable(vs);
    coord_on_health(e->c, on_health, e);
    e->w = coord_watch(e->c, CK_OWNERS, on_owner, e);
    e->tick = evloop_add_timer(el, COORD_CHECK_MS, on_tick, e);
    if (!e->w || e->tick < 0) {
        snprintf(err, errlen, "%s: out of memory", self->name);
        memd_etcd_close(e);
        return NULL;
    }
    put_self(e);
    char d[256];
    mx_info("%s: etcd %s", e->name, coord_describe(e->c, d, sizeof(d)));
    return e;
}

void memd_etcd_close(struct memd_etcd *e)
{
    if (!e)
        return;
    if (e->tick >= 0)
        evloop_del_timer(e->el, e->tick);
    if (e->w)
        coord_unwatch(e->w);
    coord_close(e->c);
    free(e);
}
