/* xenplat.c — the platform-independent half of the seam: XenStore through
 * libxenstore (identical for real and sim), and dispatch of grant and event
 * channel calls to the platform's ops. */
#include "xenplat_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

struct xp *xp_alloc(const struct xp_ops *ops, struct xs_handle *xs, uint16_t domid)
{
    struct xp *xp = calloc(1, sizeof(*xp));
    if (!xp)
        return NULL;
    xp->ops = ops;
    xp->xs = xs;
    xp->domid = domid;
    return xp;
}

void xp_close(struct xp *xp)
{
    if (!xp)
        return;
    xp->ops->close(xp);
    if (xp->xs)
        xs_close(xp->xs);
    free(xp);
}

const char *xp_name(const struct xp *xp) { return xp->ops->name; }
uint16_t xp_domid(const struct xp *xp) { return xp->domid; }

/* ---- XenStore ---------------------------------------------------------- */

char *xp_xs_read(struct xp *xp, xp_txn_t t, const char *path, unsigned *len)
{
    unsigned l = 0;
    char *v = xs_read(xp->xs, t, path, &l);
    if (v && len)
        *len = l;
    return v;
}

int xp_xs_write(struct xp *xp, xp_txn_t t, const char *path, const char *value)
{
    return xs_write(xp->xs, t, path, value, (unsigned)strlen(value)) ? 0 : -1;
}

int xp_xs_printf(struct xp *xp, xp_txn_t t, const char *path, const char *fmt, ...)
{
    va_list ap;
    char *v;
    va_start(ap, fmt);
    int n = vasprintf(&v, fmt, ap);
    va_end(ap);
    if (n < 0) {
        errno = ENOMEM;
        return -1;
    }
    int r = xp_xs_write(xp, t, path, v);
    free(v);
    return r;
}

int xp_xs_mkdir(struct xp *xp, xp_txn_t t, const char *path)
{
    return xs_mkdir(xp->xs, t, path) ? 0 : -1;
}

int xp_xs_rm(struct xp *xp, xp_txn_t t, const char *path)
{
    return xs_rm(xp->xs, t, path) ? 0 : -1;
}

char **xp_xs_directory(struct xp *xp, xp_txn_t t, const char *path, unsigned *num)
{
    unsigned n = 0;
    char **d = xs_directory(xp->xs, t, path, &n);
    if (d && num)
        *num = n;
    return d;
}

int xp_xs_set_perms_rw(struct xp *xp, xp_txn_t t, const char *path, uint16_t owner, uint16_t reader)
{
    /* The first entry names the owner (full access) and the default for
     * everyone else (none); the second grants the peer read access. */
    struct xs_permissions p[2] = {
        { .id = owner, .perms = XS_PERM_NONE },
        { .id = reader, .perms = XS_PERM_READ },
    };
    return xs_set_permissions(xp->xs, t, path, p, 2) ? 0 : -1;
}

xp_txn_t xp_xs_txn_start(struct xp *xp)
{
    return xs_transaction_start(xp->xs);
}

int xp_xs_txn_end(struct xp *xp, xp_txn_t t, bool abort)
{
    /* libxenstore reports a conflicting commit as false with errno EAGAIN. */
    return xs_transaction_end(xp->xs, t, abort) ? 0 : -1;
}

int xp_xs_watch(struct xp *xp, const char *path, const char *token)
{
    return xs_watch(xp->xs, path, token) ? 0 : -1;
}

int xp_xs_unwatch(struct xp *xp, const char *path, const char *token)
{
    return xs_unwatch(xp->xs, path, token) ? 0 : -1;
}

int xp_xs_fd(struct xp *xp)
{
    return xs_fileno(xp->xs);
}

int xp_xs_next_watch(struct xp *xp, char **path, char **token)
{
    char **v = xs_check_watch(xp->xs);
    if (!v)
        return errno == EAGAIN ? 0 : -1;
    *path = strdup(v[XS_WATCH_PATH]);
    *token = strdup(v[XS_WATCH_TOKEN]);
    free(v);
    if (!*path || !*token) {
        free(*path);
        free(*token);
        errno = ENOMEM;
        return -1;
    }
    return 1;
}

/* ---- grants and event channels: per platform ---------------------------- */

void *xp_gnt_map(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable)
{
    return xp->ops->gnt_map(xp, domid, count, refs, writable);
}

int xp_gnt_unmap(struct xp *xp, void *addr, uint32_t count)
{
    return xp->ops->gnt_unmap(xp, addr, count);
}

int xp_gnt_copy(struct xp *xp, uint32_t count, struct xp_gcopy *segs)
{
    return xp->ops->gnt_copy(xp, count, segs);
}

void *xp_gnt_share(struct xp *xp, uint16_t domid, uint32_t count, uint32_t *refs, bool writable)
{
    return xp->ops->gnt_share(xp, domid, count, refs, writable);
}

int xp_gnt_unshare(struct xp *xp, void *addr, uint32_t count)
{
    return xp->ops->gnt_unshare(xp, addr, count);
}

int xp_evtchn_fd(struct xp *xp) { return xp->ops->evtchn_fd(xp); }

int xp_evtchn_bind_interdomain(struct xp *xp, uint16_t domid, uint32_t remote_port)
{
    return xp->ops->evtchn_bind_interdomain(xp, domid, remote_port);
}

int xp_evtchn_alloc_unbound(struct xp *xp, uint16_t domid)
{
    return xp->ops->evtchn_alloc_unbound(xp, domid);
}

int xp_evtchn_unbind(struct xp *xp, uint32_t port) { return xp->ops->evtchn_unbind(xp, port); }
int xp_evtchn_notify(struct xp *xp, uint32_t port) { return xp->ops->evtchn_notify(xp, port); }
int xp_evtchn_pending(struct xp *xp) { return xp->ops->evtchn_pending(xp); }
int xp_evtchn_unmask(struct xp *xp, uint32_t port) { return xp->ops->evtchn_unmask(xp, port); }
