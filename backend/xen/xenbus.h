/* xenbus.h — generic XenBus backend devices, as QEMU's hw/xen/xen-bus.c is
 * for its drivers: everything about a device's life in XenStore that does not
 * depend on what the device is.
 *
 * One struct xenbus serves backend/<type> of this domain.  It discovers
 * backend/<type>/<domid>/<devid> nodes as the toolstack writes them, watches
 * each device's frontend state, and owns the backend `state` node (an
 * idempotent setter: the same state is never written twice), the `error`
 * node, reinitialisation to InitWait when a frontend starts over, and the
 * teardown when the toolstack sets online=0 or removes the device.  The
 * driver (blkdev.c for blkif) plugs in through struct xenbus_dev_ops: which
 * features to publish, how to connect, how to disconnect.
 *
 * Per device the backend moves InitWait (features published) -> Connected
 * (ops->connect succeeded) -> Closed (ops->disconnect finished), and back to
 * InitWait when a frontend that saw Closed starts again.  Every transition is
 * recomputed from XenStore on each watch event, so repeated or coalesced
 * events are harmless: the driver's connect is called only from InitWait and
 * its disconnect only once per connection.
 */
#ifndef MEMX_XENBUS_H
#define MEMX_XENBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/io/xenbus.h>

#include "xenplat.h"

struct evloop;
struct xenbus;
struct xenbus_dev;

/* The driver's hooks.  drv is what create returned.  None is called from
 * inside another (each runs from a watch event or a deferred call). */
struct xenbus_dev_ops {
    /* A device node appeared: the driver's state for it, NULL to ignore it
     * (out of memory; the next watch event tries again). */
    void *(*create)(struct xenbus_dev *xd, void *ctx);
    /* Writes the features into transaction t; xenbus writes state=InitWait
     * in the same transaction, so a frontend sees all of them or none.
     * 0, or -1 with errno. */
    int (*features)(void *drv, xp_txn_t t);
    /* The frontend is Initialised (or Connected) while we sit in InitWait.
     * 0: connected (the driver wrote state=Connected with xenbus_dev_commit);
     * 1: not yet (called again in a moment); -1: refused (after
     * xenbus_dev_fatal): the device goes to Closed until the frontend
     * restarts. */
    int (*connect)(void *drv);
    /* Stops the connection: true when done now; false when the driver calls
     * xenbus_dev_drained later (in-flight I/O first).  Only called after a
     * connect that returned 0. */
    bool (*disconnect)(void *drv);
    /* The device is gone (node removed, or xenbus_free): free drv.  After a
     * disconnect, or at xenbus_free, when nothing can be in flight. */
    void (*destroy)(void *drv);
};

struct xenbus *xenbus_new(struct evloop *el, struct xp *xp, const char *type,
                          const struct xenbus_dev_ops *ops, void *ctx);
/* Watches backend/<type>; the watch fires once at once, which does the first
 * scan.  -1 with a message on a XenStore error. */
int  xenbus_start(struct xenbus *bus, char *err, size_t errlen);
/* Closes every device (Closing, then Closed once its driver disconnected)
 * and takes no new ones; done(arg) runs from the loop when all are. */
void xenbus_shutdown(struct xenbus *bus, void (*done)(void *arg), void *arg);
/* Destroys every device without waiting (after xenbus_shutdown's done). */
void xenbus_free(struct xenbus *bus);

/* Iteration: the first device, or the one after prev (NULL at the end). */
struct xenbus_dev *xenbus_dev_next(struct xenbus *bus, struct xenbus_dev *prev);
void       *xenbus_dev_drv(const struct xenbus_dev *xd);
const char *xenbus_dev_name(const struct xenbus_dev *xd);      /* "vbd <domid>/<devid>" */
uint16_t    xenbus_dev_domid(const struct xenbus_dev *xd);
uint32_t    xenbus_dev_devid(const struct xenbus_dev *xd);
const char *xenbus_dev_be(const struct xenbus_dev *xd);        /* our backend directory */
const char *xenbus_dev_fe(const struct xenbus_dev *xd);        /* the frontend's directory */
int         xenbus_dev_state(const struct xenbus_dev *xd);     /* last written; 0 before */

/* dir/node (malloc'd), NULL if absent. */
char *xenbus_read(struct xenbus_dev *xd, const char *dir, const char *node);
/* An integer node: def if absent, -1 if malformed or above max. */
long long xenbus_read_uint(struct xenbus_dev *xd, const char *dir, const char *node, long long def,
                           unsigned long long max);
/* Writes <backend dir>/node in t (XP_TXN_NULL: on its own). */
int xenbus_write(struct xenbus_dev *xd, xp_txn_t t, const char *node, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Runs body in one transaction with state=<state> written in it, retrying
 * while XenStore says EAGAIN; on success the device is in that state.
 * 0, or -1 with errno. */
int xenbus_dev_commit(struct xenbus_dev *xd, int state, int (*body)(void *arg, xp_txn_t t), void *arg);
/* Tells the toolstack why the device cannot work (the `error` node, like
 * xenbus_dev_fatal): it stays Closed until the frontend starts over. */
void xenbus_dev_fatal(struct xenbus_dev *xd, const char *msg);
/* The state machine runs at the end of this loop turn (e.g. after a
 * xenbus_dev_fatal from the dataplane). */
void xenbus_dev_kick(struct xenbus_dev *xd);
/* A disconnect that returned false has finished. */
void xenbus_dev_drained(struct xenbus_dev *xd);

/* "Initialising", "InitWait", ... ("Unknown" for anything else). */
const char *xenbus_state_name(int state);

/* Parses a XenStore integer node value; -1 if it is not a decimal number in
 * [0, max]. */
long long xenbus_parse_uint(const char *s, unsigned long long max);

#endif
