/* ctl.h — memx-backd's control socket, the one memxctl talks to.
 *
 * A Unix stream socket (mode 0600, its directory created if missing).  The
 * protocol is one JSON object per line each way:
 *   -> {"cmd":"status"}            <- {"version":..., "platform":..., ...}
 * Commands: status, volumes, stats, devices, pool, volume-delete (with
 * "name").  Anything else -- bad JSON, an unknown command, a line longer than
 * CTL_LINE_MAX -- gets {"error":"..."} and the connection stays usable.
 * Everything runs on the daemon's event loop with non-blocking sockets; a
 * client that stops reading its replies is dropped.
 */
#ifndef MEMX_CTL_H
#define MEMX_CTL_H

#include <stddef.h>

#define CTL_LINE_MAX 4096

struct evloop;
struct volumes;
struct pool;
struct blkback;
struct ctl;

/* What the commands report on.  bb may be NULL (no devices). */
struct ctl_ctx {
    struct volumes *vols;
    struct pool *pool;
    struct blkback *bb;
    const char *platform;       /* "real" or "sim" */
    const char *device_type;    /* "vbd" or "vbd3" */
    const char *provider;       /* the configured libfabric provider */
    /* The link to etcd and the membership it gives, one line each for
     * status; NULL: no etcd (static server list). */
    void (*etcd_status)(void *arg, char *link, size_t linklen, char *members, size_t memberslen);
    void *etcd_arg;
};

/* Listens on path.  A stale socket file is replaced; one a live daemon
 * answers on is an error.  NULL with a one-line message in err. */
struct ctl *ctl_new(struct evloop *el, const char *path, const struct ctl_ctx *ctx,
                    char *err, size_t errlen);
/* Closes every connection and removes the socket file. */
void ctl_free(struct ctl *c);

/* Answers one request line (without the newline); returns a malloc'd JSON
 * reply without newline.  The socket uses this; tests may call it directly. */
char *ctl_handle(struct ctl *c, const char *line, size_t len);

#endif
