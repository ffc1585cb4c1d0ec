/* srvconn.c — one memory server's connection and op slots.  See srvconn.h.
 *
 * One fabric endpoint per memory server, reopened on every connection
 * attempt.  rxm keeps per-endpoint state (connections, transmit credits, its
 * reconnect attempts) that a dead peer can wedge: with one shared endpoint a
 * killed server stalled reads to the survivors until they too timed out.  A
 * fresh endpoint per attempt also means nothing of an old session lingers.
 *
 * What an op means (its encoding, what its reply or failure does to the
 * pool) is sop.c's; this file only moves ops between slots, the queue and
 * the transport, and decides when the server is down.
 */
#include "pool_int.h"
#include "auth.h"
#include "config.h"
#include "fabric.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HS_SLOT           0xffu     /* low byte of the handshake request id */
_Static_assert(SRV_MAX_INFLIGHT < HS_SLOT, "op slots and the handshake id share the low byte");
#define HELLO_TIMEOUT_MS  SRV_HELLO_TIMEOUT_MS
#define OP_TIMEOUT_MS     5000
#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    5000
#define REFUSED_RETRY_MS  30000
/* rxm hides a dead peer: it answers a send with "try again" while it keeps
 * reconnecting, and only ops already on a connection that breaks fail.  So an
 * idle server is probed with a STATS round trip, and one that leaves it
 * unanswered that long is down (a live memd answers in microseconds). */
#define HEARTBEAT_MS      500
#define HB_TIMEOUT_MS     2000

static void on_recv(void *arg, fab_addr_t from, const void *buf, size_t len);

int srv_probe(struct evloop *el, const char *provider, char *err, size_t errlen)
{
    struct fab_opts fo = { .provider = provider, .name = "pool", .on_recv = NULL, .arg = NULL };
    struct fab *probe = fab_open(el, &fo, err, errlen);
    if (!probe)
        return -1;
    fab_close(probe);
    return 0;
}

void srv_init(struct server *s, struct pool *p, int idx, const char *addr)
{
    s->p = p;
    s->idx = idx;
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    snprintf(s->name, sizeof(s->name), "pool -> memd %s", s->addr);
    s->backoff_ms = BACKOFF_MIN_MS;
    STAILQ_INIT(&s->queue);
    STAILQ_INIT(&s->gathered);
}

void srv_close(struct server *s)
{
    fab_close(s->fab);
    s->fab = NULL;
    free(s->orphans);
    s->orphans = NULL;
    s->norphans = s->orphans_cap = 0;
}

int srv_rma_limit(const struct server *s)
{
    return s->state == SRV_UP && s->fab ? fab_rma_limit(s->fab) : 1;
}

const char *srv_provider(const struct server *s)
{
    return s->fab ? fab_provider(s->fab) : NULL;
}

/* Whether a tag still names something this server is waiting for. */
static bool tag_current(const struct server *s, uint64_t tag)
{
    if ((tag & 0xff) == HS_SLOT)
        return tag == s->hs_req && s->state == SRV_CONNECTING;
    unsigned slot = tag & 0xff;
    return slot < SRV_MAX_INFLIGHT && s->slots[slot] && s->slots[slot]->req_id == tag;
}

static void on_sent(void *arg, uint64_t tag, int status, const void *data, size_t len)
{
    struct server *s = arg;
    if (status && tag_current(s, tag))
        srv_down(s, fab_strerror(-status));
}

/* Handshake messages only (HELLO, AUTH): ops go through sop_post. */
static void send_msg(struct server *s, struct proto_msg *m)
{
    uint8_t buf[PROTO_MSG_MAX];
    size_t len = proto_encode(m, buf, sizeof(buf));
    if (fab_send(s->fab, s->fa, buf, len, NULL, 0, on_sent, s, m->req_id))
        srv_down(s, "out of send buffers");
}

/* The sop a reply or completion belongs to, taken off its slot (the next
 * queued op takes the slot); NULL if stale. */
static struct sop *srv_take(struct server *s, uint64_t req_id);

static void on_read_done(void *arg, uint64_t tag, int status, const void *data, size_t len)
{
    struct server *s = arg;
    struct sop *o = srv_take(s, tag);
    if (o)
        sop_read_done(s, o, status, data, len);
}

/* Puts o on the wire now (a free slot exists). */
static void launch(struct server *s, struct sop *o)
{
    int slot = 0;
    while (s->slots[slot])
        slot++;
    s->slots[slot] = o;
    s->inflight++;
    fab_expect(s->fab, 1);
    o->req_id = (uint64_t)(++s->seq) << 8 | (uint64_t)slot;
    o->started_ms = evloop_now_ms();
    o->t_ns = evloop_now_ns();
    const char *why;
    if (sop_post(s, o, on_sent, on_read_done, &why))
        srv_down(s, why);     /* o is in its slot: the flush fails it like the others */
}

void srv_submit(struct server *s, struct sop *o)
{
    if (s->inflight < SRV_MAX_INFLIGHT) {
        launch(s, o);
        return;
    }
    STAILQ_INSERT_TAIL(&s->queue, o, link);
}

static struct sop *srv_take(struct server *s, uint64_t req_id)
{
    /* Slot and sequence number must both match: a late reply from an earlier
     * connection, or to an op since failed, completes nothing. */
    unsigned slot = req_id & 0xff;
    if (slot >= SRV_MAX_INFLIGHT || !s->slots[slot] || s->slots[slot]->req_id != req_id)
        return NULL;
    struct sop *o = s->slots[slot];
    s->slots[slot] = NULL;
    s->inflight--;
    fab_expect(s->fab, -1);
    struct sop *n = STAILQ_FIRST(&s->queue);
    if (n && s->state == SRV_UP) {
        STAILQ_REMOVE_HEAD(&s->queue, link);
        launch(s, n);
    }
    return o;
}

void srv_connect(struct server *s)
{
    struct pool *p = s->p;
    char err[256];
    /* Called from the tick only, never from inside one of this fab's callbacks. */
    fab_close(s->fab);
    s->have_fa = false;
    s->gen++;
    s->state = SRV_CONNECTING;
    auth_session_clear(&s->ak);       /* the next WELCOME gives new keys */
    s->hs_started_ms = evloop_now_ms();
    struct fab_opts fo = { .provider = p->provider, .peer = s->addr, .name = s->name, .on_recv = on_recv,
                           .arg = s };
    if (!(s->fab = fab_open(p->el, &fo, err, sizeof(err))) ||
        fab_peer_add(s->fab, s->addr, &s->fa, err, sizeof(err))) {
        srv_down(s, err);
        return;
    }
    s->have_fa = true;
    auth_nonce(s->cnonce);
    uint8_t rnd[PROTO_NONCE_BYTES];
    auth_nonce(rnd);
    uint64_t r64 = 0;
    for (int i = 0; i < 7; i++)
        r64 = r64 << 8 | rnd[i];
    s->hs_req = r64 << 8 | HS_SLOT;
    struct proto_msg m = { .type = PROTO_HELLO, .req_id = s->hs_req };
    memcpy(m.u.hello.id, p->id, sizeof(p->id));
    /* Whatever an earlier run of this backend left there is unreachable now. */
    m.u.hello.flags = s->had_session ? 0 : PROTO_HELLO_FRESH;
    memcpy(m.u.hello.nonce, s->cnonce, PROTO_NONCE_BYTES);
    size_t al = sizeof(m.u.hello.addr);
    if (fab_local_name(s->fab, m.u.hello.addr, &al) == 0)
        m.u.hello.addr_len = (uint32_t)al;
    send_msg(s, &m);
}

void srv_flush(struct server *s)
{
    struct sop_list l = STAILQ_HEAD_INITIALIZER(l);
    STAILQ_CONCAT(&l, &s->queue);
    for (int k = 0; k < SRV_MAX_INFLIGHT; k++) {
        if (s->slots[k]) {
            STAILQ_INSERT_HEAD(&l, s->slots[k], link);
            s->slots[k] = NULL;
        }
    }
    if (s->fab)
        fab_expect(s->fab, -s->inflight);
    s->inflight = 0;
    struct sop *o;
    while ((o = STAILQ_FIRST(&l))) {
        STAILQ_REMOVE_HEAD(&l, link);
        sop_fail(s, o);
    }
}

void srv_down(struct server *s, const char *why)
{
    if (s->state == SRV_DOWN || s->state == SRV_REFUSED)
        return;
    bool was_up = s->state == SRV_UP;
    s->state = SRV_DOWN;
    s->tried_once = true;
    s->retry_at_ms = evloop_now_ms() + s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    if (was_up)
        srv_warn(s, "down (%s)", why);
    else
        srv_debug(s, "connection attempt failed (%s)", why);
    pool_srv_down(s, was_up);
}

static void srv_refused(struct server *s, const char *why)
{
    srv_err(s, "refused: %s", why);
    srv_down(s, why);
    s->state = SRV_REFUSED;
    s->retry_at_ms = evloop_now_ms() + REFUSED_RETRY_MS;
    pool_no_server_check(s->p);
}

static void on_handshake(struct server *s, const struct proto_msg *m)
{
    struct pool *p = s->p;
    if (m->req_id != s->hs_req || s->state != SRV_CONNECTING)
        return;
    if (m->type == PROTO_CHALLENGE) {
        memcpy(s->sid, m->u.challenge.id, sizeof(s->sid));
        memcpy(s->snonce, m->u.challenge.nonce, PROTO_NONCE_BYTES);
        struct proto_msg a = { .type = PROTO_AUTH, .req_id = m->req_id };
        auth_proof(p->key, AUTH_CLIENT, s->snonce, s->cnonce, p->id, s->sid, a.u.auth.mac);
        send_msg(s, &a);
        return;
    }
    if (m->type == PROTO_REFUSED) {
        srv_refused(s, m->u.refused.reason);
        return;
    }
    /* WELCOME */
    if (!auth_check(p->key, AUTH_SERVER, s->snonce, s->cnonce, p->id, s->sid, m->u.welcome.mac)) {
        srv_refused(s, "server could not prove the cluster key");
        return;
    }
    /* Both ends proved the key in this exchange: its keys seal everything after it. */
    auth_session(&s->ak, p->key, AUTH_CLIENT, s->snonce, s->cnonce, p->id, s->sid);
    if (m->u.welcome.slab_size != p->slab_size) {
        char a[32], b[32];
        srv_err(s, "slab size %s differs from [cluster] slab_size = %s",
                memx_format_size(m->u.welcome.slab_size, a, sizeof(a)),
                memx_format_size(p->slab_size, b, sizeof(b)));
        srv_refused(s, "slab size mismatch");
        return;
    }
    s->state = SRV_UP;
    s->hb_inflight = false;
    s->hb_sent_ms = evloop_now_ms();
    bool same = s->had_session && strcmp(s->sid, s->last_sid) == 0;
    if (s->had_session && !same)
        srv_info(s, "restarted (was %s, now %s): what we held there is gone", s->last_sid, s->sid);
    s->had_session = true;
    memcpy(s->last_sid, s->sid, sizeof(s->last_sid));
    s->tried_once = true;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->capacity = m->u.welcome.capacity;
    s->used = m->u.welcome.used;
    s->full = false;
    char c[32], u[32];
    srv_info(s, "up over %s, %s capacity, %s used", fab_provider(s->fab),
             memx_format_size(s->capacity, c, sizeof(c)), memx_format_size(s->used, u, sizeof(u)));
    pool_srv_up(s, same);
}

static void on_recv(void *arg, fab_addr_t from, const void *buf, size_t len)
{
    struct server *s = arg;
    if (!s->have_fa || from != s->fa)
        return;     /* only the configured server gets an answer, or a hearing */
    struct proto_msg m;
    char why[160];
    if (proto_decode(buf, len, &m, why, sizeof(why))) {
        if (mx_ratelimit_ok(&s->rl_forged, 2000))
            srv_warn(s, "bad message: %s (%u such suppressed)", why, s->rl_forged.last_suppressed);
        return;
    }
    /* The handshake's answers are unsealed (its proofs are in them). */
    if (m.type == PROTO_CHALLENGE || m.type == PROTO_WELCOME ||
        (m.type == PROTO_REFUSED && (m.req_id & 0xff) == HS_SLOT)) {
        on_handshake(s, &m);
        return;
    }
    /* Everything else must open with this session's key: the one place answers are checked. */
    int au = s->state == SRV_UP ? auth_open(&s->ak.rx, buf, len) : AUTH_BAD;
    if (au != AUTH_OK && m.type == PROTO_REFUSED && m.status == ESTALE && !auth_sealed(buf, len) &&
        s->state == SRV_UP) {
        /* A server that restarted has no session to seal with, and anyone can
         * send this: only a hint.  Ask now; a restarted server leaves the
         * heartbeat unanswered and is taken down by its timeout. */
        if (mx_ratelimit_ok(&s->rl_forged, 2000))
            srv_info(s, "an unauthenticated 'no session' answer: probing it now");
        if (!s->hb_inflight)
            s->hb_sent_ms = 0;
        return;
    }
    if (au != AUTH_OK) {
        if (mx_ratelimit_ok(&s->rl_forged, 2000))
            srv_warn(s, "dropped %s: fails authentication (%s) (%u such suppressed)", proto_type_name(m.type),
                     au == AUTH_REPLAY ? "replayed or too old" : "forged, tampered or not in a session",
                     s->rl_forged.last_suppressed);
        return;
    }
    switch (m.type) {
    case PROTO_REFUSED:
        if (s->state == SRV_UP && m.status == ESTALE)
            srv_down(s, "it has no session for us: restarted behind the same address");
        else if (s->state == SRV_UP)
            srv_refused(s, m.u.refused.reason);
        return;
    case PROTO_SLAB_ALLOC_R:
    case PROTO_SLAB_FREE_R:
    case PROTO_PAGE_WRITE_R:
    case PROTO_STATS_R:
    case PROTO_SLAB_FIND_R:
    case PROTO_VOL_CLAIM_R:
    case PROTO_VOL_DROP_R:
    case PROTO_META_PUT_R:
    case PROTO_META_LIST_R:
        break;
    default:
        srv_warn(s, "unexpected %s, ignored", proto_type_name(m.type));
        return;
    }
    struct sop *o = srv_take(s, m.req_id);
    if (o)
        sop_reply(s, o, &m);
}

/* Deadlines are compared as now > start + limit, never now - start > limit:
 * taking a server down (re)launches its reads on other servers with a start
 * time read after `now`, and the unsigned difference would wrap and declare a
 * healthy server timed out the instant another one died. */
void srv_tick(struct server *s, uint64_t now)
{
    switch (s->state) {
    case SRV_CONNECTING:
        if (now > s->hs_started_ms + HELLO_TIMEOUT_MS)
            srv_down(s, "no answer to the handshake");
        break;
    case SRV_UP:
        /* An idle connection to a dead server shows nothing: ask it something. */
        if (!s->hb_inflight && now > s->hb_sent_ms + HEARTBEAT_MS) {
            struct sop *o = sop_new(s->p, SOP_STATS);
            if (o) {
                s->hb_inflight = true;
                s->hb_sent_ms = now;
                srv_submit(s, o);
            }
        }
        if (s->hb_inflight && now > s->hb_sent_ms + HB_TIMEOUT_MS) {
            srv_down(s, "no answer to the heartbeat");
            break;
        }
        for (int k = 0; k < SRV_MAX_INFLIGHT; k++)
            if (s->slots[k] && now > s->slots[k]->started_ms + OP_TIMEOUT_MS) {
                srv_down(s, "operation timed out");
                break;
            }
        break;
    case SRV_DOWN:
    case SRV_REFUSED:
        /* Its endpoint may still be retrying a dead connection: drop it
         * here, outside every callback of that endpoint. */
        if (s->fab) {
            fab_close(s->fab);
            s->fab = NULL;
            s->have_fa = false;
        }
        if (!s->gone && now >= s->retry_at_ms)
            srv_connect(s);
        break;
    }
}
