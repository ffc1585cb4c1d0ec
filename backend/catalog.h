/* catalog.h — every volume the cluster knows (etcd's volumes/ and owners/
 * keys), for `memxctl volume list --all` and for deleting an orphan: a
 * volume no backend holds a live claim of, and no device here uses.
 * memx-backd makes one when [cluster] etcd is set (catalog.c).
 */
#ifndef MEMX_CATALOG_H
#define MEMX_CATALOG_H

struct evloop;
struct coord;
struct ownership;
struct volumes;
struct json_object;

struct catalog;

/* A reply to the control socket: called once (inside the call only when it
 * fails at once); r is lent for the call. */
typedef void (*catalog_reply_fn)(void *rarg, struct json_object *r);

/* node: this backend's identity (as owners/ keys name it). */
struct catalog *catalog_new(struct evloop *el, struct coord *c, struct ownership *o, struct volumes *vs,
                            const char *node);
/* Requests under way are dropped without their replies (before ctl_free);
 * a delete that was loading its volume leaves it in the table. */
void catalog_free(struct catalog *cat);

/* {"volumes":[{name,size,epoch,owner,owner_epoch,owner_here,loaded,device,
 * state,orphan[,error]}...]} from a fresh read of etcd, with the volumes this
 * backend has loaded; or {"error"}. */
void catalog_list(void *cat, catalog_reply_fn reply, void *rarg);
/* Deletes name, a volume this backend has not loaded: claims it exclusively
 * (ownership_set_exclusive: refused, naming the owner, when another backend
 * holds it), loads its records, frees its pages and records on the memory
 * servers and removes its etcd keys.  {"ok":true,"deleted",...} or {"error"}. */
void catalog_delete(void *cat, const char *name, catalog_reply_fn reply, void *rarg);

#endif
