/* pwrite.c — replicated writes, and the slabs they need.
 *
 * The writes of one loop turn (the pages of a multi-page guest write, a burst
 * of swap-outs from several requests) are gathered and placed at its end as
 * runs: a free slot, then more slots of the same slab for the following
 * writes of the same volume and epoch, up to PROTO_RUN_MAX; one PAGE_WRITE
 * per live replica carries a run.  A write completes when every replica it
 * was sent to answered, or when one acknowledged it and the others left it
 * unanswered WRITE_LATE_MS (writes_late): 0 if one acknowledged it (the
 * others miss those slots, replica.c, and get them copied), -ESTALE if a
 * server said another backend owns the volume, -EAGAIN if the servers could
 * not prove our claim current (their etcd view is stale: the caller tries
 * again later), -EHOSTUNREACH if none took it because their servers were
 * unreachable (the volume layer holds and re-places it), -EIO if every one
 * refused it.
 *
 * With no free slot the writes wait for a slab: one is built at a time, R
 * SLAB_ALLOCs placed by place.c; it is usable once every one has answered.
 */
#include "pool_int.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void put_page(struct pool *p, uint32_t slab, uint32_t page)
{
    if (slots_put(&p->slabs[slab].slots, page))
        p->st.pages_stored--;
    slot_unmiss(p, slab, page);
}

/* Drops one of r's pending counts; the last one completes the write (or,
 * completed early without a late replica, puts it back). */
static void write_req_put(struct pool *p, struct req *r, uint32_t slab)
{
    if (--r->pending)
        return;
    p->slabs[slab].wpending--;
    if (r->finished) {
        if (r->delivered)
            STAILQ_INSERT_HEAD(&p->free_reqs, r, link);
        return;
    }
    int st = r->fenced ? -ESTALE : r->acked ? 0 : r->again ? -EAGAIN : r->unreach ? -EHOSTUNREACH : -EIO;
    if (st) {
        put_page(p, slab, (uint32_t)r->page);   /* the slot goes back: nothing of it is trusted */
    } else {
        p->st.writes++;
        /* Invariant: status 0 for a write with a record means R servers hold both. */
        if (r->has_rec && r->acked < p->replicas) {
            st = POOL_WRITE_FEW;
            p->st.writes_few++;
        }
    }
    finish(p, r, st);
}

void write_sop_drop(struct req *r)
{
    /* A finished, undelivered one is on the done list, which pool_free frees. */
    if (--r->pending == 0 && (!r->finished || r->delivered))
        free(r);
}

static void write_complete_early(struct pool *p, struct req *r, uint32_t slab);

/* Every replica r still waits for is on a server already known late. */
static bool waits_only_late(const struct pool *p, const struct req *r, uint32_t slab)
{
    const struct pslab *ps = &p->slabs[slab];
    uint32_t wait = r->sent & ~r->answered;
    for (int i = 0; i < ps->nrep; i++)
        if ((wait & (1u << i)) && !p->srv[ps->rep[i].srv]->late)
            return false;
    return wait != 0;
}

/* One replica's answer for one page of a run.  Acknowledgements only come
 * from the loop (sop_reply), never inside launch_run's loop over replicas. */
static void write_req_done(struct pool *p, struct req *r, uint32_t slab, int rep, int status)
{
    r->answered |= 1u << rep;
    if (r->finished)
        ;       /* completed without this replica, which missed the slot (writes_late) */
    else if (status == -ESTALE)
        r->fenced = true;   /* the replica is fine: it is the writer that is not */
    else if (status == -EAGAIN)
        r->again = true;    /* the server cannot prove our claim current now (etcd): try later */
    else if (!status && (r->acked++, !r->fenced && waits_only_late(p, r, slab)))
        write_complete_early(p, r, slab);       /* the rest are on servers already late */
    write_req_put(p, r, slab);
}

/* One replica's answer for a run: every page of it shares the outcome.
 * Invariant: a replica that missed an acknowledged write has those slots
 * marked missed before the write completes, so no read is ever served from
 * it there.  -ENOTCONN: its server went down with the write in flight (the
 * slab is likely intact there); any other failure is the live server
 * refusing the slab: the replica is dead. */
void write_replica_done(struct pool *p, struct sop *o, int status)
{
    if (status == -ENOTCONN || status == -EAGAIN)
        for (unsigned i = 0; i < o->npages; i++) {
            rep_miss(p, o->slab, o->rep, (uint32_t)o->run[i]->page,
                     status == -EAGAIN ? "ownership not provable there now" : "server down");
            o->run[i]->unreach |= status == -ENOTCONN;
        }
    else if (status && status != -ESTALE)
        rep_dead(p, o->slab, o->rep, strerror(-status));
    for (unsigned i = 0; i < o->npages; i++)
        write_req_done(p, o->run[i], o->slab, o->rep, status);
    if (p->rb.active && p->rb.slab == o->slab)
        rb_step(p);
}

static bool slab_writable(const struct pool *p, const struct pslab *ps)
{
    for (int i = 0; i < ps->nrep; i++)
        if (rep_live(p, &ps->rep[i]))
            return true;
    return false;
}

/* A free slot for a new page.  Starts where the last page came from: with
 * thousands of slabs, most of them full, a scan from the first would cost
 * every write a pass over them. */
static bool slab_takes(const struct pool *p, uint32_t i)
{
    const struct pslab *ps = &p->slabs[i];
    /* Nothing new goes into an adopted slab, nor into the one being
     * re-replicated, nor into one no live replica would take. */
    return ps->used && ps->ready && ps->slots.nfree && !ps->adopted && !(p->rb.active && p->rb.slab == i) &&
           slab_writable(p, ps);
}

/* A run of n writes: a free stretch of n slots in one of the few slabs from
 * the hint on, so it reads back as one run (pool_read_run) even once the
 * slabs are churned; else wherever one slot is free (take_page). */
#define RUN_SLABS 4
static bool take_run(struct pool *p, unsigned n, uint32_t *slab, uint32_t *page)
{
    for (uint32_t k = 0, i = p->alloc_hint; n > 1 && k < p->nslabs && k < RUN_SLABS; k++, i = (i + 1) % p->nslabs)
        if (slab_takes(p, i) && slots_take_run(&p->slabs[i].slots, n, page)) {
            p->st.pages_stored++;
            p->alloc_hint = i;
            *slab = i;
            return true;
        }
    return false;
}

static bool take_page(struct pool *p, uint32_t *slab, uint32_t *page)
{
    for (uint32_t k = 0, i = p->alloc_hint; k < p->nslabs; k++, i = (i + 1) % p->nslabs) {
        struct pslab *ps = &p->slabs[i];
        if (!slab_takes(p, i))
            continue;
        if (slots_take(&ps->slots, page)) {
            p->st.pages_stored++;
            p->alloc_hint = i;
            *slab = i;
            return true;
        }
    }
    return false;
}

/* Another free slot of slab for the next page of a run: the one right after
 * the previous page if it is free (so sequential writes read back in runs,
 * pool_read_run), else the first free one from the slab's hint. */
static bool take_in_slab(struct pool *p, uint32_t slab, uint32_t after, uint32_t *page)
{
    if (!slots_take_next(&p->slabs[slab].slots, after, page))
        return false;
    p->st.pages_stored++;
    return true;
}

/* Puts reqs[0..n), pages of one volume placed in slab (each req's page set),
 * on the wire: one PAGE_WRITE per live replica carries them all.
 *
 * srv_submit may fail synchronously, and the failure chain behind it (the
 * server's ops flushed, reads moved elsewhere, slabs built) may take other
 * servers down or grow the slab table.  So each req holds one pending count
 * for the launch itself, dropped after the loop (a write completes exactly
 * once, after every replica it was sent to answered, however many were
 * skipped), and the slab is looked up by index on every turn of the loop. */
static void launch_run(struct pool *p, struct req **reqs, unsigned n, uint32_t slab)
{
    for (unsigned k = 0; k < n; k++)
        reqs[k]->pending = 1;
    p->slabs[slab].wpending += n;
    for (int i = 0; i < p->slabs[slab].nrep; i++) {
        struct pslab *ps = &p->slabs[slab];
        if (ps->rep[i].dead)
            continue;
        /* Only a replica of the server's current incarnation, up, takes a
         * write: a slab id from an earlier one may be another slab now. */
        struct sop *o = rep_live(p, &ps->rep[i]) ? sop_new(p, SOP_WRITE) : NULL;
        if (!o) {
            /* This replica misses the run: never read there until it is copied. */
            bool live = rep_live(p, &ps->rep[i]);
            for (unsigned k = 0; k < n; k++) {
                rep_miss(p, slab, i, (uint32_t)reqs[k]->page, live ? "out of memory" : "server unreachable");
                reqs[k]->unreach |= !live;
            }
            continue;
        }
        for (unsigned k = 0; k < n; k++) {
            reqs[k]->pending++;
            reqs[k]->sent |= 1u << i;
        }
        o->req = reqs[0];
        o->npages = n;
        memcpy(o->run, reqs, n * sizeof(*reqs));
        o->slab = slab;
        o->rep = i;
        o->page = (uint32_t)reqs[0]->page;
        srv_submit(p->srv[ps->rep[i].srv], o);
        hedge_arm(p);
    }
    /* No replica took it: -EHOSTUNREACH or -EIO, the slot goes back. */
    for (unsigned k = 0; k < n; k++)
        write_req_put(p, reqs[k], slab);
}

/* ---- late replicas ---- */

/* r was acknowledged by a replica; the ones it went to that have not
 * answered miss its slot, and it completes now. */
static void write_complete_early(struct pool *p, struct req *r, uint32_t slab)
{
    uint32_t page = (uint32_t)r->page;
    for (int i = 0; i < p->slabs[slab].nrep; i++)
        if ((r->sent & ~r->answered) & (1u << i))
            rep_miss(p, slab, i, page, "late");     /* never read there until it is copied */
    p->st.writes++;
    if (r->has_rec)
        p->st.writes_few++;
    finish(p, r, r->has_rec ? POOL_WRITE_FEW : 0);  /* the late ones may not hold its record */
}

/* A replica that leaves a write unanswered WRITE_LATE_MS while another one
 * has acknowledged it stops holding the guest up: the write completes (the
 * slots it misses are recorded; revalidation copies them later, or the
 * server is declared down by its own timeouts).  Its writes still queued
 * behind a full window that another replica acknowledged are dropped the
 * same way: they never left (their pages are the caller's again once the
 * write completes), and those slots are marked missed.  Sends copy their bytes (fabric.h), so what is on the
 * wire needs nothing of the request's buffer. */
static bool slots_late(const struct server *s, uint64_t now);

void writes_late(struct pool *p, struct server *s, uint64_t now)
{
    bool late = false;
    if (slots_late(s, now))
        s->late = true;         /* any op: a dead server with no page write of ours is late too */
    for (int k = 0; k < SRV_MAX_INFLIGHT; k++) {
        struct sop *o = s->slots[k];
        if (!o || now < o->started_ms + WRITE_LATE_MS)
            continue;
        late = true;        /* a window held by any late op holds up the writes queued behind it */
        if (o->kind != SOP_WRITE)
            continue;
        for (unsigned i = 0; i < o->npages; i++) {
            struct req *r = o->run[i];
            if (!r->finished && !r->fenced && r->acked)
                write_complete_early(p, r, o->slab);
        }
    }
    if (!late)
        return;
    s->late = true;
    struct sop_list keep = STAILQ_HEAD_INITIALIZER(keep), drop = STAILQ_HEAD_INITIALIZER(drop);
    struct sop *o;
    while ((o = STAILQ_FIRST(&s->queue))) {
        STAILQ_REMOVE_HEAD(&s->queue, link);
        /* Only writes another replica has acknowledged: the others may still need this one. */
        bool acked = o->kind == SOP_WRITE;
        for (unsigned i = 0; acked && i < o->npages; i++)
            acked = o->run[i]->acked > 0 && !o->run[i]->fenced;
        if (acked)
            STAILQ_INSERT_TAIL(&drop, o, link);
        else
            STAILQ_INSERT_TAIL(&keep, o, link);
    }
    STAILQ_CONCAT(&s->queue, &keep);
    while ((o = STAILQ_FIRST(&drop))) {
        STAILQ_REMOVE_HEAD(&drop, link);
        /* As if flushed: the replica misses these slots; the others decide each write. */
        write_replica_done(p, o, -ENOTCONN);
        sop_free(p, o);
    }
}

/* Places the writes of l in the order they came; with no free slot the rest
 * wait for a slab. */
void place_writes(struct pool *p, struct req_list *l)
{
    struct req *r;
    while ((r = STAILQ_FIRST(l))) {
        uint32_t slab, page;
        /* How many writes can share one message: the same volume and epoch. */
        unsigned want = 1;
        for (const struct req *q = STAILQ_NEXT(r, link); q && want < PROTO_RUN_MAX && q->vid == r->vid &&
             q->epoch == r->epoch; q = STAILQ_NEXT(q, link))
            want++;
        if (!take_run(p, want, &slab, &page) && !take_page(p, &slab, &page)) {
            STAILQ_CONCAT(&p->waiting, l);
            kick_slab(p);
            return;
        }
        struct req *run[PROTO_RUN_MAX];
        unsigned n = 0;
        do {
            STAILQ_REMOVE_HEAD(l, link);
            r->page = make_page(slab, page);
            run[n++] = r;
            r = STAILQ_FIRST(l);
        } while (r && n < PROTO_RUN_MAX && r->vid == run[0]->vid && r->epoch == run[0]->epoch &&
                 take_in_slab(p, slab, page, &page));
        launch_run(p, run, n, slab);
    }
}

/* The end of the loop turn's I/O (a deferred call): the writes issued during
 * it are placed as runs, one message per replica and run instead of one per
 * page; the reads go out gathered per server. */
void turn_end(struct evloop *el, void *arg)
{
    struct pool *p = arg;
    struct req_list l = STAILQ_HEAD_INITIALIZER(l);
    STAILQ_CONCAT(&l, &p->gather);
    place_writes(p, &l);
    for (int i = 0; i < p->nsrv; i++)
        if (!STAILQ_EMPTY(&p->srv[i]->gathered))
            flush_reads(p, p->srv[i]);
}

void turn_end_arm(struct pool *p)
{
    evloop_defer(p->el, &p->turn_end);
}

void pool_write_vol(struct pool *p, const void *data, uint64_t vid, uint64_t epoch,
                    const struct pool_wrec *rec, pool_write_cb cb, void *arg)
{
    struct req *r = req_new(p, R_WRITE, arg);
    if (!r) {
        fail_oom(p, &(struct oom_fail){ .kind = OOM_WRITE, .cb.w = cb, .arg = arg });
        return;
    }
    r->data = data;
    r->wcb = cb;
    r->vid = vid;
    r->epoch = epoch;
    if (rec && vid) {
        r->has_rec = true;
        r->rec = *rec;
    }
    STAILQ_INSERT_TAIL(&p->gather, r, link);
    turn_end_arm(p);
}

void pool_write_new(struct pool *p, const void *data, pool_write_cb cb, void *arg)
{
    pool_write_vol(p, data, 0, 0, NULL, cb, arg);
}

/* ---- building slabs ---- */

void fail_waiting(struct pool *p, int status)
{
    struct req *r;
    while ((r = STAILQ_FIRST(&p->waiting))) {
        STAILQ_REMOVE_HEAD(&p->waiting, link);
        if (status == -ENOSPC) {        /* pool full: memxctl health says pool_full while this goes on */
            p->st.nospace_writes++;
            p->st.nospace_last_ms = evloop_now_ms();
        }
        finish(p, r, status);
    }
}

static void place_replica(struct pool *p, uint32_t slab)
{
    struct pslab *ps = &p->slabs[slab];
    const struct place_srv *sv = pool_place_view(p);
    struct place_rep rv[REP_SLOTS];
    int sidx = place_new_replica(sv, p->nsrv, rv, pool_rep_view(ps, rv), p->slab_size, p->rnd);
    if (sidx < 0 || ps->nrep >= REP_SLOTS)
        return;
    struct sop *o = sop_new(p, SOP_ALLOC);
    if (!o)
        return;
    o->slab = slab;
    o->rep = ps->nrep;
    ps->rep[ps->nrep] = (struct replica){ .srv = sidx };
    ps->nrep++;
    ps->allocating++;
    srv_submit(p->srv[sidx], o);
}

/* Every SLAB_ALLOC for the slab being built has answered. */
static void slab_built(struct pool *p, uint32_t slab)
{
    struct pslab *ps = &p->slabs[slab];
    int live = pool_live_servers(p);
    p->building = -1;
    if (ps->nrep == 0) {
        ps->used = false;
        slots_fini(&ps->slots);
        if (any_first_connect(p) && !live)
            return;     /* servers still coming up: the writes wait for them */
        if (live)
            pool_warn("no memory server has room for another slab: pool full");
        else
            mx_err("pool: no memory server reachable");
        fail_waiting(p, live ? -ENOSPC : -EHOSTUNREACH);     /* nothing stored: the caller may try again */
        return;
    }
    ps->ready = true;
    p->st.slabs++;
    dir_note(p, slab);
    if (ps->nrep < p->replicas) {
        if (!p->degraded_warned)
            pool_warn("degraded: slab %u has %d of %d replicas (%d memory servers usable)", slab, ps->nrep,
                      p->replicas, live);
        p->degraded_warned = true;
    } else {
        p->degraded_warned = false;
    }
    struct req_list l = STAILQ_HEAD_INITIALIZER(l);
    STAILQ_CONCAT(&l, &p->waiting);
    place_writes(p, &l);
}

/* A free entry of the slab table, cleared and marked used with every page
 * free (the table grows by 16); -1 out of memory.  May move p->slabs: no
 * caller holds a struct pslab pointer across it. */
int64_t slab_slot(struct pool *p)
{
    uint32_t i = 0;
    while (i < p->nslabs && p->slabs[i].used)
        i++;
    if (i == p->nslabs) {
        struct pslab *ns = xreallocarray(p->slabs, (size_t)p->nslabs + 16, sizeof(*ns));
        if (!ns)
            return -1;
        memset(ns + p->nslabs, 0, 16 * sizeof(*ns));
        p->slabs = ns;
        p->nslabs += 16;
    }
    struct pslab *ps = &p->slabs[i];
    memset(ps, 0, sizeof(*ps));
    if (slots_init(&ps->slots, p->pages_per_slab))
        return -1;
    ps->used = true;
    return i;
}

/* Starts building a slab if writes wait for one and none is being built. */
void kick_slab(struct pool *p)
{
    if (p->building >= 0 || STAILQ_EMPTY(&p->waiting))
        return;
    int64_t i = slab_slot(p);
    if (i < 0) {
        xalloc_fail("pool: a new slab");
        fail_waiting(p, -ENOMEM);
        return;
    }
    struct pslab *ps = &p->slabs[i];
    do
        randombytes_buf(&ps->uid, sizeof(ps->uid));
    while (ps->uid == 0);
    p->building = (int)i;
    hedge_arm(p);           /* allocs_late watches the build */
    for (int r = 0; r < p->replicas; r++)
        place_replica(p, i);
    if (p->slabs[i].allocating == 0)
        slab_built(p, i);
}

/* Drops replica rep of slab, a placeholder whose SLAB_ALLOC failed or was
 * given up (compacting keeps indexes of allocs in flight valid only if it is
 * last, so it is swapped with the last unanswered one). */
static void drop_placeholder(struct pool *p, uint32_t slab, int rep)
{
    struct pslab *ps = &p->slabs[slab];
    int last = ps->nrep - 1;
    rep_release(&ps->rep[rep]);         /* a placeholder: nothing of it was ever written */
    if (rep != last) {
        ps->rep[rep] = ps->rep[last];
        for (int i = 0; i < p->nsrv; i++) {
            struct server *t = p->srv[i];
            for (int k = 0; k < SRV_MAX_INFLIGHT; k++)
                if (t->slots[k] && t->slots[k]->kind == SOP_ALLOC && !t->slots[k]->abandoned &&
                    t->slots[k]->slab == slab && t->slots[k]->rep == last)
                    t->slots[k]->rep = rep;
            struct sop *q;
            STAILQ_FOREACH(q, &t->queue, link)
                if (q->kind == SOP_ALLOC && !q->abandoned && q->slab == slab && q->rep == last)
                    q->rep = rep;
        }
    }
    memset(&ps->rep[last], 0, sizeof(ps->rep[last]));
    ps->nrep--;
}

void alloc_done(struct pool *p, struct server *s, struct sop *o, const struct proto_msg *m)
{
    if (o->abandoned) {
        /* Its slab went on without it: what the server allocated holds nothing of ours. */
        struct sop *f = m && m->status == 0 ? sop_new(p, SOP_FREE) : NULL;
        if (f) {
            f->slab = o->slab;
            f->srv_slab = m->u.slab_alloc_r.slab;
            srv_submit(s, f);
        }
        return;
    }
    struct pslab *ps = &p->slabs[o->slab];
    ps->allocating--;
    if (m && m->status == 0 && m->u.slab_alloc_r.size == p->slab_size) {
        struct replica *rp = &ps->rep[o->rep];
        rp->id = m->u.slab_alloc_r.slab;
        rp->raddr = m->u.slab_alloc_r.raddr;
        rp->rkey = m->u.slab_alloc_r.rkey;
        rp->gen = s->gen;
        rp->inc = s->inc;
        rp->ok = true;
        s->capacity = m->u.slab_alloc_r.capacity;
        s->used = m->u.slab_alloc_r.used;
        if (srv_free(s) < p->slab_size && !s->full) {
            srv_warn(s, "full");
            s->full = true;
        }
    } else {
        if (m && m->status == ENOSPC) {
            if (!s->full)
                srv_warn(s, "full");
            s->full = true;
        } else if (m) {
            srv_warn(s, "slab allocation failed: %s", m->status ? strerror(m->status) : "wrong slab size");
        } else {
            srv_info(s, "slab %u: its SLAB_ALLOC went down with the server; placed elsewhere", o->slab);
        }
        drop_placeholder(p, o->slab, o->rep);
        place_replica(p, o->slab);
    }
    if (p->slabs[o->slab].allocating == 0)
        slab_built(p, o->slab);
}

static bool slots_late(const struct server *s, uint64_t now)
{
    for (int k = 0; k < SRV_MAX_INFLIGHT; k++)
        if (s->slots[k] && now >= s->slots[k]->started_ms + WRITE_LATE_MS)
            return true;
    return false;
}

void allocs_late(struct pool *p, uint64_t now)
{
    if (p->building < 0)
        return;
    uint32_t b = (uint32_t)p->building;
    struct pslab *ps = &p->slabs[b];
    bool ok = false;
    for (int r = 0; r < ps->nrep; r++)
        ok |= ps->rep[r].ok;
    if (!ok || !ps->allocating)
        return;             /* nothing allocated yet: the slab has to wait for someone */
    for (int i = 0; i < p->nsrv; i++) {
        struct server *s = p->srv[i];
        for (int k = 0; k < SRV_MAX_INFLIGHT; k++) {
            struct sop *o = s->slots[k];
            if (!o || o->kind != SOP_ALLOC || o->rebuild || o->abandoned || o->slab != b ||
                now < o->started_ms + WRITE_LATE_MS)
                continue;
            srv_info(s, "slab %u: its SLAB_ALLOC is %d ms late: the slab goes on without it (degraded)", b,
                     WRITE_LATE_MS);
            drop_placeholder(p, b, o->rep);
            o->abandoned = true;
            ps->allocating--;
        }
        /* One queued behind a window that is not answering never left: it goes. */
        if (!slots_late(s, now))
            continue;
        struct sop *o, *t;
        STAILQ_FOREACH_SAFE(o, &s->queue, link, t) {
            if (o->kind != SOP_ALLOC || o->rebuild || o->abandoned || o->slab != b)
                continue;
            srv_info(s, "slab %u: its SLAB_ALLOC waits behind late requests: the slab goes on without it", b);
            STAILQ_REMOVE(&s->queue, o, sop, link);
            drop_placeholder(p, b, o->rep);
            sop_free(p, o);
            ps->allocating--;
        }
    }
    if (ps->allocating == 0)
        slab_built(p, b);
}

/* ---- giving slabs back ---- */

void pool_free_page(struct pool *p, pool_page_t page)
{
    uint32_t slab, pg;
    if (!split_page(p, page, &slab, &pg)) {
        pool_warn("free of unknown page 0x%llx ignored", (unsigned long long)page);
        return;
    }
    put_page(p, slab, pg);
    slab_give_back(p, slab);
}

void slab_give_back(struct pool *p, uint32_t slab)
{
    struct pslab *ps = &p->slabs[slab];
    /* A slab goes back only with no page in use, not being built nor copied,
     * and no op naming it by index: a late replica's write or a hedged read's
     * late half would otherwise land in whatever slab takes the index next
     * (the tick retries once they are done). */
    /* Invariant: an unsettled slab is a loading volume's: its free-looking slots hold its pages. */
    if (!ps->used || ps->unsettled || ps->slots.nfree != p->pages_per_slab || (int)slab == p->building ||
        (p->rb.active && p->rb.slab == slab) || ps->wpending || ps->rpending)
        return;
    /* Give an empty slab back only if another one still has room, so a
     * workload that frees and writes one page does not churn slabs. */
    bool other = false;
    for (uint32_t i = 0; i < p->nslabs && !other; i++)
        other = i != slab && p->slabs[i].used && p->slabs[i].ready && p->slabs[i].slots.nfree;
    if (!other)
        return;
    /* Invariant: every page of the slab is free, so no copy of it holds data.
     * The slab leaves the table first: a failure chain inside a free below
     * (srv_submit) then finds nothing of it. */
    struct replica reps[REP_SLOTS];
    int nrep = ps->nrep;
    memcpy(reps, ps->rep, sizeof(reps));
    uint64_t uid = ps->uid;
    slots_fini(&ps->slots);
    memset(ps, 0, sizeof(*ps));
    p->st.slabs--;
    dir_forget(p, uid);
    for (int i = 0; i < nrep; i++) {
        struct server *s = p->srv[reps[i].srv];
        bool held = !reps[i].dead && reps[i].inc != 0 && reps[i].inc == s->inc;
        rep_release(&reps[i]);
        if (!held)
            continue;           /* its server restarted: the slab is gone there */
        if (s->state != SRV_UP) {
            orphan_add(s, reps[i].id);      /* freed when it is back */
            continue;
        }
        struct sop *o = sop_new(p, SOP_FREE);
        if (!o)
            continue;
        o->slab = slab;
        o->srv_slab = reps[i].id;
        /* Forced: records of our volumes there that name it are superseded
         * (a page is let go only once the record replacing it is on R
         * servers or the in-sync ones, and records of pages go only to the
         * page's own servers, so the old ones stay behind here).  Another
         * owner's records still keep it (memd_meta_check_free). */
        o->flags = PROTO_FREE_FORCE;
        srv_submit(s, o);
        s->full = false;
    }
}
