/* xenbus.c — XenStore plumbing and the blkif state machine (see xenbus.h,
 * blkback.h).  Modelled on Linux's xen-blkback/xenbus.c: features in one
 * transaction, connect/disconnect idempotent, and QEMU's xen-bus split of
 * plumbing from device policy (vbd.c). */
#include "xenbus.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkback.h"
#include "blkif_abi.h"
#include "evloop.h"
#include "log.h"
#include "vbd.h"
#include "volumes.h"
#include "xenplat.h"

#define PATH_MAX_XS 256
#define RETRY_ATTACH_MS 250
#define RETRY_ATTACH_MAX 120            /* 30 s: a migration's source lets go by then */

struct bdev {
    struct blkback *bb;
    struct bdev *next;
    uint16_t domid;
    uint32_t devid;
    char name[48];                      /* "vbd <domid>/<devid>" */
    char be[PATH_MAX_XS];               /* our backend directory */
    char fe[PATH_MAX_XS];               /* the frontend's directory */
    char token[64];                     /* frontend state watch token */
    bool fe_watched;
    int state;                          /* the backend state we last wrote; 0 before */
    bool failed;                        /* refused to connect: wait for the frontend to restart */

    struct vbd *vbd;
    struct volume *vol;
    char volname[VOLUME_NAME_MAX];
    enum blkif_abi abi;
    int nq, ring_pages;
    struct histo stage_ns[VBD_STAGES];  /* earlier connections' stage latencies */

    bool draining;
    int after_drain;                    /* state to write once drained */
    bool gone;                          /* backend node removed: free once drained */
    long long timer;                    /* deferred reconcile */
    int attach_retries;
};

struct blkback {
    struct evloop *el;
    struct xp *xp;
    struct volumes *vols;
    struct memx_config cfg;
    char base[96];                      /* /local/domain/<self>/backend/<type> */
    struct bdev *devs;
    bool started, evtchn_added, shutting_down;
    void (*done)(void *arg);
    void *done_arg;
    long long done_timer;
};

static void reconcile(struct bdev *d);
static void dev_free(struct bdev *d);
static void maybe_done(struct blkback *bb);

/* ---- small helpers ------------------------------------------------------ */

const char *xenbus_state_name(int s)
{
    static const char *const names[] = { "Unknown", "Initialising", "InitWait", "Initialised",
                                         "Connected", "Closing", "Closed", "Reconfiguring",
                                         "Reconfigured" };
    return s >= 0 && s < (int)(sizeof(names) / sizeof(names[0])) ? names[s] : "Unknown";
}

long long xenbus_parse_uint(const char *s, unsigned long long max)
{
    if (!s || !*s || strlen(s) > 20)
        return -1;
    unsigned long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
        if (v > max)
            return -1;
    }
    return (long long)v;
}

static char *rd(struct bdev *d, xp_txn_t t, const char *dir, const char *node)
{
    char path[PATH_MAX_XS * 2];
    snprintf(path, sizeof(path), "%s/%s", dir, node);
    return xp_xs_read(d->bb->xp, t, path, NULL);
}

/* An integer node; def if absent, -1 if present but malformed or above max. */
static long long rd_uint(struct bdev *d, const char *dir, const char *node, long long def,
                         unsigned long long max)
{
    char *s = rd(d, XP_TXN_NULL, dir, node);
    if (!s)
        return def;
    long long v = xenbus_parse_uint(s, max);
    free(s);
    return v;
}

static int wr(struct bdev *d, xp_txn_t t, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int wr(struct bdev *d, xp_txn_t t, const char *node, const char *fmt, ...)
{
    char path[PATH_MAX_XS * 2], val[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    snprintf(path, sizeof(path), "%s/%s", d->be, node);
    return xp_xs_write(d->bb->xp, t, path, val);
}

/* Runs body(d, t) in a transaction, retrying while XenStore says EAGAIN. */
static int in_txn(struct bdev *d, int (*body)(struct bdev *d, xp_txn_t t, void *arg), void *arg)
{
    for (int tries = 0; tries < 100; tries++) {
        xp_txn_t t = xp_xs_txn_start(d->bb->xp);
        if (t == XP_TXN_NULL)
            return -1;
        if (body(d, t, arg)) {
            int e = errno;
            xp_xs_txn_end(d->bb->xp, t, true);
            errno = e;
            return -1;
        }
        if (xp_xs_txn_end(d->bb->xp, t, false) == 0)
            return 0;
        if (errno != EAGAIN)
            return -1;
    }
    errno = EAGAIN;
    return -1;
}

/* Writes the backend state unless the node is gone (the toolstack removed the device). */
static void set_state(struct bdev *d, int state)
{
    if (d->gone || d->state == state)
        return;
    if (wr(d, XP_TXN_NULL, "state", "%d", state))
        mx_warn("%s: cannot write state %s: %s", d->name, xenbus_state_name(state), strerror(errno));
    mx_info("%s: %s -> %s", d->name, xenbus_state_name(d->state), xenbus_state_name(state));
    d->state = state;
}

/* Tells the toolstack why the device cannot work (like xenbus_dev_fatal). */
static void fail(struct bdev *d, const char *msg)
{
    mx_err("%s: %s", d->name, msg);
    if (!d->gone)
        wr(d, XP_TXN_NULL, "error", "%s", msg);
    d->failed = true;
}

static int timer_cb(struct evloop *el, long long id, void *arg)
{
    struct bdev *d = arg;
    d->timer = 0;
    reconcile(d);
    return -1;
}

static void schedule(struct bdev *d, int ms)
{
    if (!d->timer)
        d->timer = evloop_add_timer(d->bb->el, ms, timer_cb, d);
}

/* ---- InitWait: features ------------------------------------------------- */

static int features_body(struct bdev *d, xp_txn_t t, void *arg)
{
    const struct memx_config *c = &d->bb->cfg;
    if (wr(d, t, "feature-flush-cache", "1") || wr(d, t, "feature-discard", "1") ||
        wr(d, t, "discard-granularity", "%u", VOLUME_PAGE_SIZE) ||
        wr(d, t, "discard-alignment", "0") || wr(d, t, "discard-secure", "0") ||
        wr(d, t, "feature-barrier", "0") || wr(d, t, "feature-persistent", "0") ||
        wr(d, t, "max-ring-page-order", "%d", c->max_ring_page_order) ||
        wr(d, t, "multi-queue-max-queues", "%d", c->max_queues))
        return -1;
    if (c->max_indirect_segments > 0 &&
        wr(d, t, "feature-max-indirect-segments", "%d", c->max_indirect_segments))
        return -1;
    return wr(d, t, "state", "%d", XenbusStateInitWait);
}

static int publish_features(struct bdev *d)
{
    if (in_txn(d, features_body, NULL)) {
        mx_err("%s: cannot publish features: %s", d->name, strerror(errno));
        return -1;
    }
    mx_info("%s: %s -> InitWait (features published)", d->name, xenbus_state_name(d->state));
    d->state = XenbusStateInitWait;
    return 0;
}

/* ---- Connected: rings and volume --------------------------------------- */

struct connect_info { uint64_t sectors; bool readonly; };

static int connected_body(struct bdev *d, xp_txn_t t, void *arg)
{
    const struct connect_info *ci = arg;
    if (wr(d, t, "sectors", "%" PRIu64, ci->sectors) ||
        wr(d, t, "info", "%u", ci->readonly ? VDISK_READONLY : 0u) ||
        wr(d, t, "sector-size", "%u", VOLUME_SECTOR_SIZE) ||
        wr(d, t, "physical-sector-size", "%u", VOLUME_PAGE_SIZE))
        return -1;
    return wr(d, t, "state", "%d", XenbusStateConnected);
}

static void vbd_fatal(void *arg, const char *why)
{
    struct bdev *d = arg;
    fail(d, why);
    reconcile(d);
}

/* Reads one queue's ring refs and event channel from dir and maps it. */
static int connect_queue(struct bdev *d, const char *dir, long long order, char *err, size_t errlen)
{
    uint32_t refs[1u << 4];
    unsigned n = order < 0 ? 1u : 1u << order;
    for (unsigned i = 0; i < n; i++) {
        char node[32];
        if (order < 0)
            snprintf(node, sizeof(node), "ring-ref");
        else
            snprintf(node, sizeof(node), "ring-ref%u", i);
        long long ref = rd_uint(d, dir, node, -1, UINT32_MAX);
        if (ref < 0) {
            snprintf(err, errlen, "frontend %s/%s missing or not a grant ref", dir, node);
            return -1;
        }
        refs[i] = (uint32_t)ref;
    }
    long long port = rd_uint(d, dir, "event-channel", -1, UINT32_MAX);
    if (port < 0) {
        snprintf(err, errlen, "frontend %s/event-channel missing or malformed", dir);
        return -1;
    }
    char why[200];
    if (vbd_add_queue(d->vbd, d->abi, refs, n, (uint32_t)port, why, sizeof(why))) {
        snprintf(err, errlen, "queue %s: %s", dir, why);
        return -1;
    }
    return 0;
}

/* Returns 0 when connected, 1 to retry later (volume still held elsewhere), -1 failed. */
static int connect(struct bdev *d)
{
    struct blkback *bb = d->bb;
    char err[800];

    /* What the frontend negotiated. */
    char *proto = rd(d, XP_TXN_NULL, d->fe, "protocol");
    int abi = blkif_abi_parse(proto);
    if (abi < 0) {
        snprintf(err, sizeof(err), "frontend protocol '%s' not supported", proto);
        free(proto);
        fail(d, err);
        return -1;
    }
    free(proto);
    d->abi = (enum blkif_abi)abi;
    long long nq = rd_uint(d, d->fe, "multi-queue-num-queues", 1, 1u << 20);
    if (nq < 1 || nq > bb->cfg.max_queues) {
        snprintf(err, sizeof(err), "frontend multi-queue-num-queues must be 1..%d", bb->cfg.max_queues);
        fail(d, err);
        return -1;
    }
    long long order = rd_uint(d, d->fe, "ring-page-order", -1, 1u << 20);
    char *o = rd(d, XP_TXN_NULL, d->fe, "ring-page-order");
    bool has_order = o != NULL;
    free(o);
    if (has_order && (order < 0 || order > bb->cfg.max_ring_page_order)) {
        snprintf(err, sizeof(err), "frontend ring-page-order must be 0..%d", bb->cfg.max_ring_page_order);
        fail(d, err);
        return -1;
    }

    /* The volume. */
    char *params = rd(d, XP_TXN_NULL, d->be, "params");
    char name[VOLUME_NAME_MAX];
    uint64_t size;
    struct volume_opts vopts;
    char why[200];
    if (!params) {
        fail(d, "no params node (expected memx:<volume>:<size>)");
        return -1;
    }
    if (volume_parse_target_opts(params, name, sizeof(name), &size, &vopts, why, sizeof(why))) {
        snprintf(err, sizeof(err), "params '%s': %s", params, why);
        free(params);
        fail(d, err);
        return -1;
    }
    free(params);
    d->vol = volume_attach(bb->vols, name, size, d->name, why, sizeof(why));
    if (!d->vol) {
        struct volume *held = volumes_find(bb->vols, name);
        if (held && *volume_owner(held) && volume_size(held) == size &&
            d->attach_retries++ < RETRY_ATTACH_MAX) {
            /* A migration or restore on this host: the old domain's device
             * lets go of the volume when the toolstack tears it down. */
            if (d->attach_retries == 1)
                mx_info("%s: volume %s still attached by %s; waiting for it", d->name, name,
                        volume_owner(held));
            return 1;
        }
        snprintf(err, sizeof(err), "volume %s: %s", name, why);
        fail(d, err);
        return -1;
    }
    /* First attach here: the volume loads its metadata from the pool. */
    const char *lerr = NULL;
    int ls = volume_state(d->vol, &lerr);
    if (ls > 0 && d->attach_retries++ < RETRY_ATTACH_MAX) {
        if (d->attach_retries == 1)
            mx_info("%s: volume %s is loading from the pool; waiting for it", d->name, name);
        volume_detach(d->vol);
        d->vol = NULL;
        return 1;
    }
    if (ls) {
        snprintf(err, sizeof(err), "volume %s: %s", name, ls > 0 ? "still loading from the pool" : lerr);
        volume_detach(d->vol);
        d->vol = NULL;
        fail(d, err);
        return -1;
    }
    d->attach_retries = 0;
    volume_set_dedup(d->vol, vopts.dedup);
    snprintf(d->volname, sizeof(d->volname), "%s", name);
    char *mode = rd(d, XP_TXN_NULL, d->be, "mode");
    bool readonly = mode && mode[0] == 'r';
    free(mode);

    /* The rings. */
    struct vbd_params p = { .name = d->name, .domid = d->domid, .vol = d->vol, .readonly = readonly,
                            .max_indirect = (unsigned)bb->cfg.max_indirect_segments,
                            .poll_us = (unsigned)bb->cfg.ring_poll_us,
                            .fatal = vbd_fatal, .arg = d };
    d->vbd = vbd_new(bb->el, bb->xp, &p);
    if (!d->vbd) {
        fail(d, "out of memory");
        goto unwind;
    }
    d->nq = (int)nq;
    d->ring_pages = has_order ? 1 << order : 1;
    for (int i = 0; i < d->nq; i++) {
        char dir[PATH_MAX_XS + 32];
        if (d->nq == 1)
            snprintf(dir, sizeof(dir), "%s", d->fe);
        else
            snprintf(dir, sizeof(dir), "%s/queue-%d", d->fe, i);
        if (connect_queue(d, dir, has_order ? order : -1, err, sizeof(err))) {
            fail(d, err);
            goto unwind;
        }
    }

    struct connect_info ci = { volume_size(d->vol) / VOLUME_SECTOR_SIZE, readonly };
    if (in_txn(d, connected_body, &ci)) {
        snprintf(err, sizeof(err), "cannot write connect details: %s", strerror(errno));
        fail(d, err);
        goto unwind;
    }
    mx_info("%s: %s -> Connected (volume %s, %s, %d queue(s) of %d page(s)%s, dedup %s)", d->name,
            xenbus_state_name(d->state), d->volname, blkif_abi_name(d->abi), d->nq, d->ring_pages,
            readonly ? ", read-only" : "", volume_dedup(d->vol) ? "on" : "off");
    d->state = XenbusStateConnected;
    return 0;

unwind:
    vbd_free(d->vbd);           /* nothing in flight yet: no request was taken */
    d->vbd = NULL;
    volume_detach(d->vol);
    d->vol = NULL;
    return -1;
}

/* ---- Closed: drain, unmap, detach -------------------------------------- */

static void finish_disconnect(struct bdev *d)
{
    d->draining = false;
    if (d->vbd)
        vbd_merge_stages(d->vbd, d->stage_ns);
    vbd_free(d->vbd);
    d->vbd = NULL;
    if (d->vol) {
        volume_detach(d->vol);
        mx_info("%s: volume %s detached", d->name, d->volname);
    }
    d->vol = NULL;
    set_state(d, d->after_drain);
    maybe_done(d->bb);
}

static void drained(void *arg)
{
    struct bdev *d = arg;
    finish_disconnect(d);
    schedule(d, 0);             /* not from the volume's callback stack */
}

/* Idempotent: returns true when disconnected now, false while draining. */
static bool disconnect(struct bdev *d, int then)
{
    if (d->draining)
        return false;
    d->after_drain = then;
    if (d->vbd && !vbd_stop(d->vbd, drained, d)) {
        d->draining = true;
        return false;
    }
    finish_disconnect(d);
    return true;
}

/* ---- the state machine ------------------------------------------------- */

static bool node_exists(struct bdev *d, const char *dir, const char *node, char **val)
{
    char *s = rd(d, XP_TXN_NULL, dir, node);
    if (val)
        *val = s;
    else
        free(s);
    return s != NULL;
}

static int setup(struct bdev *d)
{
    char *fe = NULL;
    if (!node_exists(d, d->be, "frontend", &fe)) {
        return -1;              /* the toolstack has not written it yet: wait */
    }
    if (strlen(fe) >= sizeof(d->fe)) {
        free(fe);
        fail(d, "frontend path too long");
        return -1;
    }
    snprintf(d->fe, sizeof(d->fe), "%s", fe);
    free(fe);
    char path[PATH_MAX_XS + 8];
    snprintf(path, sizeof(path), "%s/state", d->fe);
    snprintf(d->token, sizeof(d->token), "fe:%u/%u", d->domid, d->devid);
    if (xp_xs_watch(d->bb->xp, path, d->token)) {
        mx_err("%s: cannot watch %s: %s", d->name, path, strerror(errno));
        return -1;
    }
    d->fe_watched = true;
    return publish_features(d);
}

static void reconcile(struct bdev *d)
{
    struct blkback *bb = d->bb;
    if (d->draining)
        return;                 /* drained() reconciles again */

    char *bstate_s = NULL;
    if (d->gone || !node_exists(d, d->be, "state", &bstate_s)) {
        /* The toolstack removed the device (or never finished writing it). */
        d->gone = true;
        if (disconnect(d, XenbusStateClosed)) {
            mx_info("%s: removed", d->name);
            dev_free(d);
        }
        return;
    }
    long long bstate = xenbus_parse_uint(bstate_s, 8);
    free(bstate_s);

    if (bb->shutting_down) {
        if (d->state == XenbusStateConnected)
            set_state(d, XenbusStateClosing);
        disconnect(d, XenbusStateClosed);
        return;
    }
    if (d->state == 0) {
        if (setup(d))
            return;
    }

    /* The node is the truth: the toolstack writes it too (state=Closing on teardown). */
    if (bstate >= 0 && d->state != 0)
        d->state = (int)bstate;

    long long online = rd_uint(d, d->be, "online", 1, 1);
    char *fs = rd(d, XP_TXN_NULL, d->fe, "state");
    long long fstate = fs ? xenbus_parse_uint(fs, 8) : -1;  /* -1: the frontend is gone */
    free(fs);

    /* libxl's teardown: online=0, state=Closing, then it waits for Closed. */
    if (online == 0 && bstate == XenbusStateClosing) {
        disconnect(d, XenbusStateClosed);
        return;
    }
    if (d->failed && d->state != XenbusStateClosed) {
        disconnect(d, XenbusStateClosed);
        return;
    }

    switch (fstate) {
    case XenbusStateInitialising:
        if (d->state == XenbusStateClosed && online) {
            /* A frontend starting over (reconnect, resume): offer ourselves again. */
            d->failed = false;
            if (!d->gone)
                wr(d, XP_TXN_NULL, "error", "%s", "");
            publish_features(d);
        }
        break;
    case XenbusStateInitialised:
    case XenbusStateConnected:
        if (d->state != XenbusStateInitWait || d->failed)
            break;              /* connected already, or waiting for a restart */
        int rc = connect(d);
        if (rc == 1)
            schedule(d, RETRY_ATTACH_MS);
        else if (rc < 0)
            set_state(d, XenbusStateClosed);
        break;
    case XenbusStateClosing:
    case XenbusStateClosed:
        disconnect(d, XenbusStateClosed);
        break;
    case -1:
    case XenbusStateUnknown:
        /* The frontend's domain is gone (destroy, after save or migrate). */
        if (d->state == XenbusStateConnected)
            disconnect(d, XenbusStateClosed);
        break;
    default:
        break;                  /* InitWait, Reconfiguring: nothing for us */
    }
}

/* ---- devices ------------------------------------------------------------ */

static struct bdev *dev_find(struct blkback *bb, uint16_t domid, uint32_t devid)
{
    for (struct bdev *d = bb->devs; d; d = d->next)
        if (d->domid == domid && d->devid == devid)
            return d;
    return NULL;
}

static struct bdev *dev_new(struct blkback *bb, uint16_t domid, uint32_t devid)
{
    struct bdev *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->bb = bb;
    d->domid = domid;
    d->devid = devid;
    snprintf(d->name, sizeof(d->name), "%s %u/%u", bb->cfg.device_type, domid, devid);
    snprintf(d->be, sizeof(d->be), "%s/%u/%u", bb->base, domid, devid);
    d->next = bb->devs;
    bb->devs = d;
    mx_info("%s: new device (%s)", d->name, d->be);
    return d;
}

static void dev_free(struct bdev *d)
{
    struct blkback *bb = d->bb;
    for (struct bdev **pp = &bb->devs; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    if (d->fe_watched) {
        char path[PATH_MAX_XS + 8];
        snprintf(path, sizeof(path), "%s/state", d->fe);
        xp_xs_unwatch(bb->xp, path, d->token);
    }
    if (d->timer)
        evloop_del_timer(bb->el, d->timer);
    free(d);
    maybe_done(bb);
}

/* "<domid>/<devid>[/...]" relative to base. */
static int parse_dev_path(const char *rel, uint16_t *domid, uint32_t *devid)
{
    char a[16], b[16];
    const char *s = strchr(rel, '/');
    if (!s || (size_t)(s - rel) >= sizeof(a))
        return -1;
    memcpy(a, rel, (size_t)(s - rel));
    a[s - rel] = 0;
    const char *e = strchr(s + 1, '/');
    size_t bl = e ? (size_t)(e - s - 1) : strlen(s + 1);
    if (bl >= sizeof(b))
        return -1;
    memcpy(b, s + 1, bl);
    b[bl] = 0;
    long long dm = xenbus_parse_uint(a, 0x7fef), dv = xenbus_parse_uint(b, UINT32_MAX);
    if (dm < 0 || dv < 0)
        return -1;
    *domid = (uint16_t)dm;
    *devid = (uint32_t)dv;
    return 0;
}

static void touch_dev(struct blkback *bb, uint16_t domid, uint32_t devid)
{
    struct bdev *d = dev_find(bb, domid, devid);
    if (!d) {
        char path[PATH_MAX_XS + 32];
        snprintf(path, sizeof(path), "%s/%u/%u/state", bb->base, domid, devid);
        char *s = xp_xs_read(bb->xp, XP_TXN_NULL, path, NULL);
        if (!s || bb->shutting_down) {
            free(s);
            return;             /* being removed, or not written yet */
        }
        free(s);
        d = dev_new(bb, domid, devid);
        if (!d)
            return;
    }
    reconcile(d);
}

static void scan(struct blkback *bb)
{
    unsigned nd = 0;
    char **doms = xp_xs_directory(bb->xp, XP_TXN_NULL, bb->base, &nd);
    for (unsigned i = 0; doms && i < nd; i++) {
        char dir[PATH_MAX_XS + 16];
        snprintf(dir, sizeof(dir), "%s/%s", bb->base, doms[i]);
        unsigned nv = 0;
        char **devs = xp_xs_directory(bb->xp, XP_TXN_NULL, dir, &nv);
        for (unsigned j = 0; devs && j < nv; j++) {
            char rel[64];
            uint16_t dm;
            uint32_t dv;
            snprintf(rel, sizeof(rel), "%s/%s", doms[i], devs[j]);
            if (parse_dev_path(rel, &dm, &dv) == 0)
                touch_dev(bb, dm, dv);
        }
        free(devs);
    }
    free(doms);
    /* Devices whose node vanished. */
    for (struct bdev *d = bb->devs, *n; d; d = n) {
        n = d->next;
        reconcile(d);
    }
}

static void on_watch(struct blkback *bb, const char *path, const char *token)
{
    if (!strcmp(token, "bb")) {
        size_t bl = strlen(bb->base);
        uint16_t domid;
        uint32_t devid;
        if (strncmp(path, bb->base, bl) || path[bl] != '/' ||
            parse_dev_path(path + bl + 1, &domid, &devid))
            scan(bb);           /* the base itself, or a domid directory */
        else
            touch_dev(bb, domid, devid);
        return;
    }
    for (struct bdev *d = bb->devs; d; d = d->next)
        if (!strcmp(d->token, token)) {
            reconcile(d);
            return;
        }
}

static void xs_cb(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct blkback *bb = arg;
    char *path, *token;
    while (xp_xs_next_watch(bb->xp, &path, &token) == 1) {
        on_watch(bb, path, token);
        free(path);
        free(token);
    }
}

static void evtchn_cb(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct blkback *bb = arg;
    int port;
    while ((port = xp_evtchn_pending(bb->xp)) >= 0) {
        xp_evtchn_unmask(bb->xp, (uint32_t)port);   /* before looking: a later kick is not lost */
        for (struct bdev *d = bb->devs; d; d = d->next)
            if (d->vbd && vbd_handle_port(d->vbd, port))
                break;
    }
}

/* ---- blkback.h ---------------------------------------------------------- */

struct blkback *blkback_new(struct evloop *el, struct xp *xp, struct volumes *vols,
                            const struct memx_config *cfg, char *err, size_t errlen)
{
    if (cfg->max_ring_page_order < 0 || cfg->max_ring_page_order > 4 || cfg->max_queues < 1 ||
        cfg->max_queues > VBD_MAX_QUEUES || cfg->max_indirect_segments < 0 ||
        cfg->max_indirect_segments >
            (int)(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGS_PER_INDIRECT_PAGE) ||
        !cfg->device_type[0]) {
        snprintf(err, errlen, "[backend] settings out of range (max_ring_page_order 0..4, "
                              "max_queues 1..%d, max_indirect_segments 0..%u, device_type set)",
                 VBD_MAX_QUEUES, BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * BLKIF_SEGS_PER_INDIRECT_PAGE);
        return NULL;
    }
    struct blkback *bb = calloc(1, sizeof(*bb));
    if (!bb) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bb->el = el;
    bb->xp = xp;
    bb->vols = vols;
    bb->cfg = *cfg;
    snprintf(bb->base, sizeof(bb->base), "/local/domain/%u/backend/%s", xp_domid(xp), cfg->device_type);
    return bb;
}

int blkback_start(struct blkback *bb, char *err, size_t errlen)
{
    int xfd = xp_xs_fd(bb->xp), efd = xp_evtchn_fd(bb->xp);
    if (xfd < 0 || efd < 0) {
        snprintf(err, errlen, "platform %s has no XenStore or event-channel fd: %s", xp_name(bb->xp),
                 strerror(errno));
        return -1;
    }
    if (evloop_add_fd(bb->el, efd, EV_READ, evtchn_cb, bb)) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        return -1;
    }
    bb->evtchn_added = true;
    if (evloop_add_fd(bb->el, xfd, EV_READ, xs_cb, bb)) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        return -1;
    }
    /* The watch fires once at once, which does the initial scan. */
    if (xp_xs_watch(bb->xp, bb->base, "bb")) {
        evloop_del_fd(bb->el, xfd);
        snprintf(err, errlen, "cannot watch %s: %s", bb->base, strerror(errno));
        return -1;
    }
    bb->started = true;
    mx_info("blkback: serving %s (platform %s)", bb->base, xp_name(bb->xp));
    return 0;
}

int blkback_list(struct blkback *bb, struct blkback_dev_info *out, int max)
{
    int n = 0;
    for (struct bdev *d = bb->devs; d; d = d->next, n++) {
        if (n >= max)
            continue;
        struct blkback_dev_info *i = &out[n];
        memset(i, 0, sizeof(*i));
        i->domid = d->domid;
        i->devid = d->devid;
        snprintf(i->state, sizeof(i->state), "%s", xenbus_state_name(d->state));
        if (d->vol)
            snprintf(i->volume, sizeof(i->volume), "%s", d->volname);
        snprintf(i->protocol, sizeof(i->protocol), "%s", d->vbd ? blkif_abi_name(d->abi) : "");
        i->nr_queues = d->vbd ? d->nq : 0;
        i->ring_pages = d->vbd ? d->ring_pages : 0;
        i->indirect = bb->cfg.max_indirect_segments > 0;
        i->flush = i->discard = true;
        if (d->vbd) {
            struct vbd_counters c;
            vbd_get_counters(d->vbd, &c);
            i->requests = c.requests;
            i->errors = c.errors;
            i->bad_requests = c.bad_requests;
        }
        _Static_assert(BLKBACK_STAGES == VBD_STAGES, "blkback_dev_info.stage_ns mirrors vbd.h");
        memcpy(i->stage_ns, d->stage_ns, sizeof(i->stage_ns));
        if (d->vbd)
            vbd_merge_stages(d->vbd, i->stage_ns);
    }
    return n;
}

static int done_cb(struct evloop *el, long long id, void *arg)
{
    struct blkback *bb = arg;
    bb->done_timer = 0;
    if (bb->done)
        bb->done(bb->done_arg);
    return -1;
}

static void maybe_done(struct blkback *bb)
{
    if (!bb->shutting_down || bb->done_timer || !bb->done)
        return;
    for (struct bdev *d = bb->devs; d; d = d->next)
        if (d->vbd || d->draining)
            return;
    bb->done_timer = evloop_add_timer(bb->el, 0, done_cb, bb);
}

void blkback_shutdown(struct blkback *bb, void (*done)(void *arg), void *arg)
{
    bb->shutting_down = true;
    bb->done = done;
    bb->done_arg = arg;
    for (struct bdev *d = bb->devs, *n; d; d = n) {
        n = d->next;
        reconcile(d);
    }
    maybe_done(bb);
}

void blkback_free(struct blkback *bb)
{
    if (!bb)
        return;
    if (bb->started) {
        xp_xs_unwatch(bb->xp, bb->base, "bb");
        evloop_del_fd(bb->el, xp_xs_fd(bb->xp));
    }
    if (bb->evtchn_added)
        evloop_del_fd(bb->el, xp_evtchn_fd(bb->xp));
    bb->done = NULL;
    while (bb->devs) {
        struct bdev *d = bb->devs;
        /* blkback_shutdown has drained them; anything left has nothing in flight. */
        d->gone = true;
        vbd_free(d->vbd);
        d->vbd = NULL;
        if (d->vol)
            volume_detach(d->vol);
        d->vol = NULL;
        dev_free(d);
    }
    if (bb->done_timer)
        evloop_del_timer(bb->el, bb->done_timer);
    free(bb);
}
