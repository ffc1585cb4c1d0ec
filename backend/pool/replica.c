/* replica.c — how far the pool trusts one replica, slot by slot.
 *
 * A replica is not simply good or stale.  While its server is unreachable
 * (a 2 s heartbeat miss, a failed RMA read, a send error: a stall or a link
 * flap as often as a death) its slab is very likely intact there, so the
 * pool only records which slots were written without it (the missed
 * bitmap) instead of giving the whole copy up.  When the server comes back
 * as the same process (same boot token) the replica is revalidated: it
 * keeps every slot it did not miss, the ones it missed are copied from a
 * good replica (rebuild.c), and it is good again.  A server that comes back
 * as a new process lost the slab: the replica is dead (never read or
 * written again, and its slab id may already belong to another slab).
 *
 *   live      its server is up and it belongs to the server's current
 *             incarnation: it takes writes, and serves reads of the slots it
 *             did not miss;
 *   ok        live and missed nothing: a good copy, for reads, sources and
 *             redundancy;
 *   dead      untrusted for good (a new incarnation, a refused write, bytes
 *             that do not match the volume record): only dropped.
 *
 * A copy is freed (or dropped from the slab) only once R good copies exist
 * on other servers (slab_trim); until then even a dead or away one stays.
 */
#include "pool_int.h"
#include "log.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

bool rep_live(const struct pool *p, const struct replica *rp)
{
    const struct server *s = p->srv[rp->srv];
    return !rp->dead && rp->inc != 0 && rp->inc == s->inc && s->state == SRV_UP;
}

bool rep_readable(const struct pool *p, const struct replica *rp, uint32_t page, unsigned n)
{
    if (!rep_live(p, rp))
        return false;
    if (rp->ok || !rp->nmissed)
        return true;
    for (unsigned i = 0; i < n; i++)
        if (rep_missed(rp, page + i))
            return false;
    return true;
}

bool rep_missed(const struct replica *rp, uint32_t page)
{
    return rp->missed && (rp->missed[page / 64] >> (page % 64) & 1);
}

/* Whether the replica is good again (live and nothing missed): true if it
 * just became so. */
static bool rep_recheck(struct pool *p, uint32_t slab, int rep)
{
    struct replica *rp = &p->slabs[slab].rep[rep];
    if (rp->ok || rp->nmissed || !rep_live(p, rp))
        return false;
    rp->ok = true;
    mx_debug("pool: slab %u replica on memd %s revalidated: it missed no write", slab, p->srv[rp->srv]->addr);
    return true;
}

void rep_dead(struct pool *p, uint32_t slab, int rep, const char *why)
{
    struct replica *rp = &p->slabs[slab].rep[rep];
    if (rp->dead)
        return;
    bool was_ok = rp->ok;
    rp->dead = true;
    rp->ok = false;
    free(rp->missed);
    rp->missed = NULL;
    rp->nmissed = 0;
    mx_log(was_ok ? MX_LOG_WARN : MX_LOG_DEBUG, "pool: slab %u replica on memd %s untrusted for good (%s)%s",
           slab, p->srv[rp->srv]->addr, why, was_ok ? ": degraded" : "");
}

/* The replica starts recording what it misses (its bitmap exists); false,
 * and the replica is dead, out of memory: then it can never be trusted. */
static bool rep_track(struct pool *p, uint32_t slab, int rep)
{
    struct replica *rp = &p->slabs[slab].rep[rep];
    if (rp->dead)
        return false;
    if (!rp->missed && !(rp->missed = xcalloc(p->pages_per_slab / 64, sizeof(uint64_t)))) {
        xalloc_fail("pool: a replica's missed-slot map");
        rep_dead(p, slab, rep, "out of memory for its missed-slot map");
        return false;
    }
    return true;
}

/* True if the replica was good. */
bool rep_away(struct pool *p, uint32_t slab, int rep)
{
    struct replica *rp = &p->slabs[slab].rep[rep];
    if (rp->dead || rp->inc == 0)
        return false;   /* dead already, or a placeholder whose SLAB_ALLOC the flush fails */
    bool was_ok = rp->ok;
    rp->ok = false;
    return rep_track(p, slab, rep) && was_ok;
}

void rep_miss(struct pool *p, uint32_t slab, int rep, uint32_t page, const char *why)
{
    struct replica *rp = &p->slabs[slab].rep[rep];
    if (rp->dead || !rep_track(p, slab, rep))
        return;
    if (rp->ok)
        pool_warn("slab %u replica on memd %s missed a write (%s): degraded", slab, p->srv[rp->srv]->addr, why);
    /* Invariant: a replica that may lack a slot's write is never read there. */
    rp->ok = false;
    if (!(rp->missed[page / 64] >> (page % 64) & 1)) {
        rp->missed[page / 64] |= 1ull << (page % 64);
        rp->nmissed++;
    }
}

void rep_unmiss(struct pool *p, uint32_t slab, int rep, uint32_t page)
{
    struct replica *rp = &p->slabs[slab].rep[rep];
    if (!rep_missed(rp, page))
        return;
    rp->missed[page / 64] &= ~(1ull << (page % 64));
    rp->nmissed--;
    rep_recheck(p, slab, rep);
}

void slot_unmiss(struct pool *p, uint32_t slab, uint32_t page)
{
    /* The slot is free: what any replica missed there no longer matters. */
    for (int i = 0; i < p->slabs[slab].nrep; i++)
        rep_unmiss(p, slab, i, page);
}

void rep_valid(struct pool *p, uint32_t slab, int rep)
{
    struct replica *rp = &p->slabs[slab].rep[rep];
    free(rp->missed);
    rp->missed = NULL;
    rp->nmissed = 0;
    rp->ok = rep_live(p, rp);
}

void rep_release(struct replica *rp)
{
    free(rp->missed);
    rp->missed = NULL;
    rp->nmissed = 0;
}

/* Good replicas of the slab on servers other than srv. */
int good_elsewhere(const struct pool *p, const struct pslab *ps, int srv)
{
    int n = 0;
    for (int i = 0; i < ps->nrep; i++)
        n += ps->rep[i].ok && ps->rep[i].srv != srv;
    return n;
}

/* Removes rep[i] from the slab (no op refers to it: see slab_trim). */
static void rep_drop(struct pslab *ps, int i)
{
    rep_release(&ps->rep[i]);
    for (int k = i; k + 1 < ps->nrep; k++)
        ps->rep[k] = ps->rep[k + 1];
    ps->nrep--;
    memset(&ps->rep[ps->nrep], 0, sizeof(ps->rep[ps->nrep]));
}

/* Whether no op of the slab refers to its replicas by index now. */
static bool slab_quiet(const struct pool *p, uint32_t slab)
{
    const struct pslab *ps = &p->slabs[slab];
    return ps->used && ps->ready && !ps->wpending && !ps->rpending && (int)slab != p->building &&
           !(p->rb.active && p->rb.slab == slab);
}

/* One surplus replica dropped (and freed on its server); false if none. */
static bool trim_one(struct pool *p, uint32_t slab)
{
    if (!slab_quiet(p, slab))
        return false;
    struct pslab *ps = &p->slabs[slab];
    for (int i = ps->nrep - 1; i >= 0; i--) {
        struct replica *rp = &ps->rep[i];
        struct server *s = p->srv[rp->srv];
        if (rp->ok && !s->draining)
            continue;           /* a good copy stays */
        bool held = rp->inc != 0 && rp->inc == s->inc;     /* the server may still hold it */
        /* Invariant: a copy goes only once R good copies exist on other
         * servers, or when it does not exist any more (its server restarted). */
        if (held && good_elsewhere(p, ps, rp->srv) < p->replicas)
            continue;
        if (held && s->gone) {
            /* Left the membership, R good copies elsewhere: its slot in the
             * slab is given up (it may never come back).  Invariant: nothing
             * is freed on it now; only if it returns as the same process. */
            mx_info("pool: slab %u: copy on memd %s (gone) forgotten (%d good copies elsewhere)", slab, s->addr,
                    good_elsewhere(p, ps, rp->srv));
            orphan_add(s, rp->id);
            rep_drop(ps, i);
            return true;
        }
        if (held && s->state != SRV_UP)
            continue;           /* away: freed when it is back */
        int srv = rp->srv;
        uint32_t id = rp->id;
        mx_log(held ? MX_LOG_INFO : MX_LOG_DEBUG, "pool: slab %u: copy on memd %s %s (%d good copies elsewhere)",
               slab, s->addr, held ? "freed" : "forgotten (its server restarted)", good_elsewhere(p, ps, rp->srv));
        rep_drop(ps, i);
        if (held)
            rb_free_remote(p, srv, id, true);   /* may take servers down: look again from scratch */
        return true;
    }
    return false;
}

void slab_trim(struct pool *p, uint32_t slab)
{
    int n = 0;
    while (n < REP_SLOTS && trim_one(p, slab))
        n++;
    if (n)
        dir_note(p, slab);
}

void reps_server_down(struct pool *p, struct server *s)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < p->nslabs; i++)
        for (int r = 0; p->slabs[i].used && r < p->slabs[i].nrep; r++)
            if (p->slabs[i].rep[r].srv == s->idx)
                n += rep_away(p, i, r);
    if (n)
        srv_warn(s, "its %u good replicas are unreachable: degraded; the writes they miss are tracked", n);
}

void reps_server_up(struct pool *p, struct server *s, bool same_incarnation)
{
    unsigned valid = 0, pending = 0, gone = 0;
    s->late = false;            /* a new session: it is waited for again */
    if (!same_incarnation)
        s->inc++;
    for (uint32_t i = 0; i < p->nslabs; i++) {
        for (int r = 0; p->slabs[i].used && r < p->slabs[i].nrep; r++) {
            struct replica *rp = &p->slabs[i].rep[r];
            if (rp->srv != s->idx || rp->dead || rp->inc == 0)
                continue;
            if (rp->inc != s->inc) {
                /* Invariant: a restarted server lost the slab; its id may name another slab now. */
                rep_dead(p, i, r, "its server restarted");
                gone++;
                continue;
            }
            /* R good copies elsewhere already (re-replicated while it was
             * away): it stays untrusted and slab_trim frees it there. */
            if (good_elsewhere(p, &p->slabs[i], s->idx) >= p->replicas)
                continue;
            if (rep_recheck(p, i, r))
                valid++;
            else if (!rp->ok)
                pending++;
        }
        if (p->slabs[i].used)
            slab_trim(p, i);
    }
    if (valid || pending || gone)
        srv_info(s, "back: %u replicas revalidated (they missed no write), %u to get the slots they missed, "
                 "%u lost with its restart", valid, pending, gone);
}
