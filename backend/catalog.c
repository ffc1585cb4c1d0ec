/* catalog.c — the cluster's volumes as etcd knows them (catalog.h): a
 * listing for `memxctl volume list --all`, and deleting an orphan this
 * backend has not loaded.
 *
 * Listing reads volumes/ and owners/ afresh (two range reads) each time it
 * is asked, rather than watching them: an operator asks rarely, a fresh read
 * cannot be stale, and a watch would cost every backend memory and events on
 * every claim in the cluster.  owners/ keys are leased, so one that exists is
 * a live claim: a volume is an orphan when no backend holds a live claim of
 * it (or only this one does) and no device here uses it.
 *
 * Deleting takes ownership the way an attach does (the volume layer's load,
 * through ownership.c's compare-and-swap claim), but exclusively: a live
 * claim of another backend refuses it, with the owner named.  Once loaded,
 * the volume is deleted as a detached one is (volume_delete: its pages and
 * records on the memory servers are freed, its etcd keys removed while our
 * claim is the last one).
 *
 * Invariant (data): nothing is freed unless this backend's claim won in
 * etcd and the volume's records were read back under it: a volume in use
 * elsewhere is never touched.
 */
#include "catalog.h"

#include "ckeys.h"
#include "coord.h"
#include "evloop.h"
#include "log.h"
#include "ownership.h"
#include "queue.h"
#include "volumes.h"
#include "xalloc.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DELETE_POLL_MS   100
#define DELETE_ANSWER_MS 50000      /* memxctl waits 60 s: answered by then, the delete goes on */
#define DELETE_OWNER     "memxctl volume delete"

struct lreq {
    LIST_ENTRY(lreq) link;
    struct catalog *cat;
    catalog_reply_fn reply;
    void *rarg;
    json_object *byname;        /* name -> entry, in etcd's (sorted) key order */
};

struct dreq {
    LIST_ENTRY(dreq) link;
    struct catalog *cat;
    char name[CK_NAME_MAX];
    catalog_reply_fn reply;     /* NULL once answered */
    void *rarg;
    struct volume *v;
    long long timer;
    uint64_t started_ms;
};

struct catalog {
    struct coord *c;
    struct ownership *o;
    struct volumes *vs;
    struct evloop *el;
    char node[CK_NODE_MAX];
    LIST_HEAD(, lreq) lists;
    LIST_HEAD(, dreq) deletes;
};

static json_object *error_obj(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_object *error_obj(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "error", json_object_new_string(msg));
    return r;
}

/* Hands r to the requester (which takes no reference of its own) and lets go of it. */
static void answer(catalog_reply_fn reply, void *rarg, json_object *r)
{
    reply(rarg, r);
    json_object_put(r);
}

struct catalog *catalog_new(struct evloop *el, struct coord *c, struct ownership *o, struct volumes *vs,
                            const char *node)
{
    struct catalog *cat = xcalloc(1, sizeof(*cat));
    if (!cat)
        return NULL;
    cat->el = el;
    cat->c = c;
    cat->o = o;
    cat->vs = vs;
    snprintf(cat->node, sizeof(cat->node), "%s", node);
    LIST_INIT(&cat->lists);
    LIST_INIT(&cat->deletes);
    return cat;
}

void catalog_free(struct catalog *cat)
{
    if (!cat)
        return;
    /* Their coord requests are dropped by coord_close, without callbacks. */
    while (!LIST_EMPTY(&cat->lists)) {
        struct lreq *l = LIST_FIRST(&cat->lists);
        LIST_REMOVE(l, link);
        json_object_put(l->byname);
        free(l);
    }
    while (!LIST_EMPTY(&cat->deletes)) {
        struct dreq *d = LIST_FIRST(&cat->deletes);
        LIST_REMOVE(d, link);
        if (d->timer && cat->el)
            evloop_del_timer(cat->el, d->timer);
        free(d);
    }
    free(cat);
}

/* ---- listing ---------------------------------------------------------------- */

static json_object *entry(struct lreq *l, const char *name)
{
    json_object *e;
    if (json_object_object_get_ex(l->byname, name, &e))
        return e;
    e = json_object_new_object();
    json_object_object_add(e, "name", json_object_new_string(name));
    json_object_object_add(e, "size", json_object_new_uint64(0));
    json_object_object_add(e, "epoch", json_object_new_uint64(0));
    json_object_object_add(e, "owner", json_object_new_string(""));
    json_object_object_add(e, "owner_epoch", json_object_new_uint64(0));
    json_object_object_add(e, "owner_here", json_object_new_boolean(0));
    json_object_object_add(e, "loaded", json_object_new_boolean(0));
    json_object_object_add(e, "device", json_object_new_string(""));
    json_object_object_add(e, "state", json_object_new_string(""));
    json_object_object_add(l->byname, name, e);
    return e;
}

static void set(json_object *e, const char *k, json_object *v) { json_object_object_add(e, k, v); }

static const char *str(json_object *e, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(e, k, &v) ? json_object_get_string(v) : "";
}

static void list_end(struct lreq *l, json_object *r)
{
    LIST_REMOVE(l, link);
    json_object_put(l->byname);
    catalog_reply_fn reply = l->reply;
    void *rarg = l->rarg;
    free(l);
    answer(reply, rarg, r);
}

/* The key's last part: the volume's name even when its value does not decode. */
static const char *key_name(const char *key, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(key, prefix, n) == 0 ? key + n : key;
}

static void on_owners(void *arg, int status, const struct coord_kv *kv, size_t n, int64_t rev)
{
    struct lreq *l = arg;
    struct catalog *cat = l->cat;
    (void)rev;
    if (status) {
        list_end(l, error_obj("etcd: cannot read %s: %s", CK_OWNERS, strerror(-status)));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char name[CK_NAME_MAX], why[200];
        struct ck_owner co = { .node = "" };
        json_object *e;
        if (ck_owner_decode(kv[i].key, kv[i].val, kv[i].vlen, name, &co, why, sizeof(why)) < 0) {
            e = entry(l, key_name(kv[i].key, CK_OWNERS));
            set(e, "owner", json_object_new_string("?"));
            set(e, "error", json_object_new_string(why));
            continue;
        }
        e = entry(l, name);
        set(e, "owner", json_object_new_string(co.node));
        set(e, "owner_epoch", json_object_new_uint64(co.epoch));
        set(e, "owner_here", json_object_new_boolean(!strcmp(co.node, cat->node) &&
                                                     kv[i].lease == coord_lease_id(cat->c)));
    }
    struct volume *v;
    for (size_t i = 0; (v = volumes_at(cat->vs, i)); i++) {
        json_object *e = entry(l, volume_name(v));
        set(e, "loaded", json_object_new_boolean(1));
        set(e, "device", json_object_new_string(volume_owner(v)));
        set(e, "state", json_object_new_string(volume_state_name(v)));
        if (!json_object_get_uint64(json_object_object_get(e, "size")))
            set(e, "size", json_object_new_uint64(volume_size(v)));
    }
    json_object *arr = json_object_new_array();
    json_object_object_foreach(l->byname, k, e) {
        (void)k;
        json_object *jh = json_object_object_get(e, "owner_here");
        bool here = jh && json_object_get_boolean(jh);
        /* Nobody uses it: no live claim but possibly ours, no device here. */
        bool orphan = !json_object_object_get_ex(e, "error", NULL) && !str(e, "device")[0] &&
                      (!str(e, "owner")[0] || here);
        set(e, "orphan", json_object_new_boolean(orphan));
        json_object_array_add(arr, json_object_get(e));
    }
    json_object *r = json_object_new_object();
    json_object_object_add(r, "volumes", arr);
    list_end(l, r);
}

static void on_volumes(void *arg, int status, const struct coord_kv *kv, size_t n, int64_t rev)
{
    struct lreq *l = arg;
    (void)rev;
    if (status) {
        list_end(l, error_obj("etcd: cannot read %s: %s", CK_VOLUMES, strerror(-status)));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char name[CK_NAME_MAX], why[200];
        struct ck_volume cv;
        if (ck_volume_decode(kv[i].key, kv[i].val, kv[i].vlen, name, &cv, why, sizeof(why)) < 0) {
            /* Shown, never acted on: an operator looks at it. */
            set(entry(l, key_name(kv[i].key, CK_VOLUMES)), "error", json_object_new_string(why));
            continue;
        }
        json_object *e = entry(l, name);
        set(e, "size", json_object_new_uint64(cv.size));
        set(e, "epoch", json_object_new_uint64(cv.epoch));
    }
    if (coord_get(l->cat->c, CK_OWNERS, true, 0, on_owners, l) < 0)
        list_end(l, error_obj("%s", "out of memory"));
}

void catalog_list(void *arg, catalog_reply_fn reply, void *rarg)
{
    struct catalog *cat = arg;
    struct lreq *l = xcalloc(1, sizeof(*l));
    json_object *byname = l ? json_object_new_object() : NULL;
    if (!byname) {
        free(l);
        answer(reply, rarg, error_obj("%s", "out of memory"));
        return;
    }
    *l = (struct lreq){ .cat = cat, .reply = reply, .rarg = rarg, .byname = byname };
    LIST_INSERT_HEAD(&cat->lists, l, link);
    if (coord_get(cat->c, CK_VOLUMES, true, 0, on_volumes, l) < 0)
        list_end(l, error_obj("%s", "out of memory"));
}

/* ---- deleting an orphan ---------------------------------------------------- */

static void del_answer(struct dreq *d, json_object *r)
{
    catalog_reply_fn reply = d->reply;
    d->reply = NULL;
    if (reply)
        answer(reply, d->rarg, r);
    else
        json_object_put(r);
}

static void del_end(struct dreq *d, json_object *r)
{
    ownership_set_exclusive(d->cat->o, d->name, false);
    LIST_REMOVE(d, link);
    del_answer(d, r);
    free(d);
}

static int del_poll(struct evloop *el, long long id, void *arg)
{
    struct dreq *d = arg;
    struct catalog *cat = d->cat;
    (void)el;
    (void)id;
    const char *why = NULL;
    int st = volume_state(d->v, &why);
    if (st > 0) {
        if (d->reply && evloop_now_ms() - d->started_ms >= DELETE_ANSWER_MS)
            del_answer(d, error_obj("volume %s: still loading its records to delete it (waiting for memory "
                                    "servers); the delete goes on: see memxctl volume list --all", d->name));
        return DELETE_POLL_MS;
    }
    d->timer = 0;
    char msg[300], self[CK_NAME_MAX + 16];
    snprintf(self, sizeof(self), "volume %s: ", d->name);
    if (why && !strncmp(why, self, strlen(self)))
        why += strlen(self);        /* the load's message names the volume already */
    snprintf(msg, sizeof(msg), "%s", why ? why : "");
    struct volume_stats vst;
    volume_get_stats(d->v, &vst);
    uint64_t epoch = volume_epoch(d->v);
    volume_detach(d->v);
    d->v = NULL;
    int rc = volume_delete(cat->vs, d->name);
    if (st < 0) {
        mx_warn("volume %s: not deleted: %s", d->name, msg);
        del_end(d, error_obj("volume %s: not deleted: %s", d->name, msg));
        return -1;
    }
    if (rc < 0) {
        del_end(d, error_obj("volume %s: not deleted: %s", d->name, strerror(-rc)));
        return -1;
    }
    mx_info("volume %s: deleted (orphan, claimed under epoch %llu: %llu page(s) freed, etcd keys removed)",
            d->name, (unsigned long long)epoch, (unsigned long long)(vst.stored_pages + vst.dup_pages));
    json_object *r = json_object_new_object();
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    json_object_object_add(r, "deleted", json_object_new_string(d->name));
    json_object_object_add(r, "epoch", json_object_new_uint64(epoch));
    json_object_object_add(r, "pages", json_object_new_uint64(vst.stored_pages + vst.dup_pages));
    json_object_object_add(r, "logical_pages", json_object_new_uint64(vst.logical_pages));
    del_end(d, r);
    return -1;
}

static void on_record(void *arg, int status, const struct coord_kv *kv, size_t n, int64_t rev)
{
    struct dreq *d = arg;
    struct catalog *cat = d->cat;
    (void)rev;
    char name[CK_NAME_MAX], why[200], err[300];
    struct ck_volume cv;
    if (status) {
        del_end(d, error_obj("volume %s: not deleted: etcd: %s", d->name, strerror(-status)));
        return;
    }
    if (n != 1) {
        del_end(d, error_obj("no volume named '%s' (not loaded here, and etcd has no %s%s)", d->name, CK_VOLUMES,
                             d->name));
        return;
    }
    if (ck_volume_decode(kv[0].key, kv[0].val, kv[0].vlen, name, &cv, why, sizeof(why)) < 0) {
        del_end(d, error_obj("volume %s: not deleted: etcd's record of it is not MemX's: %s", d->name, why));
        return;
    }
    if (volumes_find(cat->vs, d->name)) {
        del_end(d, error_obj("volume %s is loaded here now: run memxctl volume delete again", d->name));
        return;
    }
    if (ownership_set_exclusive(cat->o, d->name, true) < 0) {
        del_end(d, error_obj("volume %s: not deleted: out of memory", d->name));
        return;
    }
    /* The attach marks it in use (a device arriving meanwhile waits) and starts the exclusive claim. */
    d->v = volume_attach(cat->vs, d->name, cv.size, DELETE_OWNER, err, sizeof(err));
    if (!d->v) {
        del_end(d, error_obj("volume %s: not deleted: %s", d->name, err));
        return;
    }
    d->timer = evloop_add_timer(cat->el, DELETE_POLL_MS, del_poll, d);
    if (d->timer <= 0) {
        d->timer = 0;
        /* Left loading, marked in use: better than freeing anything unproven. */
        LIST_REMOVE(d, link);
        del_answer(d, error_obj("volume %s: out of memory (timers): it stays loaded here", d->name));
        free(d);
    }
}

void catalog_delete(void *arg, const char *name, catalog_reply_fn reply, void *rarg)
{
    struct catalog *cat = arg;
    char key[CK_NAME_MAX + 16];
    if (ck_volume_key(name, key, sizeof(key)) < 0 || strlen(name) >= CK_NAME_MAX) {
        answer(reply, rarg, error_obj("no volume named '%.64s'", name));
        return;
    }
    struct dreq *d = xcalloc(1, sizeof(*d));
    if (!d) {
        answer(reply, rarg, error_obj("%s", "out of memory"));
        return;
    }
    d->cat = cat;
    snprintf(d->name, sizeof(d->name), "%s", name);
    d->reply = reply;
    d->rarg = rarg;
    d->started_ms = evloop_now_ms();
    LIST_INSERT_HEAD(&cat->deletes, d, link);
    if (coord_get(cat->c, key, false, 0, on_record, d) < 0)
        del_end(d, error_obj("%s", "out of memory"));
}
