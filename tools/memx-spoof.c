/* memx-spoof — a hostile peer for the fault scenarios (tests/faults/scen-net.sh):
 * a host without the cluster key that tries to take a backend's place at a
 * memory server.  Against one server, `--rounds` times:
 *
 *   1. a HELLO naming the victim's identity, flagged fresh (a backend
 *      starting afresh: its unreferenced slabs would be freed), and claiming
 *      the victim's endpoint address (--as host:port, as the server's log
 *      names it): today's server took that address and ended the session;
 *   2. a full handshake as the victim from our own address with a key of our
 *      own (random): the server must refuse it ("wrong cluster key");
 *   3. requests as if in a session (a forced SLAB_FREE of every slab id up to
 *      --slabs, a STATS) with a made-up seal: answered only with a refusal.
 *
 * Prints one line: what was sent and what came back.  Exit 0 unless it
 * could not run at all; it never gets anything but refusals from a correct
 * server, and says "ANSWERED" with the count if it did. */
#include "auth.h"
#include "evloop.h"
#include "fabric.h"
#include "log.h"
#include "proto.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static fab_addr_t srv_fa;           /* the server, in the endpoint in use */
static unsigned got_refused, got_answers, got_challenge, challenges;
static uint8_t challenge_nonce[PROTO_NONCE_BYTES];
static char challenge_id[PROTO_ID_MAX];

static void on_recv(void *arg, fab_addr_t from, const void *buf, size_t len)
{
    (void)arg;
    struct proto_msg m;
    char why[160];
    if (from != srv_fa || proto_decode(buf, len, &m, why, sizeof(why)))
        return;
    if (m.type == PROTO_REFUSED)
        got_refused++;
    else if (m.type == PROTO_CHALLENGE) {
        got_challenge++;
        challenges++;
        memcpy(challenge_nonce, m.u.challenge.nonce, sizeof(challenge_nonce));
        memcpy(challenge_id, m.u.challenge.id, sizeof(challenge_id));
    } else
        got_answers++;
}

static void pump(struct evloop *el, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (evloop_now_ms() < end)
        evloop_run_once(el, 10);
}

static int send_msg(struct fab *f, struct proto_msg *m, bool fake_seal)
{
    uint8_t buf[PROTO_MSG_MAX];
    size_t len = proto_encode(m, buf, sizeof(buf));
    if (!len)
        return -1;
    if (fake_seal) {
        uint64_t seq = 1 + (uint64_t)rand();
        for (int i = 0; i < 8; i++)
            buf[PROTO_SEQ_OFF + i] = (uint8_t)(seq >> (8 * i));
        for (unsigned i = 0; i < PROTO_TAG_BYTES; i++)
            buf[PROTO_TAG_OFF + i] = (uint8_t)rand();
    }
    fab_expect(f, 1);
    return fab_send(f, srv_fa, buf, len, NULL, 0, NULL, NULL, 0);
}

/* Our own endpoint name with the victim's address in it: the same provider
 * names endpoints the same way (a sockaddr_in for tcp;ofi_rxm). */
static size_t forge_name(struct fab *f, const char *as, uint8_t out[PROTO_ADDR_MAX])
{
    size_t al = PROTO_ADDR_MAX;
    if (fab_local_name(f, out, &al))
        return 0;
    char host[64];
    const char *colon = strrchr(as, ':');
    if (!colon || (size_t)(colon - as) >= sizeof(host))
        return 0;
    memcpy(host, as, (size_t)(colon - as));
    host[colon - as] = 0;
    struct sockaddr_in sin;
    if (al < sizeof(sin))
        return 0;
    memcpy(&sin, out, sizeof(sin));
    if (sin.sin_family != AF_INET || inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        return 0;
    sin.sin_port = htons((uint16_t)atoi(colon + 1));
    memcpy(out, &sin, sizeof(sin));
    return al;
}

int main(int argc, char **argv)
{
    const char *server = NULL, *id = "backd-host1", *as = NULL, *provider = "tcp;ofi_rxm";
    int rounds = 20, slabs = 64, interval = 100;
    static const struct option opts[] = {
        { "server", required_argument, NULL, 's' }, { "id", required_argument, NULL, 'i' },
        { "as", required_argument, NULL, 'a' },     { "rounds", required_argument, NULL, 'r' },
        { "slabs", required_argument, NULL, 'n' },  { "interval-ms", required_argument, NULL, 't' },
        { "provider", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 },
    };
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 's': server = optarg; break;
        case 'i': id = optarg; break;
        case 'a': as = optarg; break;
        case 'r': rounds = atoi(optarg); break;
        case 'n': slabs = atoi(optarg); break;
        case 't': interval = atoi(optarg); break;
        case 'p': provider = optarg; break;
        default:
            fprintf(stderr, "usage: memx-spoof --server HOST:PORT [--id ID] [--as HOST:PORT] [--rounds N] "
                            "[--slabs N] [--interval-ms MS]\n");
            return 2;
        }
    }
    if (!server) {
        fprintf(stderr, "memx-spoof: --server HOST:PORT is required\n");
        return 2;
    }
    mx_log_init("memx-spoof", MX_LOG_ERR);
    char err[256];
    struct evloop *el = evloop_new();
    if (!el || auth_init()) {
        fprintf(stderr, "memx-spoof: cannot initialise\n");
        return 2;
    }
    struct fab_opts fo = { .provider = provider, .peer = server, .name = "spoof", .on_recv = on_recv };
    struct fab *f = fab_open(el, &fo, err, sizeof(err));
    if (!f || fab_peer_add(f, server, &srv_fa, err, sizeof(err))) {
        fprintf(stderr, "memx-spoof: %s\n", err);
        return 2;
    }
    uint8_t victim[PROTO_ADDR_MAX];
    size_t vl = as ? forge_name(f, as, victim) : 0;
    if (as && !vl) {
        fprintf(stderr, "memx-spoof: cannot forge an endpoint name for %s\n", as);
        return 2;
    }
    uint8_t key[MEMX_KEY_BYTES];
    unsigned hellos = 0, auths = 0, forged = 0;
    for (int r = 0; r < rounds; r++) {
        /* 1: the victim's identity and address, from an endpoint the server
         * has never heard of (so it takes the address the HELLO names). */
        struct proto_msg h = { .type = PROTO_HELLO, .req_id = (uint64_t)r << 8 | 0xff };
        snprintf(h.u.hello.id, sizeof(h.u.hello.id), "%s", id);
        h.u.hello.flags = PROTO_HELLO_FRESH;
        auth_nonce(h.u.hello.nonce);
        if (vl) {
            fab_addr_t keep = srv_fa;
            struct fab *g = fab_open(el, &fo, err, sizeof(err));
            if (g && fab_peer_add(g, server, &srv_fa, err, sizeof(err)) == 0) {
                memcpy(h.u.hello.addr, victim, vl);
                h.u.hello.addr_len = (uint32_t)vl;
                hellos += send_msg(g, &h, false) == 0;
                pump(el, 20);
            }
            fab_close(g);
            srv_fa = keep;
        }
        /* 2: the whole handshake from our own address, under a key of our own. */
        size_t al = sizeof(h.u.hello.addr);
        memset(h.u.hello.addr, 0, sizeof(h.u.hello.addr));
        if (fab_local_name(f, h.u.hello.addr, &al) == 0)
            h.u.hello.addr_len = (uint32_t)al;
        uint8_t cnonce[PROTO_NONCE_BYTES];
        auth_nonce(cnonce);
        memcpy(h.u.hello.nonce, cnonce, sizeof(cnonce));
        got_challenge = 0;
        hellos += send_msg(f, &h, false) == 0;
        pump(el, interval / 2);
        if (got_challenge) {
            auth_nonce(key);
            struct proto_msg a = { .type = PROTO_AUTH, .req_id = h.req_id };
            auth_proof(key, AUTH_CLIENT, challenge_nonce, cnonce, id, challenge_id, a.u.auth.mac);
            auths += send_msg(f, &a, false) == 0;
        }
        /* 3: requests as if the session were ours. */
        for (int k = 0; k < slabs; k++) {
            struct proto_msg q = { .type = PROTO_SLAB_FREE, .req_id = (uint64_t)k << 8 };
            q.u.slab_free.slab = (uint32_t)k;
            q.u.slab_free.flags = PROTO_FREE_FORCE;
            forged += send_msg(f, &q, true) == 0;
        }
        struct proto_msg st = { .type = PROTO_STATS, .req_id = 1 };
        forged += send_msg(f, &st, true) == 0;
        pump(el, interval / 2);
    }
    pump(el, 300);
    printf("spoof %s: %u HELLOs as %s (%u claiming %s), %u AUTHs with a wrong key, %u forged requests: "
           "%u refusals, %u challenges, %s%u answers\n", server, hellos, id, vl ? (unsigned)rounds : 0,
           as ? as : "-", auths, forged, got_refused, challenges, got_answers ? "ANSWERED " : "", got_answers);
    fab_close(f);
    evloop_free(el);
    return 0;
}
