/* auth.h — proving possession of the cluster key (libsodium crypto_auth,
 * HMAC-SHA512-256), in both directions.
 *
 * Each side contributes a fresh random nonce; a proof is the MAC over a role
 * label, both nonces and both identities.  The role label keeps a server's
 * proof from being replayed as a client's (and vice versa); the nonces keep a
 * recorded exchange from being replayed to a new session.
 *
 * The same handshake gives the session its keys (auth_session): one per
 * direction, derived from the cluster key, both nonces and both identities,
 * so they exist only on the two ends that proved the key in this exchange.
 * Every message after it is sealed (auth_seal): the sender numbers it (seq,
 * per direction, from 1) and tags it with Poly1305 under a one-time key that
 * ChaCha20 derives from the direction key and seq, over the whole message
 * but the tag (proto.h's header holds both).  The receiver (auth_open) drops a
 * message whose tag is wrong (forged, tampered, or from another session) or
 * whose seq it has seen or that is older than its window (replayed).  The
 * window (AUTH_WINDOW) tolerates the reordering of a reliable-datagram
 * transport, where a large message can complete after smaller later ones.
 * RMA reads carry no message and no tag: their slab keys are per slab and
 * known only to the peers a server told.
 */
#ifndef MEMX_AUTH_H
#define MEMX_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

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

#define AUTH_WINDOW 1024u             /* sequence numbers a receiver accepts out of order */

/* One direction of a session: its key and its sequence state. */
struct auth_dir {
    uint8_t key[32];
    uint64_t seq;                       /* sender: the last one sent; receiver: the highest accepted */
    uint64_t seen[AUTH_WINDOW / 64];    /* receiver: bit (n % AUTH_WINDOW) for seq n in the window */
};
struct auth_sess { struct auth_dir tx, rx; };

/* The session's keys for the side playing role me, from the handshake's values. */
void auth_session(struct auth_sess *s, const uint8_t key[MEMX_KEY_BYTES], enum auth_role me,
                  const uint8_t server_nonce[PROTO_NONCE_BYTES],
                  const uint8_t client_nonce[PROTO_NONCE_BYTES], const char *client_id,
                  const char *server_id);
void auth_session_clear(struct auth_sess *s);

/* Seals an encoded message made of iov[0..n) (iov[0] starts with the whole
 * header): writes the next seq and the tag into the header. */
void auth_seal(struct auth_dir *tx, const struct iovec *iov, int n);
/* Checks a received message (len >= PROTO_HDR_SIZE): 0 and its seq is
 * recorded, AUTH_BAD (wrong tag) or AUTH_REPLAY (seq seen or too old). */
enum { AUTH_OK = 0, AUTH_BAD = -1, AUTH_REPLAY = -2 };
int auth_open(struct auth_dir *rx, const uint8_t *buf, size_t len);
/* Whether a received message carries a seal at all (seq != 0). */
bool auth_sealed(const uint8_t *buf, size_t len);

/* Constant-time check of a peer's proof. */
bool auth_check(const uint8_t key[MEMX_KEY_BYTES], enum auth_role role,
                const uint8_t server_nonce[PROTO_NONCE_BYTES],
                const uint8_t client_nonce[PROTO_NONCE_BYTES], const char *client_id,
                const char *server_id, const uint8_t mac[PROTO_MAC_BYTES]);

#endif
