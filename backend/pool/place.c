/* place.c — placement of slab replicas.  See place.h. */
#include "place.h"

#include <stddef.h>

static bool holds(const struct place_rep *rep, int nrep, int srv, bool good_only)
{
    for (int i = 0; i < nrep; i++)
        if (rep[i].srv == srv && (rep[i].ok || !good_only))
            return true;
    return false;
}

static bool qualifies(const struct place_srv *s, int i, const struct place_rep *rep, int nrep, uint64_t need,
                      bool good_only, bool with_late)
{
    return s->up && (!s->late || with_late) && !s->full && !s->draining && s->free >= need &&
           !holds(rep, nrep, i, good_only);
}

/* The k-th qualifying server (k < the number that qualify). */
static int nth(const struct place_srv *srv, int nsrv, const struct place_rep *rep, int nrep, uint64_t need,
               bool good_only, bool with_late, int k)
{
    for (int i = 0; i < nsrv; i++)
        if (qualifies(&srv[i], i, rep, nrep, need, good_only, with_late) && k-- == 0)
            return i;
    return -1;
}

/* No candidate list: the servers are counted, then the two draws found by
 * rank, so any number of servers takes part. */
static int pick(const struct place_srv *srv, int nsrv, const struct place_rep *rep, int nrep, uint64_t need,
                bool good_only, int (*rnd)(void))
{
    int n = 0;
    bool with_late = false;
    /* A late server only when nothing else can take it: on a host where
     * every server is slow (an emulator, an overloaded host) refusing them
     * all would fail guest writes with ENOSPC while room is left. */
    for (int wl = 0; wl < 2 && n == 0; wl++) {
        with_late = wl;
        for (int i = 0; i < nsrv; i++)
            n += qualifies(&srv[i], i, rep, nrep, need, good_only, with_late);
    }
    if (n == 0)
        return -1;
    int ka = rnd() % n, kb = rnd() % n;
    int a = nth(srv, nsrv, rep, nrep, need, good_only, with_late, ka);
    int b = nth(srv, nsrv, rep, nrep, need, good_only, with_late, kb);
    return srv[a].free >= srv[b].free ? a : b;
}

int place_new_replica(const struct place_srv *srv, int nsrv, const struct place_rep *rep, int nrep,
                      uint64_t need, int (*rnd)(void))
{
    return pick(srv, nsrv, rep, nrep, need, false, rnd);
}

int place_rebuild_target(const struct place_srv *srv, int nsrv, const struct place_rep *rep, int nrep,
                         uint64_t need, int (*rnd)(void))
{
    return pick(srv, nsrv, rep, nrep, need, true, rnd);
}

int place_rebuild_slot(const struct place_srv *srv, const struct place_rep *rep, int nrep, int max)
{
    for (int i = 0; i < nrep; i++)
        if (!rep[i].ok)
            return i;
    for (int i = 0; i < nrep; i++)
        if (srv[rep[i].srv].draining)
            return i;
    return nrep < max ? nrep : -1;
}
