#include "volstore.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing with linear probing, keyed by a 64-bit value; records are
 * only ever replaced (a discarded page keeps a NONE record so it supersedes
 * older ones), so nothing is deleted and no tombstones are needed. */
#define EMPTY_KEY UINT64_MAX

struct rtab {
    struct proto_rec *e;    /* key: lpn (EMPTY_KEY when free) */
    size_t cap, n;
};

struct ucount {
    uint64_t uid;           /* 0 when free */
    uint64_t refs;
};

struct utab {
    struct ucount *e;
    size_t cap, n;
};

struct vol {
    uint64_t vid, epoch, size;
    int owner;
    char name[PROTO_ID_MAX];
    struct rtab recs;
    uint64_t ahead_ms;      /* etcd mode: when epoch went above etcd's view (0: it is not) */
};

/* A volume as etcd's owners/<name> says (etcd mode). */
struct evol {
    char name[PROTO_ID_MAX];
    char node[PROTO_ID_MAX];
    uint64_t vid, epoch;
    bool gone;                  /* the key was deleted: its epoch writes nothing any more */
    bool seen;                  /* put again in the snapshot under way */
};

struct volstore {
    struct vol *v;
    size_t n, cap;
    struct utab uids;
    bool etcd, proven;
    uint64_t now_ms;
    struct evol *ev;
    size_t nev, capev;
};

static uint64_t mix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

static bool rtab_grow(struct rtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    struct proto_rec *e = malloc(cap * sizeof(*e));
    if (!e)
        return false;
    for (size_t i = 0; i < cap; i++)
        e[i].lpn = EMPTY_KEY;
    for (size_t i = 0; i < t->cap; i++) {
        if (t->e[i].lpn == EMPTY_KEY)
            continue;
        size_t j = mix(t->e[i].lpn) & (cap - 1);
        while (e[j].lpn != EMPTY_KEY)
            j = (j + 1) & (cap - 1);
        e[j] = t->e[i];
    }
    free(t->e);
    t->e = e;
    t->cap = cap;
    return true;
}

/* The slot for lpn: its record, or the free slot where it goes (NULL: no memory). */
static struct proto_rec *rtab_slot(struct rtab *t, uint64_t lpn)
{
    if ((t->n + 1) * 10 > t->cap * 7 && !rtab_grow(t))
        return NULL;
    size_t j = mix(lpn) & (t->cap - 1);
    while (t->e[j].lpn != EMPTY_KEY && t->e[j].lpn != lpn)
        j = (j + 1) & (t->cap - 1);
    return &t->e[j];
}

static struct ucount *utab_find(const struct utab *t, uint64_t uid)
{
    if (!t->cap)
        return NULL;
    size_t j = mix(uid) & (t->cap - 1);
    while (t->e[j].uid && t->e[j].uid != uid)
        j = (j + 1) & (t->cap - 1);
    return t->e[j].uid ? &t->e[j] : NULL;
}

static bool utab_grow(struct utab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 256;
    struct ucount *e = calloc(cap, sizeof(*e));
    if (!e)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->e[i].uid || !t->e[i].refs)
            continue;   /* slabs nobody points at any more are forgotten here */
        size_t j = mix(t->e[i].uid) & (cap - 1);
        while (e[j].uid)
            j = (j + 1) & (cap - 1);
        e[j] = t->e[i];
        n++;
    }
    free(t->e);
    t->e = e;
    t->cap = cap;
    t->n = n;
    return true;
}

static void utab_add(struct utab *t, uint64_t uid, int64_t d)
{
    struct ucount *c = utab_find(t, uid);
    if (!c) {
        if (d < 0)
            return;
        if ((t->n + 1) * 10 > t->cap * 7 && !utab_grow(t))
            return;
        size_t j = mix(uid) & (t->cap - 1);
        while (t->e[j].uid)
            j = (j + 1) & (t->cap - 1);
        c = &t->e[j];
        c->uid = uid;
        c->refs = 0;
        t->n++;
    }
    c->refs = d < 0 && c->refs < (uint64_t)-d ? 0 : c->refs + (uint64_t)d;
}

static struct vol *find(const struct volstore *vs, uint64_t vid)
{
    for (size_t i = 0; i < vs->n; i++)
        if (vs->v[i].vid == vid)
            return &vs->v[i];
    return NULL;
}

static struct vol *create(struct volstore *vs, uint64_t vid)
{
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 16;
        struct vol *v = realloc(vs->v, cap * sizeof(*v));
        if (!v)
            return NULL;
        vs->v = v;
        vs->cap = cap;
    }
    struct vol *v = &vs->v[vs->n++];
    memset(v, 0, sizeof(*v));
    v->vid = vid;
    v->owner = -1;
    return v;
}

static void stamp_ahead(struct volstore *vs, struct vol *v);

struct volstore *volstore_new(void) { return calloc(1, sizeof(struct volstore)); }

void volstore_free(struct volstore *vs)
{
    if (!vs)
        return;
    for (size_t i = 0; i < vs->n; i++)
        free(vs->v[i].recs.e);
    free(vs->v);
    free(vs->ev);
    free(vs->uids.e);
    free(vs);
}

int volstore_claim(struct volstore *vs, uint64_t vid, const char *name, uint64_t size,
                   uint64_t epoch, int owner, uint64_t *cur_epoch, uint64_t *cur_size,
                   uint64_t *nrecs)
{
    struct vol *v = find(vs, vid);
    int rc = 0;
    if (v && v->name[0] && name[0] && strcmp(v->name, name))
        rc = EEXIST;
    else if (v && v->size && size && v->size != size && epoch)
        rc = EEXIST;
    else if (epoch && v && (epoch < v->epoch ||
                            (epoch == v->epoch && v->owner >= 0 && owner != v->owner)))
        rc = ESTALE;
    else if (epoch) {
        if (!v && !(v = create(vs, vid)))
            return ENOMEM;
        if (epoch > v->epoch)
            stamp_ahead(vs, v);
        v->epoch = epoch;
        v->owner = owner;
        if (size)
            v->size = size;
        if (name[0])
            snprintf(v->name, sizeof(v->name), "%s", name);
    }
    *cur_epoch = v ? v->epoch : 0;
    *cur_size = v ? v->size : 0;
    *nrecs = v ? v->recs.n : 0;
    return rc;
}

int volstore_check(const struct volstore *vs, uint64_t vid, uint64_t epoch)
{
    const struct vol *v = find(vs, vid);
    return v && epoch < v->epoch ? ESTALE : 0;
}

/* Keeps r unless the page already has a record as new; 0 or -1 (ENOMEM). */
static int put_one(struct volstore *vs, struct vol *v, const struct proto_rec *r)
{
    struct proto_rec *s = rtab_slot(&v->recs, r->lpn);
    if (!s)
        return -1;
    if (s->lpn == EMPTY_KEY) {
        v->recs.n++;
    } else {
        if (s->seq >= r->seq)
            return 0;
        if (s->kind == PROTO_REC_PAGE)
            utab_add(&vs->uids, s->uid, -1);
    }
    *s = *r;
    if (r->kind == PROTO_REC_PAGE)
        utab_add(&vs->uids, r->uid, 1);
    return 0;
}

/* The volume a put under epoch goes to (created, or moved up to epoch) in
 * *out: 0, ESTALE or ENOMEM. */
static int vol_for_put(struct volstore *vs, uint64_t vid, uint64_t epoch, struct vol **out)
{
    struct vol *v = find(vs, vid);
    if (v && epoch < v->epoch)
        return ESTALE;
    if (!v && !(v = create(vs, vid)))
        return ENOMEM;
    if (epoch > v->epoch) {
        v->epoch = epoch;
        v->owner = -1;      /* learned from a put: the next claim of this epoch is the owner's */
        stamp_ahead(vs, v);
    }
    *out = v;
    return 0;
}

int volstore_put(struct volstore *vs, uint64_t vid, uint64_t epoch, const uint8_t *raw, uint32_t n)
{
    struct vol *v;
    int st = vol_for_put(vs, vid, epoch, &v);
    if (st)
        return st;
    for (uint32_t i = 0; i < n; i++) {
        struct proto_rec r;
        proto_rec_get(raw, i, &r);
        if (put_one(vs, v, &r))
            return ENOMEM;
    }
    return 0;
}

int volstore_put_rec(struct volstore *vs, uint64_t vid, uint64_t epoch, const struct proto_rec *r)
{
    struct vol *v;
    int st = vol_for_put(vs, vid, epoch, &v);
    if (st)
        return st;
    return put_one(vs, v, r) ? ENOMEM : 0;
}

int volstore_list(const struct volstore *vs, uint64_t vid, uint64_t *cursor, struct proto_rec *out,
                  uint32_t max)
{
    const struct vol *v = find(vs, vid);
    if (!v)
        return -1;
    uint32_t n = 0;
    size_t i = *cursor;
    for (; i < v->recs.cap && n < max; i++)
        if (v->recs.e[i].lpn != EMPTY_KEY)
            out[n++] = v->recs.e[i];
    *cursor = i < v->recs.cap ? i : 0;
    return (int)n;
}

int volstore_drop(struct volstore *vs, uint64_t vid, uint64_t epoch)
{
    struct vol *v = find(vs, vid);
    if (!v)
        return ENOENT;
    if (epoch < v->epoch)
        return ESTALE;
    for (size_t i = 0; i < v->recs.cap; i++)
        if (v->recs.e[i].lpn != EMPTY_KEY && v->recs.e[i].kind == PROTO_REC_PAGE)
            utab_add(&vs->uids, v->recs.e[i].uid, -1);
    free(v->recs.e);
    *v = vs->v[--vs->n];
    return 0;
}

bool volstore_owner(const struct volstore *vs, uint64_t vid, uint64_t *epoch, int *owner)
{
    const struct vol *v = find(vs, vid);
    if (!v)
        return false;
    *epoch = v->epoch;
    *owner = v->owner;
    return true;
}

uint64_t volstore_refs(const struct volstore *vs, uint64_t uid)
{
    const struct ucount *c = utab_find(&vs->uids, uid);
    return c ? c->refs : 0;
}

bool volstore_refs_foreign(const struct volstore *vs, uint64_t uid, int owner)
{
    if (!volstore_refs(vs, uid))
        return false;
    for (size_t i = 0; i < vs->n; i++) {
        const struct vol *v = &vs->v[i];
        if (v->owner >= 0 && v->owner == owner)
            continue;
        for (size_t k = 0; k < v->recs.cap; k++)
            if (v->recs.e[k].lpn != EMPTY_KEY && v->recs.e[k].kind == PROTO_REC_PAGE && v->recs.e[k].uid == uid)
                return true;
    }
    return false;
}

size_t volstore_volumes(const struct volstore *vs) { return vs->n; }

void volstore_etcd_enable(struct volstore *vs) { vs->etcd = true; }
void volstore_etcd_proven(struct volstore *vs, bool proven) { vs->proven = proven; }
bool volstore_etcd_is_proven(const struct volstore *vs) { return vs->proven; }

static struct evol *efind_name(const struct volstore *vs, const char *name)
{
    for (size_t i = 0; i < vs->nev; i++)
        if (strcmp(vs->ev[i].name, name) == 0)
            return &vs->ev[i];
    return NULL;
}

/* The newest of etcd's entries for vid (a volume renamed keeps its vid). */
static const struct evol *efind_vid(const struct volstore *vs, uint64_t vid)
{
    const struct evol *best = NULL;
    for (size_t i = 0; i < vs->nev; i++)
        if (vs->ev[i].vid == vid && (!best || vs->ev[i].epoch > best->epoch))
            best = &vs->ev[i];
    return best;
}

void volstore_etcd_reset(struct volstore *vs)
{
    for (size_t i = 0; i < vs->nev; i++)
        vs->ev[i].seen = false;
}

void volstore_etcd_sync(struct volstore *vs)
{
    for (size_t i = 0; i < vs->nev; i++)
        if (!vs->ev[i].seen)
            vs->ev[i].gone = true;
}

int volstore_etcd_put(struct volstore *vs, const char *name, uint64_t vid, uint64_t epoch, const char *node)
{
    struct evol *e = efind_name(vs, name);
    if (e && epoch < e->epoch)
        return ESTALE;
    if (!e) {
        if (vs->nev == vs->capev) {
            size_t cap = vs->capev ? vs->capev * 2 : 16;
            struct evol *n = realloc(vs->ev, cap * sizeof(*n));
            if (!n)
                return ENOMEM;
            vs->ev = n;
            vs->capev = cap;
        }
        e = &vs->ev[vs->nev++];
        memset(e, 0, sizeof(*e));
        snprintf(e->name, sizeof(e->name), "%s", name);
    }
    e->vid = vid;
    e->epoch = epoch;
    snprintf(e->node, sizeof(e->node), "%s", node);
    e->gone = false;
    e->seen = true;
    return 0;
}

void volstore_etcd_del(struct volstore *vs, const char *name)
{
    struct evol *e = efind_name(vs, name);
    if (e)
        e->gone = true;
}

int volstore_etcd_check(const struct volstore *vs, uint64_t vid, uint64_t epoch, const char *node)
{
    if (!vs->etcd)
        return -1;
    if (!vs->proven)
        return EAGAIN;
    const struct evol *e = efind_vid(vs, vid);
    if (!e || epoch > e->epoch)
        return 0;
    if (epoch < e->epoch || e->gone)
        return ESTALE;
    return strcmp(e->node, node) ? EPERM : 0;
}

bool volstore_etcd_owner(const struct volstore *vs, uint64_t vid, uint64_t *epoch, const char **node,
                         bool *gone)
{
    const struct evol *e = efind_vid(vs, vid);
    if (!e)
        return false;
    *epoch = e->epoch;
    *node = e->node;
    *gone = e->gone;
    return true;
}

void volstore_etcd_now(struct volstore *vs, uint64_t now_ms) { vs->now_ms = now_ms; }

/* v's epoch just moved up (v->epoch is the new one by the time it is read
 * in catch_up): stamped when etcd does not show it yet.  now_ms 0 is read as
 * 1 so a stamp is never "none". */
static void stamp_ahead(struct volstore *vs, struct vol *v)
{
    if (vs->etcd)
        v->ahead_ms = vs->now_ms ? vs->now_ms : 1;
}

size_t volstore_etcd_catch_up(struct volstore *vs, uint64_t fresh_ms,
                              void (*cb)(void *arg, uint64_t vid, uint64_t bogus, uint64_t epoch), void *arg)
{
    size_t n = 0;
    for (size_t i = 0; i < vs->n; i++) {
        struct vol *v = &vs->v[i];
        const struct evol *e = efind_vid(vs, v->vid);
        if (!v->ahead_ms || (e && e->epoch >= v->epoch)) {
            v->ahead_ms = 0;        /* etcd shows it: caught up */
            continue;
        }
        if (fresh_ms <= v->ahead_ms)
            continue;               /* the proof does not cover it yet */
        uint64_t bogus = v->epoch;
        v->epoch = e ? e->epoch : 0;
        v->owner = -1;
        v->ahead_ms = 0;
        n++;
        if (cb)
            cb(arg, v->vid, bogus, v->epoch);
    }
    return n;
}
