/* memd_client.c — see memd_client.h. */
#include "memd_client.h"
#include "auth.h"
#include "evloop.h"
#include "fabric.h"

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MC_QUEUE 64

struct mc {
    struct evloop *el;
    struct fab *fab;
    fab_addr_t fa;
    bool authed;
    uint8_t cnonce[PROTO_NONCE_BYTES], snonce[PROTO_NONCE_BYTES];
    char id[PROTO_ID_MAX], sid[PROTO_ID_MAX];
    struct auth_sess ak;
    struct { uint8_t *buf; size_t len; } q[MC_QUEUE];
    int nq;
    uint8_t *last;              /* the buffer of the message mc_wait returned last */
};

static void on_recv(void *arg, fab_addr_t from, const void *buf, size_t len)
{
    struct mc *c = arg;
    if (from != c->fa || c->nq == MC_QUEUE || !(c->q[c->nq].buf = malloc(len)))
        return;
    memcpy(c->q[c->nq].buf, buf, len);
    c->q[c->nq++].len = len;
}

struct mc *mc_open(const char *addr)
{
    struct mc *c = calloc(1, sizeof(*c));
    char err[256];
    if (!c || !(c->el = evloop_new()) || auth_init())
        goto fail;
    struct fab_opts fo = { .provider = "tcp;ofi_rxm", .peer = addr, .name = "test client", .on_recv = on_recv,
                           .arg = c };
    if (!(c->fab = fab_open(c->el, &fo, err, sizeof(err))) || fab_peer_add(c->fab, addr, &c->fa, err, sizeof(err)))
        goto fail;
    return c;
fail:
    mc_close(c);
    return NULL;
}

void mc_close(struct mc *c)
{
    if (!c)
        return;
    fab_close(c->fab);
    if (c->el)
        evloop_free(c->el);
    for (int i = 0; i < c->nq; i++)
        free(c->q[i].buf);
    free(c->last);
    free(c);
}

size_t mc_name(struct mc *c, uint8_t out[PROTO_ADDR_MAX])
{
    size_t al = PROTO_ADDR_MAX;
    return fab_local_name(c->fab, out, &al) ? 0 : al;
}

int mc_send_raw(struct mc *c, const uint8_t *buf, size_t len)
{
    fab_expect(c->fab, 1);
    return fab_send(c->fab, c->fa, buf, len, NULL, 0, NULL, NULL, 0);
}

/* What the backend does to every message after the handshake (sop.c). */
static void mc_seal(struct mc *c, uint8_t *buf, size_t len)
{
    auth_seal(&c->ak.tx, &(struct iovec){ buf, len }, 1);
}

size_t mc_build(struct mc *c, const struct proto_msg *m, const void *page, uint8_t *buf)
{
    size_t len = proto_encode(m, buf, PROTO_WRITE_MAX);
    if (!len)
        return 0;
    if (page && m->type == PROTO_PAGE_WRITE && !m->u.page.data) {
        memcpy(buf + len, page, PROTO_PAGE_SIZE);
        len += PROTO_PAGE_SIZE;
    }
    if (c->authed)
        mc_seal(c, buf, len);
    return len;
}

size_t mc_send(struct mc *c, const struct proto_msg *m, const void *page, uint8_t *out)
{
    static uint8_t buf[PROTO_WRITE_MAX];
    size_t len = mc_build(c, m, page, buf);
    if (!len)
        return 0;
    if (out)
        memcpy(out, buf, len);
    return mc_send_raw(c, buf, len) ? 0 : len;
}

int mc_wait(struct mc *c, int type, uint64_t req_id, int ms, struct proto_msg *r)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    for (;;) {
        for (int i = 0; i < c->nq; i++) {
            char why[160];
            struct proto_msg d;
            if (proto_decode(c->q[i].buf, c->q[i].len, &d, why, sizeof(why)) ||
                (type && d.type != type) || (req_id && d.req_id != req_id))
                continue;
            /* Replies point into their buffer (records, page data): kept until the next wait. */
            *r = d;
            free(c->last);
            c->last = c->q[i].buf;
            memmove(&c->q[i], &c->q[i + 1], (size_t)(c->nq - i - 1) * sizeof(c->q[0]));
            c->nq--;
            return 0;
        }
        uint64_t now = evloop_now_ms();
        if (now >= end)
            return -1;
        evloop_run_once(c->el, (int)(end - now > 20 ? 20 : end - now));
    }
}

int mc_hello(struct mc *c, const char *id, uint32_t flags, const uint8_t *addr, size_t addr_len)
{
    /* Random, as a backend's: a peer that cannot see our traffic cannot name our handshake. */
    uint64_t rnd;
    randombytes_buf(&rnd, sizeof(rnd));
    struct proto_msg m = { .type = PROTO_HELLO, .req_id = (rnd >> 8) << 8 | 0xff };
    snprintf(m.u.hello.id, sizeof(m.u.hello.id), "%s", id);
    snprintf(c->id, sizeof(c->id), "%s", id);
    m.u.hello.flags = flags;
    auth_nonce(c->cnonce);
    memcpy(m.u.hello.nonce, c->cnonce, PROTO_NONCE_BYTES);
    if (addr) {
        memcpy(m.u.hello.addr, addr, addr_len);
        m.u.hello.addr_len = (uint32_t)addr_len;
    } else {
        m.u.hello.addr_len = (uint32_t)mc_name(c, m.u.hello.addr);
    }
    c->authed = false;
    return mc_send(c, &m, NULL, NULL) ? 0 : -1;
}

int mc_auth(struct mc *c, const struct proto_msg *challenge, const uint8_t key[MEMX_KEY_BYTES])
{
    struct proto_msg r;
    memcpy(c->snonce, challenge->u.challenge.nonce, PROTO_NONCE_BYTES);
    memcpy(c->sid, challenge->u.challenge.id, sizeof(c->sid));
    struct proto_msg a = { .type = PROTO_AUTH, .req_id = challenge->req_id };
    auth_proof(key, AUTH_CLIENT, c->snonce, c->cnonce, c->id, c->sid, a.u.auth.mac);
    if (!mc_send(c, &a, NULL, NULL) || mc_wait(c, 0, challenge->req_id, 3000, &r) || r.type != PROTO_WELCOME ||
        !auth_check(key, AUTH_SERVER, c->snonce, c->cnonce, c->id, c->sid, r.u.welcome.mac))
        return -1;
    auth_session(&c->ak, key, AUTH_CLIENT, c->snonce, c->cnonce, c->id, c->sid);
    c->authed = true;
    return 0;
}

int mc_handshake(struct mc *c, const char *id, const uint8_t key[MEMX_KEY_BYTES])
{
    struct proto_msg r;
    if (mc_hello(c, id, 0, NULL, 0) || mc_wait(c, PROTO_CHALLENGE, 0, 3000, &r))
        return -1;
    return mc_auth(c, &r, key);
}
