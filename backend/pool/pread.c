/* pread.c — reads: one page or a run of consecutive slots, from the least
 * busy good replica; the next replica on a failure; never zeros.
 *
 * Reads are one-sided RMA reads.  With gather_reads, reads to a server that
 * is busy wait for the end of the loop turn and go out gathered, as many as
 * the provider takes in one RMA read (fab_rma_limit); a read to an idle
 * server goes out at once (nothing to gather with).  Where the slab was
 * adopted, the bytes are checked against the volume record's hash: a
 * replica that missed a write is skipped, not believed.
 *
 * A read its replica leaves unanswered for HEDGE_MS is hedged: the same
 * read goes to another replica that has the slots, and the first answer
 * wins (a stalled or cut-off server costs the guest a few ms, not the 2 s
 * until the heartbeat declares it down).  The request is answered once; the
 * other sop, when it lands or fails, only drops out (req.nsops counts them,
 * and the request is reused only when none is left).
 */
#include "pool_int.h"
#include "log.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void pool_hash(const void *page, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(page, POOL_PAGE_SIZE));
    memcpy(out, c.digest, 16);
}

static int hedge_tick(struct evloop *el, long long id, void *arg);

void hedge_arm(struct pool *p)
{
    if (!p->hedge_timer && (p->hedge_timer = evloop_add_timer(p->el, HEDGE_MS, hedge_tick, p)) < 0)
        p->hedge_timer = 0;     /* no hedging this time: the read still completes */
}

/* The least busy replica of slab that has [page, page + n) and r has not tried; -1. */
static int read_pick(const struct pool *p, const struct pslab *ps, const struct req *r, uint32_t page)
{
    int best = -1;
    for (int i = 0; i < ps->nrep; i++) {
        const struct server *s = p->srv[ps->rep[i].srv];
        if (!rep_readable(p, &ps->rep[i], page, r->npages) || (r->tried & (1u << i)))
            continue;
        if (best < 0 || s->inflight < p->srv[ps->rep[best].srv]->inflight)
            best = i;
    }
    return best;
}

/* Put back a read whose callback ran once nothing refers to it. */
static void read_release(struct pool *p, struct req *r)
{
    if (r->delivered && r->nsops == 0)
        STAILQ_INSERT_HEAD(&p->free_reqs, r, link);
}

void read_sop_drop(struct req *r)
{
    /* A finished, undelivered one is on the done list, which pool_free frees. */
    if (--r->nsops == 0 && (!r->finished || r->delivered))
        free(r);
}

/* A SOP_READ of r from replica rep of slab, counted on the slab and the
 * request (both count down when it answers or fails); NULL without memory. */
static struct sop *read_sop(struct pool *p, struct req *r, uint32_t slab, int rep, uint32_t page)
{
    struct sop *o = sop_new(p, SOP_READ);
    if (!o)
        return NULL;
    r->tried |= 1u << rep;
    p->slabs[slab].rpending++;
    r->nsops++;
    o->req = r;
    o->slab = slab;
    o->rep = rep;
    o->page = page;
    return o;
}

/* Whether a replica no read can use now may come back with its copy: one
 * on a server that is down (not condemned), which is revalidated when it
 * returns as the same process.  A live replica that missed the slots only
 * gets them copied from another, which this then counts already. */
static bool readable_later(const struct pool *p, const struct pslab *ps)
{
    for (int i = 0; i < ps->nrep; i++)
        if (!ps->rep[i].dead && !rep_live(p, &ps->rep[i]))
            return true;
    return false;
}

void issue_read(struct pool *p, struct req *r)
{
    uint32_t slab, page;
    if (!split_page(p, r->page, &slab, &page) || r->npages < 1 || r->npages > POOL_RUN_MAX ||
        page + r->npages > p->pages_per_slab) {
        finish(p, r, -EINVAL);
        return;
    }
    struct pslab *ps = &p->slabs[slab];
    /* Only a replica that has every acknowledged write of these slots, of
     * its server's current incarnation, is read: never one that missed one. */
    int best = read_pick(p, ps, r, page);
    if (best < 0) {
        finish(p, r, readable_later(p, ps) ? -EHOSTUNREACH : -EIO);
        return;
    }
    struct sop *o = read_sop(p, r, slab, best, page);
    if (!o) {
        finish(p, r, -ENOMEM);
        return;
    }
    struct server *s = p->srv[ps->rep[best].srv];
    hedge_arm(p);
    if (!p->gather_reads || (s->inflight == 0 && STAILQ_EMPTY(&s->gathered))) {
        srv_submit(s, o);       /* an idle server: nothing to gather with, no wait for the turn's end */
        return;
    }
    STAILQ_INSERT_TAIL(&s->gathered, o, link);
    turn_end_arm(p);
}

/* flushed: the server was just declared down, which is logged once, not per read. */
void read_failed(struct pool *p, struct sop *o, const char *why, bool flushed)
{
    mx_log(flushed ? MX_LOG_DEBUG : MX_LOG_WARN,
           "pool: read of slab %u page %u from memd %s failed (%s), trying another replica", o->slab, o->page,
           p->srv[p->slabs[o->slab].rep[o->rep].srv]->addr, why);
    struct req *r = o->req;
    p->slabs[o->slab].rpending--;
    r->nsops--;
    if (r->finished)
        read_release(p, r);     /* the hedge's other half answered it */
    else if (r->nsops == 0)
        issue_read(p, r);       /* else the other half is still out: its answer decides */
}

/* A read's bytes arrived (data: its pages): checked where the slab was
 * adopted, then handed over.  Frees o. */
void read_landed(struct pool *p, struct sop *o, const void *data)
{
    struct req *r = o->req;
    if (r->finished) {
        /* The late half of a hedged read: its bytes go nowhere (the buffer is the caller's again). */
        p->slabs[o->slab].rpending--;
        r->nsops--;
        read_release(p, r);
        sop_free(p, o);
        return;
    }
    for (unsigned i = 0; r->verify && p->slabs[o->slab].adopted && i < r->npages; i++) {
        uint8_t h[16];
        pool_hash((const uint8_t *)data + (size_t)i * POOL_PAGE_SIZE, h);
        if (memcmp(h, r->hash[i], 16)) {
            /* Not the server's fault: this replica missed the write the
             * record describes (a cut its old owner never repaired).  Only
             * that slot is untrusted there: a whole replica condemned for one
             * page took every page of the slab with it when the others had
             * missed other writes (check-faults crashother: 91 pages). */
            rep_miss(p, o->slab, o->rep, (uint32_t)r->page + i,
                     "contents do not match the volume record");
            read_failed(p, o, "contents do not match the volume record", false);
            sop_free(p, o);
            return;
        }
    }
    p->slabs[o->slab].rpending--;
    r->nsops--;
    memcpy(r->out, data, (size_t)r->npages * POOL_PAGE_SIZE);
    histo_record(&p->t[POOL_T_XPORT_READ], evloop_now_ns() - o->t_ns);
    p->st.reads += r->npages;
    finish(p, r, 0);
    sop_free(p, o);
}

/* Puts a server's gathered reads on the wire: as many as the provider
 * gathers into one RMA read (fab_rma_limit, within FAB_BIG_MAX) per sop. */
void flush_reads(struct pool *p, struct server *s)
{
    struct sop_list l = STAILQ_HEAD_INITIALIZER(l);
    STAILQ_CONCAT(&l, &s->gathered);
    int lim = srv_rma_limit(s);
    struct sop *o;
    while ((o = STAILQ_FIRST(&l))) {
        struct sop *v = NULL;
        if (STAILQ_NEXT(o, link) && lim > 1)
            v = sop_new(p, SOP_READV);
        if (!v) {
            STAILQ_REMOVE_HEAD(&l, link);
            if (s->state == SRV_UP)
                srv_submit(s, o);
            else {
                read_failed(p, o, "server down", true);
                sop_free(p, o);
            }
            continue;
        }
        if (s->state != SRV_UP) {
            /* The previous group's launch found the server gone: these go elsewhere. */
            sop_free(p, v);
            lim = 1;
            continue;
        }
        size_t bytes = 0;
        while ((o = STAILQ_FIRST(&l)) && (int)v->nmem < lim &&
               bytes + (size_t)o->req->npages * POOL_PAGE_SIZE <= FAB_BIG_MAX) {
            STAILQ_REMOVE_HEAD(&l, link);
            bytes += (size_t)o->req->npages * POOL_PAGE_SIZE;
            v->mem[v->nmem++] = o;
        }
        srv_submit(s, v);
    }
}

void pool_read_run(struct pool *p, pool_page_t first, unsigned n, const uint8_t (*hashes)[16], void *data,
                   pool_io_cb cb, void *arg)
{
    struct req *r = req_new(p, R_READ, arg);
    if (!r) {
        fail_oom(p, &(struct oom_fail){ .kind = OOM_READ, .cb.r = cb, .arg = arg });
        return;
    }
    r->page = first;
    r->npages = n;
    r->out = data;
    r->rcb = cb;
    /* hashes: NULL, or the volume record's hashes to check an adopted slab's bytes against. */
    if (hashes && n <= POOL_RUN_MAX) {
        r->verify = true;
        memcpy(r->hash, hashes, (size_t)n * 16);
    }
    issue_read(p, r);
}

void pool_read(struct pool *p, pool_page_t page, void *data, pool_io_cb cb, void *arg)
{
    pool_read_run(p, page, 1, NULL, data, cb, arg);
}

void pool_read_checked(struct pool *p, pool_page_t page, const uint8_t hash[16], void *data,
                       pool_io_cb cb, void *arg)
{
    pool_read_run(p, page, 1, (const uint8_t (*)[16])hash, data, cb, arg);
}

/* ---- hedging ---- */

/* Asks a second replica for r (its first sop is late); at most once per request. */
static void hedge_read(struct pool *p, struct req *r)
{
    uint32_t slab, page;
    r->hedged = true;
    if (r->finished || !r->nsops || !split_page(p, r->page, &slab, &page))
        return;
    struct pslab *ps = &p->slabs[slab];
    int best = read_pick(p, ps, r, page);
    struct sop *o = best < 0 ? NULL : read_sop(p, r, slab, best, page);
    if (!o)
        return;     /* no other replica has the slots: the first sop's answer decides */
    p->st.hedged_reads++;
    srv_submit(p->srv[ps->rep[best].srv], o);
}

#define HEDGE_SCAN_MAX 256

/* Every HEDGE_MS / 2 while reads or writes are in flight: reads on the wire
 * longer than HEDGE_MS are hedged, late writes handed to writes_late.  Collected first, hedged after: a hedge's post
 * may fail synchronously and flush any server's slots. */
static int hedge_tick(struct evloop *el, long long id, void *arg)
{
    struct pool *p = arg;
    uint64_t now = evloop_now_ms();
    struct req *late[HEDGE_SCAN_MAX];
    unsigned nlate = 0;
    bool reads = false;
    for (int i = 0; i < p->nsrv; i++) {
        const struct server *s = p->srv[i];
        reads |= !STAILQ_EMPTY(&s->gathered);
        for (int k = 0; k < SRV_MAX_INFLIGHT; k++) {
            const struct sop *o = s->slots[k];
            if (!o || (o->kind != SOP_READ && o->kind != SOP_READV))
                continue;
            reads = true;
            if (now < o->started_ms + HEDGE_MS)
                continue;
            unsigned n = o->kind == SOP_READV ? o->nmem : 1;
            for (unsigned m = 0; m < n && nlate < HEDGE_SCAN_MAX; m++) {
                struct req *r = o->kind == SOP_READV ? o->mem[m]->req : o->req;
                if (!r->hedged && !r->finished)
                    late[nlate++] = r;
            }
        }
        struct sop *q;
        STAILQ_FOREACH(q, &s->queue, link)
            reads |= q->kind == SOP_READ || q->kind == SOP_READV || q->kind == SOP_WRITE;
        for (int k = 0; k < SRV_MAX_INFLIGHT && !reads; k++)
            reads = s->slots[k] && s->slots[k]->kind == SOP_WRITE;
    }
    /* Writes acknowledged elsewhere stop waiting for a late replica. */
    for (int i = 0; i < p->nsrv; i++)
        if (p->srv[i]->state == SRV_UP)
            writes_late(p, p->srv[i], now);
    allocs_late(p, now);
    /* Requests in flight are never reused (nsops > 0): the pointers stay valid. */
    for (unsigned i = 0; i < nlate; i++)
        if (!late[i]->hedged)
            hedge_read(p, late[i]);
    if (reads || nlate || p->building >= 0)
        return HEDGE_MS / 2;
    p->hedge_timer = 0;
    return -1;
}
