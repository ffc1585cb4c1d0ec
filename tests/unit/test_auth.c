/* Cluster-key proofs: the right key passes, anything else fails.  Session
 * seals: a message opens once, on the other end of its own session and
 * direction, unchanged; replays and anything older than the window do not. */
#include "auth.h"
#include "cu_main.h"
#include "evloop.h"

#include <stdio.h>
#include <string.h>

static void test_proofs(void)
{
    uint8_t key[MEMX_KEY_BYTES], other[MEMX_KEY_BYTES], sn[PROTO_NONCE_BYTES], cn[PROTO_NONCE_BYTES];
    uint8_t mac[PROTO_MAC_BYTES], mac2[PROTO_MAC_BYTES];
    CU_ASSERT_EQUAL_FATAL(auth_init(), 0);
    memset(key, 1, sizeof(key));
    memset(other, 2, sizeof(other));
    auth_nonce(sn);
    auth_nonce(cn);
    CU_ASSERT_NOT_EQUAL(memcmp(sn, cn, sizeof(sn)), 0);
    auth_proof(key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac);
    CU_ASSERT_TRUE(auth_check(key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac));
    CU_ASSERT_FALSE(auth_check(other, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac));
    CU_ASSERT_FALSE(auth_check(key, AUTH_SERVER, sn, cn, "backd@a", "memd@b", mac));  /* no reflection */
    CU_ASSERT_FALSE(auth_check(key, AUTH_CLIENT, cn, sn, "backd@a", "memd@b", mac));  /* nonces bound */
    CU_ASSERT_FALSE(auth_check(key, AUTH_CLIENT, sn, cn, "backd@", "amemd@b", mac));  /* ids framed */
    mac2[0] = 0;
    memcpy(mac2, mac, sizeof(mac));
    mac2[31] ^= 1;
    CU_ASSERT_FALSE(auth_check(key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac2));
    auth_proof(key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b", mac2);
    CU_ASSERT_EQUAL(memcmp(mac, mac2, sizeof(mac)), 0);                              /* deterministic */
}

static uint8_t key[MEMX_KEY_BYTES], sn[PROTO_NONCE_BYTES], cn[PROTO_NONCE_BYTES];

static void pair(struct auth_sess *c, struct auth_sess *s)
{
    memset(key, 7, sizeof(key));
    auth_nonce(sn);
    auth_nonce(cn);
    auth_session(c, key, AUTH_CLIENT, sn, cn, "backd@a", "memd@b");
    auth_session(s, key, AUTH_SERVER, sn, cn, "backd@a", "memd@b");
}

/* A message of len bytes (header zeroed, body b), sealed by tx. */
static void msg(struct auth_dir *tx, uint8_t *buf, size_t len, uint8_t b)
{
    memset(buf, 0, PROTO_HDR_SIZE);
    memset(buf + PROTO_HDR_SIZE, b, len - PROTO_HDR_SIZE);
    auth_seal(tx, &(struct iovec){ buf, len }, 1);
}

static void test_seal_open(void)
{
    struct auth_sess c, s, other_c, other_s;
    pair(&c, &s);
    pair(&other_c, &other_s);
    uint8_t buf[PROTO_HDR_SIZE + 100], bad[sizeof(buf)];
    msg(&c.tx, buf, sizeof(buf), 1);
    CU_ASSERT_TRUE(auth_sealed(buf, sizeof(buf)));
    CU_ASSERT_EQUAL(auth_open(&other_s.rx, buf, sizeof(buf)), AUTH_BAD);   /* another session */
    CU_ASSERT_EQUAL(auth_open(&c.rx, buf, sizeof(buf)), AUTH_BAD);         /* reflected back */
    memcpy(bad, buf, sizeof(buf));
    bad[PROTO_HDR_SIZE + 50] ^= 0x10;                                       /* body changed */
    CU_ASSERT_EQUAL(auth_open(&s.rx, bad, sizeof(bad)), AUTH_BAD);
    memcpy(bad, buf, sizeof(buf));
    bad[5] ^= 1;                                                            /* header changed */
    CU_ASSERT_EQUAL(auth_open(&s.rx, bad, sizeof(bad)), AUTH_BAD);
    CU_ASSERT_EQUAL(auth_open(&s.rx, buf, sizeof(buf) - 1), AUTH_BAD);     /* truncated */
    CU_ASSERT_EQUAL(auth_open(&s.rx, buf, sizeof(buf)), AUTH_OK);
    CU_ASSERT_EQUAL(auth_open(&s.rx, buf, sizeof(buf)), AUTH_REPLAY);
    /* A tampered copy is not recorded: the real one still opens later. */
    msg(&c.tx, buf, sizeof(buf), 2);
    memcpy(bad, buf, sizeof(buf));
    bad[PROTO_TAG_OFF] ^= 1;
    CU_ASSERT_EQUAL(auth_open(&s.rx, bad, sizeof(bad)), AUTH_BAD);
    CU_ASSERT_EQUAL(auth_open(&s.rx, buf, sizeof(buf)), AUTH_OK);
    /* Unsealed (the handshake's messages): seq 0 never opens. */
    memset(bad, 0, sizeof(bad));
    CU_ASSERT_FALSE(auth_sealed(bad, sizeof(bad)));
    CU_ASSERT_EQUAL(auth_open(&s.rx, bad, sizeof(bad)), AUTH_BAD);
    /* Answers go the other way under their own key. */
    msg(&s.tx, buf, sizeof(buf), 3);
    CU_ASSERT_EQUAL(auth_open(&c.rx, buf, sizeof(buf)), AUTH_OK);
}

/* Out of order within the window is fine (a large message can complete after
 * later small ones); each seq once; older than the window never. */
static void test_window(void)
{
    struct auth_sess c, s;
    pair(&c, &s);
    enum { N = 40 };
    static uint8_t bufs[N][PROTO_HDR_SIZE + 8];
    for (int i = 0; i < N; i++)
        msg(&c.tx, bufs[i], sizeof(bufs[i]), (uint8_t)i);
    for (int i = N - 1; i >= 0; i -= 2)
        CU_ASSERT_EQUAL(auth_open(&s.rx, bufs[i], sizeof(bufs[i])), AUTH_OK);
    for (int i = 0; i < N; i += 2)
        CU_ASSERT_EQUAL(auth_open(&s.rx, bufs[i], sizeof(bufs[i])), AUTH_OK);
    for (int i = 0; i < N; i++)
        CU_ASSERT_EQUAL(auth_open(&s.rx, bufs[i], sizeof(bufs[i])), AUTH_REPLAY);
    /* Kept back while AUTH_WINDOW later ones pass: too old, even unseen. */
    uint8_t late[PROTO_HDR_SIZE + 8], cur[sizeof(late)];
    msg(&c.tx, late, sizeof(late), 0);
    for (unsigned i = 0; i < AUTH_WINDOW; i++) {
        msg(&c.tx, cur, sizeof(cur), 1);
        CU_ASSERT_EQUAL_FATAL(auth_open(&s.rx, cur, sizeof(cur)), AUTH_OK);
    }
    CU_ASSERT_EQUAL(auth_open(&s.rx, late, sizeof(late)), AUTH_REPLAY);
    CU_ASSERT_EQUAL(auth_open(&s.rx, cur, sizeof(cur)), AUTH_REPLAY);
}

/* What sealing costs a one-page PAGE_WRITE (header, slot, 4 KiB) on each
 * end: printed, not asserted (the machine may be busy). */
static void test_cost(void)
{
    struct auth_sess c, s;
    pair(&c, &s);
    static uint8_t hdr[PROTO_HDR_SIZE + 28], page[PROTO_PAGE_SIZE], whole[sizeof(hdr) + PROTO_PAGE_SIZE];
    enum { N = 20000 };
    uint64_t best_seal = UINT64_MAX, best_open = UINT64_MAX;
    for (int round = 0; round < 5; round++) {
        uint64_t t0 = evloop_now_ns();
        for (int i = 0; i < N; i++)
            auth_seal(&c.tx, (struct iovec[]){ { hdr, sizeof(hdr) }, { page, sizeof(page) } }, 2);
        uint64_t t1 = evloop_now_ns();
        memcpy(whole, hdr, sizeof(hdr));
        memcpy(whole + sizeof(hdr), page, sizeof(page));
        /* Opening: each message a fresh seq, sealed ahead in batches. */
        struct auth_sess c2, s2;
        pair(&c2, &s2);
        static uint8_t msgs[64][sizeof(whole)];
        uint64_t topen = 0;
        for (int k = 0; k < N / 64; k++) {
            for (int j = 0; j < 64; j++) {
                memcpy(msgs[j], whole, sizeof(whole));
                auth_seal(&c2.tx, &(struct iovec){ msgs[j], sizeof(whole) }, 1);
            }
            uint64_t a = evloop_now_ns();
            for (int j = 0; j < 64; j++)
                CU_ASSERT_EQUAL(auth_open(&s2.rx, msgs[j], sizeof(whole)), AUTH_OK);
            topen += evloop_now_ns() - a;
        }
        uint64_t seal = (t1 - t0) / N, open = topen / (N / 64 * 64);
        best_seal = seal < best_seal ? seal : best_seal;
        best_open = open < best_open ? open : best_open;
    }
    printf("\n    seal+open of a 4 KiB PAGE_WRITE: seal %llu ns, open %llu ns (best of 5)\n",
           (unsigned long long)best_seal, (unsigned long long)best_open);
}

static const struct cu_test tests[] = {
    { "proofs", test_proofs },
    { "session seals", test_seal_open },
    { "replay window", test_window },
    { "cost per page write", test_cost },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "auth", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
