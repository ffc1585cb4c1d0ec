/* front_xenbus.c — the frontend half of the blkif XenBus handshake and
 * teardown, in the order Linux xen-blkfront does them (talk_to_blkback,
 * blkfront_connect, blkfront_closing). */
#include "front_int.h"

#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <xen/io/protocols.h>
#include <xen/io/xenbus.h>

static const char *const state_names[] = {
    "Unknown", "Initialising", "InitWait", "Initialised", "Connected", "Closing", "Closed", "Reconfiguring",
    "Reconfigured",
};

static const char *state_name(int s)
{
    return s >= 0 && s < (int)(sizeof(state_names) / sizeof(state_names[0])) ? state_names[s] : "gone";
}

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads dir/node as an unsigned number; def when the node is absent.
 * -1 (EINVAL) when it is present but not a number. */
static int read_ull(struct memxfront *f, const char *dir, const char *node, unsigned long long def,
                    unsigned long long *out)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, node);
    char *v = xp_xs_read(f->xp, XP_TXN_NULL, path, NULL);
    if (!v) {
        *out = def;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    int bad = errno || end == v || *end || v[0] == '-';
    free(v);
    if (bad) {
        errno = EINVAL;
        return -1;
    }
    *out = x;
    return 0;
}

int mf_backend_state(struct memxfront *f)
{
    unsigned long long s;
    if (read_ull(f, f->info.backend, "state", ~0ull, &s) < 0 || s == ~0ull || s > XenbusStateReconfigured)
        return -1;
    return (int)s;
}

static int set_state(struct memxfront *f, int s)
{
    char path[160];
    snprintf(path, sizeof(path), "%s/state", f->front);
    if (xp_xs_printf(f->xp, XP_TXN_NULL, path, "%d", s) < 0) {
        mx_err("vbd %s: cannot write state %s: %s", f->front, state_name(s), strerror(errno));
        return -1;
    }
    mx_debug("vbd %s: frontend -> %s", f->front, state_name(s));
    return 0;
}

/* Returns how many watch events were queued. */
static unsigned drain_watches(struct memxfront *f)
{
    char *path, *token;
    unsigned n = 0;
    while (xp_xs_next_watch(f->xp, &path, &token) == 1) {
        free(path);
        free(token);
        n++;
    }
    return n;
}

/* Waits until the backend state is in mask (bit per XenbusState; bit 31 means
 * "node gone").  Returns the state seen, or -1 on timeout. */
#define GONE_BIT (1u << 31)
static int wait_backend(struct memxfront *f, unsigned mask, unsigned timeout_ms)
{
    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int s = mf_backend_state(f);
        if ((s < 0 && (mask & GONE_BIT)) || (s >= 0 && (mask & (1u << s))))
            return s;
        uint64_t now = now_ms();
        if (now >= deadline) {
            errno = ETIMEDOUT;
            return -2;
        }
        /* The watch wakes us early; the re-read above is what decides, so a
         * watch event taken by another user of this xp costs at most 100 ms. */
        struct pollfd p = { .fd = xp_xs_fd(f->xp), .events = POLLIN };
        uint64_t left = deadline - now;
        poll(&p, 1, left < 100 ? (int)left : 100);
        drain_watches(f);
    }
}
#define BIT(s) (1u << (s))

/* Removes queue/ring nodes a previous connection may have left, so the
 * backend never reads a stale layout. */
static void rm_stale(struct memxfront *f, xp_txn_t t)
{
    unsigned n = 0;
    char **ents = xp_xs_directory(f->xp, t, f->front, &n);
    char path[256];
    for (unsigned i = 0; ents && i < n; i++) {
        if (strncmp(ents[i], "queue-", 6) && strncmp(ents[i], "ring-ref", 8) &&
            strcmp(ents[i], "multi-queue-num-queues") && strcmp(ents[i], "ring-page-order") &&
            strcmp(ents[i], "event-channel"))
            continue;
        snprintf(path, sizeof(path), "%s/%s", f->front, ents[i]);
        xp_xs_rm(f->xp, t, path);
    }
    free(ents);
}

static int write_queue_nodes(struct memxfront *f, xp_txn_t t, const char *dir, const struct mf_queue *q)
{
    char path[256];
    unsigned pages = 1u << f->ring_order;
    if (f->opts.debug_partial_mq && q->idx == 1) {
        /* The hostile connect: this queue's ring-ref left out. */
    } else if (pages == 1) {
        snprintf(path, sizeof(path), "%s/ring-ref", dir);
        if (xp_xs_printf(f->xp, t, path, "%u", q->ring_refs[0]) < 0)
            return -1;
    } else {
        for (unsigned i = 0; i < pages; i++) {
            snprintf(path, sizeof(path), "%s/ring-ref%u", dir, i);
            if (xp_xs_printf(f->xp, t, path, "%u", q->ring_refs[i]) < 0)
                return -1;
        }
    }
    snprintf(path, sizeof(path), "%s/event-channel", dir);
    return xp_xs_printf(f->xp, t, path, "%d", q->port);
}

/* Publishes the rings in ONE transaction, as the backend reads them in one
 * go once we say Initialised. */
static int publish_rings(struct memxfront *f, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        xp_txn_t t = xp_xs_txn_start(f->xp);
        if (t == XP_TXN_NULL) {
            seterr(err, errlen, "vbd %s: cannot start a XenStore transaction: %s", f->front, strerror(errno));
            return -1;
        }
        rm_stale(f, t);
        char path[256];
        int rc = 0;
        if (f->nq == 1) {
            rc = write_queue_nodes(f, t, f->front, &f->q[0]);
        } else {
            snprintf(path, sizeof(path), "%s/multi-queue-num-queues", f->front);
            rc = xp_xs_printf(f->xp, t, path, "%u", f->nq);
            for (unsigned i = 0; rc == 0 && i < f->nq; i++) {
                char dir[160];
                snprintf(dir, sizeof(dir), "%s/queue-%u", f->front, i);
                rc = write_queue_nodes(f, t, dir, &f->q[i]);
            }
        }
        if (rc == 0 && f->ring_order > 0) {
            snprintf(path, sizeof(path), "%s/ring-page-order", f->front);
            rc = xp_xs_printf(f->xp, t, path, "%u", f->ring_order);
        }
        if (rc == 0) {
            snprintf(path, sizeof(path), "%s/protocol", f->front);
            rc = xp_xs_write(f->xp, t, path, XEN_IO_PROTO_ABI_NATIVE);
        }
        if (rc == 0) {
            snprintf(path, sizeof(path), "%s/feature-persistent", f->front);
            rc = xp_xs_write(f->xp, t, path, "0");
        }
        if (rc < 0) {
            int e = errno;
            xp_xs_txn_end(f->xp, t, true);
            seterr(err, errlen, "vbd %s: cannot write ring nodes: %s", f->front, strerror(e));
            return -1;
        }
        if (xp_xs_txn_end(f->xp, t, false) == 0)
            return 0;
        if (errno != EAGAIN) {
            seterr(err, errlen, "vbd %s: XenStore transaction failed: %s", f->front, strerror(errno));
            return -1;
        }
    }
    seterr(err, errlen, "vbd %s: XenStore transaction kept conflicting", f->front);
    return -1;
}

static int read_backend_features(struct memxfront *f, char *err, size_t errlen)
{
    unsigned long long order, pages, maxq;
    const char *b = f->info.backend;
    if (read_ull(f, b, "max-ring-page-order", 0, &order) < 0 || read_ull(f, b, "max-ring-pages", 1, &pages) < 0 ||
        read_ull(f, b, "multi-queue-max-queues", 1, &maxq) < 0) {
        seterr(err, errlen, "vbd %s: backend %s has a malformed ring/queue feature node", f->front, b);
        return -1;
    }
    /* blkif.h: max-ring-pages is the legacy spelling of 2^max-ring-page-order. */
    unsigned long long from_pages = 0;
    while ((2ull << from_pages) <= pages)
        from_pages++;
    if (from_pages > order)
        order = from_pages;
    f->ring_order = f->opts.ring_page_order;
    if (f->ring_order > order)
        f->ring_order = (unsigned)order;
    if (f->ring_order > MF_MAX_RING_ORDER)
        f->ring_order = MF_MAX_RING_ORDER;
    f->nq = f->opts.nr_queues ? f->opts.nr_queues : 1;
    if (f->nq > maxq)
        f->nq = maxq ? (unsigned)maxq : 1;
    if (f->nq > MF_MAX_QUEUES)
        f->nq = MF_MAX_QUEUES;
    return 0;
}

static int read_disk(struct memxfront *f, char *err, size_t errlen)
{
    const char *b = f->info.backend;
    unsigned long long sectors, ssize, info, flush, barrier, discard, ind;
    if (read_ull(f, b, "sectors", ~0ull, &sectors) < 0 || sectors == ~0ull) {
        seterr(err, errlen, "vbd %s: backend %s is Connected but has no valid 'sectors'", f->front, b);
        return -1;
    }
    if (read_ull(f, b, "sector-size", 512, &ssize) < 0 || ssize < 512 || ssize > XP_PAGE_SIZE ||
        (ssize & (ssize - 1))) {
        seterr(err, errlen, "vbd %s: backend %s has an invalid 'sector-size'", f->front, b);
        return -1;
    }
    if (read_ull(f, b, "info", 0, &info) < 0 || read_ull(f, b, "feature-flush-cache", 0, &flush) < 0 ||
        read_ull(f, b, "feature-barrier", 0, &barrier) < 0 || read_ull(f, b, "feature-discard", 0, &discard) < 0 ||
        read_ull(f, b, "feature-max-indirect-segments", 0, &ind) < 0) {
        seterr(err, errlen, "vbd %s: backend %s has a malformed feature node", f->front, b);
        return -1;
    }
    struct memxfront_info *in = &f->info;
    in->sectors = sectors;
    in->size_bytes = sectors * 512u;
    in->sector_size = (unsigned)ssize;
    in->vdisk_info = (unsigned)info;
    in->readonly = (info & VDISK_READONLY) != 0;
    in->flush = flush || barrier;
    f->flush_op = flush ? BLKIF_OP_FLUSH_DISKCACHE : BLKIF_OP_WRITE_BARRIER;
    in->discard = discard != 0;
    unsigned segs = BLKIF_MAX_SEGMENTS_PER_REQUEST;
    if (f->opts.max_indirect_segs && ind > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
        unsigned long long s = ind < f->opts.max_indirect_segs ? ind : f->opts.max_indirect_segs;
        if (s > MF_MAX_INDIRECT)
            s = MF_MAX_INDIRECT;
        if (s > segs)
            segs = (unsigned)s;
    }
    in->max_segs = segs;
    in->max_io = (size_t)segs * XP_PAGE_SIZE;
    return 0;
}

/* A backend found Connected/Closing from an earlier session is walked back
 * to Closed first, so the handshake starts from a known place. */
static int reset_stale(struct memxfront *f, unsigned tmo, char *err, size_t errlen)
{
    int s = mf_backend_state(f);
    if (s != XenbusStateInitialised && s != XenbusStateConnected && s != XenbusStateClosing)
        return 0;
    mx_info("vbd %s: backend is %s from an earlier session; closing it first", f->front, state_name(s));
    if (set_state(f, XenbusStateClosing) < 0)
        return -1;
    wait_backend(f, BIT(XenbusStateClosing) | BIT(XenbusStateClosed) | GONE_BIT, tmo);
    if (set_state(f, XenbusStateClosed) < 0)
        return -1;
    if (wait_backend(f, BIT(XenbusStateClosed) | BIT(XenbusStateInitWait) | GONE_BIT, tmo) < -1) {
        seterr(err, errlen, "vbd %s: backend stuck in %s from an earlier session", f->front,
               state_name(mf_backend_state(f)));
        return -1;
    }
    return 0;
}

void memxfront_opts_default(struct memxfront_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ring_page_order = MF_MAX_RING_ORDER;
    o->nr_queues = 1;
    o->max_indirect_segs = 32;
    o->timeout_ms = 10000;
}

struct memxfront *memxfront_open(struct xp *xp, const char *devpath, const struct memxfront_opts *opts,
                                 char *err, size_t errlen)
{
    struct memxfront_opts def;
    if (!opts) {
        memxfront_opts_default(&def);
        opts = &def;
    }
    if (!devpath || strlen(devpath) >= sizeof(((struct memxfront *)0)->front) || devpath[0] != '/') {
        seterr(err, errlen, "frontend path '%s' must be absolute, e.g. /local/domain/3/device/vbd/51728",
               devpath ? devpath : "");
        errno = EINVAL;
        return NULL;
    }
    if (opts->max_indirect_segs > MF_MAX_INDIRECT || opts->ring_page_order > MF_MAX_RING_ORDER ||
        opts->nr_queues > MF_MAX_QUEUES || opts->bounce_pages > MF_MAX_POOL_PAGES) {
        seterr(err, errlen, "vbd %s: option out of range (ring order <= %u, queues <= %u, indirect <= %u, "
               "bounce pages <= %u)", devpath, MF_MAX_RING_ORDER, MF_MAX_QUEUES, MF_MAX_INDIRECT,
               MF_MAX_POOL_PAGES);
        errno = EINVAL;
        return NULL;
    }
    struct memxfront *f = calloc(1, sizeof(*f));
    if (!f) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    f->xp = xp;
    f->opts = *opts;
    unsigned tmo = opts->timeout_ms ? opts->timeout_ms : 10000;
    f->epfd = -1;
    f->steer = -1;
    for (unsigned i = 0; i < MF_MAX_QUEUES; i++)
        f->q[i].port = -1;
    snprintf(f->front, sizeof(f->front), "%s", devpath);
    snprintf(f->token, sizeof(f->token), "memxfront:%s", devpath);
    const char *slash = strrchr(devpath, '/');
    f->handle = (uint16_t)strtoul(slash + 1, NULL, 10);

    char path[256];
    snprintf(path, sizeof(path), "%s/backend", f->front);
    char *b = xp_xs_read(xp, XP_TXN_NULL, path, NULL);
    unsigned long long bid;
    if (!b) {
        seterr(err, errlen, "vbd %s: no such frontend device (cannot read %s: %s)", f->front, path,
               strerror(errno));
        goto fail;
    }
    snprintf(f->info.backend, sizeof(f->info.backend), "%s", b);
    free(b);
    if (read_ull(f, f->front, "backend-id", ~0ull, &bid) < 0 || bid > 0x7fef) {
        seterr(err, errlen, "vbd %s: missing or invalid backend-id", f->front);
        errno = EINVAL;
        goto fail;
    }
    f->info.backend_domid = (uint16_t)bid;
    snprintf(f->info.protocol, sizeof(f->info.protocol), "%s", XEN_IO_PROTO_ABI_NATIVE);

    snprintf(path, sizeof(path), "%s/state", f->info.backend);
    if (xp_xs_watch(xp, path, f->token) < 0) {
        seterr(err, errlen, "vbd %s: cannot watch %s: %s", f->front, path, strerror(errno));
        goto fail;
    }
    f->watching = true;
    if (reset_stale(f, tmo, err, errlen) < 0)
        goto fail;
    if (set_state(f, XenbusStateInitialising) < 0) {
        seterr(err, errlen, "vbd %s: cannot write frontend state: %s", f->front, strerror(errno));
        goto fail;
    }
    if (wait_backend(f, BIT(XenbusStateInitWait), tmo) < -1) {
        seterr(err, errlen, "vbd %s: backend %s did not reach InitWait within %u ms (state %s)", f->front,
               f->info.backend, tmo, state_name(mf_backend_state(f)));
        errno = ETIMEDOUT;
        goto fail;
    }
    if (read_backend_features(f, err, errlen) < 0)
        goto fail;
    for (unsigned i = 0; i < f->nq; i++) {
        f->q[i].idx = i;
        if (mf_queue_setup(f, &f->q[i], err, errlen) < 0)
            goto fail;
    }
    if (f->opts.debug_partial_mq && f->nq >= 2)
        mf_debug_prefill(f, &f->q[0], f->opts.debug_partial_mq);
    if (publish_rings(f, err, errlen) < 0 || set_state(f, XenbusStateInitialised) < 0)
        goto fail;
    int s = wait_backend(f, BIT(XenbusStateConnected) | BIT(XenbusStateClosing) | BIT(XenbusStateClosed), tmo);
    if (s != XenbusStateConnected) {
        int e = s < -1 ? ETIMEDOUT : ECONNREFUSED;
        seterr(err, errlen, "vbd %s: backend %s did not connect within %u ms (state %s)", f->front,
               f->info.backend, tmo, state_name(mf_backend_state(f)));
        errno = e;
        goto fail;
    }
    if (read_disk(f, err, errlen) < 0 || mf_data_setup(f, err, errlen) < 0)
        goto fail;

    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN };
    if (f->epfd < 0 || epoll_ctl(f->epfd, EPOLL_CTL_ADD, xp_evtchn_fd(xp), &ev) < 0 ||
        epoll_ctl(f->epfd, EPOLL_CTL_ADD, xp_xs_fd(xp), &ev) < 0) {
        seterr(err, errlen, "vbd %s: epoll: %s", f->front, strerror(errno));
        goto fail;
    }
    if (set_state(f, XenbusStateConnected) < 0) {
        seterr(err, errlen, "vbd %s: cannot write state Connected: %s", f->front, strerror(errno));
        goto fail;
    }
    mx_info("vbd %s: connected to %s (domid %u): %llu sectors, %u queue(s) x %u ring page(s), depth %u, "
            "%u segs/request%s%s", f->front, f->info.backend, f->info.backend_domid,
            (unsigned long long)f->info.sectors, f->nq, 1u << f->ring_order, f->info.queue_depth,
            f->info.max_segs, f->info.flush ? ", flush" : "", f->info.discard ? ", discard" : "");
    return f;

fail: {
        int e = errno ? errno : EIO;
        if (f->watching) {
            snprintf(path, sizeof(path), "%s/state", f->info.backend);
            xp_xs_unwatch(xp, path, f->token);
        }
        /* The backend may have mapped our rings already: tell it we are gone
         * before revoking the grants. */
        if (f->q[0].sring) {
            set_state(f, XenbusStateClosing);
            wait_backend(f, BIT(XenbusStateClosing) | BIT(XenbusStateClosed) | BIT(XenbusStateInitWait) |
                            GONE_BIT, 2000);
            set_state(f, XenbusStateClosed);
            wait_backend(f, BIT(XenbusStateClosed) | BIT(XenbusStateInitWait) | GONE_BIT, 2000);
        }
        mf_release(f);
        if (f->epfd >= 0)
            close(f->epfd);
        free(f);
        errno = e;
        return NULL;
    }
}

bool mf_check_backend(struct memxfront *f)
{
    /* Only a fired watch can mean a state change: no XenStore round trip on
     * the I/O path otherwise. */
    if (!drain_watches(f))
        return !f->dead;
    int s = mf_backend_state(f);
    if (s == XenbusStateConnected) {
        if (f->backend_restarting) {
            f->backend_restarting = false;
            mx_info("vbd %s: backend %s Connected again; %u request(s) still on the ring", f->front,
                    f->info.backend, f->inflight);
            for (unsigned i = 0; i < f->nq; i++)
                xp_evtchn_notify(f->xp, (uint32_t)f->q[i].port);
        }
        return true;
    }
    if (!f->dead && (s == XenbusStateInitWait || s == XenbusStateInitialised)) {
        /* Not a disconnect: blkfront ignores a backend's InitWait while it is
         * connected (blkback_changed), so a backend restart must be survivable. */
        if (!f->backend_restarting)
            mx_info("vbd %s: backend %s went %s while connected (a restarted backend); keeping %u "
                    "request(s) on the ring", f->front, f->info.backend, state_name(s), f->inflight);
        f->backend_restarting = true;
        return true;
    }
    if (!f->dead)
        mx_warn("vbd %s: backend %s went %s; failing %u in-flight request(s)", f->front, f->info.backend,
                state_name(s), f->inflight);
    f->dead = true;
    return false;
}

int memxfront_close(struct memxfront *f, char *err, size_t errlen)
{
    if (!f)
        return 0;
    unsigned tmo = f->opts.timeout_ms ? f->opts.timeout_ms : 10000;
    uint64_t deadline = now_ms() + tmo;
    /* Let what is in flight finish while the backend is still there. */
    while (f->inflight && !f->dead && now_ms() < deadline)
        memxfront_wait(f, 100);
    mf_fail_all(f, -ENOTCONN);
    int rc = 0;
    set_state(f, XenbusStateClosing);
    int s = wait_backend(f, BIT(XenbusStateClosing) | BIT(XenbusStateClosed) | GONE_BIT, tmo);
    set_state(f, XenbusStateClosed);
    if (s >= -1)
        s = wait_backend(f, BIT(XenbusStateClosed) | BIT(XenbusStateInitWait) | GONE_BIT, tmo);
    if (s < -1) {
        seterr(err, errlen, "vbd %s: backend %s stayed %s; revoking grants anyway", f->front, f->info.backend,
               state_name(mf_backend_state(f)));
        mx_warn("vbd %s: backend %s did not close within %u ms", f->front, f->info.backend, tmo);
        rc = -1;
        errno = ETIMEDOUT;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/state", f->info.backend);
    xp_xs_unwatch(f->xp, path, f->token);
    drain_watches(f);
    mf_release(f);
    if (f->epfd >= 0)
        close(f->epfd);
    mx_info("vbd %s: closed", f->front);
    free(f);
    return rc;
}

const struct memxfront_info *memxfront_info(const struct memxfront *f) { return &f->info; }

int memxfront_debug_backend_state(struct memxfront *f) { return mf_backend_state(f); }
