/* rebuild.c — re-replication and drain: a slab with fewer than R good
 * replicas (a server went down, a replica missed a write) or with a replica
 * on a draining server gets a new copy on another server, one slab at a
 * time, RB_QD page copies in flight.
 *
 * Pages are written once and never overwritten (the volume layer writes new
 * pages), so while the slab hands out no new pages (take_page skips it) and
 * has no write in flight, its pages can be copied from any replica that did
 * not miss them.  The new replica joins the slab only when every page is
 * copied, so nothing reads it early; the copy it replaces (stale, away or
 * draining) is freed by slab_trim (replica.c) only once R good copies exist
 * on other servers.  A rebuild whose target goes away, or that loses its
 * last source, is aborted: it ends once no copy is in flight, and the next
 * one starts from scratch.
 *
 * Revalidation is the same machinery on an existing replica: one whose
 * server came back as the same process gets only the slots it missed
 * copied (often none), then is good again; nothing is allocated or freed.
 *
 * Also here: the degraded/lost accounting (rb_check_state) and frees of
 * remote slabs we no longer trust.
 */
#include "pool_int.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Good replicas of a slab; a draining server's count only if with_draining. */
static int good_replicas(const struct pool *p, const struct pslab *ps, bool with_draining)
{
    int n = 0;
    for (int i = 0; i < ps->nrep; i++)
        n += ps->rep[i].ok && (with_draining || !p->srv[ps->rep[i].srv]->draining);
    return n;
}

/* Counts degraded and lost slabs; logs when the pool enters or leaves degraded mode. */
void rb_check_state(struct pool *p)
{
    uint64_t degraded = 0, lost = 0;
    for (uint32_t i = 0; i < p->nslabs; i++) {
        const struct pslab *ps = &p->slabs[i];
        if (!ps->used || !ps->ready)
            continue;
        int g = good_replicas(p, ps, true);
        degraded += g < p->replicas;
        lost += g == 0;
    }
    p->st.degraded_slabs = degraded;
    p->st.lost_slabs = lost;
    if (!!degraded == p->degraded)
        return;
    p->degraded = degraded != 0;
    if (degraded)
        pool_warn("degraded: %llu slabs have fewer than %d copies (%llu with none)",
                  (unsigned long long)degraded, p->replicas, (unsigned long long)lost);
    else
        pool_info("redundancy restored: every slab has %d copies", p->replicas);
}

/* force: a replica we stopped trusting or never finished; volume records
 * name its slab, but the good copies live elsewhere. */
void rb_free_remote(struct pool *p, int srv, uint32_t id, bool force)
{
    struct server *s = p->srv[srv];
    struct sop *o = sop_new(p, SOP_FREE);
    if (!o)
        return;
    o->srv_slab = id;
    o->flags = force ? PROTO_FREE_FORCE : 0;
    srv_submit(s, o);
    s->full = false;
}

/* Ends the rebuild once no copy is in flight (a late copy must never land in
 * a target slab we freed and the server handed out again). */
static void rb_settle(struct pool *p)
{
    struct rebuild *rb = &p->rb;
    if (!rb->aborting || rb->inflight)
        return;
    const struct server *t = p->srv[rb->target];
    /* Invariant: an aborted copy never joined the slab, nobody reads it; a
     * revalidated replica is the slab's own, and is never freed here. */
    bool free_target = rb->allocated && !rb->reval && t->state == SRV_UP && t->gen == rb->target_gen;
    /* Over before the free is posted: a failure chain inside it sees no rebuild. */
    rb->active = rb->aborting = false;
    if (free_target)
        rb_free_remote(p, rb->target, rb->nr.id, true);
}

static void rb_abort(struct pool *p, const char *why)
{
    if (!p->rb.active || p->rb.aborting)
        return;
    pool_warn("re-replication of slab %u onto memd %s stopped (%s); will retry", p->rb.slab,
              p->srv[p->rb.target]->addr, why);
    p->rb.aborting = true;
    rb_settle(p);
}

/* Whether page of the slab must be copied to rep[slot]: in use (an adopted
 * slab may hold pages of volumes not loaded here: all), and for a
 * revalidation only if that replica missed it. */
static bool rb_wants(const struct pool *p, const struct pslab *ps, bool reval, int slot, uint32_t page)
{
    if (!ps->adopted && !slots_in_use(&ps->slots, page))
        return false;
    return !reval || rep_missed(&ps->rep[slot], page);
}

/* The least busy replica other than skip that has page; -1 if none. */
static int rb_source(const struct pool *p, const struct pslab *ps, int skip, uint32_t page)
{
    int src = -1;
    for (int i = 0; i < ps->nrep; i++) {
        const struct server *s = p->srv[ps->rep[i].srv];
        if (i != skip && rep_readable(p, &ps->rep[i], page, 1) &&
            (src < 0 || s->inflight < p->srv[ps->rep[src].srv]->inflight))
            src = i;
    }
    return src;
}

/* A replica of slab i that came back (live, same incarnation) but missed
 * slots, whose every missed page has a source: the one to revalidate; -1. */
static int rb_reval_candidate(const struct pool *p, const struct pslab *ps)
{
    for (int r = 0; r < ps->nrep; r++) {
        const struct replica *rp = &ps->rep[r];
        if (rp->ok || !rep_live(p, rp) || p->srv[rp->srv]->draining)
            continue;
        /* Only the set bits are looked at: a pass per tick over every page
         * of every slab waiting for a source would cost the loop. */
        bool sourced = true;
        for (uint32_t w = 0; sourced && rp->missed && w < p->pages_per_slab / 64; w++)
            for (uint64_t bits = rp->missed[w]; sourced && bits; bits &= bits - 1) {
                uint32_t pg = w * 64 + (uint32_t)__builtin_ctzll(bits);
                sourced = !rb_wants(p, ps, true, r, pg) || rb_source(p, ps, r, pg) >= 0;
            }
        if (sourced)
            return r;
    }
    return -1;
}

static void rb_start(struct pool *p)
{
    const struct place_srv *sv = pool_place_view(p);
    for (uint32_t n = 0; n < p->nslabs; n++) {
        uint32_t i = (p->rb.slab + 1 + n) % p->nslabs;     /* round robin: no slab starves */
        struct pslab *ps = &p->slabs[i];
        if (!ps->used || !ps->ready || (int)i == p->building || good_replicas(p, ps, false) >= p->replicas)
            continue;
        int rv_slot = rb_reval_candidate(p, ps);
        if (rv_slot >= 0) {
            struct rebuild *rb = &p->rb;
            const struct replica *rp = &ps->rep[rv_slot];
            *rb = (struct rebuild){ .active = true, .reval = true, .gen = rb->gen + 1, .slab = i, .slot = rv_slot,
                                    .target = rp->srv, .target_gen = p->srv[rp->srv]->gen, .allocated = true,
                                    .nr = *rp, .started_ms = evloop_now_ms() };
            rb->nr.missed = NULL;       /* rep[slot] keeps its own map */
            pool_info("revalidating slab %u on memd %s: %u slots it missed to copy", i, p->srv[rp->srv]->addr,
                      rp->nmissed);
            rb_step(p);
            return;
        }
        if (good_replicas(p, ps, true) == 0)
            continue;       /* nothing to copy from (the copies may be away, not lost) */
        struct place_rep rv[REP_SLOTS];
        int nrv = pool_rep_view(ps, rv);
        int t = place_rebuild_target(sv, p->nsrv, rv, nrv, p->slab_size, p->rnd);
        /* A new slot, else a dead replica's, else (R = 3 and two servers
         * left at once fill every slot) one on a server that left the
         * membership: never one on a server merely away (it may be the only
         * copy of some page), nor a good one's.  Invariant: a gone server's
         * copy is replaced only while a good copy exists (checked above), and
         * a good copy has every acknowledged write, so nothing is only there. */
        int slot = ps->nrep < REP_SLOTS ? ps->nrep : -1;
        for (int r = 0; slot < 0 && r < ps->nrep; r++)
            if (ps->rep[r].dead)
                slot = r;
        for (int r = 0; slot < 0 && r < ps->nrep; r++)
            if (!ps->rep[r].ok && p->srv[ps->rep[r].srv]->gone)
                slot = r;
        if (t < 0 || slot < 0)
            continue;
        struct sop *o = sop_new(p, SOP_ALLOC);
        if (!o)
            return;
        struct rebuild *rb = &p->rb;
        uint64_t gen = rb->gen + 1;
        *rb = (struct rebuild){ .active = true, .gen = gen, .slab = i, .slot = slot, .target = t,
                                .target_gen = p->srv[t]->gen, .started_ms = evloop_now_ms() };
        o->rebuild = true;
        o->rgen = gen;
        o->slab = i;
        pool_info("re-replicating slab %u (%u pages in use) onto memd %s", i,
                  p->pages_per_slab - ps->slots.nfree, p->srv[t]->addr);
        srv_submit(p->srv[t], o);
        return;
    }
}

/* Every page is copied: the new replica takes its slot.  Only a rebuild
 * that is active and not aborting gets here (rb_step checks after every
 * post), so an aborted copy is never added. */
static void rb_finish(struct pool *p)
{
    struct rebuild *rb = &p->rb;
    struct pslab *ps = &p->slabs[rb->slab];
    uint32_t slab = rb->slab;
    rb->active = false;
    if (rb->reval) {
        /* Every slot it missed has been copied: it has every acknowledged write. */
        rep_valid(p, slab, rb->slot);
        pool_info("slab %u revalidated on memd %s: %llu missed pages copied in %llu ms", slab,
                  p->srv[rb->target]->addr, (unsigned long long)rb->pages,
                  (unsigned long long)(evloop_now_ms() - rb->started_ms));
    } else {
        struct replica old = { .srv = -1 };
        if (rb->slot < ps->nrep)
            old = ps->rep[rb->slot];    /* a dead replica, or a gone server's (rb_start): never read again */
        else
            ps->nrep++;
        ps->rep[rb->slot] = rb->nr;
        ps->rep[rb->slot].ok = true;
        dir_note(p, slab);
        recopy_note(p, slab);       /* the copy has the pages, not their records */
        pool_info("slab %u re-replicated onto memd %s: %llu pages in %llu ms", slab, p->srv[rb->target]->addr,
                  (unsigned long long)rb->pages, (unsigned long long)(evloop_now_ms() - rb->started_ms));
        rep_release(&old);
        /* Invariant: freed only with R good copies elsewhere (and only if its
         * server still holds it); else the slab stays there, unused. */
        struct server *os = old.srv >= 0 ? p->srv[old.srv] : NULL;
        if (os && os->state == SRV_UP && old.inc == os->inc && good_elsewhere(p, ps, old.srv) >= p->replicas)
            rb_free_remote(p, old.srv, old.id, true);   /* after the new one is in: a failure chain sees a finished rebuild */
        else if (os && os->gone && !old.dead && old.inc && old.inc == os->inc)
            orphan_add(os, old.id);     /* not freed now (it is gone): only if it returns as the same process */
    }
    slab_trim(p, slab);     /* the copies this one replaces (away, draining) */
    rb_check_state(p);
}

/* Moves the rebuild forward: start one, launch copies, finish it. */
void rb_step(struct pool *p)
{
    struct rebuild *rb = &p->rb;
    if (!rb->active) {
        rb_start(p);
        return;
    }
    if (rb->aborting || !rb->allocated)
        return;
    const struct server *t = p->srv[rb->target];
    if (t->state != SRV_UP || t->gen != rb->target_gen) {
        rb_abort(p, "target server down");
        return;
    }
    if (p->slabs[rb->slab].wpending)
        return;     /* writes that started before the slab was closed must land first */
    uint64_t gen = rb->gen;
    while (rb->inflight < RB_QD && rb->next < p->pages_per_slab) {
        struct pslab *ps = &p->slabs[rb->slab];   /* srv_submit's failure chains may move the table */
        uint32_t page = rb->next++;
        if (!rb_wants(p, ps, rb->reval, rb->slot, page))
            continue;
        int src = rb_source(p, ps, rb->reval ? rb->slot : -1, page);
        struct sop *o = src < 0 ? NULL : sop_new(p, SOP_CREAD);
        if (!o) {
            rb_abort(p, src < 0 ? "no good replica left to copy from" : "out of memory");
            return;
        }
        o->slab = rb->slab;
        o->rep = src;
        o->page = page;
        o->rgen = rb->gen;
        rb->inflight++;
        srv_submit(p->srv[ps->rep[src].srv], o);
        /* A post that failed synchronously may have aborted (and ended) this
         * rebuild, or a new one may have started: never go on, or finish, on
         * its behalf. */
        if (!rb->active || rb->aborting || rb->gen != gen)
            return;
    }
    if (rb->next >= p->pages_per_slab && rb->inflight == 0)
        rb_finish(p);
}

void rb_alloc_done(struct pool *p, struct server *s, struct sop *o, const struct proto_msg *m)
{
    struct rebuild *rb = &p->rb;
    bool got = m && m->status == 0 && m->u.slab_alloc_r.size == p->slab_size;
    if (m) {
        s->capacity = m->u.slab_alloc_r.capacity;
        s->used = m->u.slab_alloc_r.used;
    }
    if (!rb->active || o->rgen != rb->gen || rb->aborting) {
        if (got)    /* Invariant: a target allocated for a rebuild that is over never held a page */
            rb_free_remote(p, s->idx, m->u.slab_alloc_r.slab, true);
        rb_settle(p);
        return;
    }
    if (!got) {
        if (m && m->status == ENOSPC)
            s->full = true;
        rb_abort(p, m ? (m->status ? strerror(m->status) : "wrong slab size") : "target server down");
        return;
    }
    rb->nr = (struct replica){ .srv = s->idx, .id = m->u.slab_alloc_r.slab, .raddr = m->u.slab_alloc_r.raddr,
                               .rkey = m->u.slab_alloc_r.rkey, .gen = s->gen, .inc = s->inc };
    rb->allocated = true;
    rb_step(p);
}

void rb_read_done(struct pool *p, struct sop *o, int status, const void *data)
{
    struct rebuild *rb = &p->rb;
    if (!rb->active || o->rgen != rb->gen)
        return;
    struct sop *w = NULL;
    if (!status && !rb->aborting && (w = sop_new(p, SOP_CWRITE)) && (w->buf = malloc(POOL_PAGE_SIZE))) {
        memcpy(w->buf, data, POOL_PAGE_SIZE);
        w->slab = o->slab;
        w->page = o->page;
        w->srv_slab = rb->nr.id;
        w->rgen = rb->gen;
        srv_submit(p->srv[rb->target], w);     /* the copy stays in flight */
        return;
    }
    if (w)
        sop_free(p, w);
    rb->inflight--;
    rb_abort(p, status ? "reading a good replica failed" : "out of memory");
    rb_settle(p);
}

void rb_copy_done(struct pool *p, struct sop *o, int status)
{
    struct rebuild *rb = &p->rb;
    if (!rb->active || o->rgen != rb->gen)
        return;
    rb->inflight--;
    if (status) {
        rb_abort(p, "writing the new replica failed");
        rb_settle(p);
        return;
    }
    rb->pages++;
    p->rerep_pages++;
    if (rb->aborting)
        rb_settle(p);
    else
        rb_step(p);
}

int pool_drain(struct pool *p, const char *addr, bool on, char *err, size_t errlen)
{
    for (int i = 0; i < p->nsrv; i++) {
        struct server *s = p->srv[i];
        if (strcmp(s->addr, addr))
            continue;
        if (s->draining != on)
            srv_info(s, "%s", on ? "draining: its slabs move to other servers" : "drain cancelled");
        s->draining = on;
        rb_step(p);
        return 0;
    }
    snprintf(err, errlen, "'%s' is not a configured memory server", addr);
    return -1;
}
