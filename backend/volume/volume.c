/* volume.c — requests on a volume (volume.h): splitting them into page
 * operations, ordering writes per page, gathering reads into runs.
 *
 * Ordering: the active hash holds the pages with writes in flight, each with
 * issue/apply sequence numbers (the later-issued write wins whatever the
 * completion order) and the queue of read-modify-writes waiting for the page
 * to go idle.  The in-flight list of writes and discards, oldest first, is
 * what a flush waits on.
 *
 * Applying a finished write to the map and publishing its record is vmap.c;
 * storing a full page (with de-duplication) is vstore.c; the read-modify-write
 * of part of a page is vrmw.c; the table, loading
 * and stats are volumes.c; refcounts are pageref.c, the map pagemap.c.
 *
 * Memory: pops come from a free list; a request, pop or buffer that cannot be
 * allocated fails its request with -ENOMEM (xalloc.h), never the process.
 */
#include "volume_int.h"
#include "xalloc.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* ---- requests ------------------------------------------------------------- */

static void kick(struct volumes *vs)
{
    uint64_t one = 1;
    if (write(vs->efd, &one, sizeof(one)) != sizeof(one))
        mx_err("volume: eventfd write: %s", strerror(errno));
}

static void req_fail(struct req *r, int status)
{
    if (!r->status)
        r->status = status;
}

/* No struct req for this request: it fails with -ENOMEM from the loop. */
static void nomem_complete(struct volume *v, volume_cb cb, void *arg)
{
    struct volumes *vs = v->vs;
    (void)xalloc_fail("volume %s: a request", v->name);
    if (vs->nnomem == NOMEM_MAX) {
        /* Last resort, only when NOMEM_MAX requests failed in one turn: the
         * callback runs inside the call (better than aborting every guest). */
        cb(arg, -ENOMEM);
        return;
    }
    vs->nomem[vs->nnomem].cb = cb;
    vs->nomem[vs->nnomem].arg = arg;
    vs->nnomem++;
    kick(vs);
}

static struct req *req_new(struct volume *v, enum req_kind kind, volume_cb cb, void *arg)
{
    struct req *r = xcalloc(1, sizeof(*r));
    if (!r) {
        nomem_complete(v, cb, arg);
        return NULL;
    }
    r->v = v;
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    r->pending = 1;
    r->t0 = evloop_now_ns();
    v->inflight++;
    if (kind == REQ_WRITE || kind == REQ_DISCARD) {
        r->wid = ++v->next_wid;
        r->prev = v->wlast;
        if (v->wlast)
            v->wlast->next = r;
        else
            v->wfirst = r;
        v->wlast = r;
    }
    return r;
}

/* Takes every flush whose writes are all done off the queue, into *out. */
static void flushes_ready(struct volume *v, struct req **out)
{
    uint64_t oldest = v->wfirst ? v->wfirst->wid : UINT64_MAX;
    while (v->ffirst && v->ffirst->wid < oldest) {
        struct req *f = v->ffirst;
        v->ffirst = f->next;
        if (!v->ffirst)
            v->flast = NULL;
        f->next = *out;
        *out = f;
    }
}

static void finish(struct req *r)
{
    struct volume *v = r->v;
    uint64_t ns = evloop_now_ns() - r->t0;
    struct req *flushes = NULL;
    if (r->status)
        v->st.errors++;
    switch (r->kind) {
    case REQ_READ:
        histo_record(&v->st.read_ns, ns);
        break;
    case REQ_WRITE:
        histo_record(&v->st.write_ns, ns);
        /* fall through */
    case REQ_DISCARD:
        if (r->prev)
            r->prev->next = r->next;
        else
            v->wfirst = r->next;
        if (r->next)
            r->next->prev = r->prev;
        else
            v->wlast = r->prev;
        flushes_ready(v, &flushes);
        break;
    case REQ_FLUSH:
        break;
    }
    v->inflight--;
    for (struct req *f = flushes; f; f = f->next)
        v->inflight--;
    /* Bookkeeping is done before any callback: a callback may detach and
     * delete the volume. */
    volume_cb cb = r->cb;
    void *arg = r->arg;
    int status = r->status;
    free(r);
    cb(arg, status);
    while (flushes) {
        struct req *f = flushes;
        flushes = f->next;
        cb = f->cb;
        arg = f->arg;
        free(f);
        cb(arg, 0);
    }
}

static void req_put(struct req *r, bool issuing)
{
    if (--r->pending)
        return;
    if (!issuing) {
        finish(r);
        return;
    }
    /* Completed inside the call that started it: finish from the loop. */
    struct volumes *vs = r->v->vs;
    r->dnext = NULL;
    if (vs->dlast)
        vs->dlast->dnext = r;
    else
        vs->dfirst = r;
    vs->dlast = r;
    kick(vs);
}

static void req_page_done(struct req *r, int status)
{
    if (status)
        req_fail(r, status);
    req_put(r, false);
}

void vol_on_deferred(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct volumes *vs = arg;
    uint64_t n;
    (void)el;
    (void)events;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        mx_err("volume: eventfd read: %s", strerror(errno));
    struct req *r = vs->dfirst;
    vs->dfirst = vs->dlast = NULL;
    while (r) {
        struct req *next = r->dnext;
        finish(r);
        r = next;
    }
    /* A callback may issue (and fail) more: those wait for the next kick. */
    unsigned k = vs->nnomem;
    __typeof__(vs->nomem[0]) failed[NOMEM_MAX];
    memcpy(failed, vs->nomem, k * sizeof(failed[0]));
    vs->nnomem = 0;
    for (unsigned i = 0; i < k; i++)
        failed[i].cb(failed[i].arg, -ENOMEM);
}

/* ---- per-page write state -------------------------------------------------- */

static struct active *active_get(struct volume *v, uint64_t idx, bool create)
{
    struct active *a = (struct active *)ht_find(&v->active, idx);
    if (a || !create)
        return a;
    a = xcalloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->h.key = idx;
    a->wq_tail = &a->wq;
    ht_insert(&v->active, &a->h);
    return a;
}

/* A page write ended: start the next waiting RMW once the page is idle. */
static void op_end(struct volume *v, struct active *a)
{
    if (--a->busy)
        return;
    struct pop *next = a->wq;
    if (!next) {
        vquota_drop(v, a);
        ht_remove(&v->active, &a->h);
        free(a);
        return;
    }
    a->wq = next->next;
    if (!a->wq)
        a->wq_tail = &a->wq;
    a->busy++;
    vol_rmw_start(v, next);
}

/* NULL (and the request fails) when there is no memory for it. */
static struct pop *pop_new(struct req *r, uint64_t idx, uint32_t off, uint32_t len, uint8_t *buf)
{
    struct volumes *vs = r->v->vs;
    struct pop *p = vs->free_pops;
    if (p) {
        vs->free_pops = p->next;
        memset(p, 0, sizeof(*p));
    } else {
        p = xcalloc(1, sizeof(*p));
        if (!p) {
            req_fail(r, xalloc_fail("volume %s: a page operation", r->v->name));
            return NULL;
        }
    }
    p->r = r;
    p->idx = idx;
    p->off = off;
    p->len = len;
    p->buf = buf;
    r->pending++;
    return p;
}

/* Kept for reuse: a page operation is the volume's per-page allocation. */
static void pop_free(struct pop *p)
{
    struct volumes *vs = p->r->v->vs;
    free(p->rhash);
    free(p->bounce);
    free(p->cmp);
    p->next = vs->free_pops;
    vs->free_pops = p;
}

/* A page write (full or read-modify-write) ended: the page goes idle. */
void vol_wr_end(struct pop *p, int status)
{
    struct volume *v = p->r->v;
    struct req *r = p->r;
    op_end(v, p->a);
    pop_free(p);
    req_page_done(r, status);
}

void vol_published(void *arg, int status)
{
    struct pop *p = arg;
    /* Invariant: nothing took the record and the old page is still held:
     * the same record (same sequence number) is only sent again. */
    if ((status == -EAGAIN && vol_hold_again(p, AG_PUBLISH)) ||
        (status == -EHOSTUNREACH && vol_hold_unreach(p, AG_PUBLISH)))
        return;
    if (status == -EHOSTUNREACH)
        status = -EIO;
    if (status == 0) {
        vol_forward(p->r->v, p->old, p->idx, p->rseq, &p->ent);
        vol_durable(p->r->v, p->idx, p->rseq);
    }
    vol_release_old(p->r->v, p->old, status);
    if (p->late_copy)
        vol_release_old(p->r->v, (struct pm_ent){ .kind = PM_PAGE, .page = p->late_copy }, status);
    vol_wr_end(p, status);
}

/* Puts e in the map for p's page and ends p: at once without metadata,
 * else once the servers hold its record (the guest hears of a write only
 * then, so an attach elsewhere finds it). */
void vol_pop_set(struct volume *v, struct pop *p, struct pm_ent e)
{
    int rc;
    if (!v->meta) {
        rc = vol_apply(v, p->a, p->idx, p->seq, e);
    } else {
        p->ent = e;
        /* A stored page's record is on its servers already: if a later write
         * supersedes it, the page stays until that one's record is durable. */
        bool hold = p->held && e.kind == PM_PAGE && !e.dup && pageref_get(&v->vs->refs, e.page) == 0;
        rc = vol_install(v, p->a, p->idx, p->seq, e, &p->old);
        if (hold && (rc > 0 || vol_defer_free(v, p->idx, e.page, p->rseq) != 0))
            pageref_put(&v->vs->refs, e.page);
        if (rc > 0 && p->held && e.kind == PM_PAGE && !e.dup) {
            vol_published(p, 0);        /* its record came with the page: R servers hold it */
            return;
        }
        if (rc > 0) {
            vol_publish(v, p->idx, p->rseq, &e, vol_published, p);
            return;
        }
        if (p->late_copy)       /* superseded: a later write's record wins over our copy's */
            pageref_put(&v->vs->refs, p->late_copy);
    }
    vol_wr_end(p, rc < 0 ? rc : 0);
}

void vol_stored(struct pop *p, int status, struct pm_ent e)
{
    if (status) {
        vol_wr_end(p, status);
        return;
    }
    if (e.kind == PM_PAGE)
        memcpy(e.hash, p->phash, 16);
    vol_pop_set(p->r->v, p, e);
}

/* A whole page turned to zeros (or discarded) without pool I/O: only its record goes out. */
struct zpub {
    struct req *r;
    struct pm_ent old, e;
    uint64_t idx, rseq;
    uint64_t unreach_since;
};

static void zero_published(void *arg, int status);

static int zero_again(struct evloop *el, long long id, void *arg)
{
    struct zpub *z = arg;
    (void)el;
    (void)id;
    vol_publish(z->r->v, z->idx, z->rseq, &z->e, zero_published, z);
    return -1;
}

static void zero_published(void *arg, int status)
{
    struct zpub *z = arg;
    struct req *r = z->r;
    /* Invariant: the old page is held until the record is out: only the same record is sent again. */
    if (status == -EHOSTUNREACH && vol_unreach_wait(r->v, z->idx, &z->unreach_since, "zero page records") &&
        evloop_add_timer(r->v->vs->el, UNREACH_RETRY_MS, zero_again, z) > 0)
        return;
    if (status == -EHOSTUNREACH)
        status = -EIO;
    if (status == 0)
        vol_durable(r->v, z->idx, z->rseq);
    vol_release_old(r->v, z->old, status);
    free(z);
    req_page_done(r, status);
}

/* One page's share of a write or discard.  buf NULL means zeros. */
static void write_page(struct req *r, uint64_t idx, uint32_t off, uint32_t len, const uint8_t *buf)
{
    struct volume *v = r->v;
    if (len == VOLUME_PAGE_SIZE && (!buf || vol_page_is_zero(buf))) {
        /* Zeros (or a discarded page) need no pool I/O: they win at once over
         * any write to this page still in flight. */
        struct active *a = active_get(v, idx, false);
        struct pm_ent e = { .kind = buf ? PM_ZERO : PM_NONE };
        uint64_t rseq = vol_next_rseq(v);
        if (!v->meta) {
            int rc = vol_apply(v, a, idx, a ? ++a->issued : 0, e);
            if (rc < 0)
                req_fail(r, rc);
            return;
        }
        struct zpub *z = xcalloc(1, sizeof(*z));
        if (!z) {
            req_fail(r, xalloc_fail("volume %s: a zero page record", v->name));
            return;
        }
        z->r = r;
        z->idx = idx;
        z->rseq = rseq;
        z->e = e;
        int rc = vol_install(v, a, idx, a ? ++a->issued : 0, e, &z->old);
        if (rc > 0) {
            r->pending++;
            vol_publish(v, idx, rseq, &e, zero_published, z);
        } else {
            free(z);
            if (rc < 0)
                req_fail(r, rc);
        }
        return;
    }
    struct pop *p = pop_new(r, idx, off, len, (uint8_t *)buf);
    if (!p)
        return;
    p->a = active_get(v, idx, true);
    if (!p->a) {
        pop_free(p);
        req_page_done(r, xalloc_fail("volume %s: a page's write state", v->name));
        return;
    }
    p->seq = ++p->a->issued;
    p->rseq = vol_next_rseq(v);
    if (buf)
        vquota_hold(v, p->a, idx);
    if (len == VOLUME_PAGE_SIZE) {
        p->a->busy++;
        vstore_page(p, buf);
    } else if (p->a->busy) {
        *p->a->wq_tail = p;
        p->a->wq_tail = &p->next;
    } else {
        p->a->busy++;
        vol_rmw_start(v, p);
    }
}

/* ---- reads ------------------------------------------------------------------ */

static void rd_done(void *arg, int status)
{
    struct pop *p = arg;
    struct req *r = p->r;
    if (status == -EHOSTUNREACH && vol_hold_unreach(p, AG_READ))
        return;     /* the references on its pages are kept while held */
    if (status == -EHOSTUNREACH)
        status = -EIO;
    if (status == 0 && p->bounce)
        memcpy(p->buf, p->bounce + p->off, p->len);
    for (unsigned i = 0; i < p->n; i++)
        pageref_put(&r->v->vs->refs, p->src + i);
    pop_free(p);
    req_page_done(r, status);
}

/* Issues the run of full pages read_page gathered. */
static void run_issue(struct req *r)
{
    struct pop *p = r->run;
    if (!p)
        return;
    r->run = NULL;
    const uint8_t (*hashes)[16] = p->rhash ? p->rhash : &p->phash;
    pool_read_run(r->v->vs->pool, p->src, p->n, hashes, p->buf, rd_done, p);
}

/* Whether a full page stored at page extends r's run: the next slot of the
 * pool, and the next page of the caller's buffer. */
static bool run_extends(const struct req *r, pool_page_t page, const uint8_t *buf)
{
    const struct pop *p = r->run;
    return p && p->n < POOL_RUN_MAX && buf == p->buf + (size_t)p->n * VOLUME_PAGE_SIZE &&
           pool_page_follows(p->src + p->n - 1, page);
}

static void read_page(struct req *r, uint64_t idx, uint32_t off, uint32_t len, uint8_t *buf)
{
    struct volume *v = r->v;
    struct pm_ent e = pagemap_get(&v->map, idx);
    if (e.kind == PM_LOST) {
        req_fail(r, -EIO);
        return;
    }
    if (e.kind != PM_PAGE) {
        memset(buf, 0, len);
        return;
    }
    if (pageref_get(&v->vs->refs, e.page) < 0) {
        req_fail(r, xalloc_fail("volume %s: a page reference", v->name));
        return;
    }
    if (len == VOLUME_PAGE_SIZE && run_extends(r, e.page, buf)) {
        struct pop *run = r->run;
        if (!run->rhash) {
            run->rhash = xcalloc(POOL_RUN_MAX, 16);
            if (!run->rhash) {
                pageref_put(&v->vs->refs, e.page);
                req_fail(r, xalloc_fail("volume %s: a read run", v->name));
                return;
            }
            memcpy(run->rhash[0], run->phash, 16);
        }
        memcpy(run->rhash[run->n++], e.hash, 16);
        return;
    }
    run_issue(r);
    struct pop *p = pop_new(r, idx, off, len, buf);
    if (!p) {
        pageref_put(&v->vs->refs, e.page);
        return;
    }
    p->src = e.page;
    p->n = 1;
    if (len == VOLUME_PAGE_SIZE) {
        /* Issued once the pages after it are known (run_issue). */
        memcpy(p->phash, e.hash, 16);
        r->run = p;
        return;
    }
    p->bounce = xcalloc(1, VOLUME_PAGE_SIZE);
    if (!p->bounce) {
        rd_done(p, xalloc_fail("volume %s: a read buffer", v->name));
        return;
    }
    memcpy(p->phash, e.hash, 16);   /* for a retry (vol_read_again) */
    pool_read_checked(v->vs->pool, e.page, e.hash, p->bounce, rd_done, p);
}

void vol_read_again(struct pop *p)
{
    struct pool *pool = p->r->v->vs->pool;
    if (p->bounce)
        pool_read_checked(pool, p->src, p->phash, p->bounce, rd_done, p);
    else
        pool_read_run(pool, p->src, p->n, p->rhash ? p->rhash : &p->phash, p->buf, rd_done, p);
}

/* Splits a sector range into page pieces. */
static void for_each_page(struct req *r, uint64_t sector, uint64_t nsect, uint8_t *buf,
                          void (*fn)(struct req *, uint64_t, uint32_t, uint32_t, uint8_t *))
{
    uint64_t byte = sector * VOLUME_SECTOR_SIZE, end = byte + nsect * VOLUME_SECTOR_SIZE;
    while (byte < end) {
        uint64_t idx = byte / VOLUME_PAGE_SIZE;
        uint32_t off = (uint32_t)(byte % VOLUME_PAGE_SIZE);
        uint64_t room = VOLUME_PAGE_SIZE - off;
        uint32_t len = (uint32_t)(end - byte < room ? end - byte : room);
        fn(r, idx, off, len, buf);
        if (buf)
            buf += len;
        byte += len;
    }
}

static void write_piece(struct req *r, uint64_t idx, uint32_t off, uint32_t len, uint8_t *buf)
{
    write_page(r, idx, off, len, buf);
}

/* ---- the I/O API -------------------------------------------------------------- */

static int vol_hold_tick(struct evloop *el, long long id, void *arg)
{
    struct volume *v = arg;
    (void)el;
    (void)id;
    if (v->meta && !volmeta_fenced(v->meta) && !volmeta_may_write(v->meta))
        return HOLD_RETRY_MS;
    v->hold_timer = 0;
    vol_info(v, "writes resume: the claim is provable again");
    vol_replay_held(v);
    return -1;
}

/* True when the request was taken care of: held while the volume loads,
 * or failed because it cannot be served (load failed, fenced, no memory). */
static bool gate(struct volume *v, enum held_kind kind, uint64_t sector, uint64_t nsect, void *buf,
                 volume_cb cb, void *arg)
{
    int status;
    /* Writes wait while the claim cannot be proven current (self-fencing:
     * volmeta_may_write), and every request but a read waits behind a held
     * one, so none overtakes it (the later-issued write must win). */
    bool hold = v->state == V_LOADING ||
                (v->state == V_READY && kind != H_READ &&
                 (v->held || (v->meta && !volmeta_fenced(v->meta) && !volmeta_may_write(v->meta))));
    if (hold && v->state == V_READY && !v->hold_timer) {
        vol_warn(v, "writes held: this backend cannot prove its claim current (etcd lease)");
        v->hold_timer = evloop_add_timer(v->vs->el, HOLD_RETRY_MS, vol_hold_tick, v);
    }
    if (hold) {
        struct held *h = xcalloc(1, sizeof(*h));
        if (h) {
            *h = (struct held){ kind, sector, nsect, buf, cb, arg, NULL };
            *v->held_tail = h;
            v->held_tail = &h->next;
            return true;
        }
        status = xalloc_fail("volume %s: a request waiting for the load", v->name);
    } else {
        bool fenced = v->meta && volmeta_fenced(v->meta);
        if (v->state == V_READY && !fenced)
            return false;
        status = fenced ? -ESTALE : -EIO;
    }
    struct req *r = req_new(v, kind == H_READ ? REQ_READ : kind == H_FLUSH ? REQ_FLUSH :
                               kind == H_WRITE ? REQ_WRITE : REQ_DISCARD, cb, arg);
    if (!r)
        return true;
    r->status = status;
    req_put(r, true);
    return true;
}

void volume_read(struct volume *v, uint64_t sector, uint32_t nsect, void *buf, volume_cb cb, void *arg)
{
    if (gate(v, H_READ, sector, nsect, buf, cb, arg))
        return;
    struct req *r = req_new(v, REQ_READ, cb, arg);
    if (!r)
        return;
    v->st.reads++;
    for_each_page(r, sector, nsect, buf, read_page);
    run_issue(r);
    req_put(r, true);
}

void volume_write(struct volume *v, uint64_t sector, uint32_t nsect, const void *buf, volume_cb cb, void *arg)
{
    if (gate(v, H_WRITE, sector, nsect, (void *)buf, cb, arg))
        return;
    struct req *r = req_new(v, REQ_WRITE, cb, arg);
    if (!r)
        return;
    v->st.writes++;
    /* Invariant: a write the quota refuses issues nothing: the volume's pages stay as they were. */
    if (vquota_admit(v, sector, nsect, buf) < 0) {
        r->status = -ENOSPC;
        req_put(r, true);
        return;
    }
    for_each_page(r, sector, nsect, (uint8_t *)buf, write_piece);
    req_put(r, true);
}

void volume_discard(struct volume *v, uint64_t sector, uint64_t nsect, volume_cb cb, void *arg)
{
    if (gate(v, H_DISCARD, sector, nsect, NULL, cb, arg))
        return;
    struct req *r = req_new(v, REQ_DISCARD, cb, arg);
    if (!r)
        return;
    v->st.discards++;
    uint64_t end = sector + nsect;
    uint64_t full_lo = (sector + SECTORS_PER_PAGE - 1) / SECTORS_PER_PAGE, full_hi = end / SECTORS_PER_PAGE;
    if (full_lo >= full_hi) {
        for_each_page(r, sector, nsect, NULL, write_piece);
        req_put(r, true);
        return;
    }
    if (sector % SECTORS_PER_PAGE)
        for_each_page(r, sector, full_lo * SECTORS_PER_PAGE - sector, NULL, write_piece);
    /* Whole pages with writes in flight first (the discard must win over
     * them even where the map has nothing yet), then the written pages of
     * the written leaves: a discard of a huge, sparse range skips what was
     * never written, and a page that is PM_NONE (never written, discarded
     * before, or just now by the pass over the active pages) gets no record
     * and no allocation, so the work and memory of a guest's discard are
     * bounded by the pages it wrote, not by the range it names.
     * Discarding a whole page never adds to or removes from the active hash. */
    ht_each(&v->active, n)
        if (n->key >= full_lo && n->key < full_hi)
            write_page(r, n->key, 0, VOLUME_PAGE_SIZE, NULL);
    for (uint64_t idx = full_lo; idx < full_hi;) {
        uint64_t leaf_end = ((idx >> PAGEMAP_LEAF_BITS) + 1) << PAGEMAP_LEAF_BITS;
        if (leaf_end > full_hi)
            leaf_end = full_hi;
        /* The leaf may go away under us once its last written page is
         * discarded: has_leaf is asked again before each page. */
        for (; idx < leaf_end && pagemap_has_leaf(&v->map, idx); idx++)
            if (pagemap_get(&v->map, idx).kind != PM_NONE)
                write_page(r, idx, 0, VOLUME_PAGE_SIZE, NULL);
        idx = leaf_end;
    }
    if (end % SECTORS_PER_PAGE)
        for_each_page(r, full_hi * SECTORS_PER_PAGE, end - full_hi * SECTORS_PER_PAGE, NULL, write_piece);
    req_put(r, true);
}

void volume_flush(struct volume *v, volume_cb cb, void *arg)
{
    if (gate(v, H_FLUSH, 0, 0, NULL, cb, arg))
        return;
    struct req *r = req_new(v, REQ_FLUSH, cb, arg);
    if (!r)
        return;
    v->st.flushes++;
    r->wid = v->next_wid;
    if (!v->wfirst || v->wfirst->wid > r->wid) {
        req_put(r, true);
        return;
    }
    r->pending--;           /* completed by the last write it waits for */
    r->next = NULL;
    if (v->flast)
        v->flast->next = r;
    else
        v->ffirst = r;
    v->flast = r;
}
