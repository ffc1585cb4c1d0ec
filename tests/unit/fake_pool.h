/* fake_pool.h — an in-memory backend/pool.h for unit tests.
 *
 * Link tests/unit/fake_pool.c instead of the real pool.  pool_new() works (opts
 * and key are ignored) and so does fake_pool_new(el).  Completions are
 * deferred through the evloop (an eventfd), in issue order, so run the loop to
 * see them.  Data is copied when an op completes, not when it is issued, so a
 * caller that reuses a buffer before its callback runs gets caught.
 *
 * Hold mode keeps ops queued until the test releases them, in any order, which
 * is how out-of-order completion is provoked.  Misuse of the pool contract
 * (reading or freeing a page that is not live, freeing a page with I/O in
 * flight) is counted in fake_pool_violations(): tests assert it stays 0.
 */
#ifndef MEMX_FAKE_POOL_H
#define MEMX_FAKE_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

struct proto_rec;

struct evloop;

struct pool *fake_pool_new(struct evloop *el);

/* The next n page writes (reads) fail with err (e.g. -EIO). */
void fake_pool_fail_writes(struct pool *p, unsigned n, int err);
/* The next n writes with a record complete as POOL_WRITE_FEW (a replica was late). */
void fake_pool_few_writes(struct pool *p, unsigned n);
/* The next n META_PUTs (any server) are answered EAGAIN (a stale etcd view). */
void fake_pool_puts_again(struct pool *p, unsigned n);
/* Server srv's record store (to look at what it holds). */
struct volstore;
const struct volstore *fake_pool_meta_store(const struct pool *p, int srv);
/* Server srv holds record r of volume vid (under the volume's epoch there), as if a write had brought it. */
void fake_pool_meta_put(struct pool *p, int srv, uint64_t vid, const struct proto_rec *r);
/* What pool_replicas answers (an attach reads with fewer than that many members unread). */
void fake_pool_set_replicas(struct pool *p, int r);
void fake_pool_fail_reads(struct pool *p, unsigned n, int err);
/* At most this many live pages; further writes fail with -ENOSPC.  0: no limit. */
void fake_pool_set_capacity(struct pool *p, uint64_t pages);

/* Hold mode: ops stay queued until fake_pool_release()/release_all(). */
void   fake_pool_hold(struct pool *p, bool on);
size_t fake_pool_pending(const struct pool *p);
/* Completes the i-th pending op (0 = oldest) now, from the caller's stack. */
void   fake_pool_release(struct pool *p, size_t i);
void   fake_pool_release_all(struct pool *p);

uint64_t fake_pool_live_pages(const struct pool *p);
uint64_t fake_pool_violations(const struct pool *p);
/* Pool reads issued (a run is one), and the pages they covered in *pages. */
uint64_t fake_pool_reads(const struct pool *p, uint64_t *pages);
/* The bytes of a live page, or NULL. */
const void *fake_pool_page(const struct pool *p, pool_page_t page);

/* What pool_get_servers() reports (default: none configured). */
void fake_pool_add_server(struct pool *p, const char *addr, const char *provider, const char *state,
                          uint64_t capacity, uint64_t used);

/* What pool_get_traffic() reports (default: zeros). */
void fake_pool_set_traffic(struct pool *p, const struct pool_traffic *t);

/* Volume metadata: pool_ctl talks to one in-process store.  owner is the
 * identity claims come from (two backends: set it before each attach);
 * meta_down makes the metadata server unreachable; restart forgets which
 * pages a volume holds, as a restarted backend process would. */
void fake_pool_set_owner(struct pool *p, int owner);
void fake_pool_meta_down(struct pool *p, bool down);
/* Page-map records the volumes published so far (every META_PUT's count). */
uint64_t fake_pool_meta_records(const struct pool *p);
void fake_pool_restart(struct pool *p);

/* More metadata servers (default 1), each with its own store: pool_ctl and
 * pool_up_servers see indexes 0..n-1.  A stalled server (SIGSTOP) keeps the
 * requests it gets unanswered until it resumes (then answers them in order)
 * or is declared down (then each gets a NULL reply, and its store never saw
 * them).  A server back up keeps its store (a link cut, not a restart). */
#define FAKE_META_MAX 40           /* more than 32: no server mask of the volume layer may cap it */
void fake_pool_meta_servers(struct pool *p, int n);
void fake_pool_meta_stall(struct pool *p, int srv, bool on);
void fake_pool_meta_srv_down(struct pool *p, int srv, bool down);
size_t fake_pool_meta_held(const struct pool *p, int srv);
/* A new process of server srv (kill -9, started again): it forgets every
 * record, and pool_server_inc says it is another incarnation. */
void fake_pool_meta_srv_restart(struct pool *p, int srv);

#endif
