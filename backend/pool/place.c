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

static int pick(const struct place_srv *srv, int nsrv, const struct place_rep *rep, int nrep, uint64_t need,
                bool good_only, int (*rnd)(void))
{
    int c[64], n = 0;
    /* A late server only when nothing else can take it: on a host where
     * every server is slow (an emulator, an overloaded host) refusing them
     * all would fail guest writes with ENOSPC while room is left. */
    for (int with_late = 0; with_late < 2 && n == 0; with_late++) {
        for (int i = 0; i < nsrv && n < (int)(sizeof(c) / sizeof(c[0])); i++) {
            const struct place_srv *s = &srv[i];
            if (!s->up || (s->late && !with_late) || s->full || s->draining || s->free < need ||
                holds(rep, nrep, i, good_only))
                continue;
            c[n++] = i;
        }
    }
    if (n == 0)
        return -1;
    int a = c[rnd() % n], b = c[rnd() % n];
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
