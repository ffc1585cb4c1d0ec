/* auth.h — proving possession of the cluster key (libsodium crypto_auth,
 * HMAC-SHA512-256), in both directions.
 *
 * Each side contributes a fresh random nonce; a proof is the MAC over a role
 * label, both nonces and both identities.  The role label keeps a server's
 * proof from being replayed as a client's (and vice versa); the nonces keep a
 * recorded exchange from being replayed to a new session.
 */
#ifndef MEMX_AUTH_H
#define MEMX_AUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"

enum auth_role { AUTH_CLIENT, AUTH_SERVER };

/* Initialises libsodium; 0 or -1.  Safe to call more than once. */
int  auth_init(void);
void auth_nonce(uint8_t nonce[PROTO_NONCE_BYTES]);

void auth_proof(const uint8_t key[MEMX_KEY_BYTES], enum auth_role role,
                const uint8_t server_nonce[PROTO_NONCE_BYTES],
                const uint8_t client_nonce[PROTO_NONCE_BYTES], const char *client_id,
                const char *server_id, uint8_t mac[PROTO_MAC_BYTES]);

/* Constant-time check of a peer's proof. */
bool auth_check(const uint8_t key[MEMX_KEY_BYTES], enum auth_role role,
                const uint8_t server_nonce[PROTO_NONCE_BYTES],
                const uint8_t client_nonce[PROTO_NONCE_BYTES], const char *client_id,
                const char *server_id, const uint8_t mac[PROTO_MAC_BYTES]);

#endif
