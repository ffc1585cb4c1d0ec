/* xenplat_sim_impl.h — internal to the sim platform (xenplat_sim*.c): the
 * per-process state, and the grant and event-channel halves the ops table in
 * xenplat_sim.c dispatches to.  Each half owns its own fields of struct sim
 * and its own types (struct gfile and struct region in xenplat_sim_gnt.c,
 * struct port in xenplat_sim_evtchn.c).  Names carry xp_ because
 * libmemxfront.a, which carries these objects, is installed.
 */
#ifndef MEMX_XENPLAT_SIM_IMPL_H
#define MEMX_XENPLAT_SIM_IMPL_H

#include "xenplat_impl.h"

#include <stdbool.h>
#include <stdint.h>

#define SIM_MAXEV        16               /* ports taken from epoll per call */

struct gfile;
struct region;
struct port;

struct sim {
    char *dir;
    /* Grants (xenplat_sim_gnt.c). */
    struct gfile *own;          /* this domain's grant file */
    struct gfile *peers;        /* other domains' files, opened on first use */
    struct region *maps, *shares;
    /* Event channels (xenplat_sim_evtchn.c). */
    int epfd;
    /* The last epoll_wait in xp_sim_evtchn_pending returned nothing more to
     * look at: the next call may answer EAGAIN without asking the kernel
     * again (callers loop until EAGAIN; a later edge makes epfd readable, so
     * the loop comes back). */
    bool idle;
    unsigned nready;            /* ports epoll reported, not yet looked at */
    uint32_t ready[SIM_MAXEV];
    struct port *ports;
};

static inline struct sim *S_(struct xp *xp) { return xp->priv; }

/* ---- grants (xenplat_sim_gnt.c) ---------------------------------------- */
/* Opens (creating it if new) this domain's grant file DIR/gnt-<domid>.  0 or -1 with errno. */
int   xp_sim_gnt_open(struct sim *s, const char *dir, uint16_t domid);
/* Unshares and unmaps what the process still holds, closes every grant file. */
void  xp_sim_gnt_close(struct xp *xp);
void *xp_sim_gnt_map(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable);
int   xp_sim_gnt_unmap(struct xp *xp, void *addr, uint32_t count);
int   xp_sim_gnt_copy(struct xp *xp, uint32_t count, struct xp_gcopy *segs);
void *xp_sim_gnt_share(struct xp *xp, uint16_t domid, uint32_t count, uint32_t *refs, bool writable);
int   xp_sim_gnt_unshare(struct xp *xp, void *addr, uint32_t count);

/* ---- event channels (xenplat_sim_evtchn.c) ----------------------------- */
/* Creates DIR/evtchn if needed and the epoll set (s->epfd).  0 or -1 with errno. */
int  xp_sim_evtchn_open(struct sim *s, const char *dir);
/* Unbinds every port (removing its files) and closes the epoll set. */
void xp_sim_evtchn_close(struct xp *xp);
int  xp_sim_evtchn_fd(struct xp *xp);
int  xp_sim_evtchn_bind_interdomain(struct xp *xp, uint16_t domid, uint32_t remote_port);
int  xp_sim_evtchn_alloc_unbound(struct xp *xp, uint16_t domid);
int  xp_sim_evtchn_unbind(struct xp *xp, uint32_t port);
int  xp_sim_evtchn_notify(struct xp *xp, uint32_t port);
int  xp_sim_evtchn_pending(struct xp *xp);
int  xp_sim_evtchn_unmask(struct xp *xp, uint32_t port);

#endif
