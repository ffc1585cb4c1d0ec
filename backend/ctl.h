/* ctl.h — memx-backd's control socket, the one memxctl talks to.
 *
 * A Unix stream socket (mode 0600, its directory created if missing), and
 * optionally a read-only one any local user may connect to (ctl_listen_ro).  The
 * protocol is one JSON object per line each way:
 *   -> {"cmd":"status"}            <- {"version":..., "platform":..., ...}
 * Commands: status, volumes, stats, devices, pool, volume-list (optional
 * "all": true), volume-delete (with "name"), upgrade (optional "binary": an absolute path; answered once the
 * devices are drained, just before memx-backd execs it: upgrade.h).  Anything else -- bad JSON, an unknown command, a line longer than
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
struct json_object;

/* What the commands report on.  bb may be NULL (no devices). */
struct ctl_ctx {
    struct volumes *vols;
    struct pool *pool;
    struct blkback *bb;
    const char *platform;       /* "real" or "sim" */
    const char *device_type;    /* "vbd" or "vbd3" */
    const char *provider;       /* the configured libfabric provider */
    /* Adds the etcd link, the membership it gives and their traffic to a
     * status reply (keys etcd, membership, etcd_traffic, slab_directory);
     * NULL: no etcd (static server list). */
    void (*etcd_status)(void *arg, struct json_object *o);
    void *etcd_arg;
    /* upgrade: starts a hand-over to binary (NULL: the running one's path);
     * reply(rarg, r) answers it, at once or later (upgrade.h
     * upgrade_start).  NULL: the command is refused. */
    void (*upgrade)(void *arg, const char *binary, void (*reply)(void *rarg, struct json_object *r),
                    void *rarg);
    /* Adds the process and its last hand-over to a status reply (NULL: none). */
    void (*upgrade_status)(void *arg, struct json_object *o);
    void *upgrade_arg;
    /* health: [cluster] nearfull, the daemon's live value (a reload changes it); NULL: 85. */
    const int *nearfull;
    /* reload: re-reads memx.conf and applies what can change live; returns
     * {"applied":[...],"restart":[...]} or {"error":...}.  NULL: refused. */
    struct json_object *(*reload)(void *arg);
    void *reload_arg;
    /* volume-list with "all" (every volume etcd knows) and volume-delete of a
     * volume not loaded here (catalog.h): reply(rarg, r) answers, at once or
     * later, r lent for the call.  NULL: no etcd (static servers mode). */
    void (*volume_list_all)(void *arg, void (*reply)(void *rarg, struct json_object *r), void *rarg);
    void (*volume_delete_far)(void *arg, const char *name, void (*reply)(void *rarg, struct json_object *r),
                              void *rarg);
    void *catalog_arg;
};

/* Listens on path.  A stale socket file is replaced; one a live daemon
 * answers on is an error.  NULL with a one-line message in err. */
struct ctl *ctl_new(struct evloop *el, const char *path, const struct ctl_ctx *ctx,
                    char *err, size_t errlen);
/* Also listens on path as the read-only socket (mode 0666, for a monitoring
 * agent without root): status, volumes, stats, devices, pool, volume-list
 * and health are answered there, every other command is refused with an
 * error naming the full socket.  -1 with a one-line message in err. */
int ctl_listen_ro(struct ctl *c, const char *path, char *err, size_t errlen);
/* Closes every connection and removes the socket files.  After whatever
 * holds a reply function of it (catalog_free): answers still owed are dropped. */
void ctl_free(struct ctl *c);

/* Answers one request line (without the newline); returns a malloc'd JSON
 * reply without newline.  The socket uses this; tests may call it directly.
 * NULL for an upgrade, volume list --all or remote delete answered later
 * (to the client that asked; called directly, that answer is dropped). */
char *ctl_handle(struct ctl *c, const char *line, size_t len);

#endif
