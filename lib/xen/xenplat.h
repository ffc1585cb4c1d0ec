/* xenplat.h — the Xen platform seam: XenStore, grant tables, event channels.
 *
 * Ring, XenBus state-machine and volume code call only these functions, so the
 * same code runs on two platforms:
 *
 *  real  libxenstore, libxengnttab (gntdev + gntshr/gntalloc), libxenevtchn.
 *        Works in dom0, in a driver domain and (frontend side) in a domU.
 *  sim   no hypervisor.  XenStore is memx-simxsd, a daemon speaking the real
 *        xs_wire protocol on a Unix socket (libxenstore reaches it through
 *        XENSTORED_PATH), granted pages live in a per-domain shared-memory file
 *        under the sim dir, event channels are Unix datagram sockets.  Frontend
 *        and backend are separate processes, as on Xen, and every check the
 *        hypervisor makes (grant owner, grantee domid, read-only) is made here.
 *
 * One struct xp per process (or per thread that needs its own handles).
 * Functions return -1 (or NULL) and set errno on failure.
 *
 * Starting the sim: `memx-simxsd --dir D [--pidfile D/pid] &` (D/xenstore.sock
 * appears once it listens; SIGTERM stops it), then xp_open_sim(D, domid) in
 * each process: backend domid 0, a guest e.g. 3.  `memx-simxl --dir D create
 * --domid 3 --vdev xvdb --target memx:vol:256M` writes a disk as xl would and
 * waits for the backend's InitWait; `destroy`, `ls`, `read`, `write`, `wait`
 * do the rest.  A sim process that forks must open its xp after the fork.
 */
#ifndef MEMX_XENPLAT_H
#define MEMX_XENPLAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XP_PAGE_SIZE 4096u

typedef uint32_t xp_txn_t;            /* 0 = no transaction (XBT_NULL) */
#define XP_TXN_NULL 0u

struct xp;

/* Returns NULL with errno ENOENT when not running in a Xen domain. */
struct xp *xp_open_real(void);
/* dir: the sim dir (memx-simxsd's socket, grant files, event-channel sockets). */
struct xp *xp_open_sim(const char *dir, uint16_t domid);
void xp_close(struct xp *xp);

const char *xp_name(const struct xp *xp);     /* "real" or "sim" */
uint16_t xp_domid(const struct xp *xp);        /* this domain's id */

/* ---- XenStore ---------------------------------------------------------- */
/* Returned strings/arrays are malloc'd; the caller frees (arrays: one free()). */
char *xp_xs_read(struct xp *xp, xp_txn_t t, const char *path, unsigned *len);
int   xp_xs_write(struct xp *xp, xp_txn_t t, const char *path, const char *value);
int   xp_xs_printf(struct xp *xp, xp_txn_t t, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int   xp_xs_mkdir(struct xp *xp, xp_txn_t t, const char *path);
int   xp_xs_rm(struct xp *xp, xp_txn_t t, const char *path);
char **xp_xs_directory(struct xp *xp, xp_txn_t t, const char *path, unsigned *num);
/* Gives the frontend domain read access to a backend node (and vice versa). */
int   xp_xs_set_perms_rw(struct xp *xp, xp_txn_t t, const char *path, uint16_t owner, uint16_t reader);

xp_txn_t xp_xs_txn_start(struct xp *xp);
/* Returns 0 on commit, -1 with errno EAGAIN when the caller must retry the transaction. */
int   xp_xs_txn_end(struct xp *xp, xp_txn_t t, bool abort);

int   xp_xs_watch(struct xp *xp, const char *path, const char *token);
int   xp_xs_unwatch(struct xp *xp, const char *path, const char *token);
int   xp_xs_fd(struct xp *xp);                 /* readable when a watch fired */
/* Non-blocking: 1 and the fired path/token (malloc'd) if one is queued, 0 if none. */
int   xp_xs_next_watch(struct xp *xp, char **path, char **token);

/* ---- Grant tables: backend side (gntdev) ------------------------------- */
/* Maps count grant refs of domain domid into one contiguous range. */
void *xp_gnt_map(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable);
int   xp_gnt_unmap(struct xp *xp, void *addr, uint32_t count);

/* One grant-copy segment, like xengnttab_grant_copy_segment_t but flat. */
struct xp_gcopy {
    bool     to_guest;      /* true: local -> guest page (a read); false: guest -> local (a write) */
    uint16_t domid;
    uint32_t ref;
    uint16_t offset;        /* within the granted page */
    uint16_t len;           /* offset + len <= XP_PAGE_SIZE */
    void    *local;
    int16_t  status;        /* out: 0, or a negative GNTST_* code */
};
/* Performs all segments; returns 0 if every status is 0, else -1 (check statuses). */
int xp_gnt_copy(struct xp *xp, uint32_t count, struct xp_gcopy *segs);

/* ---- Grant tables: frontend side (gntshr / gntalloc) ------------------- */
/* Allocates count pages shared with domid; refs[] receives their grant refs. */
void *xp_gnt_share(struct xp *xp, uint16_t domid, uint32_t count, uint32_t *refs, bool writable);
int   xp_gnt_unshare(struct xp *xp, void *addr, uint32_t count);

/* ---- Event channels ---------------------------------------------------- */
int xp_evtchn_fd(struct xp *xp);              /* readable when a port is pending */
int xp_evtchn_bind_interdomain(struct xp *xp, uint16_t domid, uint32_t remote_port); /* -> local port */
int xp_evtchn_alloc_unbound(struct xp *xp, uint16_t domid);                           /* -> local port */
int xp_evtchn_unbind(struct xp *xp, uint32_t port);
int xp_evtchn_notify(struct xp *xp, uint32_t port);
int xp_evtchn_pending(struct xp *xp);         /* a pending local port, or -1 (EAGAIN) if none */
int xp_evtchn_unmask(struct xp *xp, uint32_t port);

#endif
