/* xenbus.c — generic XenBus backend devices (see xenbus.h): discovery under
 * backend/<type>, watches, the backend state node, reinit and teardown.  The
 * state machine is reconcile(); each of its cases names the toolstack or
 * frontend sequence that reaches it, as Linux's xen-blkback/xenbus.c
 * frontend_changed does.  What a connection is belongs to the driver
 * (blkdev.c for blkif). */
#include "xenbus.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evloop.h"
#include "log.h"
#include "queue.h"

#define PATH_MAX_XS 256
#define RETRY_MS 250                    /* a connect that said "not yet" */
/* The same for a connection being resumed (its guest's I/O waits for
 * this connect: an upgrade's pause), cheap for the few seconds it lasts. */
#define RESUME_RETRY_MS 10

struct xenbus_dev {
    struct xenbus *bus;
    LIST_ENTRY(xenbus_dev) link;
    void *drv;
    uint16_t domid;
    uint32_t devid;
    char name[48];                      /* "vbd <domid>/<devid>" */
    char be[PATH_MAX_XS];               /* our backend directory */
    char fe[PATH_MAX_XS];               /* the frontend's directory */
    char token[64];                     /* frontend state watch token */
    bool fe_watched;
    int state;                          /* the backend state we last wrote; 0 before */
    bool failed;                        /* refused to connect: wait for the frontend to restart */
    bool connected;                     /* ops->connect succeeded, ops->disconnect not finished */
    bool draining;                      /* ops->disconnect returned false */
    int after_drain;                    /* state to write once disconnected */
    bool gone;                          /* backend node removed: free once disconnected */
    /* Found Connected with its frontend Connected at first sight: a
     * predecessor process served it (a restart or an upgrade hand-over).
     * The connection is taken over without InitWait: the node keeps
     * reading Connected, and d->state stays InitWait inside until the
     * driver's connect rewrites Connected. */
    bool resuming;
    long long timer;                    /* connect retry */
    struct ev_defer kick;               /* reconcile at the end of this turn */
};

struct xenbus {
    struct evloop *el;
    struct xp *xp;
    const struct xenbus_dev_ops *ops;
    void *ctx;
    char type[32];
    char base[96];                      /* /local/domain/<self>/backend/<type> */
    LIST_HEAD(, xenbus_dev) devs;
    bool started, shutting_down;
    void (*done)(void *arg);
    void *done_arg;
    struct ev_defer done_defer;
};

#define xd_log(xd, lvl, fmt, ...) mx_log((lvl), "%s: " fmt, (xd)->name, ##__VA_ARGS__)

static void reconcile(struct xenbus_dev *d);
static void dev_free(struct xenbus_dev *d);
static void maybe_done(struct xenbus *bus);

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

void       *xenbus_dev_drv(const struct xenbus_dev *xd) { return xd->drv; }
const char *xenbus_dev_name(const struct xenbus_dev *xd) { return xd->name; }
uint16_t    xenbus_dev_domid(const struct xenbus_dev *xd) { return xd->domid; }
uint32_t    xenbus_dev_devid(const struct xenbus_dev *xd) { return xd->devid; }
const char *xenbus_dev_be(const struct xenbus_dev *xd) { return xd->be; }
const char *xenbus_dev_fe(const struct xenbus_dev *xd) { return xd->fe; }
int         xenbus_dev_state(const struct xenbus_dev *xd) { return xd->state; }

struct xenbus_dev *xenbus_dev_next(struct xenbus *bus, struct xenbus_dev *prev)
{
    return prev ? LIST_NEXT(prev, link) : LIST_FIRST(&bus->devs);
}

static char *rd_txn(struct xenbus_dev *d, xp_txn_t t, const char *dir, const char *node)
{
    char path[PATH_MAX_XS * 2];
    snprintf(path, sizeof(path), "%s/%s", dir, node);
    return xp_xs_read(d->bus->xp, t, path, NULL);
}

char *xenbus_read(struct xenbus_dev *d, const char *dir, const char *node)
{
    return rd_txn(d, XP_TXN_NULL, dir, node);
}

long long xenbus_read_uint(struct xenbus_dev *d, const char *dir, const char *node, long long def,
                           unsigned long long max)
{
    char *s = xenbus_read(d, dir, node);
    if (!s)
        return def;
    long long v = xenbus_parse_uint(s, max);
    free(s);
    return v;
}

int xenbus_write(struct xenbus_dev *d, xp_txn_t t, const char *node, const char *fmt, ...)
{
    char path[PATH_MAX_XS * 2], val[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    snprintf(path, sizeof(path), "%s/%s", d->be, node);
    return xp_xs_write(d->bus->xp, t, path, val);
}

int xenbus_dev_commit(struct xenbus_dev *d, int state, int (*body)(void *arg, xp_txn_t t), void *arg)
{
    struct xp *xp = d->bus->xp;
    for (int tries = 0; tries < 100; tries++) {
        xp_txn_t t = xp_xs_txn_start(xp);
        if (t == XP_TXN_NULL)
            return -1;
        if (body(arg, t) || xenbus_write(d, t, "state", "%d", state)) {
            int e = errno;
            xp_xs_txn_end(xp, t, true);
            errno = e;
            return -1;
        }
        if (xp_xs_txn_end(xp, t, false) == 0) {
            d->state = state;
            return 0;
        }
        if (errno != EAGAIN)
            return -1;
    }
    errno = EAGAIN;
    return -1;
}

/* Idempotent: writes the backend state unless it is already that, or the
 * node is gone (the toolstack removed the device). */
static void set_state(struct xenbus_dev *d, int state)
{
    if (d->gone || d->state == state)
        return;
    if (xenbus_write(d, XP_TXN_NULL, "state", "%d", state))
        xd_log(d, MX_LOG_WARN, "cannot write state %s: %s", xenbus_state_name(state), strerror(errno));
    xd_log(d, MX_LOG_INFO, "%s -> %s", xenbus_state_name(d->state), xenbus_state_name(state));
    d->state = state;
}

void xenbus_dev_fatal(struct xenbus_dev *d, const char *msg)
{
    xd_log(d, MX_LOG_ERR, "%s", msg);
    if (!d->gone)
        xenbus_write(d, XP_TXN_NULL, "error", "%s", msg);
    d->failed = true;
}

static void kick_cb(struct evloop *el, void *arg) { reconcile(arg); }

void xenbus_dev_kick(struct xenbus_dev *d) { evloop_defer(d->bus->el, &d->kick); }

static int timer_cb(struct evloop *el, long long id, void *arg)
{
    struct xenbus_dev *d = arg;
    d->timer = 0;
    reconcile(d);
    return -1;
}

/* ---- InitWait: features ------------------------------------------------- */

static int features_body(void *arg, xp_txn_t t)
{
    struct xenbus_dev *d = arg;
    return d->bus->ops->features(d->drv, t);
}

static int publish_features(struct xenbus_dev *d)
{
    int was = d->state;
    if (xenbus_dev_commit(d, XenbusStateInitWait, features_body, d)) {
        xd_log(d, MX_LOG_ERR, "cannot publish features: %s", strerror(errno));
        return -1;
    }
    xd_log(d, MX_LOG_INFO, "%s -> InitWait (features published)", xenbus_state_name(was));
    return 0;
}

/* ---- Closed: the driver disconnects ------------------------------------- */

static void finish_disconnect(struct xenbus_dev *d)
{
    d->draining = false;
    d->connected = false;
    set_state(d, d->after_drain);
    maybe_done(d->bus);
}

void xenbus_dev_drained(struct xenbus_dev *d)
{
    finish_disconnect(d);
    xenbus_dev_kick(d);         /* not from the driver's callback stack */
}

/* Idempotent: returns true when disconnected now, false while draining.
 * Invariant: a connected device reaches `then` (Closed) only after its
 * driver drained, so no frontend sees Closed with a request unanswered. */
static bool disconnect(struct xenbus_dev *d, int then)
{
    if (d->draining)
        return false;
    d->after_drain = then;
    if (d->connected && !d->bus->ops->disconnect(d->drv)) {
        d->draining = true;
        return false;
    }
    finish_disconnect(d);
    return true;
}

/* ---- the state machine ------------------------------------------------- */

static int setup(struct xenbus_dev *d, long long bstate)
{
    char *fe = xenbus_read(d, d->be, "frontend");
    if (!fe)
        return -1;              /* the toolstack has not written it yet: wait */
    if (strlen(fe) >= sizeof(d->fe)) {
        free(fe);
        xenbus_dev_fatal(d, "frontend path too long");
        return -1;
    }
    snprintf(d->fe, sizeof(d->fe), "%s", fe);
    free(fe);
    char path[PATH_MAX_XS + 8];
    snprintf(path, sizeof(path), "%s/state", d->fe);
    snprintf(d->token, sizeof(d->token), "fe:%u/%u", d->domid, d->devid);
    if (xp_xs_watch(d->bus->xp, path, d->token)) {
        xd_log(d, MX_LOG_ERR, "cannot watch %s: %s", path, strerror(errno));
        return -1;
    }
    d->fe_watched = true;
    char *fs = bstate == XenbusStateConnected ? xenbus_read(d, d->fe, "state") : NULL;
    bool fe_connected = fs && xenbus_parse_uint(fs, 8) == XenbusStateConnected;
    free(fs);
    if (fe_connected) {
        /* Our predecessor's connection: its features are published and the
         * frontend negotiated against them.  Writing InitWait now would be
         * a state change the frontend sees (Linux blkfront ignores it, yet
         * it is no longer "the device never went away"). */
        d->resuming = true;
        d->state = XenbusStateInitWait;
        xd_log(d, MX_LOG_INFO, "Connected with its frontend Connected: resuming the connection "
               "(a previous memx-backd served it)");
        return 0;
    }
    return publish_features(d);
}

/* Recomputes what the device should be from XenStore; any watch event on
 * the device or its frontend's state lands here, as often as it likes. */
static void reconcile(struct xenbus_dev *d)
{
    struct xenbus *bus = d->bus;
    if (d->draining)
        return;                 /* xenbus_dev_drained reconciles again */

    char *bstate_s = NULL;
    if (d->gone || !(bstate_s = xenbus_read(d, d->be, "state"))) {
        /* Our node is gone: the toolstack removed the device after seeing
         * Closed (xl block-detach, xl destroy, the source domain at the end
         * of a migration or after a save), or removed it before it finished
         * writing it.  Disconnect (in-flight I/O is answered first), then
         * forget the device. */
        d->gone = true;
        if (disconnect(d, XenbusStateClosed)) {
            xd_log(d, MX_LOG_INFO, "removed");
            dev_free(d);
        }
        return;
    }
    long long bstate = xenbus_parse_uint(bstate_s, 8);
    free(bstate_s);

    if (bus->shutting_down) {
        /* memx-backd stopping (SIGTERM): Closing tells a connected frontend
         * the backend is leaving; Closed once its in-flight I/O is answered. */
        if (d->state == XenbusStateConnected)
            set_state(d, XenbusStateClosing);
        disconnect(d, XenbusStateClosed);
        return;
    }
    if (d->state == 0) {
        /* First sight of the device: a domain booting (xl create), a disk
         * hot-plugged (xl block-attach), the destination of a migration or
         * a restore (libxl writes the new domain's devices before the guest
         * resumes), or memx-backd restarted under a running guest.  Watch
         * the frontend and offer our features (InitWait). */
        if (setup(d, bstate))
            return;
    }

    /* The node is the truth: the toolstack writes it too (state=Closing on
     * teardown); but a connection being resumed reads Connected until the
     * driver's connect writes it again. */
    if (d->resuming && bstate != XenbusStateConnected)
        d->resuming = false;
    if (bstate >= 0 && d->state != 0 && !d->resuming)
        d->state = (int)bstate;

    long long online = xenbus_read_uint(d, d->be, "online", 1, 1);
    char *fs = xenbus_read(d, d->fe, "state");
    long long fstate = fs ? xenbus_parse_uint(fs, 8) : -1;  /* -1: the frontend is gone */
    free(fs);

    if (online == 0 && bstate == XenbusStateClosing) {
        /* libxl's teardown: online=0, state=Closing, then it waits for
         * Closed before removing the node (hot-unplug with xl block-detach,
         * xl shutdown/destroy, and the source domain once a migration or
         * save is done).  The frontend may still be up: it sees Closed. */
        disconnect(d, XenbusStateClosed);
        return;
    }
    if (d->failed && d->state != XenbusStateClosed) {
        /* The driver refused the connection or lost it (a corrupt ring, the
         * volume fenced by another backend): Closed, with the `error` node
         * saying why, until the frontend starts over. */
        disconnect(d, XenbusStateClosed);
        return;
    }

    switch (fstate) {
    case XenbusStateInitialising:
        if (d->state == XenbusStateClosed && online) {
            /* A frontend starting over after we went Closed: blkfront
             * reloaded or the guest kernel rebooted in place (kexec), a
             * frontend that crashed and reconnects, or one retrying after a
             * refused connect.  Reinit to InitWait: clear the error, offer
             * the features again (they may have changed). */
            d->failed = false;
            if (!d->gone)
                xenbus_write(d, XP_TXN_NULL, "error", "%s", "");
            publish_features(d);
        }
        break;                  /* else: still InitWait, the frontend is getting ready */
    case XenbusStateInitialised:
    case XenbusStateConnected:
        /* The frontend published its rings: a normal boot or hot-plug
         * (Initialised), the resumed guest on a migration's destination or
         * after a restore, or (Connected while we are in InitWait) a
         * frontend that was connected before memx-backd restarted.  The
         * driver claims its resources only now (blkdev.c attaches the
         * volume here: its epoch claim fences the previous owner, which
         * must wait until the guest runs on this side).
         * Connected already, or refused and waiting for a restart: nothing. */
        if (d->state != XenbusStateInitWait || d->failed)
            break;
        int rc = bus->ops->connect(d->drv);
        if (rc != 1)
            d->resuming = false;
        if (rc == 0) {
            d->connected = true;
        } else if (rc == 1) {
            /* Not yet (the volume is still held by the previous owner on this
             * host, or loading): look again shortly. */
            if (!d->timer)
                d->timer = evloop_add_timer(bus->el, d->resuming ? RESUME_RETRY_MS : RETRY_MS, timer_cb, d);
        } else {
            set_state(d, XenbusStateClosed);
        }
        break;
    case XenbusStateClosing:
    case XenbusStateClosed:
        /* The frontend is going away: guest shutdown or reboot, blkfront
         * unloaded, a frontend answering our Closing; or a frontend that
         * crashed and restarts, which walks a backend it finds Connected
         * back through Closing and Closed first (libmemxfront does), then
         * writes Initialising (the reinit case above).  Answer what is in
         * flight, then Closed. */
        disconnect(d, XenbusStateClosed);
        break;
    case -1:
    case XenbusStateUnknown:
        /* The frontend's domain is gone without closing: xl destroy, a guest
         * crash with on_crash=destroy, or the source domain after a
         * migration or save (it is destroyed before libxl tears down its
         * backends).  Disconnect so the volume is let go: a destination on
         * this host is waiting to attach it. */
        if (d->state == XenbusStateConnected)
            disconnect(d, XenbusStateClosed);
        break;
    default:
        break;                  /* InitWait, Reconfiguring: nothing for us */
    }
}

/* ---- devices ------------------------------------------------------------ */

static struct xenbus_dev *dev_find(struct xenbus *bus, uint16_t domid, uint32_t devid)
{
    struct xenbus_dev *d;
    LIST_FOREACH(d, &bus->devs, link)
        if (d->domid == domid && d->devid == devid)
            return d;
    return NULL;
}

static struct xenbus_dev *dev_new(struct xenbus *bus, uint16_t domid, uint32_t devid)
{
    struct xenbus_dev *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->bus = bus;
    d->domid = domid;
    d->devid = devid;
    snprintf(d->name, sizeof(d->name), "%s %u/%u", bus->type, domid, devid);
    snprintf(d->be, sizeof(d->be), "%s/%u/%u", bus->base, domid, devid);
    evloop_defer_init(&d->kick, kick_cb, d);
    if (!(d->drv = bus->ops->create(d, bus->ctx))) {
        free(d);
        return NULL;
    }
    LIST_INSERT_HEAD(&bus->devs, d, link);
    xd_log(d, MX_LOG_INFO, "new device (%s)", d->be);
    return d;
}

static void dev_free(struct xenbus_dev *d)
{
    struct xenbus *bus = d->bus;
    LIST_REMOVE(d, link);
    if (d->fe_watched) {
        char path[PATH_MAX_XS + 8];
        snprintf(path, sizeof(path), "%s/state", d->fe);
        xp_xs_unwatch(bus->xp, path, d->token);
    }
    if (d->timer)
        evloop_del_timer(bus->el, d->timer);
    evloop_defer_cancel(bus->el, &d->kick);
    bus->ops->destroy(d->drv);
    free(d);
    maybe_done(bus);
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

static void touch_dev(struct xenbus *bus, uint16_t domid, uint32_t devid)
{
    struct xenbus_dev *d = dev_find(bus, domid, devid);
    if (!d) {
        char path[PATH_MAX_XS + 32];
        snprintf(path, sizeof(path), "%s/%u/%u/state", bus->base, domid, devid);
        char *s = xp_xs_read(bus->xp, XP_TXN_NULL, path, NULL);
        if (!s || bus->shutting_down) {
            free(s);
            return;             /* being removed, or not written yet */
        }
        free(s);
        d = dev_new(bus, domid, devid);
        if (!d)
            return;
    }
    reconcile(d);
}

static void scan(struct xenbus *bus)
{
    unsigned nd = 0;
    char **doms = xp_xs_directory(bus->xp, XP_TXN_NULL, bus->base, &nd);
    for (unsigned i = 0; doms && i < nd; i++) {
        char dir[PATH_MAX_XS + 16];
        snprintf(dir, sizeof(dir), "%s/%s", bus->base, doms[i]);
        unsigned nv = 0;
        char **devs = xp_xs_directory(bus->xp, XP_TXN_NULL, dir, &nv);
        for (unsigned j = 0; devs && j < nv; j++) {
            char rel[64];
            uint16_t dm;
            uint32_t dv;
            snprintf(rel, sizeof(rel), "%s/%s", doms[i], devs[j]);
            if (parse_dev_path(rel, &dm, &dv) == 0)
                touch_dev(bus, dm, dv);
        }
        free(devs);
    }
    free(doms);
    /* Devices whose node vanished. */
    struct xenbus_dev *d, *n;
    LIST_FOREACH_SAFE(d, &bus->devs, link, n)
        reconcile(d);
}

static void on_watch(struct xenbus *bus, const char *path, const char *token)
{
    if (!strcmp(token, "bb")) {
        size_t bl = strlen(bus->base);
        uint16_t domid;
        uint32_t devid;
        if (strncmp(path, bus->base, bl) || path[bl] != '/' ||
            parse_dev_path(path + bl + 1, &domid, &devid))
            scan(bus);          /* the base itself, or a domid directory */
        else
            touch_dev(bus, domid, devid);
        return;
    }
    struct xenbus_dev *d;
    LIST_FOREACH(d, &bus->devs, link)
        if (!strcmp(d->token, token)) {
            reconcile(d);
            return;
        }
}

static void xs_cb(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct xenbus *bus = arg;
    char *path, *token;
    while (xp_xs_next_watch(bus->xp, &path, &token) == 1) {
        on_watch(bus, path, token);
        free(path);
        free(token);
    }
}

/* ---- the bus ------------------------------------------------------------ */

static void done_cb(struct evloop *el, void *arg)
{
    struct xenbus *bus = arg;
    if (bus->done)
        bus->done(bus->done_arg);
}

static void maybe_done(struct xenbus *bus)
{
    if (!bus->shutting_down || !bus->done || bus->done_defer.queued)
        return;
    struct xenbus_dev *d;
    LIST_FOREACH(d, &bus->devs, link)
        if (d->connected || d->draining)
            return;
    evloop_defer(bus->el, &bus->done_defer);
}

struct xenbus *xenbus_new(struct evloop *el, struct xp *xp, const char *type,
                          const struct xenbus_dev_ops *ops, void *ctx)
{
    struct xenbus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return NULL;
    bus->el = el;
    bus->xp = xp;
    bus->ops = ops;
    bus->ctx = ctx;
    snprintf(bus->type, sizeof(bus->type), "%s", type);
    snprintf(bus->base, sizeof(bus->base), "/local/domain/%u/backend/%s", xp_domid(xp), type);
    LIST_INIT(&bus->devs);
    evloop_defer_init(&bus->done_defer, done_cb, bus);
    return bus;
}

int xenbus_start(struct xenbus *bus, char *err, size_t errlen)
{
    int xfd = xp_xs_fd(bus->xp);
    if (xfd < 0) {
        snprintf(err, errlen, "platform %s has no XenStore fd: %s", xp_name(bus->xp), strerror(errno));
        return -1;
    }
    if (evloop_add_fd(bus->el, xfd, EV_READ, xs_cb, bus)) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        return -1;
    }
    /* The watch fires once at once, which does the initial scan. */
    if (xp_xs_watch(bus->xp, bus->base, "bb")) {
        evloop_del_fd(bus->el, xfd);
        snprintf(err, errlen, "cannot watch %s: %s", bus->base, strerror(errno));
        return -1;
    }
    bus->started = true;
    mx_info("xenbus: serving %s (platform %s)", bus->base, xp_name(bus->xp));
    return 0;
}

void xenbus_shutdown(struct xenbus *bus, void (*done)(void *arg), void *arg)
{
    bus->shutting_down = true;
    bus->done = done;
    bus->done_arg = arg;
    struct xenbus_dev *d, *n;
    LIST_FOREACH_SAFE(d, &bus->devs, link, n)
        reconcile(d);
    maybe_done(bus);
}

void xenbus_free(struct xenbus *bus)
{
    if (!bus)
        return;
    if (bus->started) {
        xp_xs_unwatch(bus->xp, bus->base, "bb");
        evloop_del_fd(bus->el, xp_xs_fd(bus->xp));
    }
    bus->done = NULL;
    while (!LIST_EMPTY(&bus->devs)) {
        struct xenbus_dev *d = LIST_FIRST(&bus->devs);
        /* xenbus_shutdown has drained them; anything left has nothing in flight. */
        d->gone = true;
        dev_free(d);
    }
    evloop_defer_cancel(bus->el, &bus->done_defer);
    free(bus);
}
