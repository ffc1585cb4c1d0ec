#include "proto.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char *const names[PROTO_TYPE_MAX] = {
    [PROTO_HELLO] = "HELLO", [PROTO_CHALLENGE] = "CHALLENGE", [PROTO_AUTH] = "AUTH",
    [PROTO_WELCOME] = "WELCOME", [PROTO_REFUSED] = "REFUSED",
    [PROTO_SLAB_ALLOC] = "SLAB_ALLOC", [PROTO_SLAB_ALLOC_R] = "SLAB_ALLOC_R",
    [PROTO_SLAB_FREE] = "SLAB_FREE", [PROTO_SLAB_FREE_R] = "SLAB_FREE_R",
    [PROTO_PAGE_WRITE] = "PAGE_WRITE", [PROTO_PAGE_WRITE_R] = "PAGE_WRITE_R",
    [PROTO_PAGE_READ] = "PAGE_READ", [PROTO_PAGE_READ_R] = "PAGE_READ_R",
    [PROTO_STATS] = "STATS", [PROTO_STATS_R] = "STATS_R",
    [PROTO_SLAB_FIND] = "SLAB_FIND", [PROTO_SLAB_FIND_R] = "SLAB_FIND_R",
    [PROTO_VOL_CLAIM] = "VOL_CLAIM", [PROTO_VOL_CLAIM_R] = "VOL_CLAIM_R",
    [PROTO_VOL_DROP] = "VOL_DROP", [PROTO_VOL_DROP_R] = "VOL_DROP_R",
    [PROTO_META_PUT] = "META_PUT", [PROTO_META_PUT_R] = "META_PUT_R",
    [PROTO_META_LIST] = "META_LIST", [PROTO_META_LIST_R] = "META_LIST_R",
};

const char *proto_type_name(int type)
{
    return type > 0 && type < PROTO_TYPE_MAX ? names[type] : "unknown";
}

/* Exact body length of each type (PAGE_READ_R: with data; without when status != 0). */
#define PAGE_BODY (8u + PROTO_PAGE_SIZE)
#define WRITE_HDR 24u                     /* PAGE_WRITE before its slots, records and pages */
#define WRITE_META (4u + PROTO_WREC_SIZE)  /* a PAGE_WRITE page's slot and record */
#define WRITE_PER_PAGE (WRITE_META + PROTO_PAGE_SIZE)
#define VOL_BODY  (32u + PROTO_ID_MAX)
#define META_HDR  32u                     /* META_*: before the records */
static const uint32_t body_len[PROTO_TYPE_MAX] = {
    [PROTO_HELLO] = PROTO_ID_MAX + PROTO_NONCE_BYTES + 4 + PROTO_ADDR_MAX + 4,
    [PROTO_CHALLENGE] = PROTO_ID_MAX + PROTO_NONCE_BYTES,
    [PROTO_AUTH] = PROTO_MAC_BYTES,
    [PROTO_WELCOME] = PROTO_MAC_BYTES + 24,
    [PROTO_REFUSED] = PROTO_ID_MAX,
    [PROTO_SLAB_ALLOC] = 8,
    [PROTO_SLAB_ALLOC_R] = 48,
    [PROTO_SLAB_FREE] = 8,
    [PROTO_SLAB_FREE_R] = 8,
    [PROTO_PAGE_WRITE] = WRITE_HDR + WRITE_PER_PAGE,               /* one page; more: see proto_decode */
    [PROTO_PAGE_WRITE_R] = 12,
    [PROTO_PAGE_READ] = 8,
    [PROTO_PAGE_READ_R] = PAGE_BODY,
    [PROTO_STATS] = 0,
    [PROTO_STATS_R] = 24,
    [PROTO_SLAB_FIND] = 8,
    [PROTO_SLAB_FIND_R] = 48,
    [PROTO_VOL_CLAIM] = VOL_BODY, [PROTO_VOL_CLAIM_R] = VOL_BODY,
    [PROTO_VOL_DROP] = VOL_BODY, [PROTO_VOL_DROP_R] = VOL_BODY,
    [PROTO_META_PUT] = META_HDR, [PROTO_META_PUT_R] = META_HDR,    /* + n records */
    [PROTO_META_LIST] = META_HDR, [PROTO_META_LIST_R] = META_HDR,
};

static bool has_recs(uint8_t type) { return type == PROTO_META_PUT || type == PROTO_META_LIST_R; }

static uint32_t expected_len(uint8_t type, uint16_t status)
{
    if (type == PROTO_PAGE_READ_R && status != 0)
        return 8;
    return body_len[type];
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* A string field is PROTO_ID_MAX bytes: printable ASCII, NUL-terminated, NUL-padded. */
static bool put_str(uint8_t *p, const char *s)
{
    size_t n = strnlen(s, PROTO_ID_MAX);
    if (n == PROTO_ID_MAX)
        return false;
    memset(p, 0, PROTO_ID_MAX);
    memcpy(p, s, n);
    return true;
}

static bool get_str(const uint8_t *p, char *out)
{
    size_t n = 0;
    while (n < PROTO_ID_MAX && p[n])
        if (p[n] < 0x20 || p[n++] > 0x7e)
            return false;
    if (n == PROTO_ID_MAX)
        return false;
    for (size_t i = n; i < PROTO_ID_MAX; i++)
        if (p[i])
            return false;
    memcpy(out, p, n + 1);
    return true;
}

size_t proto_encode(const struct proto_msg *m, uint8_t *buf, size_t buflen)
{
    if (m->type == 0 || m->type >= PROTO_TYPE_MAX)
        return 0;
    uint32_t blen = expected_len(m->type, m->status);
    if (has_recs(m->type)) {
        if (m->u.meta.n > PROTO_REC_MAX || (m->u.meta.n && !m->u.meta.recs && !m->u.meta.raw))
            return 0;
        blen += m->u.meta.n * PROTO_REC_SIZE;
    }
    uint32_t npages = 1;
    size_t need = PROTO_HDR_SIZE + blen;
    if (m->type == PROTO_PAGE_WRITE) {
        npages = m->u.page.npages ? m->u.page.npages : 1;
        if (npages > PROTO_RUN_MAX)
            return 0;
        blen = WRITE_HDR + npages * WRITE_PER_PAGE;
        /* Without data only the header, the slots and the records are
         * written here; the caller sends the pages right after. */
        need = PROTO_HDR_SIZE + (m->u.page.data ? blen : WRITE_HDR + npages * WRITE_META);
    }
    if (buflen < need)
        return 0;
    put32(buf, PROTO_MAGIC);
    buf[4] = PROTO_VERSION;
    buf[5] = m->type;
    put16(buf + 6, m->status);
    put32(buf + 8, blen);
    put32(buf + 12, 0);
    put64(buf + 16, m->req_id);
    memset(buf + PROTO_SEQ_OFF, 0, PROTO_HDR_SIZE - PROTO_SEQ_OFF);   /* sealed later, if at all */
    uint8_t *b = buf + PROTO_HDR_SIZE;
    size_t len = PROTO_HDR_SIZE + blen;
    switch (m->type) {
    case PROTO_HELLO:
        if (!put_str(b, m->u.hello.id) || m->u.hello.addr_len > PROTO_ADDR_MAX)
            return 0;
        memcpy(b + PROTO_ID_MAX, m->u.hello.nonce, PROTO_NONCE_BYTES);
        put32(b + PROTO_ID_MAX + PROTO_NONCE_BYTES, m->u.hello.addr_len);
        memset(b + PROTO_ID_MAX + PROTO_NONCE_BYTES + 4, 0, PROTO_ADDR_MAX);
        memcpy(b + PROTO_ID_MAX + PROTO_NONCE_BYTES + 4, m->u.hello.addr, m->u.hello.addr_len);
        put32(b + PROTO_ID_MAX + PROTO_NONCE_BYTES + 4 + PROTO_ADDR_MAX, m->u.hello.flags);
        break;
    case PROTO_CHALLENGE:
        if (!put_str(b, m->u.challenge.id))
            return 0;
        memcpy(b + PROTO_ID_MAX, m->u.challenge.nonce, PROTO_NONCE_BYTES);
        break;
    case PROTO_AUTH:
        memcpy(b, m->u.auth.mac, PROTO_MAC_BYTES);
        break;
    case PROTO_WELCOME:
        memcpy(b, m->u.welcome.mac, PROTO_MAC_BYTES);
        put64(b + 32, m->u.welcome.capacity);
        put64(b + 40, m->u.welcome.used);
        put64(b + 48, m->u.welcome.slab_size);
        break;
    case PROTO_REFUSED:
        if (!put_str(b, m->u.refused.reason))
            return 0;
        break;
    case PROTO_SLAB_ALLOC_R:
        put32(b, m->u.slab_alloc_r.slab);
        put32(b + 4, 0);
        put64(b + 8, m->u.slab_alloc_r.size);
        put64(b + 16, m->u.slab_alloc_r.raddr);
        put64(b + 24, m->u.slab_alloc_r.rkey);
        put64(b + 32, m->u.slab_alloc_r.capacity);
        put64(b + 40, m->u.slab_alloc_r.used);
        break;
    case PROTO_SLAB_FREE:
    case PROTO_SLAB_FREE_R:
        put32(b, m->u.slab_free.slab);
        put32(b + 4, m->u.slab_free.flags);
        break;
    case PROTO_PAGE_WRITE:
        put32(b, m->u.page.slab);
        put32(b + 4, npages);
        put64(b + 8, m->u.page.vid);
        put64(b + 16, m->u.page.epoch);
        for (uint32_t i = 0; i < npages; i++) {
            put32(b + WRITE_HDR + 4 * i, m->u.page.npages ? m->u.page.slots[i] : m->u.page.page);
            uint8_t *o = b + WRITE_HDR + 4 * npages + PROTO_WREC_SIZE * i;
            put64(o, m->u.page.recs[i].lpn);
            put64(o + 8, m->u.page.recs[i].seq);
            memcpy(o + 16, m->u.page.recs[i].hash, 16);
        }
        if (m->u.page.data)
            memcpy(b + WRITE_HDR + WRITE_META * npages, m->u.page.data, (size_t)npages * PROTO_PAGE_SIZE);
        else
            len = PROTO_HDR_SIZE + WRITE_HDR + WRITE_META * npages;
        break;
    case PROTO_PAGE_WRITE_R:
        put32(b, m->u.page.slab);
        put32(b + 4, m->u.page.page);
        put32(b + 8, m->u.page.server_ns);
        break;
    case PROTO_PAGE_READ:
    case PROTO_PAGE_READ_R:
        put32(b, m->u.page.slab);
        put32(b + 4, m->u.page.page);
        if (blen == PAGE_BODY) {
            if (m->u.page.data)
                memcpy(b + 8, m->u.page.data, PROTO_PAGE_SIZE);
            else
                len = PROTO_HDR_SIZE + 8;
        }
        break;
    case PROTO_STATS_R:
        put64(b, m->u.stats_r.capacity);
        put64(b + 8, m->u.stats_r.used);
        put32(b + 16, m->u.stats_r.slabs);
        put32(b + 20, m->u.stats_r.sessions);
        break;
    case PROTO_SLAB_ALLOC:
    case PROTO_SLAB_FIND:
        put64(b, m->u.slab_alloc.uid);
        break;
    case PROTO_SLAB_FIND_R:
        put32(b, m->u.slab_find_r.slab);
        put32(b + 4, m->u.slab_find_r.npages);
        put64(b + 8, m->u.slab_find_r.uid);
        put64(b + 16, m->u.slab_find_r.size);
        put64(b + 24, m->u.slab_find_r.raddr);
        put64(b + 32, m->u.slab_find_r.rkey);
        memset(b + 40, 0, 8);
        b[40] = m->u.slab_find_r.mine ? 1 : 0;
        break;
    case PROTO_VOL_CLAIM:
    case PROTO_VOL_CLAIM_R:
    case PROTO_VOL_DROP:
    case PROTO_VOL_DROP_R:
        put64(b, m->u.vol.vid);
        put64(b + 8, m->u.vol.epoch);
        put64(b + 16, m->u.vol.size);
        put64(b + 24, m->u.vol.nrecs);
        if (!put_str(b + 32, m->u.vol.name))
            return 0;
        break;
    case PROTO_META_PUT:
    case PROTO_META_PUT_R:
    case PROTO_META_LIST:
    case PROTO_META_LIST_R:
        put64(b, m->u.meta.vid);
        put64(b + 8, m->u.meta.epoch);
        put64(b + 16, m->u.meta.cursor);
        put32(b + 24, has_recs(m->type) ? m->u.meta.n : 0);
        put32(b + 28, 0);
        if (has_recs(m->type) && !m->u.meta.recs && m->u.meta.n) {
            /* Records as decoded (a server passing them on): already encoded. */
            memcpy(b + META_HDR, m->u.meta.raw, (size_t)m->u.meta.n * PROTO_REC_SIZE);
            break;
        }
        for (uint32_t i = 0; has_recs(m->type) && i < m->u.meta.n; i++) {
            const struct proto_rec *r = &m->u.meta.recs[i];
            uint8_t *o = b + META_HDR + i * PROTO_REC_SIZE;
            put64(o, r->lpn);
            put64(o + 8, r->seq);
            put64(o + 16, r->uid);
            put32(o + 24, r->page);
            o[28] = r->kind;
            memset(o + 29, 0, 3);
            memcpy(o + 32, r->hash, 16);
        }
        break;
    default:        /* STATS: header only */
        break;
    }
    return len;
}

#define FAIL(...) do { snprintf(why, whylen, __VA_ARGS__); return -1; } while (0)

int proto_decode(const uint8_t *buf, size_t len, struct proto_msg *m, char *why, size_t whylen)
{
    if (len < PROTO_HDR_SIZE)
        FAIL("short message (%zu bytes, header is %u)", len, PROTO_HDR_SIZE);
    if (get32(buf) != PROTO_MAGIC)
        FAIL("bad magic 0x%08x", get32(buf));
    if (buf[4] != PROTO_VERSION)
        FAIL("unsupported protocol version %u (want %u)", buf[4], PROTO_VERSION);
    uint8_t type = buf[5];
    if (type == 0 || type >= PROTO_TYPE_MAX)
        FAIL("unknown message type %u", type);
    uint16_t status = get16(buf + 6);
    uint32_t blen = get32(buf + 8);
    uint32_t want = expected_len(type, status);
    if (type == PROTO_PAGE_WRITE && blen >= WRITE_HDR && len >= PROTO_HDR_SIZE + WRITE_HDR) {
        uint32_t n = get32(buf + PROTO_HDR_SIZE + 4);
        if (n < 1 || n > PROTO_RUN_MAX)
            FAIL("PAGE_WRITE: %u pages, expected 1..%u", n, PROTO_RUN_MAX);
        want = WRITE_HDR + n * WRITE_PER_PAGE;
    }
    if (has_recs(type) && blen >= META_HDR && len >= PROTO_HDR_SIZE + META_HDR) {
        uint32_t n = get32(buf + PROTO_HDR_SIZE + 24);
        if (n > PROTO_REC_MAX)
            FAIL("%s: %u records, at most %u", names[type], n, PROTO_REC_MAX);
        want += n * PROTO_REC_SIZE;
    }
    if (blen != want)
        FAIL("%s: body is %u bytes, expected %u", names[type], blen, want);
    if (len != PROTO_HDR_SIZE + (size_t)blen)
        FAIL("%s: message is %zu bytes, header says %u", names[type], len, PROTO_HDR_SIZE + blen);
    if (get32(buf + 12) != 0)
        FAIL("%s: reserved header field not zero", names[type]);
    /* Requests never carry a status; a reply's status must be an errno-sized value. */
    bool request = type == PROTO_HELLO || type == PROTO_AUTH || type == PROTO_SLAB_ALLOC ||
                   type == PROTO_SLAB_FREE || type == PROTO_PAGE_WRITE || type == PROTO_PAGE_READ ||
                   type == PROTO_STATS || type == PROTO_SLAB_FIND || type == PROTO_VOL_CLAIM ||
                   type == PROTO_VOL_DROP || type == PROTO_META_PUT || type == PROTO_META_LIST;
    if ((request && status != 0) || status > 4095)
        FAIL("%s: bad status %u", names[type], status);

    memset(m, 0, sizeof(*m));
    m->type = type;
    m->status = status;
    m->req_id = get64(buf + 16);
    const uint8_t *b = buf + PROTO_HDR_SIZE;
    switch (type) {
    case PROTO_HELLO: {
        if (!get_str(b, m->u.hello.id))
            FAIL("HELLO: identity is not a printable NUL-padded string");
        memcpy(m->u.hello.nonce, b + PROTO_ID_MAX, PROTO_NONCE_BYTES);
        uint32_t al = get32(b + PROTO_ID_MAX + PROTO_NONCE_BYTES);
        const uint8_t *a = b + PROTO_ID_MAX + PROTO_NONCE_BYTES + 4;
        if (al > PROTO_ADDR_MAX)
            FAIL("HELLO: address length %u exceeds %u", al, PROTO_ADDR_MAX);
        for (uint32_t i = al; i < PROTO_ADDR_MAX; i++)
            if (a[i])
                FAIL("HELLO: address padding not zero");
        m->u.hello.addr_len = al;
        memcpy(m->u.hello.addr, a, al);
        m->u.hello.flags = get32(a + PROTO_ADDR_MAX);
        if (m->u.hello.flags & ~(uint32_t)PROTO_HELLO_FRESH)
            FAIL("HELLO: unknown flags 0x%x", m->u.hello.flags & ~(uint32_t)PROTO_HELLO_FRESH);
        break;
    }
    case PROTO_CHALLENGE:
        if (!get_str(b, m->u.challenge.id))
            FAIL("CHALLENGE: identity is not a printable NUL-padded string");
        memcpy(m->u.challenge.nonce, b + PROTO_ID_MAX, PROTO_NONCE_BYTES);
        break;
    case PROTO_AUTH:
        memcpy(m->u.auth.mac, b, PROTO_MAC_BYTES);
        break;
    case PROTO_WELCOME:
        memcpy(m->u.welcome.mac, b, PROTO_MAC_BYTES);
        m->u.welcome.capacity = get64(b + 32);
        m->u.welcome.used = get64(b + 40);
        m->u.welcome.slab_size = get64(b + 48);
        if (m->u.welcome.used > m->u.welcome.capacity)
            FAIL("WELCOME: used %llu exceeds capacity %llu",
                 (unsigned long long)m->u.welcome.used, (unsigned long long)m->u.welcome.capacity);
        if (status == 0 && (m->u.welcome.slab_size == 0 || m->u.welcome.slab_size % PROTO_PAGE_SIZE))
            FAIL("WELCOME: slab size %llu is not a multiple of %u",
                 (unsigned long long)m->u.welcome.slab_size, PROTO_PAGE_SIZE);
        break;
    case PROTO_REFUSED:
        if (!get_str(b, m->u.refused.reason))
            FAIL("REFUSED: reason is not a printable NUL-padded string");
        break;
    case PROTO_SLAB_ALLOC_R:
        if (get32(b + 4) != 0)
            FAIL("SLAB_ALLOC_R: reserved field not zero");
        m->u.slab_alloc_r.slab = get32(b);
        m->u.slab_alloc_r.size = get64(b + 8);
        m->u.slab_alloc_r.raddr = get64(b + 16);
        m->u.slab_alloc_r.rkey = get64(b + 24);
        m->u.slab_alloc_r.capacity = get64(b + 32);
        m->u.slab_alloc_r.used = get64(b + 40);
        if (m->u.slab_alloc_r.used > m->u.slab_alloc_r.capacity)
            FAIL("SLAB_ALLOC_R: used exceeds capacity");
        if (status == 0 && (m->u.slab_alloc_r.size == 0 || m->u.slab_alloc_r.size % PROTO_PAGE_SIZE ||
                            m->u.slab_alloc_r.raddr > UINT64_MAX - m->u.slab_alloc_r.size))
            FAIL("SLAB_ALLOC_R: bad slab size or address");
        break;
    case PROTO_SLAB_FREE:
    case PROTO_SLAB_FREE_R:
        m->u.slab_free.slab = get32(b);
        m->u.slab_free.flags = get32(b + 4);
        if (m->u.slab_free.flags & ~PROTO_FREE_FORCE)
            FAIL("%s: unknown flags", names[type]);
        break;
    case PROTO_PAGE_WRITE:
        m->u.page.slab = get32(b);
        m->u.page.npages = get32(b + 4);
        m->u.page.vid = get64(b + 8);
        m->u.page.epoch = get64(b + 16);
        for (uint32_t i = 0; i < m->u.page.npages; i++) {
            m->u.page.slots[i] = get32(b + WRITE_HDR + 4 * i);
            const uint8_t *o = b + WRITE_HDR + 4 * m->u.page.npages + PROTO_WREC_SIZE * i;
            m->u.page.recs[i].lpn = get64(o);
            m->u.page.recs[i].seq = get64(o + 8);
            memcpy(m->u.page.recs[i].hash, o + 16, 16);
            /* A record names a volume page: only a volume's write carries one. */
            if (m->u.page.recs[i].seq && m->u.page.vid == 0)
                FAIL("PAGE_WRITE: page %u has a record but no volume", i);
        }
        m->u.page.page = m->u.page.slots[0];
        m->u.page.data = b + WRITE_HDR + WRITE_META * m->u.page.npages;
        break;
    case PROTO_PAGE_WRITE_R:
        m->u.page.slab = get32(b);
        m->u.page.page = get32(b + 4);
        m->u.page.server_ns = get32(b + 8);
        break;
    case PROTO_PAGE_READ:
    case PROTO_PAGE_READ_R:
        m->u.page.slab = get32(b);
        m->u.page.page = get32(b + 4);
        if (blen == PAGE_BODY)
            m->u.page.data = b + 8;
        break;
    case PROTO_STATS_R:
        m->u.stats_r.capacity = get64(b);
        m->u.stats_r.used = get64(b + 8);
        m->u.stats_r.slabs = get32(b + 16);
        m->u.stats_r.sessions = get32(b + 20);
        if (m->u.stats_r.used > m->u.stats_r.capacity)
            FAIL("STATS_R: used exceeds capacity");
        break;
    case PROTO_SLAB_ALLOC:
    case PROTO_SLAB_FIND:
        m->u.slab_alloc.uid = get64(b);
        if (m->u.slab_alloc.uid == 0)
            FAIL("%s: slab uid 0", names[type]);
        break;
    case PROTO_SLAB_FIND_R:
        m->u.slab_find_r.slab = get32(b);
        m->u.slab_find_r.npages = get32(b + 4);
        m->u.slab_find_r.uid = get64(b + 8);
        m->u.slab_find_r.size = get64(b + 16);
        m->u.slab_find_r.raddr = get64(b + 24);
        m->u.slab_find_r.rkey = get64(b + 32);
        if (b[40] > 1)
            FAIL("SLAB_FIND_R: bad flag");
        for (int i = 41; i < 48; i++)
            if (b[i])
                FAIL("SLAB_FIND_R: reserved field not zero");
        m->u.slab_find_r.mine = b[40];
        if (status == 0 && ((uint64_t)m->u.slab_find_r.npages * PROTO_PAGE_SIZE != m->u.slab_find_r.size ||
                            m->u.slab_find_r.npages == 0 ||
                            m->u.slab_find_r.raddr > UINT64_MAX - m->u.slab_find_r.size))
            FAIL("SLAB_FIND_R: bad slab size, page count or address");
        break;
    case PROTO_VOL_CLAIM:
    case PROTO_VOL_CLAIM_R:
    case PROTO_VOL_DROP:
    case PROTO_VOL_DROP_R:
        m->u.vol.vid = get64(b);
        m->u.vol.epoch = get64(b + 8);
        m->u.vol.size = get64(b + 16);
        m->u.vol.nrecs = get64(b + 24);
        if (!get_str(b + 32, m->u.vol.name))
            FAIL("%s: volume name is not a printable NUL-padded string", names[type]);
        if (m->u.vol.vid == 0)
            FAIL("%s: volume id 0", names[type]);
        break;
    case PROTO_META_PUT:
    case PROTO_META_PUT_R:
    case PROTO_META_LIST:
    case PROTO_META_LIST_R:
        m->u.meta.vid = get64(b);
        m->u.meta.epoch = get64(b + 8);
        m->u.meta.cursor = get64(b + 16);
        m->u.meta.n = get32(b + 24);
        if (get32(b + 28) || (!has_recs(type) && m->u.meta.n))
            FAIL("%s: reserved field not zero", names[type]);
        if (m->u.meta.vid == 0)
            FAIL("%s: volume id 0", names[type]);
        m->u.meta.raw = b + META_HDR;
        for (uint32_t i = 0; i < m->u.meta.n; i++) {
            const uint8_t *o = m->u.meta.raw + i * PROTO_REC_SIZE;
            if (o[28] > PROTO_REC_PAGE || o[29] || o[30] || o[31])
                FAIL("%s: record %u: bad kind", names[type], i);
            if (o[28] == PROTO_REC_PAGE && get64(o + 16) == 0)
                FAIL("%s: record %u: page record without a slab", names[type], i);
        }
        break;
    default:
        break;
    }
    return 0;
}

void proto_rec_get(const uint8_t *raw, uint32_t i, struct proto_rec *r)
{
    const uint8_t *o = raw + (size_t)i * PROTO_REC_SIZE;
    r->lpn = get64(o);
    r->seq = get64(o + 8);
    r->uid = get64(o + 16);
    r->page = get32(o + 24);
    r->kind = o[28];
    memcpy(r->hash, o + 32, 16);
}

void proto_set_req_id(uint8_t *buf, size_t len, uint64_t req_id)
{
    if (len >= PROTO_HDR_SIZE)
        put64(buf + 16, req_id);
}
