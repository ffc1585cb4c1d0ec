#include "auth.h"

#include <sodium.h>
#include <string.h>

int auth_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

void auth_nonce(uint8_t nonce[PROTO_NONCE_BYTES])
{
    randombytes_buf(nonce, PROTO_NONCE_BYTES);
}

/* Strings are length-prefixed so "ab"+"c" and "a"+"bc" give different MACs. */
static void put_str(crypto_auth_hmacsha512256_state *st, const char *s)
{
    uint8_t n = (uint8_t)strnlen(s, PROTO_ID_MAX - 1);
    crypto_auth_hmacsha512256_update(st, &n, 1);
    crypto_auth_hmacsha512256_update(st, (const uint8_t *)s, n);
}

void auth_proof(const uint8_t key[MEMX_KEY_BYTES], enum auth_role role,
                const uint8_t server_nonce[PROTO_NONCE_BYTES],
                const uint8_t client_nonce[PROTO_NONCE_BYTES], const char *client_id,
                const char *server_id, uint8_t mac[PROTO_MAC_BYTES])
{
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, key, MEMX_KEY_BYTES);
    put_str(&st, role == AUTH_CLIENT ? "memx-v1-client" : "memx-v1-server");
    crypto_auth_hmacsha512256_update(&st, server_nonce, PROTO_NONCE_BYTES);
    crypto_auth_hmacsha512256_update(&st, client_nonce, PROTO_NONCE_BYTES);
    put_str(&st, client_id);
    put_str(&st, server_id);
    crypto_auth_hmacsha512256_final(&st, mac);
    sodium_memzero(&st, sizeof(st));
}

bool auth_check(const uint8_t key[MEMX_KEY_BYTES], enum auth_role role,
                const uint8_t server_nonce[PROTO_NONCE_BYTES],
                const uint8_t client_nonce[PROTO_NONCE_BYTES], const char *client_id,
                const char *server_id, const uint8_t mac[PROTO_MAC_BYTES])
{
    uint8_t want[PROTO_MAC_BYTES];
    auth_proof(key, role, server_nonce, client_nonce, client_id, server_id, want);
    bool ok = sodium_memcmp(want, mac, PROTO_MAC_BYTES) == 0;
    sodium_memzero(want, sizeof(want));
    return ok;
}

/* Direction keys: BLAKE2b keyed with the cluster key over everything the
 * proofs cover, then one subkey per direction. */
void auth_session(struct auth_sess *s, const uint8_t key[MEMX_KEY_BYTES], enum auth_role me,
                  const uint8_t server_nonce[PROTO_NONCE_BYTES],
                  const uint8_t client_nonce[PROTO_NONCE_BYTES], const char *client_id,
                  const char *server_id)
{
    uint8_t master[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, key, MEMX_KEY_BYTES, sizeof(master));
    crypto_generichash_update(&st, (const uint8_t *)"memx-v5-session", 15);
    crypto_generichash_update(&st, server_nonce, PROTO_NONCE_BYTES);
    crypto_generichash_update(&st, client_nonce, PROTO_NONCE_BYTES);
    uint8_t n = (uint8_t)strnlen(client_id, PROTO_ID_MAX - 1);
    crypto_generichash_update(&st, &n, 1);
    crypto_generichash_update(&st, (const uint8_t *)client_id, n);
    n = (uint8_t)strnlen(server_id, PROTO_ID_MAX - 1);
    crypto_generichash_update(&st, &n, 1);
    crypto_generichash_update(&st, (const uint8_t *)server_id, n);
    crypto_generichash_final(&st, master, sizeof(master));
    memset(s, 0, sizeof(*s));
    uint8_t c2s[32], s2c[32];
    crypto_generichash(c2s, sizeof(c2s), (const uint8_t *)"client->server", 14, master, sizeof(master));
    crypto_generichash(s2c, sizeof(s2c), (const uint8_t *)"server->client", 14, master, sizeof(master));
    memcpy(s->tx.key, me == AUTH_CLIENT ? c2s : s2c, 32);
    memcpy(s->rx.key, me == AUTH_CLIENT ? s2c : c2s, 32);
    sodium_memzero(master, sizeof(master));
    sodium_memzero(c2s, sizeof(c2s));
    sodium_memzero(s2c, sizeof(s2c));
    sodium_memzero(&st, sizeof(st));
}

void auth_session_clear(struct auth_sess *s)
{
    sodium_memzero(s, sizeof(*s));
}

static void put64le(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint64_t get64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* The tag of a message whose header (with seq in place) is hdr: Poly1305
 * under the one-time key ChaCha20(key, seq) gives, over the bytes before the
 * tag and everything after the header.  A seq is never used twice with one
 * key (the sender counts up; keys are new every session). */
static void tag_of(const uint8_t key[32], uint64_t seq, const uint8_t *hdr, const struct iovec *rest, int n,
                   const uint8_t *tail, size_t tail_len, uint8_t tag[PROTO_TAG_BYTES])
{
    uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = { 0 }, otk[crypto_onetimeauth_KEYBYTES];
    put64le(nonce, seq);
    crypto_stream_chacha20_ietf(otk, sizeof(otk), nonce, key);
    crypto_onetimeauth_state st;
    crypto_onetimeauth_init(&st, otk);
    crypto_onetimeauth_update(&st, hdr, PROTO_TAG_OFF);
    if (tail_len)
        crypto_onetimeauth_update(&st, tail, tail_len);
    for (int i = 0; i < n; i++)
        crypto_onetimeauth_update(&st, rest[i].iov_base, rest[i].iov_len);
    crypto_onetimeauth_final(&st, tag);
    sodium_memzero(otk, sizeof(otk));
    sodium_memzero(&st, sizeof(st));
}

_Static_assert(crypto_onetimeauth_BYTES == PROTO_TAG_BYTES, "a tag is one Poly1305 output");
_Static_assert(PROTO_TAG_OFF + PROTO_TAG_BYTES == PROTO_HDR_SIZE, "the tag ends the header");

void auth_seal(struct auth_dir *tx, const struct iovec *iov, int n)
{
    uint8_t *hdr = iov[0].iov_base;
    put64le(hdr + PROTO_SEQ_OFF, ++tx->seq);
    tag_of(tx->key, tx->seq, hdr, iov + 1, n - 1, hdr + PROTO_HDR_SIZE, iov[0].iov_len - PROTO_HDR_SIZE,
           hdr + PROTO_TAG_OFF);
}

bool auth_sealed(const uint8_t *buf, size_t len)
{
    return len >= PROTO_HDR_SIZE && get64le(buf + PROTO_SEQ_OFF) != 0;
}

int auth_open(struct auth_dir *rx, const uint8_t *buf, size_t len)
{
    if (len < PROTO_HDR_SIZE)
        return AUTH_BAD;
    uint64_t seq = get64le(buf + PROTO_SEQ_OFF);
    if (seq == 0)
        return AUTH_BAD;
    /* Too old for the window, or already seen: checked before the tag (cheap), recorded after it. */
    if (seq + AUTH_WINDOW <= rx->seq)
        return AUTH_REPLAY;
    uint64_t bit = seq % AUTH_WINDOW;
    if (seq <= rx->seq && (rx->seen[bit / 64] >> (bit % 64) & 1))
        return AUTH_REPLAY;
    uint8_t tag[PROTO_TAG_BYTES];
    tag_of(rx->key, seq, buf, NULL, 0, buf + PROTO_HDR_SIZE, len - PROTO_HDR_SIZE, tag);
    bool ok = sodium_memcmp(tag, buf + PROTO_TAG_OFF, PROTO_TAG_BYTES) == 0;
    sodium_memzero(tag, sizeof(tag));
    if (!ok)
        return AUTH_BAD;
    if (seq > rx->seq) {
        /* The window moves up: the slots of the numbers it passes over are new. */
        if (seq - rx->seq >= AUTH_WINDOW)
            memset(rx->seen, 0, sizeof(rx->seen));
        else
            for (uint64_t k = rx->seq + 1; k < seq; k++)
                rx->seen[(k % AUTH_WINDOW) / 64] &= ~(1ull << (k % AUTH_WINDOW % 64));
        rx->seq = seq;
    }
    rx->seen[bit / 64] |= 1ull << (bit % 64);
    return AUTH_OK;
}
