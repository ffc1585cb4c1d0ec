/* xenplat_real.c — the real platform: libxengnttab (gntdev for the backend,
 * gntshr/gntalloc for a frontend) and libxenevtchn.
 *
 * Off Xen the device nodes are missing and every open fails with ENOENT;
 * xp_open_real then returns NULL with ENOENT and prints nothing (the libraries
 * get a logger that discards, since their default one writes to stderr).
 * gntdev and gntalloc are optional per role: dom0 usually has no gntalloc and
 * a domU may have no gntdev, so a missing one only fails the calls that need it.
 */
#include "xenplat_impl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>

#include <xenstore.h>
#include <xengnttab.h>
#include <xenevtchn.h>
#include <xentoollog.h>
#include <xen/grant_table.h>

/* Grants one gntdev handle may map at once: multi-page rings for every queue
 * plus indirect pages of every in-flight request, for many devices. */
#define REAL_MAX_GRANTS 65536u

struct real {
    xengnttab_handle *gt;
    xengntshr_handle *gs;
    xenevtchn_handle *ev;
};

static void null_vmessage(struct xentoollog_logger *l, xentoollog_level level, int errnoval,
                          const char *context, const char *format, va_list al)
{
}

static void null_destroy(struct xentoollog_logger *l)
{
}

static struct xentoollog_logger null_logger = {
    .vmessage = null_vmessage,
    .progress = NULL,
    .destroy = null_destroy,
};

static struct real *R_(struct xp *xp) { return xp->priv; }

static void *real_gnt_map(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable)
{
    struct real *r = R_(xp);
    if (!r->gt) {
        errno = ENODEV;
        return NULL;
    }
    uint32_t *copy = malloc((size_t)count * sizeof(*copy));   /* the library wants non-const */
    if (!copy) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(copy, refs, (size_t)count * sizeof(*copy));
    void *p = xengnttab_map_domain_grant_refs(r->gt, count, domid, copy,
                                              PROT_READ | (writable ? PROT_WRITE : 0));
    int e = errno;
    free(copy);
    errno = e;
    return p;
}

static int real_gnt_unmap(struct xp *xp, void *addr, uint32_t count)
{
    struct real *r = R_(xp);
    if (!r->gt) {
        errno = ENODEV;
        return -1;
    }
    return xengnttab_unmap(r->gt, addr, count);
}

static int real_gnt_copy(struct xp *xp, uint32_t count, struct xp_gcopy *segs)
{
    struct real *r = R_(xp);
    if (!r->gt) {
        errno = ENODEV;
        return -1;
    }
    xengnttab_grant_copy_segment_t *g = calloc(count ? count : 1, sizeof(*g));
    if (!g) {
        errno = ENOMEM;
        return -1;
    }
    for (uint32_t i = 0; i < count; i++) {
        const struct xp_gcopy *c = &segs[i];
        g[i].len = c->len;
        if (c->to_guest) {
            g[i].source.virt = c->local;
            g[i].dest.foreign.ref = c->ref;
            g[i].dest.foreign.offset = c->offset;
            g[i].dest.foreign.domid = c->domid;
            g[i].flags = GNTCOPY_dest_gref;
        } else {
            g[i].source.foreign.ref = c->ref;
            g[i].source.foreign.offset = c->offset;
            g[i].source.foreign.domid = c->domid;
            g[i].dest.virt = c->local;
            g[i].flags = GNTCOPY_source_gref;
        }
    }
    int rc = xengnttab_grant_copy(r->gt, count, g);
    int e = errno;
    for (uint32_t i = 0; i < count; i++) {
        segs[i].status = rc < 0 ? GNTST_general_error : g[i].status;
        if (segs[i].status != GNTST_okay && rc == 0) {
            rc = -1;
            e = EINVAL;
        }
    }
    free(g);
    errno = e;
    return rc < 0 ? -1 : 0;
}

static void *real_gnt_share(struct xp *xp, uint16_t domid, uint32_t count, uint32_t *refs, bool writable)
{
    struct real *r = R_(xp);
    if (!r->gs) {
        errno = ENODEV;
        return NULL;
    }
    return xengntshr_share_pages(r->gs, domid, (int)count, refs, writable);
}

static int real_gnt_unshare(struct xp *xp, void *addr, uint32_t count)
{
    struct real *r = R_(xp);
    if (!r->gs) {
        errno = ENODEV;
        return -1;
    }
    return xengntshr_unshare(r->gs, addr, count);
}

static int real_evtchn_fd(struct xp *xp)
{
    return xenevtchn_fd(R_(xp)->ev);
}

static int real_evtchn_bind_interdomain(struct xp *xp, uint16_t domid, uint32_t remote_port)
{
    return xenevtchn_bind_interdomain(R_(xp)->ev, domid, remote_port);
}

static int real_evtchn_alloc_unbound(struct xp *xp, uint16_t domid)
{
    return xenevtchn_bind_unbound_port(R_(xp)->ev, domid);
}

static int real_evtchn_unbind(struct xp *xp, uint32_t port)
{
    return xenevtchn_unbind(R_(xp)->ev, port);
}

static int real_evtchn_notify(struct xp *xp, uint32_t port)
{
    return xenevtchn_notify(R_(xp)->ev, port);
}

static int real_evtchn_pending(struct xp *xp)
{
    /* xenevtchn_pending may block even on a non-blocking fd (see its header),
     * so look first. */
    struct pollfd pfd = { .fd = xenevtchn_fd(R_(xp)->ev), .events = POLLIN };
    if (poll(&pfd, 1, 0) <= 0) {
        errno = EAGAIN;
        return -1;
    }
    return xenevtchn_pending(R_(xp)->ev);
}

static int real_evtchn_unmask(struct xp *xp, uint32_t port)
{
    return xenevtchn_unmask(R_(xp)->ev, port);
}

static void real_close(struct xp *xp)
{
    struct real *r = R_(xp);
    if (!r)
        return;
    if (r->gt)
        xengnttab_close(r->gt);
    if (r->gs)
        xengntshr_close(r->gs);
    if (r->ev)
        xenevtchn_close(r->ev);
    free(r);
}

static const struct xp_ops real_ops = {
    .name = "real",
    .close = real_close,
    .gnt_map = real_gnt_map,
    .gnt_unmap = real_gnt_unmap,
    .gnt_copy = real_gnt_copy,
    .gnt_share = real_gnt_share,
    .gnt_unshare = real_gnt_unshare,
    .evtchn_fd = real_evtchn_fd,
    .evtchn_bind_interdomain = real_evtchn_bind_interdomain,
    .evtchn_alloc_unbound = real_evtchn_alloc_unbound,
    .evtchn_unbind = real_evtchn_unbind,
    .evtchn_notify = real_evtchn_notify,
    .evtchn_pending = real_evtchn_pending,
    .evtchn_unmask = real_evtchn_unmask,
};

struct xp *xp_open_real(void)
{
    struct real *r = calloc(1, sizeof(*r));
    struct xs_handle *xs = NULL;
    struct xp *xp = NULL;
    int e = ENOMEM;
    if (!r)
        goto fail;
    /* The event-channel device exists in every Xen domain and nowhere else,
     * which makes it the "are we on Xen" probe. */
    r->ev = xenevtchn_open(&null_logger, 0);
    if (!r->ev || !(xs = xs_open(0))) {
        e = errno ? errno : ENOENT;
        goto fail;
    }
    r->gt = xengnttab_open(&null_logger, 0);
    if (r->gt)
        xengnttab_set_max_grants(r->gt, REAL_MAX_GRANTS);
    r->gs = xengntshr_open(&null_logger, 0);
    /* Our domid: the toolstack writes it under our own domain path. */
    uint16_t domid = 0;
    char *v = xs_read(xs, XBT_NULL, "domid", NULL);
    if (v) {
        domid = (uint16_t)strtoul(v, NULL, 10);
        free(v);
    }
    /* xenevtchn_pending is only called after poll() says readable, but a
     * non-blocking fd keeps a spurious wakeup from stalling the loop. */
    int fd = xenevtchn_fd(r->ev);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (!(xp = xp_alloc(&real_ops, xs, domid)))
        goto fail;
    xp->priv = r;
    return xp;
fail:
    if (xs)
        xs_close(xs);
    if (r) {
        struct xp tmp = { .priv = r };
        real_close(&tmp);
    }
    errno = e;
    return NULL;
}
