/* volumes.c — the table of volumes (volumes.h): attach, loading a volume's
 * map from the pool, detach, delete, and the statistics.
 *
 * The content index is not saved anywhere: a restarted backend rebuilds it
 * from the volume records it loads (each carries its page's hash), and the
 * refcounts from how many loaded entries name each page.
 *
 * Memory: everything here is set-up (attach, load): a failed allocation is an
 * error for the caller, or a failed load, never an abort.
 */
#include "volume_int.h"
#include "config.h"
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOAD_RETRY_MS  250
#define LOAD_LOG_TRIES 120          /* still waiting: said again every 30 s */

/* Re-replication copied slabs without their pages' records (cluster.h). */
static void on_recopied(void *arg)
{
    struct volumes *vs = arg;
    unsigned n = 0;
    for (size_t i = 0; i < vs->n; i++)
        n += vol_republish_recopied(vs->v[i]);
    pool_recopied_clear(vs->pool);
    if (n)
        mx_info("volumes: %u records of re-replicated pages published to the in-sync servers", n);
}

struct volumes *volumes_new(struct pool *pool, bool dedup)
{
    struct volumes *vs = xcalloc(1, sizeof(*vs));
    if (!vs) {
        mx_err("volumes: out of memory");
        return NULL;
    }
    vs->pool = pool;
    vs->el = pool_evloop(pool);
    vs->dedup = dedup;
    vs->persist = true;
    vs->io_hold_ms = 60000;
    if (dedup && !(vs->dd = dedup_new(DEDUP_CACHE_PAGES))) {
        mx_err("volumes: out of memory for the content index");
        free(vs);
        return NULL;
    }
    if (pagerefs_init(&vs->refs, pool, vs->dd) < 0) {
        mx_err("volumes: out of memory for the page references");
        dedup_free(vs->dd);
        free(vs);
        return NULL;
    }
    pool_set_recopy_cb(pool, on_recopied, vs);
    vs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (vs->efd < 0 || evloop_add_fd(vs->el, vs->efd, EV_READ, vol_on_deferred, vs) < 0) {
        mx_err("volume: cannot set up completions: %s", strerror(errno));
        if (vs->efd >= 0)
            close(vs->efd);
        pagerefs_fini(&vs->refs);
        dedup_free(vs->dd);
        free(vs);
        return NULL;
    }
    return vs;
}

static void put_page(void *arg, uint64_t page) { pageref_put(arg, page); }

static void volume_free_map(struct volume *v, bool free_pages)
{
    pagemap_fini(&v->map, free_pages ? put_page : NULL, &v->vs->refs);
    for (size_t i = 0; free_pages && i < v->nkept; i++)
        pageref_put(&v->vs->refs, v->kept[i]);
    free(v->kept);
    v->kept = NULL;
    v->nkept = v->capkept = 0;
    for (struct dfree *d = v->dfree, *n; d; d = n) {
        n = d->next;
        if (free_pages)
            pageref_put(&v->vs->refs, d->page);
        free(d);
    }
    v->dfree = NULL;
    ht_fini(&v->active);
}

void volumes_set_io_hold(struct volumes *vs, unsigned ms)
{
    vs->io_hold_ms = ms;
}

void volumes_free(struct volumes *vs)
{
    if (!vs)
        return;
    pool_set_recopy_cb(vs->pool, NULL, NULL);
    /* The pages stay in the pool: volumes outlive this backend's table. */
    for (size_t i = 0; i < vs->n; i++) {
        struct volume *v = vs->v[i];
        volume_free_map(v, false);
        if (v->load_timer)
            evloop_del_timer(vs->el, v->load_timer);
        if (v->hold_timer)
            evloop_del_timer(vs->el, v->hold_timer);
        if (v->again_timer)
            evloop_del_timer(vs->el, v->again_timer);
        volmeta_free(v->meta);
        for (struct held *h = v->held, *next; h; h = next) {
            next = h->next;
            free(h);
        }
        free(v);
    }
    pagerefs_fini(&vs->refs);
    dedup_free(vs->dd);
    for (struct pop *p = vs->free_pops, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    while (vs->dfirst) {
        struct req *r = vs->dfirst;
        vs->dfirst = r->dnext;
        free(r);
    }
    evloop_del_fd(vs->el, vs->efd);
    close(vs->efd);
    free(vs->v);
    free(vs);
}

void volumes_set_claimer(struct volumes *vs, const struct volclaim_ops *ops) { vs->claimer = ops; }

void volumes_claim_changed(struct volumes *vs, const char *name, uint64_t epoch)
{
    struct volume *v = volumes_find(vs, name);
    if (!v || !v->meta || volmeta_fenced(v->meta))
        return;
    if (epoch)
        volmeta_set_epoch(v->meta, epoch);
    else
        volmeta_fence(v->meta);
}

struct volume *volumes_find(struct volumes *vs, const char *name)
{
    for (size_t i = 0; i < vs->n; i++)
        if (strcmp(vs->v[i]->name, name) == 0)
            return vs->v[i];
    return NULL;
}

struct volume *volumes_at(struct volumes *vs, size_t i) { return i < vs->n ? vs->v[i] : NULL; }

/* ---- loading from the pool ------------------------------------------------- */

/* The map cannot take the loaded records: the load fails.  The references
 * already taken for loaded pages stay held (never freed while a record may
 * name them: a page the pool still serves to this volume's records). */
static void load_nomem(struct volume *v)
{
    if (!v->load_nomem)
        vol_err(v, "out of memory loading its records");
    v->load_nomem = true;
}

static void on_rec(void *arg, const struct proto_rec *r, pool_page_t page, bool slab_ok)
{
    struct volume *v = arg;
    if (r->lpn >= v->npages || r->kind == PROTO_REC_NONE || v->load_nomem)
        return;
    struct pm_ent e = { .kind = PM_ZERO };
    if (r->kind == PROTO_REC_PAGE && !slab_ok) {
        e.kind = PM_LOST;
    } else if (r->kind == PROTO_REC_PAGE) {
        e.kind = PM_PAGE;
        e.page = page;
        memcpy(e.hash, r->hash, 16);
        /* The first holder owns the page's reference and puts the page back
         * in the content index (so a restarted backend goes on sharing it);
         * the others share it, as their writes did. */
        int first = pageref_loaded(&v->vs->refs, page);
        if (first < 0) {
            load_nomem(v);
            return;
        }
        if (first && vol_dd(v))
            dedup_insert_loaded(v->vs->dd, r->hash, page);
        e.dup = !first;
    }
    struct pm_ent old;
    if (vol_map_set(v, r->lpn, e, &old) < 0)
        load_nomem(v);
}

static void load_start(struct volume *v);

void vol_replay_held(struct volume *v)
{
    struct held *h = v->held;
    v->held = NULL;
    v->held_tail = &v->held;
    while (h) {
        struct held *next = h->next;
        switch (h->kind) {
        case H_READ: volume_read(v, h->sector, (uint32_t)h->nsect, h->buf, h->cb, h->arg); break;
        case H_WRITE: volume_write(v, h->sector, (uint32_t)h->nsect, h->buf, h->cb, h->arg); break;
        case H_DISCARD: volume_discard(v, h->sector, h->nsect, h->cb, h->arg); break;
        case H_FLUSH: volume_flush(v, h->cb, h->arg); break;
        }
        free(h);
        h = next;
    }
}

static void recheck_start(struct volume *v);

/* The pool operation a loading volume waits on, once more: its load, or the
 * recheck of its claim. */
static int wait_retry(struct evloop *el, long long id, void *arg)
{
    struct volume *v = arg;
    (void)el;
    (void)id;
    v->load_timer = 0;
    if (v->rechecking)
        recheck_start(v);
    else
        load_start(v);
    return -1;
}

/* Not enough servers answer yet (to do what): waited for, however long, and
 * said at the first try, then every 30 s.  The device stays Connected and the
 * guest's I/O is held (it sees a pause); a volume given up on would close the
 * disk a running guest swaps to (a restarted or upgraded backend on a starved
 * host, check-xen run 4). */
static void wait_more(struct volume *v, const char *what, const char *msg)
{
    if (++v->load_tries == 1)
        vol_info(v, "waiting for a memory server to %s (%s)", what, msg);
    else if (v->load_tries % LOAD_LOG_TRIES == 0)
        vol_warn(v, "still waiting after %d s for memory servers to %s (%s); its I/O waits",
                 v->load_tries * LOAD_RETRY_MS / 1000, what, msg);
    v->load_timer = evloop_add_timer(v->vs->el, LOAD_RETRY_MS, wait_retry, v);
}

static void loaded(void *arg, int status, const char *msg)
{
    struct volume *v = arg;
    if (status == -EAGAIN) {
        wait_more(v, "load it from", msg);
        return;
    }
    v->load_tries = 0;
    if (status == 0 && v->load_nomem) {
        status = -ENOMEM;
        msg = "out of memory loading its records";
    }
    if (status) {
        v->state = V_FAILED;
        snprintf(v->load_err, sizeof(v->load_err), "%s", msg[0] ? msg : strerror(-status));
        vol_err(v, "cannot be loaded from the pool: %s", v->load_err);
    } else {
        v->state = V_READY;
        vol_info(v, "ready (%llu pages with data)", (unsigned long long)v->st.logical_pages);
    }
    vol_replay_held(v);
}

static void load_start(struct volume *v)
{
    volmeta_load(v->meta, on_rec, loaded, v);
}

/* The servers answered whether our claim is still the newest.  Fenced
 * (another backend attached the volume since): ready, but volume_state says
 * fenced, and the next volume_attach drops this copy and loads it afresh. */
static void rechecked(void *arg, int status, const char *msg)
{
    struct volume *v = arg;
    if (status == -EAGAIN) {
        wait_more(v, "confirm our claim", msg);
        return;
    }
    v->load_tries = 0;
    v->rechecking = false;
    if (status) {
        v->state = V_FAILED;
        snprintf(v->load_err, sizeof(v->load_err), "%s", msg[0] ? msg : strerror(-status));
        vol_err(v, "cannot be attached again: %s", v->load_err);
    } else {
        v->state = V_READY;
    }
    vol_replay_held(v);
}

static void recheck_start(struct volume *v)
{
    volmeta_recheck(v->meta, rechecked, v);
}

int volume_state(const struct volume *v, const char **err)
{
    if (v->state == V_LOADING)
        return 1;
    if (v->state == V_FAILED) {
        *err = v->load_err;
        return -1;
    }
    if (v->meta && volmeta_fenced(v->meta)) {
        *err = "attached by another backend since (fenced)";
        return -1;
    }
    return 0;
}

const char *volume_state_name(const struct volume *v)
{
    if (v->meta && volmeta_fenced(v->meta))
        return "fenced";
    return v->state == V_LOADING ? "loading" : v->state == V_FAILED ? "failed" : "ready";
}

uint64_t volume_epoch(const struct volume *v) { return v->meta ? volmeta_epoch(v->meta) : 0; }

static void volume_remove(struct volumes *vs, size_t i)
{
    struct volume *v = vs->v[i];
    vs->logical -= v->st.logical_pages;
    vs->zero -= v->st.zero_pages;
    vs->entries -= v->st.stored_pages + v->st.dup_pages;
    /* A fenced volume's pages belong to its new owner now; a partly loaded
     * map's references stay held (load_nomem). */
    volume_free_map(v, !(v->meta && volmeta_fenced(v->meta)) && !v->load_nomem);
    if (v->hold_timer)
        evloop_del_timer(vs->el, v->hold_timer);
    volmeta_free(v->meta);
    free(v);
    memmove(&vs->v[i], &vs->v[i + 1], (vs->n - i - 1) * sizeof(*vs->v));
    vs->n--;
}

struct volume *volume_attach(struct volumes *vs, const char *name, uint64_t size, const char *owner,
                             char *err, size_t errlen)
{
    char a[32], b[32];
    struct volume *v = volumes_find(vs, name);
    /* A failed load (no server then, or the volume was taken over): start over. */
    if (v && !v->owner[0] && !v->inflight &&
        (v->state == V_FAILED || (v->meta && volmeta_fenced(v->meta)))) {
        for (size_t i = 0; i < vs->n; i++)
            if (vs->v[i] == v)
                volume_remove(vs, i);
        v = NULL;
    }
    if (v) {
        if (v->size != size) {
            snprintf(err, errlen, "volume %s exists with size %s, not %s", name,
                     memx_format_size(v->size, a, sizeof(a)), memx_format_size(size, b, sizeof(b)));
            return NULL;
        }
        if (v->owner[0]) {
            snprintf(err, errlen, "volume %s is attached already (by %s)", name, v->owner);
            return NULL;
        }
        snprintf(v->owner, sizeof(v->owner), "%s", owner);
        /* Invariant: a volume let go of is served to another device (a new
         * domain: restored, or migrated back) only once the servers confirm
         * no other backend claimed it since; else its map here is stale
         * (pages written elsewhere read as their old copies) and every write
         * of ours is refused (twohost migrate-ba, 2026-12-03: "fenced:
         * another backend attached it (our epoch 1)").  The same device
         * taking it again (its frontend reconnected) had no other user to
         * hand it to: served at once, also while no server answers. */
        if (v->recheck && v->state == V_READY && strcmp(v->last_owner, owner) != 0) {
            v->recheck = false;
            v->rechecking = true;
            v->state = V_LOADING;
            recheck_start(v);
        }
        return v;
    }
    size_t len = strlen(name);
    if (len == 0 || len >= VOLUME_NAME_MAX || size == 0 || size % VOLUME_PAGE_SIZE) {
        snprintf(err, errlen, "volume '%s': bad name or size %llu (must be a non-zero multiple of 4K)",
                 name, (unsigned long long)size);
        return NULL;
    }
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 8;
        struct volume **nv = xreallocarray(vs->v, cap, sizeof(*nv));
        if (!nv) {
            snprintf(err, errlen, "volume %s: out of memory", name);
            return NULL;
        }
        vs->v = nv;
        vs->cap = cap;
    }
    v = xcalloc(1, sizeof(*v));
    if (!v) {
        snprintf(err, errlen, "volume %s: out of memory", name);
        return NULL;
    }
    v->vs = vs;
    memcpy(v->name, name, len + 1);
    snprintf(v->owner, sizeof(v->owner), "%s", owner);
    v->size = size;
    v->npages = size / VOLUME_PAGE_SIZE;
    if (pagemap_init(&v->map, v->npages) < 0 || ht_init(&v->active) < 0 ||
        (vs->persist && !(v->meta = volmeta_new(vs->pool, name, size, vs->claimer)))) {
        snprintf(err, errlen, "volume %s: out of memory", name);
        volume_free_map(v, false);
        free(v);
        return NULL;
    }
    v->st.size_bytes = size;
    histo_reset(&v->st.read_ns);
    histo_reset(&v->st.write_ns);
    v->held_tail = &v->held;
    v->state = v->meta ? V_LOADING : V_READY;
    vs->v[vs->n++] = v;
    if (v->meta)
        load_start(v);
    return v;
}

void volume_detach(struct volume *v)
{
    /* Devices drain before they detach; only a backend told to exit at once
     * (a second SIGTERM) leaves requests behind, which are unanswered then. */
    if (v->inflight)
        vol_warn(v, "detached with %u request(s) unanswered: the backend exits without waiting for them",
                 v->inflight);
    /* Let go of while loading (a device waiting for it): nothing was served. */
    if (v->meta && v->state == V_READY) {
        v->recheck = true;
        snprintf(v->last_owner, sizeof(v->last_owner), "%s", v->owner);
    }
    v->owner[0] = '\0';
}

int volume_delete(struct volumes *vs, const char *name)
{
    for (size_t i = 0; i < vs->n; i++) {
        struct volume *v = vs->v[i];
        if (strcmp(v->name, name) != 0)
            continue;
        if (v->owner[0] || v->state == V_LOADING)
            return -EBUSY;
        if (v->meta && !volmeta_fenced(v->meta) && v->state == V_READY) {
            volmeta_drop(v->meta);
            if (vs->claimer)
                vs->claimer->forget(vs->claimer->ctx, name);
        }
        volume_remove(vs, i);
        return 0;
    }
    return -ENOENT;
}

const char *volume_name(const struct volume *v) { return v->name; }
const char *volume_owner(const struct volume *v) { return v->owner; }
uint64_t volume_size(const struct volume *v) { return v->size; }

void volume_get_stats(const struct volume *v, struct volume_stats *st)
{
    *st = v->st;
    st->dedup = volume_dedup(v);
    st->quota_pages = v->quota.limit;
    st->quota_refused = v->quota.refused;
}

void volume_set_dedup(struct volume *v, bool on) { v->nodedup = !on; }
bool volume_dedup(const struct volume *v) { return vol_dd(v) != NULL; }

void volumes_get_stats(const struct volumes *vs, struct volumes_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->dedup = vs->dd != NULL;
    st->logical_pages = vs->logical;
    st->zero_pages = vs->zero;
    st->stored_pages = vs->refs.live;
    /* live also counts pages only an in-flight read still holds: momentarily
     * it can exceed the mapped pages. */
    st->dup_pages = vs->entries > vs->refs.live ? vs->entries - vs->refs.live : 0;
    st->dedup_hits = vs->hits + vs->late_hits;
    st->late_hits = vs->late_hits;
    st->collisions = vs->collisions;
    st->compare_reads = vs->compare_reads;
    if (vs->dd) {
        struct dedup_stats ds;
        dedup_get_stats(vs->dd, &ds);
        st->index_pages = ds.entries;
        st->cached_pages = ds.cached;
    }
}
