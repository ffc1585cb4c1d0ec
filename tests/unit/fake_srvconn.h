/* fake_srvconn.h — an in-process memory server behind backend/pool/srvconn.h,
 * for the pool's unit tests (test_rebuild.c).
 *
 * Link tests/unit/fake_srvconn.c instead of backend/pool/srvconn.c with the
 * rest of the pool's files: pool_new() then "connects" to every configured
 * server at once (no process, no fabric), and each server keeps its slabs in
 * memory.  An op submitted to a fake server is answered at the end of the
 * loop turn through the same sop_reply/sop_read_done a real reply takes,
 * unless the test holds the server (replies wait for fake_srv_release) or
 * makes its next posts fail synchronously (srv_down from inside
 * srv_submit, as a transport that refuses a post does).  Nothing runs on a
 * timer: there are no heartbeats or op timeouts; the test takes servers
 * down itself (srv_down) and brings them back (fake_srv_restart).
 */
#ifndef MEMX_FAKE_SRVCONN_H
#define MEMX_FAKE_SRVCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct server;

/* Servers' room, in slabs (default 16), for pools made after the call. */
void fake_srv_set_capacity(unsigned slabs);
/* Slabs freed on s (forced: only those freed with PROTO_FREE_FORCE). */
unsigned fake_srv_frees(const struct server *s, bool forced);
/* Replies wait (on) until fake_srv_release; off: they go at the end of the turn again. */
void fake_srv_hold(struct server *s, bool on);
/* Answers every op held now, in the order they were submitted; returns how many. */
unsigned fake_srv_release(struct server *s);
/* Answers at most n held ops of kind (enum sop_kind), oldest first. */
unsigned fake_srv_release_kind(struct server *s, int kind, unsigned n);
/* Ops of kind (enum sop_kind, or -1: any) the server holds now. */
unsigned fake_srv_held(const struct server *s, int kind);
/* The next n posts to s fail synchronously: s goes down inside srv_submit. */
void fake_srv_fail_posts(struct server *s, unsigned n);
/* The next n PAGE_WRITEs to s (not the rebuild's copies) are answered with
 * status (a positive errno: EAGAIN, a memd that cannot prove the writer's
 * ownership now), nothing stored. */
void fake_srv_refuse_writes(struct server *s, unsigned n, int status);
/* Back up after srv_down: the same incarnation (its slabs kept) or a fresh
 * one (every slab gone). */
void fake_srv_restart(struct server *s, bool same_incarnation);
/* The page bytes the server holds at (server slab id, page), or NULL if it
 * holds no such slab. */
const uint8_t *fake_srv_page(const struct server *s, uint32_t srv_slab, uint32_t page);
/* A slab the server holds already (written by an earlier backend process),
 * every byte fill, found by SLAB_FIND for uid; its server slab id, 0 if full. */
uint32_t fake_srv_add_slab(struct server *s, uint64_t uid, uint8_t fill);
/* Slabs the server holds. */
unsigned fake_srv_slabs(const struct server *s);

#endif
