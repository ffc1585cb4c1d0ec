/* place.h — placement: which memory server gets a slab's next replica, for a
 * new slab and for re-replication (rebuild, drain) alike.  Pure: the pool
 * passes a snapshot of its servers and of the slab's replicas, and a random
 * source; tests/unit/test_place.c passes its own.
 *
 * One rule for both uses: a server qualifies when it is up, not full, not
 * draining and has room for one more slab, and holds no copy of the slab;
 * of the qualifying servers two are drawn at random and the one with more
 * free room wins ("power of two choices": balances by free room without
 * herding every new slab onto the emptiest server).  The only difference
 * between the two uses is what counts as holding a copy: for a new slab any
 * replica, even one still being allocated; for a rebuild only a good one (a
 * stale replica's server may take the new copy, which then replaces it).
 *
 * Invariant that keeps redundancy real: a server that holds a copy of the
 * slab is never picked for another, so no two replicas of a slab share a
 * server.
 */
#ifndef MEMX_PLACE_H
#define MEMX_PLACE_H

#include <stdbool.h>
#include <stdint.h>

struct place_srv {
    bool up, full, draining;
    bool late;                  /* up, but a request of ours has waited POOL_LATE_MS there:
                                 * chosen only when no other server can take the replica */
    uint64_t free;              /* bytes the server says it still has */
};

struct place_rep {
    int srv;                    /* index into the server array */
    bool ok;                    /* has every acknowledged write */
};

/* The server for a new replica of a slab with replicas rep[0..nrep), or -1
 * if none qualifies.  need: the slab's size; rnd: rand() or a test's. */
int place_new_replica(const struct place_srv *srv, int nsrv, const struct place_rep *rep, int nrep,
                      uint64_t need, int (*rnd)(void));
/* The server a rebuild copies the slab to (servers with a stale copy
 * qualify), or -1. */
int place_rebuild_target(const struct place_srv *srv, int nsrv, const struct place_rep *rep, int nrep,
                         uint64_t need, int (*rnd)(void));
/* The rep[] slot a rebuilt copy takes: a stale replica's, else a draining
 * server's, else a new one (nrep) if nrep < max; -1 if none. */
int place_rebuild_slot(const struct place_srv *srv, const struct place_rep *rep, int nrep, int max);

#endif
