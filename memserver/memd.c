/* memd.c — memx-memd's server (memd.h): sessions and the handshake, the slab
 * table and its identities, page writes and reads; volume claims and records
 * are handed to memd_meta.c.  Single-threaded on the evloop: every handler
 * runs to completion from on_recv().
 *
 * What a peer proved decides what it may do, never what it says: the address
 * a HELLO names is only where the challenge goes.  A HELLO or a failed AUTH
 * never ends an authenticated session (a peer without the key could reset
 * any backend's session by naming its address); only a completed handshake
 * of the same identity, or from the same endpoint, replaces one.  Every
 * message after the handshake is opened with the session's key (auth.h) and
 * dropped, logged at a bounded rate, when it was forged, tampered or
 * replayed; every answer on a session is sealed. */
#include "memd.h"
#include "memd_meta.h"
#include "memd_etcd.h"
#include "auth.h"
#include "evloop.h"
#include "fabric.h"
#include "log.h"
#include "proto.h"
#include "volstore.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define MAX_SESSIONS 256

enum sess_state { S_FREE, S_CHALLENGED, S_AUTHED };

struct session {
    enum sess_state state;
    fab_addr_t addr;
    char peer[64];                      /* printable address, for logs */
    char client_id[PROTO_ID_MAX];
    uint32_t hello_flags;
    uint64_t hs_req;                    /* a handshake: its HELLO's request id, which AUTH repeats */
    uint64_t hello_ms;                  /* ... and when it began (the oldest unfinished one goes first) */
    int ident;                          /* index into memd.idents once authenticated */
    uint8_t client_nonce[PROTO_NONCE_BYTES], server_nonce[PROTO_NONCE_BYTES];
    struct auth_sess ak;                /* once authenticated: this session's keys */
    uint64_t last_ms;                   /* its last authenticated message (backends heartbeat every 0.5 s) */
};

/* A client identity that holds slabs.  Slabs outlive sessions: a backend
 * whose link was cut reconnects as a new session of the same identity. */
struct ident {
    char id[PROTO_ID_MAX];              /* "" when unused */
    uint32_t slabs;
};

struct slab {
    int owner;                          /* ident index, -1 when free */
    uint64_t uid;                       /* the pool's cluster-wide name for it */
    struct fab_mr *mr;
    uint64_t raddr, rkey;
};

struct memd {
    struct evloop *el;
    struct fab *fab;
    char name[160];                     /* "memd <listen>" */
    char id[PROTO_ID_MAX];              /* our identity in the handshake */
    uint8_t key[MEMX_KEY_BYTES];
    uint8_t *mem;
    uint64_t capacity, slab_size;
    uint32_t nslabs, used_slabs;
    struct slab *slabs;
    struct session sessions[MAX_SESSIONS];
    struct ident idents[MAX_SESSIONS];
    struct volstore *vols;
    struct memd_etcd *etcd;             /* [cluster] etcd set: membership and ownership from etcd */
    uint64_t incarnation;               /* this run's boot token (its first bytes are in id) */
    bool stopping;                      /* a shutdown began (memd_shutdown) */
    /* A peer can repeat these at will: logged at a bounded rate. */
    struct mx_ratelimit rl_forged, rl_unauth, rl_hello, rl_bad, rl_refuse, rl_send;
    uint64_t t_recv;                    /* when the message being handled arrived (before its seal was checked) */
};

#define RL_MS 2000

/* The one place an answer leaves: sealed with the session's key when it
 * goes to an authenticated session (the handshake's answers and a refusal
 * to a peer without a session are not). */
static void reply(struct memd *m, struct session *s, fab_addr_t to, struct proto_msg *r)
{
    uint8_t buf[PROTO_MSG_MAX];
    size_t len = proto_encode(r, buf, sizeof(buf));
    if (len && s && s->state == S_AUTHED)
        auth_seal(&s->ak.tx, &(struct iovec){ buf, len }, 1);
    if (len && fab_send(m->fab, to, buf, len, NULL, 0, NULL, NULL, 0) && mx_ratelimit_ok(&m->rl_send, RL_MS))
        mx_warn("%s: cannot answer %s: out of buffers (%u such suppressed)", m->name, s ? s->peer : "a peer",
                m->rl_send.last_suppressed);
}

static void refuse(struct memd *m, fab_addr_t to, uint64_t req_id, int status, const char *reason)
{
    struct proto_msg r = { .type = PROTO_REFUSED, .status = (uint16_t)status, .req_id = req_id };
    snprintf(r.u.refused.reason, sizeof(r.u.refused.reason), "%s", reason);
    reply(m, NULL, to, &r);
}

static void free_slab(struct memd *m, uint32_t i)
{
    struct slab *sl = &m->slabs[i];
    fab_mr_close(sl->mr);
    sl->mr = NULL;
    m->idents[sl->owner].slabs--;
    sl->owner = -1;
    m->used_slabs--;
    /* The next owner must not see this one's pages; DONTNEED also returns the RAM. */
    madvise(m->mem + (uint64_t)i * m->slab_size, m->slab_size, MADV_DONTNEED);
}

/* The session ends; its identity keeps its slabs. */
static void end_session(struct memd *m, struct session *s, const char *why)
{
    if (s->state == S_AUTHED)
        mx_info("%s: session with %s (%s) ended (%s); it keeps %u slabs", m->name, s->peer,
                s->client_id, why, m->idents[s->ident].slabs);
    auth_session_clear(&s->ak);
    s->state = S_FREE;
}

static int find_ident(struct memd *m, const char *id, bool create)
{
    int fr = -1;
    for (int i = 0; i < MAX_SESSIONS; i++) {
        if (m->idents[i].id[0] && strcmp(m->idents[i].id, id) == 0)
            return i;
        if (fr < 0 && !m->idents[i].id[0])
            fr = i;
    }
    /* An identity holding nothing and in no session is forgotten for a new one. */
    for (int i = 0; i < MAX_SESSIONS && fr < 0; i++) {
        bool in_use = m->idents[i].slabs > 0;
        for (int k = 0; k < MAX_SESSIONS && !in_use; k++)
            in_use = m->sessions[k].state == S_AUTHED && m->sessions[k].ident == i;
        if (!in_use)
            fr = i;
    }
    if (!create || fr < 0)
        return -1;
    size_t n = strnlen(id, PROTO_ID_MAX - 1);
    memcpy(m->idents[fr].id, id, n);
    m->idents[fr].id[n] = 0;
    m->idents[fr].slabs = 0;
    return fr;
}

/* An identity's slabs that no volume record points at: what a backend's
 * earlier run left behind and nobody can find again. */
static uint32_t free_ident_slabs(struct memd *m, int ident, uint32_t *kept)
{
    uint32_t freed = 0;
    *kept = 0;
    for (uint32_t i = 0; i < m->nslabs; i++) {
        if (m->slabs[i].owner != ident)
            continue;
        if (volstore_refs(m->vols, m->slabs[i].uid)) {
            (*kept)++;
            continue;
        }
        free_slab(m, i);    /* Invariant: no volume record points into it; its owner restarted afresh */
        freed++;
    }
    return freed;
}

/* The authenticated session at address a (an address has at most one). */
static struct session *find_session(struct memd *m, fab_addr_t a)
{
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (m->sessions[i].state == S_AUTHED && m->sessions[i].addr == a)
            return &m->sessions[i];
    return NULL;
}

/* The handshake under way at address a whose HELLO had request id req: an
 * address may have several (anyone can name any address in a HELLO), and
 * the id, random per attempt on the backend, keeps them apart. */
static struct session *find_handshake(struct memd *m, fab_addr_t a, uint64_t req)
{
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (m->sessions[i].state == S_CHALLENGED && m->sessions[i].addr == a && m->sessions[i].hs_req == req)
            return &m->sessions[i];
    return NULL;
}

/* A HELLO proves nothing: it starts a handshake of its own beside whatever
 * the address has (the same HELLO again restarts its own), and only a
 * completed AUTH may replace an authenticated session (on_auth). */
static void on_hello(struct memd *m, fab_addr_t from, const struct proto_msg *q)
{
    struct session *s = find_handshake(m, from, q->req_id);
    if (find_session(m, from) && mx_ratelimit_ok(&m->rl_hello, RL_MS)) {
        char a[64];
        mx_info("%s: HELLO from %s (calls itself '%s') while that address has a session: the session "
                "stays until a handshake completes (%u such suppressed)", m->name,
                fab_peer_str(m->fab, from, a, sizeof(a)), q->u.hello.id, m->rl_hello.last_suppressed);
    }
    for (int i = 0; i < MAX_SESSIONS && !s; i++)
        if (m->sessions[i].state == S_FREE)
            s = &m->sessions[i];
    /* Handshakes nobody finished must not lock out real clients: the oldest goes. */
    bool evict = !s;
    for (int i = 0; evict && i < MAX_SESSIONS; i++)
        if (m->sessions[i].state == S_CHALLENGED && (!s || m->sessions[i].hello_ms < s->hello_ms))
            s = &m->sessions[i];
    if (!s) {
        char a[64];
        if (mx_ratelimit_ok(&m->rl_refuse, RL_MS))
            mx_warn("%s: refused %s: too many sessions (%u such suppressed)", m->name,
                    fab_peer_str(m->fab, from, a, sizeof(a)), m->rl_refuse.last_suppressed);
        refuse(m, from, q->req_id, EACCES, "too many sessions");
        return;
    }
    auth_session_clear(&s->ak);
    memset(s, 0, sizeof(*s));
    s->state = S_CHALLENGED;
    s->addr = from;
    s->hs_req = q->req_id;
    s->hello_ms = evloop_now_ms();
    fab_peer_str(m->fab, from, s->peer, sizeof(s->peer));
    memcpy(s->client_id, q->u.hello.id, sizeof(s->client_id));
    s->hello_flags = q->u.hello.flags;
    memcpy(s->client_nonce, q->u.hello.nonce, PROTO_NONCE_BYTES);
    auth_nonce(s->server_nonce);
    struct proto_msg r = { .type = PROTO_CHALLENGE, .req_id = q->req_id };
    memcpy(r.u.challenge.id, m->id, sizeof(m->id));
    memcpy(r.u.challenge.nonce, s->server_nonce, PROTO_NONCE_BYTES);
    mx_debug("%s: HELLO from %s (%s)", m->name, s->peer, s->client_id);
    reply(m, s, from, &r);
}

static void on_auth(struct memd *m, struct session *s, const struct proto_msg *q)
{
    if (!auth_check(m->key, AUTH_CLIENT, s->server_nonce, s->client_nonce, s->client_id, m->id,
                    q->u.auth.mac)) {
        if (mx_ratelimit_ok(&m->rl_refuse, RL_MS))
            mx_warn("%s: refused %s (calls itself '%s'): wrong cluster key (%u such suppressed)", m->name,
                    s->peer, s->client_id, m->rl_refuse.last_suppressed);
        refuse(m, s->addr, q->req_id, EACCES, "wrong cluster key");
        s->state = S_FREE;      /* only this handshake: a session of that address or name stays */
        return;
    }
    int id = find_ident(m, s->client_id, true);
    if (id < 0) {
        mx_warn("%s: refused %s (%s): too many client identities", m->name, s->peer, s->client_id);
        refuse(m, s->addr, q->req_id, EACCES, "too many client identities");
        s->state = S_FREE;
        return;
    }
    /* One live session per identity, and per address: a new one that proved
     * the key means the old is dead (a cut link, a restarted backend), and
     * its address must not be answered. */
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (&m->sessions[i] != s && m->sessions[i].state == S_AUTHED &&
            (m->sessions[i].ident == id || m->sessions[i].addr == s->addr))
            end_session(m, &m->sessions[i], "replaced by a new session");
    auth_session(&s->ak, m->key, AUTH_SERVER, s->server_nonce, s->client_nonce, s->client_id, m->id);
    s->ident = id;
    if (s->hello_flags & PROTO_HELLO_FRESH) {
        uint32_t kept, n = free_ident_slabs(m, id, &kept);
        if (n || kept)
            mx_info("%s: %s started afresh: freed %u unreferenced slabs, kept %u that volumes use",
                    m->name, s->client_id, n, kept);
    }
    struct proto_msg r = { .type = PROTO_WELCOME, .req_id = q->req_id };
    auth_proof(m->key, AUTH_SERVER, s->server_nonce, s->client_nonce, s->client_id, m->id,
               r.u.welcome.mac);
    r.u.welcome.capacity = m->capacity;
    r.u.welcome.used = (uint64_t)m->used_slabs * m->slab_size;
    r.u.welcome.slab_size = m->slab_size;
    mx_info("%s: %s (%s) authenticated", m->name, s->peer, s->client_id);
    reply(m, s, s->addr, &r);       /* unsealed: the client checks the proof in it first */
    s->state = S_AUTHED;
    s->last_ms = evloop_now_ms();
}

static void on_slab_alloc(struct memd *m, struct session *s, const struct proto_msg *q)
{
    struct proto_msg r = { .type = PROTO_SLAB_ALLOC_R, .req_id = q->req_id };
    uint32_t i = 0;
    while (i < m->nslabs && m->slabs[i].owner >= 0)
        i++;
    if (m->stopping) {
        /* Draining: the slabs here are to move away, not to grow in number. */
        mx_info("%s: draining: no new slab for %s (%s)", m->name, s->peer, s->client_id);
        r.status = ENOSPC;
    } else if (i == m->nslabs) {
        mx_info("%s: full: no slab left for %s (%s)", m->name, s->peer, s->client_id);
        r.status = ENOSPC;
    } else {
        struct slab *sl = &m->slabs[i];
        char err[256];
        if (fab_mr_reg(m->fab, m->mem + (uint64_t)i * m->slab_size, m->slab_size, &sl->mr,
                       &sl->raddr, &sl->rkey, err, sizeof(err))) {
            mx_err("%s", err);
            r.status = ENOMEM;
        } else {
            /* Fault the slab in now: a first touch costs tens of microseconds
             * here (the host backs guest RAM lazily), once per page, and
             * would otherwise land on the guest's write of that page. */
            madvise(m->mem + (uint64_t)i * m->slab_size, m->slab_size, MADV_POPULATE_WRITE);
            sl->owner = s->ident;
            sl->uid = q->u.slab_alloc.uid;
            m->idents[s->ident].slabs++;
            m->used_slabs++;
            r.u.slab_alloc_r.slab = i;
            r.u.slab_alloc_r.size = m->slab_size;
            r.u.slab_alloc_r.raddr = sl->raddr;
            r.u.slab_alloc_r.rkey = sl->rkey;
            mx_debug("%s: slab %u to %s", m->name, i, s->peer);
        }
    }
    r.u.slab_alloc_r.capacity = m->capacity;
    r.u.slab_alloc_r.used = (uint64_t)m->used_slabs * m->slab_size;
    reply(m, s, s->addr, &r);
}

/* Who asks, as memd_meta logs and fences it. */
static struct memd_meta_peer sess_who(const struct memd *m, const struct session *s)
{
    return (struct memd_meta_peer){ .owner = s->ident, .server = m->name, .peer = s->peer,
                                    .client = s->client_id };
}

/* The slab exists and belongs to s: the one check every slab operation makes. */
static int own_slab(struct memd *m, struct session *s, uint32_t slab)
{
    if (slab >= m->nslabs)
        return EINVAL;
    if (m->slabs[slab].owner != s->ident) {
        mx_warn("%s: %s (%s) touched slab %u it does not own", m->name, s->peer, s->client_id, slab);
        return EPERM;
    }
    return 0;
}

static void on_page(struct memd *m, struct session *s, const struct proto_msg *q)
{
    uint64_t t0 = m->t_recv;            /* the server's time includes opening the seal */
    struct proto_msg r = { .type = q->type == PROTO_PAGE_WRITE ? PROTO_PAGE_WRITE_R : PROTO_PAGE_READ_R,
                           .req_id = q->req_id };
    r.u.page.slab = q->u.page.slab;
    r.u.page.page = q->u.page.page;
    int st = own_slab(m, s, q->u.page.slab);
    /* A write carries 1..PROTO_RUN_MAX pages (proto_decode), each with its slot. */
    uint32_t n = q->type == PROTO_PAGE_WRITE ? q->u.page.npages : 1;
    const uint32_t *slots = q->type == PROTO_PAGE_WRITE ? q->u.page.slots : &q->u.page.page;
    for (uint32_t i = 0; !st && i < n; i++)
        if ((uint64_t)slots[i] >= m->slab_size / PROTO_PAGE_SIZE)
            st = EINVAL;
    if (!st) {
        uint8_t *slab = m->mem + (uint64_t)q->u.page.slab * m->slab_size;
        if (q->type == PROTO_PAGE_WRITE) {
            if (m->etcd)
                memd_etcd_proven(m->etcd);      /* the store refuses writes without the proof (EAGAIN) */
            /* A fenced writer (a newer claim holds the volume) is refused before a byte lands. */
            struct memd_meta_peer who = sess_who(m, s);
            st = memd_meta_check_write(m->vols, &who, q->u.page.vid, q->u.page.epoch);
            for (uint32_t i = 0; !st && i < n; i++)
                memcpy(slab + (uint64_t)slots[i] * PROTO_PAGE_SIZE, q->u.page.data + (size_t)i * PROTO_PAGE_SIZE,
                       PROTO_PAGE_SIZE);
            /* Invariant: a page's record is kept only with its bytes, both before the reply. */
            if (!st && q->u.page.vid)
                st = memd_meta_put_page_recs(m->vols, &who, q->u.page.vid, q->u.page.epoch,
                                             m->slabs[q->u.page.slab].uid, slots, q->u.page.recs, n);
        } else
            r.u.page.data = slab + (uint64_t)q->u.page.page * PROTO_PAGE_SIZE;
    }
    r.status = (uint16_t)st;
    if (r.type == PROTO_PAGE_WRITE_R) {
        uint64_t ns = evloop_now_ns() - t0;
        r.u.page.server_ns = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
    }
    reply(m, s, s->addr, &r);
}

/* Any authenticated backend may read a slab a volume record names (it may
 * have taken the volume over); only its owner may write or free it. */
static void on_slab_find(struct memd *m, struct session *s, const struct proto_msg *q)
{
    struct proto_msg r = { .type = PROTO_SLAB_FIND_R, .req_id = q->req_id, .status = ENOENT };
    r.u.slab_find_r.uid = q->u.slab_alloc.uid;
    for (uint32_t i = 0; i < m->nslabs; i++) {
        struct slab *sl = &m->slabs[i];
        if (sl->owner < 0 || sl->uid != q->u.slab_alloc.uid)
            continue;
        r.status = 0;
        r.u.slab_find_r.slab = i;
        r.u.slab_find_r.npages = (uint32_t)(m->slab_size / PROTO_PAGE_SIZE);
        r.u.slab_find_r.size = m->slab_size;
        r.u.slab_find_r.raddr = sl->raddr;
        r.u.slab_find_r.rkey = sl->rkey;
        r.u.slab_find_r.mine = sl->owner == s->ident;
        break;
    }
    reply(m, s, s->addr, &r);
}

/* Claims and records are memd_meta's; the session supplies who asks. */
static void on_meta(struct memd *m, struct session *s, const struct proto_msg *q)
{
    struct memd_meta_peer who = sess_who(m, s);
    struct proto_msg r;
    if (m->etcd)
        memd_etcd_proven(m->etcd);
    memd_meta_answer(m->vols, &who, q, &r);
    reply(m, s, s->addr, &r);
}

static void on_recv(void *arg, fab_addr_t from, const void *buf, size_t len)
{
    struct memd *m = arg;
    struct proto_msg q;
    char why[160], a[64];
    m->t_recv = evloop_now_ns();
    if (proto_decode(buf, len, &q, why, sizeof(why))) {
        if (mx_ratelimit_ok(&m->rl_bad, RL_MS))
            mx_warn("%s: bad message from %s: %s (%u such suppressed)", m->name,
                    fab_peer_str(m->fab, from, a, sizeof(a)), why, m->rl_bad.last_suppressed);
        return;
    }
    /* The provider names only peers in our AV; a new client tells us its
     * endpoint name in HELLO, and everything after that carries its address. */
    if (from == FAB_ADDR_NONE && q.type == PROTO_HELLO &&
        fab_peer_add_raw(m->fab, q.u.hello.addr, q.u.hello.addr_len, &from)) {
        if (mx_ratelimit_ok(&m->rl_bad, RL_MS))
            mx_warn("%s: HELLO from '%s' with an unusable address, ignored (%u such suppressed)", m->name,
                    q.u.hello.id, m->rl_bad.last_suppressed);
        return;
    }
    if (from == FAB_ADDR_NONE) {
        if (mx_ratelimit_ok(&m->rl_bad, RL_MS))
            mx_warn("%s: %s from an unknown peer, ignored (%u such suppressed)", m->name,
                    proto_type_name(q.type), m->rl_bad.last_suppressed);
        return;
    }
    if (q.type == PROTO_HELLO) {
        on_hello(m, from, &q);
        return;
    }
    struct session *s = q.type == PROTO_AUTH ? find_handshake(m, from, q.req_id) : NULL;
    if (s) {
        on_auth(m, s, &q);
        return;
    }
    if (!(s = find_session(m, from))) {
        if (mx_ratelimit_ok(&m->rl_unauth, RL_MS))
            mx_warn("%s: %s from unauthenticated %s refused (%u such suppressed)", m->name,
                    proto_type_name(q.type), fab_peer_str(m->fab, from, a, sizeof(a)),
                    m->rl_unauth.last_suppressed);
        refuse(m, from, q.req_id, ESTALE, "no session (server restarted?)");
        return;
    }
    /* The address is only a hint: the session's key says who sent it. */
    int au = auth_open(&s->ak.rx, buf, len);
    if (au != AUTH_OK) {
        if (mx_ratelimit_ok(&m->rl_forged, RL_MS))
            mx_warn("%s: dropped %s from %s (%s): message fails authentication (%s) (%u such suppressed)",
                    m->name, proto_type_name(q.type), s->peer, s->client_id,
                    au == AUTH_REPLAY ? "replayed or too old" : "forged or tampered",
                    m->rl_forged.last_suppressed);
        return;
    }
    s->last_ms = evloop_now_ms();
    switch (q.type) {
    case PROTO_SLAB_ALLOC:
        on_slab_alloc(m, s, &q);
        break;
    case PROTO_SLAB_FREE: {
        struct proto_msg r = { .type = PROTO_SLAB_FREE_R, .req_id = q.req_id };
        r.u.slab_free.slab = q.u.slab_free.slab;
        r.status = (uint16_t)own_slab(m, s, q.u.slab_free.slab);
        struct memd_meta_peer who = sess_who(m, s);
        if (!r.status)
            r.status = (uint16_t)memd_meta_check_free(m->vols, &who, m->slabs[q.u.slab_free.slab].uid,
                                                      q.u.slab_free.flags);
        if (!r.status)      /* Invariant: its owner asks, and memd_meta_check_free found no record that needs it */
            free_slab(m, q.u.slab_free.slab);
        reply(m, s, s->addr, &r);
        break;
    }
    case PROTO_PAGE_WRITE:
    case PROTO_PAGE_READ:
        on_page(m, s, &q);
        break;
    case PROTO_STATS: {
        struct proto_msg r = { .type = PROTO_STATS_R, .req_id = q.req_id };
        struct memd_stats st;
        memd_get_stats(m, &st);
        r.u.stats_r.capacity = st.capacity;
        r.u.stats_r.used = st.used;
        r.u.stats_r.slabs = st.slabs;
        r.u.stats_r.sessions = st.sessions;
        reply(m, s, s->addr, &r);
        break;
    }
    case PROTO_SLAB_FIND:
        on_slab_find(m, s, &q);
        break;
    case PROTO_VOL_CLAIM:
    case PROTO_VOL_DROP:
    case PROTO_META_PUT:
    case PROTO_META_LIST:
        on_meta(m, s, &q);
        break;
    default:
        mx_warn("%s: unexpected %s from %s, ignored", m->name, proto_type_name(q.type), s->peer);
        break;
    }
}

void memd_get_stats(const struct memd *m, struct memd_stats *st)
{
    st->capacity = m->capacity;
    st->used = (uint64_t)m->used_slabs * m->slab_size;
    st->slabs = m->used_slabs;
    st->sessions = 0;
    for (int i = 0; i < MAX_SESSIONS; i++)
        st->sessions += m->sessions[i].state == S_AUTHED;
}

struct memd *memd_new(struct evloop *el, const struct memx_config *cfg,
                      const uint8_t key[MEMX_KEY_BYTES], char *err, size_t errlen)
{
    if (cfg->capacity < cfg->slab_size) {
        char c[32], s[32];
        snprintf(err, errlen, "[memserver] capacity = %s is smaller than one slab ([cluster] slab_size = %s)",
                 memx_format_size(cfg->capacity, c, sizeof(c)),
                 memx_format_size(cfg->slab_size, s, sizeof(s)));
        return NULL;
    }
    if (auth_init()) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    struct memd *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->el = el;
    snprintf(m->name, sizeof(m->name), "memd %s", cfg->listen);
    /* The boot token tells clients a restarted server (whose slabs are gone)
     * from the same one behind a repaired link (whose slabs are still theirs). */
    uint8_t boot[PROTO_NONCE_BYTES];
    auth_nonce(boot);
    for (int i = 0; i < 8; i++)
        m->incarnation = m->incarnation << 8 | boot[i];
    snprintf(m->id, sizeof(m->id), "memd@%.40s/%02x%02x%02x%02x", cfg->listen, boot[0], boot[1],
             boot[2], boot[3]);
    memcpy(m->key, key, MEMX_KEY_BYTES);
    m->slab_size = cfg->slab_size;
    m->nslabs = (uint32_t)(cfg->capacity / cfg->slab_size);
    m->capacity = (uint64_t)m->nslabs * m->slab_size;
    m->slabs = calloc(m->nslabs, sizeof(*m->slabs));
    /* Reserved lazily: pages cost RAM once written (or registered on a NIC). */
    m->mem = mmap(NULL, m->capacity, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (!m->slabs || m->mem == MAP_FAILED) {
        snprintf(err, errlen, "%s: cannot reserve %llu bytes: %s", m->name,
                 (unsigned long long)m->capacity, strerror(errno));
        if (m->mem == MAP_FAILED)
            m->mem = NULL;
        memd_free(m);
        return NULL;
    }
    for (uint32_t i = 0; i < m->nslabs; i++)
        m->slabs[i].owner = -1;
    if (!(m->vols = volstore_new())) {
        snprintf(err, errlen, "%s: out of memory", m->name);
        memd_free(m);
        return NULL;
    }
    /* etcd first: a server that cannot reach it never listens (nothing half-started).  Its key is
     * put once the loop runs, after the endpoint below is open. */
    if (cfg->etcd[0]) {
        struct memd_etcd_self self = { .name = m->name, .addr = cfg->advertise[0] ? cfg->advertise : cfg->listen,
                                       .capacity = m->capacity, .incarnation = m->incarnation,
                                       .provider = cfg->provider };
        if (!(m->etcd = memd_etcd_open(el, cfg, m->vols, &self, err, errlen))) {
            memd_free(m);
            return NULL;
        }
    }
    /* big_recv: a PAGE_WRITE may carry a run of PROTO_RUN_MAX pages. */
    struct fab_opts fo = { .provider = cfg->provider, .listen = cfg->listen, .name = m->name,
                           .on_recv = on_recv, .arg = m, .big_recv = true };
    m->fab = fab_open(el, &fo, err, errlen);
    if (!m->fab) {
        memd_free(m);
        return NULL;
    }
    char c[32], s[32];
    mx_info("%s: serving %s in %u slabs of %s over %s", m->name,
            memx_format_size(m->capacity, c, sizeof(c)), m->nslabs,
            memx_format_size(m->slab_size, s, sizeof(s)), fab_provider(m->fab));
    return m;
}

void memd_free(struct memd *m)
{
    if (!m)
        return;
    memd_etcd_close(m->etcd);       /* revokes the lease: the server's key goes */
    for (uint32_t i = 0; m->slabs && i < m->nslabs; i++)
        fab_mr_close(m->slabs[i].mr);
    fab_close(m->fab);
    volstore_free(m->vols);
    if (m->mem)
        munmap(m->mem, m->capacity);
    free(m->slabs);
    for (int i = 0; i < MAX_SESSIONS; i++)
        auth_session_clear(&m->sessions[i].ak);
    explicit_bzero(m->key, sizeof(m->key));
    free(m);
}

/* A drain waits for a connected backend that holds slabs here to move
 * them; one that is not connected cannot, so it is not waited for.  A
 * session silent for 3 s (six missed heartbeats) is a backend gone. */
static bool holds_slabs(void *arg)
{
    struct memd *m = arg;
    uint64_t now = evloop_now_ms();
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (m->sessions[i].state == S_AUTHED && m->idents[m->sessions[i].ident].slabs &&
            now - m->sessions[i].last_ms < 3000)
            return true;
    return false;
}

static void drained(void *arg)
{
    struct memd *m = arg;
    if (m->used_slabs)
        mx_warn("%s: stopping with %u slab(s) of backends that are not connected: those copies go",
                m->name, (unsigned)m->used_slabs);
    evloop_stop(m->el);
}

void memd_shutdown(struct memd *m, bool now)
{
    if (!m->etcd || now || m->stopping) {
        evloop_stop(m->el);
        return;
    }
    m->stopping = true;
    memd_etcd_drain(m->etcd, holds_slabs, drained, m);
}
