/* memd_client.h — a bare memx-memd client for the network tests: one fabric
 * endpoint, the handshake done by hand (with or without the cluster key) and
 * raw messages, so a test can play a backend, a peer without the key that
 * claims another's address, or a man in the middle that replays and tampers.
 *
 * After a completed handshake mc_send() seals each message as the backend
 * does (mc_seal); mc_send_raw() sends bytes exactly as given.  Every reply is
 * kept as it arrived; mc_wait() runs the loop until one of a type comes. */
#ifndef MEMX_MEMD_CLIENT_H
#define MEMX_MEMD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"

struct mc;

/* A client endpoint talking to memd at addr ("host:port"); NULL on failure. */
struct mc *mc_open(const char *addr);
void mc_close(struct mc *c);
/* Our endpoint's raw name (what HELLO carries). */
size_t mc_name(struct mc *c, uint8_t out[PROTO_ADDR_MAX]);

/* HELLO as id with flags, claiming endpoint name addr (NULL: our own). */
int mc_hello(struct mc *c, const char *id, uint32_t flags, const uint8_t *addr, size_t addr_len);
/* The handshake's second half: AUTH for challenge (as received) under key;
 * 0 once WELCOME proved the server's key. */
int mc_auth(struct mc *c, const struct proto_msg *challenge, const uint8_t key[MEMX_KEY_BYTES]);
/* The whole handshake with key; 0 once WELCOME proved the server's key. */
int mc_handshake(struct mc *c, const char *id, const uint8_t key[MEMX_KEY_BYTES]);

/* Encodes m (req_id set by the caller), seals it after a handshake, sends it;
 * the bytes sent are copied to out (if not NULL, PROTO_WRITE_MAX room) and
 * their length returned (0 on failure). */
size_t mc_send(struct mc *c, const struct proto_msg *m, const void *page, uint8_t *out);
int mc_send_raw(struct mc *c, const uint8_t *buf, size_t len);
/* mc_send's bytes into buf (PROTO_WRITE_MAX room), not sent: their length or 0. */
size_t mc_build(struct mc *c, const struct proto_msg *m, const void *page, uint8_t *buf);

/* Waits up to ms for a message of type (0: any) whose req_id is req_id (0: any);
 * 0 and *r filled, or -1 on timeout. */
int mc_wait(struct mc *c, int type, uint64_t req_id, int ms, struct proto_msg *r);

#endif
