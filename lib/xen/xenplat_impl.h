/* xenplat_impl.h — internal to the platform seam: the per-platform vtable.
 *
 * XenStore is not in the vtable: both platforms use the real libxenstore
 * (sim points it at memx-simxsd through XENSTORED_PATH), so xenplat.c calls
 * it directly.  Grants and event channels differ and dispatch through ops.
 */
#ifndef MEMX_XENPLAT_IMPL_H
#define MEMX_XENPLAT_IMPL_H

#include "xenplat.h"

struct xs_handle;

struct xp_ops {
    const char *name;
    void  (*close)(struct xp *xp);
    void *(*gnt_map)(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable);
    int   (*gnt_unmap)(struct xp *xp, void *addr, uint32_t count);
    int   (*gnt_copy)(struct xp *xp, uint32_t count, struct xp_gcopy *segs);
    void *(*gnt_share)(struct xp *xp, uint16_t domid, uint32_t count, uint32_t *refs, bool writable);
    int   (*gnt_unshare)(struct xp *xp, void *addr, uint32_t count);
    int   (*evtchn_fd)(struct xp *xp);
    int   (*evtchn_bind_interdomain)(struct xp *xp, uint16_t domid, uint32_t remote_port);
    int   (*evtchn_alloc_unbound)(struct xp *xp, uint16_t domid);
    int   (*evtchn_unbind)(struct xp *xp, uint32_t port);
    int   (*evtchn_notify)(struct xp *xp, uint32_t port);
    int   (*evtchn_pending)(struct xp *xp);
    int   (*evtchn_unmask)(struct xp *xp, uint32_t port);
};

struct xp {
    const struct xp_ops *ops;
    struct xs_handle *xs;
    uint16_t domid;
    void *priv;                 /* the platform's own state */
};

/* Allocates the common part; the platform fills priv.  NULL on ENOMEM. */
struct xp *xp_alloc(const struct xp_ops *ops, struct xs_handle *xs, uint16_t domid);

#endif
