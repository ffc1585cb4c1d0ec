/* xenplat_sim.c — the sim platform: Xen's grant-table and event-channel
 * semantics between ordinary Linux processes, no hypervisor (xenplat.h says
 * how to start one).  This file opens and closes a sim xp and holds its ops
 * table; the grant tables are xenplat_sim_gnt.c (a per-domain shared file
 * checked as Xen checks refs) and the event channels xenplat_sim_evtchn.c
 * (Unix datagram sockets in one epoll set, Xen's mask-on-delivery).  XenStore
 * is the real libxenstore talking to memx-simxsd.
 */
#include "xenplat_sim_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenstore.h>

#include "log.h"

static void sim_close(struct xp *xp)
{
    struct sim *s = S_(xp);
    if (!s)
        return;
    xp_sim_evtchn_close(xp);
    xp_sim_gnt_close(xp);
    free(s->dir);
    free(s);
}

static const struct xp_ops sim_ops = {
    .name = "sim",
    .close = sim_close,
    .gnt_map = xp_sim_gnt_map,
    .gnt_unmap = xp_sim_gnt_unmap,
    .gnt_copy = xp_sim_gnt_copy,
    .gnt_share = xp_sim_gnt_share,
    .gnt_unshare = xp_sim_gnt_unshare,
    .evtchn_fd = xp_sim_evtchn_fd,
    .evtchn_bind_interdomain = xp_sim_evtchn_bind_interdomain,
    .evtchn_alloc_unbound = xp_sim_evtchn_alloc_unbound,
    .evtchn_unbind = xp_sim_evtchn_unbind,
    .evtchn_notify = xp_sim_evtchn_notify,
    .evtchn_pending = xp_sim_evtchn_pending,
    .evtchn_unmask = xp_sim_evtchn_unmask,
};

struct xp *xp_open_sim(const char *dir, uint16_t domid)
{
    char path[PATH_MAX];
    struct xp *xp = NULL;
    struct xs_handle *xs = NULL;
    int e;
    if (snprintf(path, sizeof(path), "%s/xenstore.sock", dir) >= (int)sizeof(path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    /* libxenstore reads XENSTORED_PATH when it connects; socket-only so a sim
     * process on a real Xen host can never reach the real xenstored. */
    setenv("XENSTORED_PATH", path, 1);
    xs = xs_open(XS_OPEN_SOCKETONLY);
    if (!xs) {
        e = errno;
        mx_debug("sim: no memx-simxsd at %s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    /* Makes the daemon resolve relative paths as for domain domid. */
    char id[8];
    snprintf(id, sizeof(id), "%u", domid);
    char *ok = xs_control_command(xs, "memx-set-domid", id, (unsigned)strlen(id) + 1);
    if (!ok) {
        e = errno;
        goto fail;
    }
    free(ok);
    xp = xp_alloc(&sim_ops, xs, domid);
    struct sim *s = xp ? calloc(1, sizeof(*s)) : NULL;
    if (!s) {
        e = ENOMEM;
        goto fail;
    }
    xp->priv = s;
    s->epfd = -1;
    if (!(s->dir = strdup(dir)) || xp_sim_evtchn_open(s, dir) < 0 || xp_sim_gnt_open(s, dir, domid) < 0) {
        e = errno;
        goto fail;
    }
    return xp;
fail:
    if (xp)
        xp_close(xp);
    else if (xs)
        xs_close(xs);
    errno = e;
    return NULL;
}
