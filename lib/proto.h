/* proto.h — the messages between memx-backd's pool client and memx-memd.
 *
 * Every message is a fixed 24-byte header followed by a typed body, all
 * little-endian and encoded field by field (never a struct cast), so the wire
 * format does not depend on the compiler:
 *
 *   magic u32 | version u8 | type u8 | status u16 | length u32 (body) |
 *   reserved u32 (0) | req_id u64
 *
 * proto_decode() is the only way a received buffer is read: it checks the
 * header, the type, the exact body length for the type and every string and
 * value bound, and only then fills a struct proto_msg.  Requests carry
 * status 0; replies carry 0 or a positive errno.
 *
 * Slabs belong to the client's identity (HELLO id, one per backend host), not
 * to a session: a backend that reconnects after a link cut finds its slabs
 * where it left them and frees the ones it no longer trusts.  A backend
 * process starting afresh sets PROTO_HELLO_FRESH, and the server frees what
 * that identity held (nothing in it can be found again).  A request from a
 * peer without a session is REFUSED with status ESTALE: the server restarted
 * (or forgot the peer), and the client must start a new session.
 *
 * Session: HELLO (client nonce, endpoint name) -> CHALLENGE (server nonce) -> AUTH (client
 * MAC) -> WELCOME (server MAC, capacity) or REFUSED.  Then SLAB_ALLOC/FREE,
 * PAGE_WRITE (data inline; the reply is the remote-completion ack),
 * PAGE_READ (a message read, for providers without usable RMA; the normal read
 * is a one-sided fi_read with the slab's key) and STATS.
 */
#ifndef MEMX_PROTO_H
#define MEMX_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC      0x584d454du   /* "MEMX" */
#define PROTO_VERSION    2            /* 2: HELLO carries flags; slabs belong to an identity */
#define PROTO_HDR_SIZE   24u
#define PROTO_PAGE_SIZE  4096u
#define PROTO_NONCE_BYTES 32u
#define PROTO_MAC_BYTES   32u
#define PROTO_ID_MAX      64u          /* identities and reasons: at most 63 chars */
#define PROTO_ADDR_MAX    64u          /* a raw libfabric endpoint name */
#define PROTO_HELLO_FRESH 1u          /* free every slab this identity holds */
#define PROTO_MSG_MAX    (PROTO_HDR_SIZE + 16u + PROTO_PAGE_SIZE)

enum proto_type {
    PROTO_HELLO = 1,        /* client -> server */
    PROTO_CHALLENGE,        /* server -> client */
    PROTO_AUTH,             /* client -> server */
    PROTO_WELCOME,          /* server -> client */
    PROTO_REFUSED,          /* server -> client, ends the session */
    PROTO_SLAB_ALLOC,
    PROTO_SLAB_ALLOC_R,
    PROTO_SLAB_FREE,
    PROTO_SLAB_FREE_R,
    PROTO_PAGE_WRITE,
    PROTO_PAGE_WRITE_R,
    PROTO_PAGE_READ,
    PROTO_PAGE_READ_R,
    PROTO_STATS,
    PROTO_STATS_R,
    PROTO_TYPE_MAX
};

struct proto_msg {
    uint8_t type;
    uint16_t status;
    uint64_t req_id;
    union {
        /* addr: the client's endpoint name, so a server whose provider cannot
         * tell it the sender's address (rxm reports FI_ADDR_NOTAVAIL for peers
         * not in its AV) can insert it and answer. */
        struct {
            char id[PROTO_ID_MAX];
            uint8_t nonce[PROTO_NONCE_BYTES];
            uint32_t addr_len;
            uint8_t addr[PROTO_ADDR_MAX];
            uint32_t flags;         /* PROTO_HELLO_FRESH */
        } hello;
        struct { char id[PROTO_ID_MAX]; uint8_t nonce[PROTO_NONCE_BYTES]; } challenge;
        struct { uint8_t mac[PROTO_MAC_BYTES]; } auth;
        struct {
            uint8_t mac[PROTO_MAC_BYTES];
            uint64_t capacity, used, slab_size;
        } welcome;
        struct { char reason[PROTO_ID_MAX]; } refused;
        /* SLAB_ALLOC has no body.  The reply names the slab and how to read it. */
        struct { uint32_t slab; uint64_t size, raddr, rkey, capacity, used; } slab_alloc_r;
        struct { uint32_t slab; } slab_free;                /* also SLAB_FREE_R */
        /* PAGE_WRITE, PAGE_READ, their replies: data points into the decoded
         * buffer (PROTO_PAGE_SIZE bytes) for PAGE_WRITE and PAGE_READ_R. */
        struct { uint32_t slab, page; const uint8_t *data; } page;
        struct { uint64_t capacity, used; uint32_t slabs, sessions; } stats_r;
    } u;
};

const char *proto_type_name(int type);

/* Encodes m into buf (at least PROTO_MSG_MAX bytes).  Returns the length, or
 * 0 if m is not encodable (unknown type, unterminated string).  For
 * PAGE_WRITE/PAGE_READ_R the page data is appended unless data is NULL, in
 * which case the caller sends the page right after the returned bytes. */
size_t proto_encode(const struct proto_msg *m, uint8_t *buf, size_t buflen);

/* Validates buf completely and fills m.  0, or -1 with a one-line reason in
 * why (e.g. "bad magic", "PAGE_WRITE: body is 12 bytes, expected 4104"). */
int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *m, char *why, size_t whylen);

#endif
