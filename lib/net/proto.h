/* proto.h — the messages between memx-backd's pool client and memx-memd.
 *
 * Every message is a fixed 48-byte header followed by a typed body, all
 * little-endian and encoded field by field (never a struct cast), so the wire
 * format does not depend on the compiler:
 *
 *   magic u32 | version u8 | type u8 | status u16 | length u32 (body) |
 *   reserved u32 (0) | req_id u64 | seq u64 | tag[16]
 *
 * seq and tag authenticate a message after the handshake (auth.h: a session
 * key per direction, a sequence number against replay); proto_encode leaves
 * them zero and proto_decode does not look at them: auth_seal / auth_open do.
 * The handshake itself (HELLO, CHALLENGE, AUTH, WELCOME) and a REFUSED sent
 * to a peer without a session carry zeros.
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
 * MAC) -> WELCOME (server MAC, capacity) or REFUSED.  A HELLO proves nothing and
 * never ends a session.  Then, each sealed (auth.h), SLAB_ALLOC/FREE,
 * PAGE_WRITE (data inline, each page with its volume record, which the
 * server keeps with the page; the reply is the remote-completion ack),
 * PAGE_READ (a message read, for providers without usable RMA; the normal read
 * is a one-sided fi_read with the slab's key) and STATS.
 */
#ifndef MEMX_PROTO_H
#define MEMX_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC      0x584d454du   /* "MEMX" */
#define PROTO_VERSION    6            /* 2: HELLO carries flags; slabs belong to an identity; 3: PAGE_WRITE_R server_ns;
                                         4: PAGE_WRITE carries 1..PROTO_RUN_MAX pages, each with its slot;
                                         5: every message after the handshake is authenticated (seq, tag);
                                         6: PAGE_WRITE carries each page's volume record (lpn, seq, hash) */
#define PROTO_HDR_SIZE   48u
#define PROTO_SEQ_OFF    24u          /* the header's seq ... */
#define PROTO_TAG_OFF    32u          /* ... and tag (auth.h) */
#define PROTO_TAG_BYTES  16u
#define PROTO_PAGE_SIZE  4096u
#define PROTO_RUN_MAX    16u          /* pages one PAGE_WRITE carries at most (all in one slab) */
#define PROTO_NONCE_BYTES 32u
#define PROTO_MAC_BYTES   32u
#define PROTO_ID_MAX      64u          /* identities and reasons: at most 63 chars */
#define PROTO_ADDR_MAX    64u          /* a raw libfabric endpoint name */
#define PROTO_REC_SIZE    48u
#define PROTO_REC_MAX     160u         /* records per META_PUT / META_LIST_R */
#define PROTO_FREE_FORCE  1u
#define PROTO_HELLO_FRESH 1u          /* free every slab this identity holds */
#define PROTO_MSG_MAX    (PROTO_HDR_SIZE + 32u + PROTO_REC_MAX * PROTO_REC_SIZE)  /* META_*: the largest but... */
#define PROTO_WREC_SIZE  32u          /* a PAGE_WRITE page's record: lpn, seq, hash */
#define PROTO_WRITE_MAX  (PROTO_HDR_SIZE + 24u + PROTO_RUN_MAX * (4u + PROTO_WREC_SIZE + PROTO_PAGE_SIZE))  /* ... a full PAGE_WRITE */

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
    PROTO_SLAB_FIND,        /* where is the slab with this uid, and which pages are referenced */
    PROTO_SLAB_FIND_R,
    PROTO_VOL_CLAIM,        /* take a volume with a higher epoch (epoch 0: only ask) */
    PROTO_VOL_CLAIM_R,
    PROTO_VOL_DROP,         /* forget a deleted volume's records */
    PROTO_VOL_DROP_R,
    PROTO_META_PUT,         /* page-map records of a volume, under its epoch */
    PROTO_META_PUT_R,
    PROTO_META_LIST,        /* a volume's records, a batch at a time */
    PROTO_META_LIST_R,
    PROTO_TYPE_MAX
};

/* One page-map record: logical page lpn of a volume is, as of seq (the
 * volume's write counter), either the page at (slab uid, page) whose contents
 * hash to hash (XXH3-128), or zeros / never written (kind ZERO / NONE). */
enum proto_rec_kind { PROTO_REC_NONE = 0, PROTO_REC_ZERO = 1, PROTO_REC_PAGE = 2 };
struct proto_rec {
    uint64_t lpn, seq, uid;
    uint32_t page;
    uint8_t kind;
    uint8_t hash[16];
};

/* What a PAGE_WRITE says of each of its pages beyond the slot: the volume
 * record the server stores with it (kind PAGE, the slab's uid, the slot), so
 * the page and what finds it again travel in one message.  seq 0: no record
 * (a re-replication copy, or a page of no volume). */
struct proto_wrec {
    uint64_t lpn, seq;
    uint8_t hash[16];
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
        /* PAGE_WRITE, PAGE_READ, their replies: data points into the decoded
         * buffer (PROTO_PAGE_SIZE bytes) for PAGE_WRITE and PAGE_READ_R. */
        /* PAGE_WRITE also names the volume it writes for (vid, epoch; 0 for
         * a re-replication copy) so a fenced writer is refused. */
        /* PAGE_WRITE_R carries server_ns: the time the server spent on the
         * write (receipt to reply), so the client can tell its round trip's
         * transport share from the server's (memxctl stats). */
        /* PAGE_WRITE carries npages pages (1..PROTO_RUN_MAX) of one slab,
         * page i for slot slots[i]; data holds them one after another.  To
         * encode one page, npages 0 with its slot in page does.  Decoding
         * sets page to slots[0].  recs[i] is page i's record (all zero: none);
         * the wire holds the slots, then the records, then the pages. */
        struct {
            uint32_t slab, page;
            uint64_t vid, epoch;
            const uint8_t *data;
            uint32_t server_ns;
            uint32_t npages;
            uint32_t slots[PROTO_RUN_MAX];
            struct proto_wrec recs[PROTO_RUN_MAX];
        } page;
        struct { uint64_t capacity, used; uint32_t slabs, sessions; } stats_r;
        struct { uint64_t uid; } slab_alloc;               /* also SLAB_FIND */
        /* mine: the asking identity owns the slab (may free it). */
        struct {
            uint32_t slab, npages;
            uint64_t uid, size, raddr, rkey;
            uint8_t mine;
        } slab_find_r;
        /* SLAB_FREE flags: PROTO_FREE_FORCE frees even a slab the requester's
         * own volume records point at (a stale replica: good copies live
         * elsewhere); never one another owner's volume records use (EBUSY). */
        struct { uint32_t slab, flags; } slab_free;
        /* VOL_CLAIM: epoch 0 asks only.  The reply carries the server's epoch
         * and size afterwards (status ESTALE: a newer or equal claim holds). */
        struct { uint64_t vid, epoch, size, nrecs; char name[PROTO_ID_MAX]; } vol;
        /* META_PUT, META_LIST_R: n records (encode: from recs; decode: read
         * them with proto_rec_get(raw, i)).  META_LIST: cursor to start at;
         * META_LIST_R: cursor = where to go on, 0 at the end. */
        struct {
            uint64_t vid, epoch, cursor;
            uint32_t n;
            const struct proto_rec *recs;
            const uint8_t *raw;
        } meta;
    } u;
};

const char *proto_type_name(int type);

/* Record i of a decoded META_PUT / META_LIST_R. */
void proto_rec_get(const uint8_t *raw, uint32_t i, struct proto_rec *r);

/* Encodes m into buf (at least PROTO_MSG_MAX bytes; a PAGE_WRITE with its data
 * needs room for its pages, PROTO_WRITE_MAX at most).  Returns the length, or
 * 0 if m is not encodable (unknown type, unterminated string).  For
 * PAGE_WRITE/PAGE_READ_R the page data is appended unless data is NULL, in
 * which case the caller sends the page right after the returned bytes. */
size_t proto_encode(const struct proto_msg *m, uint8_t *buf, size_t buflen);

/* Gives an already encoded message (len bytes from proto_encode) a new
 * request id: a message encoded once and sent again later, e.g. after a
 * reconnect, needs the id of its new attempt.  Nothing else may change
 * encoded bytes. */
void proto_set_req_id(uint8_t *buf, size_t len, uint64_t req_id);

/* Validates buf completely and fills m.  0, or -1 with a one-line reason in
 * why (e.g. "bad magic", "PAGE_WRITE: body is 12 bytes, expected 4104"). */
int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *m, char *why, size_t whylen);

#endif
