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
