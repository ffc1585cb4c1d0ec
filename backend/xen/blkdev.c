/* blkdev.c — the blkif device policy over the generic XenBus device
 * (xenbus.h), as QEMU's hw/block/xen-block.c sits on hw/xen/xen-bus.c; it
 * implements blkback.h.
 *
 * It owns what makes a XenBus device a block device: the features offered
 * (written in one transaction with InitWait), the negotiation with the
 * frontend (protocol/ABI, number of queues, ring-page-order, ring refs and
 * event channels; persistent grants are not offered, indirect descriptors
 * are when configured), when the volume is attached and detached, and the
 * connect details (sectors, info, sector sizes) written with Connected.
 * Requests themselves are the dataplane's (vbd.c); blkdev only hands it the
 * volume and the queues the frontend published.
 */
#include "blkback.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkif_abi.h"
#include "evloop.h"
#include "log.h"
#include "ports.h"
#include "vbd.h"
#include "volumes.h"
#include "xenbus.h"
#include "xenplat.h"

/* How long a connect waits for its volume held by a migration's source on
 * this host: the source lets go by then.  In time, not tries: a resumed
 * connection retries more often.  A volume loading is waited for without a
 * limit (attach_volume). */
#define ATTACH_WAIT_MS 30000

struct bdev {
    struct blkback *bb;
    struct xenbus_dev *xd;
    const char *name;                   /* xenbus_dev_name: "vbd <domid>/<devid>" */
    struct vbd *vbd;
    struct volume *vol;
    char volname[VOLUME_NAME_MAX];
    enum blkif_abi abi;
    int nq, ring_pages;
    struct histo stage_ns[VBD_STAGES];  /* earlier connections' stage latencies */
    int attach_retries;
    uint64_t attach_since_ms;           /* the first "not yet" of this connect */
    uint64_t attach_logged;             /* loading: the last 30 s period logged */
};

/* Log lines name the device: "vbd <domid>/<devid>: ...". */
#define bdev_log(d, lvl, fmt, ...) mx_log((lvl), "%s: " fmt, (d)->name, ##__VA_ARGS__)

struct blkback {
    struct evloop *el;
    struct xp *xp;
    struct volumes *vols;
    struct memx_config cfg;
    struct xenbus *bus;
    struct port_table *ports;           /* event-channel port -> vbd queue, every device's */
    bool evtchn_added;
    struct ev_defer evtchn_more;        /* ports left pending past EVTCHN_BUDGET */
    /* blkback_quiesce: no device takes requests; drained runs (from
     * quiesce_check, a deferred call) once none has any in flight. */
    bool quiesced;
    void (*drained)(void *arg);
    void *drained_arg;
    struct ev_defer quiesce_check;
    void (*on_connect)(void *arg, const char *dev);
    void *on_connect_arg;
};

/* ---- InitWait: features ------------------------------------------------- */

/* In one transaction with state=InitWait (xenbus_dev_commit): a frontend
 * that sees InitWait sees every feature. */
static int blkdev_features(void *drv, xp_txn_t t)
{
    struct bdev *d = drv;
    struct xenbus_dev *xd = d->xd;
    const struct memx_config *c = &d->bb->cfg;
    if (xenbus_write(xd, t, "feature-flush-cache", "1") || xenbus_write(xd, t, "feature-discard", "1") ||
        xenbus_write(xd, t, "discard-granularity", "%u", VOLUME_PAGE_SIZE) ||
        xenbus_write(xd, t, "discard-alignment", "0") || xenbus_write(xd, t, "discard-secure", "0") ||
        xenbus_write(xd, t, "feature-barrier", "0") || xenbus_write(xd, t, "feature-persistent", "0") ||
        xenbus_write(xd, t, "max-ring-page-order", "%d", c->max_ring_page_order) ||
        xenbus_write(xd, t, "multi-queue-max-queues", "%d", c->max_queues))
        return -1;
    if (c->max_indirect_segments > 0 &&
        xenbus_write(xd, t, "feature-max-indirect-segments", "%d", c->max_indirect_segments))
        return -1;
    return 0;
}

/* ---- negotiation -------------------------------------------------------- */

/* What the frontend asked for, checked against what we offered. */
struct fe_params {
    enum blkif_abi abi;
    int nq;
    long long order;                    /* -1: a single "ring-ref" (no ring-page-order) */
};

static int read_frontend(struct bdev *d, struct fe_params *fp, char *err, size_t errlen)
{
    struct xenbus_dev *xd = d->xd;
    const char *fe = xenbus_dev_fe(xd);
    const struct memx_config *c = &d->bb->cfg;
    /* No protocol node: the frontend's ABI is the default of blkif_abi_parse. */
    char *proto = xenbus_read(xd, fe, "protocol");
    int abi = blkif_abi_parse(proto);
    if (abi < 0) {
        snprintf(err, errlen, "frontend protocol '%s' not supported", proto);
        free(proto);
        return -1;
    }
    free(proto);
    fp->abi = (enum blkif_abi)abi;
    long long nq = xenbus_read_uint(xd, fe, "multi-queue-num-queues", 1, 1u << 20);
    if (nq < 1 || nq > c->max_queues) {
        snprintf(err, errlen, "frontend multi-queue-num-queues must be 1..%d", c->max_queues);
        return -1;
    }
    fp->nq = (int)nq;
    char *o = xenbus_read(xd, fe, "ring-page-order");
    bool has_order = o != NULL;
    free(o);
    fp->order = has_order ? xenbus_read_uint(xd, fe, "ring-page-order", -1, 1u << 20) : -1;
    if (has_order && (fp->order < 0 || fp->order > c->max_ring_page_order)) {
        snprintf(err, errlen, "frontend ring-page-order must be 0..%d", c->max_ring_page_order);
        return -1;
    }
    return 0;
}

/* Reads one queue's ring refs and event channel from dir and hands it to the dataplane. */
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
        long long ref = xenbus_read_uint(d->xd, dir, node, -1, UINT32_MAX);
        if (ref < 0) {
            snprintf(err, errlen, "frontend %s/%s missing or not a grant ref", dir, node);
            return -1;
        }
        refs[i] = (uint32_t)ref;
    }
    long long port = xenbus_read_uint(d->xd, dir, "event-channel", -1, UINT32_MAX);
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

/* ---- the volume --------------------------------------------------------- */

/* Attaches the volume named by the params node.  0 attached (d->vol),
 * 1 not yet (held by the previous owner on this host, or loading), -1 failed
 * (err says why).
 *
 * Why at connect and not at InitWait: attaching claims the volume with a new
 * epoch, which fences every earlier owner (its writes fail with -ESTALE from
 * then on).  That must happen only once the guest runs here.  On a migration
 * the destination's device reaches InitWait while the source still serves
 * the guest, until the guest is paused for the last copy; the destination's
 * frontend connects only after the guest resumed here.  Attaching at
 * InitWait would fence the source while the guest still depends on it. */
static int attach_volume(struct bdev *d, bool *dedup, char *err, size_t errlen)
{
    struct blkback *bb = d->bb;
    char *params = xenbus_read(d->xd, xenbus_dev_be(d->xd), "params");
    char name[VOLUME_NAME_MAX];
    uint64_t size;
    struct volume_opts vopts;
    char why[200];
    if (!params) {
        snprintf(err, errlen, "no params node (expected memx:<volume>:<size>)");
        return -1;
    }
    if (volume_parse_target_opts(params, name, sizeof(name), &size, &vopts, why, sizeof(why))) {
        snprintf(err, errlen, "params '%s': %s", params, why);
        free(params);
        return -1;
    }
    free(params);
    if (!d->attach_retries)
        d->attach_since_ms = evloop_now_ms();
    bool may_wait = evloop_now_ms() - d->attach_since_ms < ATTACH_WAIT_MS;
    d->vol = volume_attach(bb->vols, name, size, d->name, why, sizeof(why));
    if (!d->vol) {
        struct volume *held = volumes_find(bb->vols, name);
        if (held && *volume_owner(held) && volume_size(held) == size && may_wait) {
            d->attach_retries++;
            /* A migration or restore on this host: the old domain's device
             * lets go of the volume when the toolstack tears it down. */
            if (d->attach_retries == 1)
                bdev_log(d, MX_LOG_INFO, "volume %s still attached by %s; waiting for it", name,
                         volume_owner(held));
            return 1;
        }
        snprintf(err, errlen, "volume %s: %s", name, why);
        return -1;
    }
    /* First attach here: the volume loads its metadata from the pool. */
    const char *lerr = NULL;
    int ls = volume_state(d->vol, &lerr);
    /* Loading ends by itself (ready, or failed for good), so it is waited
     * for without a limit: a guest whose disk closes loses its swap, a guest
     * kept waiting only sees a pause (a restarted or upgraded backend on a
     * loaded host can take longer than ATTACH_WAIT_MS to load a volume). */
    if (ls > 0) {
        uint64_t waited = evloop_now_ms() - d->attach_since_ms;
        if (++d->attach_retries == 1)
            bdev_log(d, MX_LOG_INFO, "volume %s is loading from the pool; waiting for it", name);
        else if (waited / 30000 != d->attach_logged)
            bdev_log(d, MX_LOG_WARN, "volume %s still loading from the pool after %llu s; the guest's I/O waits",
                     name, (unsigned long long)(waited / 1000));
        d->attach_logged = waited / 30000;
        volume_detach(d->vol);
        d->vol = NULL;
        return 1;
    }
    d->attach_logged = 0;
    if (ls) {
        snprintf(err, errlen, "volume %s: %s", name, lerr);
        volume_detach(d->vol);
        d->vol = NULL;
        return -1;
    }
    d->attach_retries = 0;
    *dedup = vopts.dedup;
    volume_set_quota(d->vol, vopts.quota_bytes);    /* each attach: the target line is the quota's one source */
    snprintf(d->volname, sizeof(d->volname), "%s", name);
    return 0;
}

/* ---- Connected ---------------------------------------------------------- */

struct connect_info { struct bdev *d; uint64_t sectors; bool readonly; };

static int connected_body(void *arg, xp_txn_t t)
{
    const struct connect_info *ci = arg;
    struct xenbus_dev *xd = ci->d->xd;
    return xenbus_write(xd, t, "sectors", "%" PRIu64, ci->sectors) ||
                   xenbus_write(xd, t, "info", "%u", ci->readonly ? VDISK_READONLY : 0u) ||
                   xenbus_write(xd, t, "sector-size", "%u", VOLUME_SECTOR_SIZE) ||
                   xenbus_write(xd, t, "physical-sector-size", "%u", VOLUME_PAGE_SIZE)
               ? -1
               : 0;
}

/* The dataplane lost the device (corrupt ring, volume fenced); from the loop. */
static void vbd_fatal(void *arg, const char *why)
{
    struct bdev *d = arg;
    xenbus_dev_fatal(d->xd, why);
    xenbus_dev_kick(d->xd);
}

/* Creates the dataplane over the attached volume and hands it every queue
 * the frontend published.  -1 with err. */
static int start_dataplane(struct bdev *d, const struct fe_params *fp, bool readonly, char *err,
                           size_t errlen)
{
    struct blkback *bb = d->bb;
    struct xenbus_dev *xd = d->xd;
    char state[400];
    snprintf(state, sizeof(state), "%s/%s-%u-%u", bb->cfg.state_dir, bb->cfg.device_type,
             (unsigned)xenbus_dev_domid(xd), (unsigned)xenbus_dev_devid(xd));
    struct vbd_params p = { .name = d->name, .domid = xenbus_dev_domid(xd), .vol = d->vol,
                            .readonly = readonly, .ports = bb->ports,
                            .max_indirect = (unsigned)bb->cfg.max_indirect_segments,
                            .buf_max = bb->cfg.device_buffer_max,
                            .state_path = bb->cfg.state_dir[0] ? state : NULL,
                            .poll_us = (unsigned)bb->cfg.ring_poll_us,
                            .fatal = vbd_fatal, .arg = d };
    if (!(d->vbd = vbd_new(bb->el, bb->xp, &p))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->abi = fp->abi;
    d->nq = fp->nq;
    d->ring_pages = fp->order >= 0 ? 1 << fp->order : 1;
    for (int i = 0; i < d->nq; i++) {
        char dir[300];
        if (d->nq == 1)
            snprintf(dir, sizeof(dir), "%s", xenbus_dev_fe(xd));
        else
            snprintf(dir, sizeof(dir), "%s/queue-%d", xenbus_dev_fe(xd), i);
        if (connect_queue(d, dir, fp->order, err, errlen))
            return -1;
    }
    return 0;
}

/* Reads what the frontend negotiated, attaches the volume (see
 * attach_volume for why only now), hands the queues to the dataplane, then
 * publishes the disk and Connected in one transaction. */
static int blkdev_connect(void *drv)
{
    struct bdev *d = drv;
    struct xenbus_dev *xd = d->xd;
    char err[800];
    struct fe_params fp;
    bool dedup = false;
    if (d->bb->quiesced)
        return 1;       /* handing over: the successor (or a resume) connects it */
    if (read_frontend(d, &fp, err, sizeof(err))) {
        xenbus_dev_fatal(xd, err);
        return -1;
    }
    int rc = attach_volume(d, &dedup, err, sizeof(err));
    if (rc) {
        if (rc < 0) {
            d->attach_retries = 0;      /* a later connect waits afresh */
            xenbus_dev_fatal(xd, err);
        }
        return rc;
    }
    volume_set_dedup(d->vol, dedup);
    char *mode = xenbus_read(xd, xenbus_dev_be(xd), "mode");
    bool readonly = mode && mode[0] == 'r';
    free(mode);

    int was = xenbus_dev_state(xd);
    struct connect_info ci = { d, volume_size(d->vol) / VOLUME_SECTOR_SIZE, readonly };
    if (start_dataplane(d, &fp, readonly, err, sizeof(err)))
        goto unwind;
    if (xenbus_dev_commit(xd, XenbusStateConnected, connected_body, &ci)) {
        snprintf(err, sizeof(err), "cannot write connect details: %s", strerror(errno));
        goto unwind;
    }
    /* The guest's name beside its domid: an operator greps for the VM, not the number. */
    char dom[32];
    snprintf(dom, sizeof(dom), "/local/domain/%u", (unsigned)xenbus_dev_domid(xd));
    char *guest = xenbus_read(xd, dom, "name");
    bdev_log(d, MX_LOG_INFO, "%s -> Connected (volume %s, %s, %d queue(s) of %d page(s)%s, dedup %s%s%s)",
             xenbus_state_name(was), d->volname, blkif_abi_name(d->abi), d->nq, d->ring_pages,
             readonly ? ", read-only" : "", volume_dedup(d->vol) ? "on" : "off", guest ? ", guest " : "",
             guest ? guest : "");
    free(guest);
    /* Only now, with every queue mapped and Connected written, is anything
     * taken off the rings: a frontend that pre-filled queue 0 and then broke
     * queue 1 finds nothing started when the connect unwinds. */
    vbd_start(d->vbd);
    if (d->bb->on_connect)
        d->bb->on_connect(d->bb->on_connect_arg, d->name);
    return 0;

unwind:
    xenbus_dev_fatal(xd, err);
    /* Invariant: never started (vbd_start is after the last failure above),
     * so nothing is in flight and freeing loses no request. */
    vbd_free(d->vbd);
    d->vbd = NULL;
    volume_detach(d->vol);
    d->vol = NULL;
    return -1;
}

/* ---- Closed: drain, unmap, detach -------------------------------------- */

/* Invariant: the volume is detached only after the vbd is drained, so no
 * acknowledged write is still on its way to the pool when another backend
 * may attach the volume. */
static void release(struct bdev *d)
{
    if (d->bb->quiesced)
        evloop_defer(d->bb->el, &d->bb->quiesce_check);    /* one device fewer to wait for */
    if (d->vbd)
        vbd_merge_stages(d->vbd, d->stage_ns);
    vbd_free(d->vbd);
    d->vbd = NULL;
    if (d->vol) {
        volume_detach(d->vol);
        bdev_log(d, MX_LOG_INFO, "volume %s detached", d->volname);
    }
    d->vol = NULL;
}

static void drained(void *arg)
{
    struct bdev *d = arg;
    release(d);
    xenbus_dev_drained(d->xd);
}

static bool blkdev_disconnect(void *drv)
{
    struct bdev *d = drv;
    if (d->vbd && !vbd_stop(d->vbd, drained, d))
        return false;
    release(d);
    return true;
}

/* ---- device life -------------------------------------------------------- */

static void *blkdev_create(struct xenbus_dev *xd, void *ctx)
{
    struct bdev *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->bb = ctx;
    d->xd = xd;
    d->name = xenbus_dev_name(xd);
    return d;
}

static void blkdev_destroy(void *drv)
{
    struct bdev *d = drv;
    /* After a disconnect, or at blkback_free (nothing in flight then). */
    vbd_free(d->vbd);
    if (d->vol)
        volume_detach(d->vol);
    free(d);
}

static const struct xenbus_dev_ops blkdev_ops = {
    .create = blkdev_create,
    .features = blkdev_features,
    .connect = blkdev_connect,
    .disconnect = blkdev_disconnect,
    .destroy = blkdev_destroy,
};

/* ---- blkback.h ---------------------------------------------------------- */

/* Ports taken per call: a guest notifying in a loop re-raises its port as
 * soon as it is unmasked, so "until none is pending" may never come.  Past
 * the budget the rest waits for the deferred call at the end of this turn
 * (not for the fd: the sim platform hands out ports it already took from
 * its own epoll, which would not report them again). */
#define EVTCHN_BUDGET 256

static void evtchn_drain(struct blkback *bb)
{
    int port;
    for (unsigned n = 0; (port = xp_evtchn_pending(bb->xp)) >= 0;) {
        xp_evtchn_unmask(bb->xp, (uint32_t)port);   /* before looking: a later kick is not lost */
        vbd_kick_port(bb->ports, port);
        if (++n == EVTCHN_BUDGET) {
            evloop_defer(bb->el, &bb->evtchn_more);
            return;
        }
    }
}

static void evtchn_more(struct evloop *el, void *arg) { evtchn_drain(arg); }

/* ---- hand-over ---------------------------------------------------------- */

unsigned blkback_inflight(struct blkback *bb, int *ndev)
{
    unsigned n = 0;
    int nd = 0;
    for (struct xenbus_dev *xd = xenbus_dev_next(bb->bus, NULL); xd; xd = xenbus_dev_next(bb->bus, xd)) {
        struct bdev *d = xenbus_dev_drv(xd);
        if (d->vbd) {
            n += vbd_inflight(d->vbd);
            nd += xenbus_dev_state(xd) == XenbusStateConnected;     /* not one closing */
        }
    }
    if (ndev)
        *ndev = nd;
    return n;
}

/* From the loop, never inside a completion: devices may have gone since. */
static void quiesce_check(struct evloop *el, void *arg)
{
    struct blkback *bb = arg;
    if (!bb->quiesced || !bb->drained || blkback_inflight(bb, NULL))
        return;
    void (*cb)(void *) = bb->drained;
    bb->drained = NULL;
    cb(bb->drained_arg);
}

static void vbd_paused(void *arg)
{
    struct blkback *bb = arg;
    evloop_defer(bb->el, &bb->quiesce_check);
}

void blkback_quiesce(struct blkback *bb, void (*done)(void *arg), void *arg)
{
    bb->quiesced = true;
    bb->drained = done;
    bb->drained_arg = arg;
    for (struct xenbus_dev *xd = xenbus_dev_next(bb->bus, NULL); xd; xd = xenbus_dev_next(bb->bus, xd)) {
        struct bdev *d = xenbus_dev_drv(xd);
        if (d->vbd)
            vbd_pause(d->vbd, vbd_paused, bb);
    }
    evloop_defer(bb->el, &bb->quiesce_check);
}

void blkback_resume(struct blkback *bb)
{
    bb->quiesced = false;
    bb->drained = NULL;
    evloop_defer_cancel(bb->el, &bb->quiesce_check);
    for (struct xenbus_dev *xd = xenbus_dev_next(bb->bus, NULL); xd; xd = xenbus_dev_next(bb->bus, xd)) {
        struct bdev *d = xenbus_dev_drv(xd);
        if (d->vbd)
            vbd_unpause(d->vbd);
    }
}

void blkback_on_connect(struct blkback *bb, void (*cb)(void *arg, const char *dev), void *arg)
{
    bb->on_connect = cb;
    bb->on_connect_arg = arg;
}

static void evtchn_cb(struct evloop *el, int fd, unsigned events, void *arg) { evtchn_drain(arg); }

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
    if (!bb || !(bb->ports = port_table_new()) ||
        !(bb->bus = xenbus_new(el, xp, cfg->device_type, &blkdev_ops, bb))) {
        if (bb)
            port_table_free(bb->ports);
        free(bb);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    bb->el = el;
    bb->xp = xp;
    evloop_defer_init(&bb->evtchn_more, evtchn_more, bb);
    evloop_defer_init(&bb->quiesce_check, quiesce_check, bb);
    bb->vols = vols;
    bb->cfg = *cfg;
    return bb;
}

int blkback_start(struct blkback *bb, char *err, size_t errlen)
{
    int efd = xp_evtchn_fd(bb->xp);
    if (efd < 0) {
        snprintf(err, errlen, "platform %s has no event-channel fd: %s", xp_name(bb->xp), strerror(errno));
        return -1;
    }
    if (evloop_add_fd(bb->el, efd, EV_READ, evtchn_cb, bb)) {
        snprintf(err, errlen, "event loop: %s", strerror(errno));
        return -1;
    }
    bb->evtchn_added = true;
    return xenbus_start(bb->bus, err, errlen);
}

int blkback_list(struct blkback *bb, struct blkback_dev_info *out, int max)
{
    int n = 0;
    for (struct xenbus_dev *xd = xenbus_dev_next(bb->bus, NULL); xd; xd = xenbus_dev_next(bb->bus, xd), n++) {
        if (n >= max)
            continue;
        struct bdev *d = xenbus_dev_drv(xd);
        struct blkback_dev_info *i = &out[n];
        memset(i, 0, sizeof(*i));
        i->domid = xenbus_dev_domid(xd);
        i->devid = xenbus_dev_devid(xd);
        snprintf(i->state, sizeof(i->state), "%s", xenbus_state_name(xenbus_dev_state(xd)));
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

void blkback_shutdown(struct blkback *bb, void (*done)(void *arg), void *arg)
{
    xenbus_shutdown(bb->bus, done, arg);
}

void blkback_free(struct blkback *bb)
{
    if (!bb)
        return;
    xenbus_free(bb->bus);
    evloop_defer_cancel(bb->el, &bb->evtchn_more);
    evloop_defer_cancel(bb->el, &bb->quiesce_check);
    if (bb->evtchn_added)
        evloop_del_fd(bb->el, xp_evtchn_fd(bb->xp));
    port_table_free(bb->ports);
    free(bb);
}
