/* srvconn.h — one memory server as the pool sees it: its connection
 * (endpoint, handshake, heartbeat, backoff), its op slots and queue, and the
 * timeouts that declare it down.
 *
 * A server is a small state machine (connecting -> up -> down -> connecting
 * ..., or refused) driven by the pool's tick (srv_tick), which also times out
 * handshakes and stuck operations.  At most SRV_MAX_INFLIGHT ops are on the
 * wire per server, the rest wait in its FIFO.  A reply finds its op through
 * the request id (slot index + sequence number), so a late reply from an
 * earlier connection can never complete a newer operation.
 *
 * This header is the seam between the pool's logic (pwrite, pread, rebuild,
 * adopt: they only srv_submit ops and read the fields below) and the wire:
 * srvconn.c implements it over lib/fabric.h with sop.c's encoding, and
 * tests/unit/fake_srvconn.c implements it in memory, so rebuild, drain and
 * failure chains are tested without processes.  Either implementation
 * reports back only through the pool's hooks (pool_int.h): sop_reply,
 * sop_read_done, sop_fail, pool_srv_down, pool_srv_up, pool_no_server_check.
 */
#ifndef MEMX_SRVCONN_H
#define MEMX_SRVCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "fabric.h"
#include "log.h"
#include "proto.h"
#include "queue.h"

#define SRV_MAX_INFLIGHT 64         /* messages + reads on the wire per server */
#define SRV_HELLO_TIMEOUT_MS 2000   /* a connection attempt's handshake; also how long writes
                                     * wait for a first server (pool_new with none) */

enum srv_state { SRV_CONNECTING, SRV_UP, SRV_DOWN, SRV_REFUSED };

struct evloop;
struct pool;
struct sop;
STAILQ_HEAD(sop_list, sop);

struct server {
    struct pool *p;
    int idx;
    char addr[128];
    char name[160];             /* "pool -> memd <addr>", the endpoint's name in logs */
    struct fab *fab;            /* NULL between a failure and the next attempt */
    fab_addr_t fa;
    bool have_fa, tried_once;
    enum srv_state state;
    uint64_t gen;               /* bumps on every connection attempt */
    uint64_t hs_req;            /* this attempt's handshake request id: random, so a peer that
                                 * cannot see our traffic cannot answer for, or spoil, it */
    uint64_t inc;               /* bumps when it comes up as a new process (pool_srv_up): our slabs there are gone */
    uint64_t hs_started_ms, retry_at_ms;
    unsigned backoff_ms;
    uint8_t cnonce[PROTO_NONCE_BYTES], snonce[PROTO_NONCE_BYTES];
    char sid[PROTO_ID_MAX];
    /* This session's keys (auth.h), from the handshake: sop.c seals every
     * message it sends with them, on_recv opens every answer. */
    struct auth_sess ak;
    struct mx_ratelimit rl_forged;
    uint64_t capacity, used;
    bool full;
    bool draining;              /* memxctl pool drain: no new slabs, replicas move away */
    /* Left the membership (pool_remove_server): down and never retried
     * until pool_add_server brings it back.  Its struct stays: sops and
     * replicas name servers by index. */
    bool gone;
    bool hb_inflight;
    /* An op of ours has waited WRITE_LATE_MS here (writes_late); cleared by
     * its next answer.  Meanwhile a write acknowledged elsewhere does not wait
     * for it at all: one stalled server costs the guest one late interval,
     * not one per write until the heartbeat declares it down. */
    bool late;
    uint64_t hb_sent_ms;
    bool had_session;           /* welcomed once by this process: later HELLOs are not fresh */
    char last_sid[PROTO_ID_MAX];/* the server incarnation our replicas there belong to */
    /* Slabs the pool gave back while it was unreachable: freed when it is
     * back as the same incarnation (a restarted server lost them anyway). */
    uint32_t *orphans;
    size_t norphans, orphans_cap;
    uint32_t seq;
    struct sop *slots[SRV_MAX_INFLIGHT];
    int inflight;
    struct sop_list queue;      /* waiting for a slot */
    struct sop_list gathered;   /* reads of this loop turn, gathered at its end (pread.c) */
    void *fake;                 /* tests/unit/fake_srvconn.c's state */
};

/* Log lines about a server name it the same way everywhere. */
#define srv_log(lvl, s, fmt, ...) mx_log(lvl, "memd %s: " fmt, (s)->addr, ##__VA_ARGS__)
#define srv_err(s, ...)  srv_log(MX_LOG_ERR, s, __VA_ARGS__)
#define srv_warn(s, ...) srv_log(MX_LOG_WARN, s, __VA_ARGS__)
#define srv_info(s, ...) srv_log(MX_LOG_INFO, s, __VA_ARGS__)
#define srv_debug(s, ...)                                                                           \
    do {                                                                                            \
        if (mx_log_level() >= MX_LOG_DEBUG)                                                         \
            srv_log(MX_LOG_DEBUG, s, __VA_ARGS__);                                                  \
    } while (0)

static inline uint64_t srv_free(const struct server *s)
{
    return s->capacity > s->used ? s->capacity - s->used : 0;
}

/* Whether provider can open here at all (a configuration error pool_new
 * reports at once): 0, or -1 with a message in err. */
int  srv_probe(struct evloop *el, const char *provider, char *err, size_t errlen);
/* Sets s up (not connected yet) as server idx of p. */
void srv_init(struct server *s, struct pool *p, int idx, const char *addr);
/* Drops the connection and everything held for it (pool_free). */
void srv_close(struct server *s);
/* A new connection attempt; never from inside one of the server's callbacks. */
void srv_connect(struct server *s);
/* The pool's periodic tick: deadlines, heartbeats, reconnects. */
void srv_tick(struct server *s, uint64_t now_ms);
/* Sends o now if a slot is free, else queues it.  May take the server down
 * synchronously (a post the transport refuses): callers must expect any
 * pool state to have changed when it returns. */
void srv_submit(struct server *s, struct sop *o);
/* Declares the server down (a no-op if it is down or refused already). */
void srv_down(struct server *s, const char *why);
/* Hands every op the server holds (slots, queue) to sop_fail. */
void srv_flush(struct server *s);
/* How many pieces one gathered read may have (1 if the server is not up). */
int srv_rma_limit(const struct server *s);
/* The provider the connection really uses (NULL when not connected). */
const char *srv_provider(const struct server *s);

#endif
