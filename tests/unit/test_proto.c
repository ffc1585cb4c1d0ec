/* Wire protocol: round trips, and a decoder that rejects everything malformed. */
#include "cu_main.h"
#include "proto.h"

#include <stdlib.h>
#include <string.h>

static uint8_t page[PROTO_PAGE_SIZE];

static void test_roundtrip(void)
{
    uint8_t buf[PROTO_MSG_MAX];
    char why[160];
    struct proto_msg m = { .type = PROTO_HELLO, .req_id = 0x1122334455667788ull }, d;
    strcpy(m.u.hello.id, "backd@host:1");
    memset(m.u.hello.nonce, 0xab, sizeof(m.u.hello.nonce));
    m.u.hello.addr_len = 16;
    memset(m.u.hello.addr, 7, 16);
    size_t n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_NOT_EQUAL_FATAL(n, 0);
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(d.type, PROTO_HELLO);
    CU_ASSERT_EQUAL(d.req_id, m.req_id);
    CU_ASSERT_STRING_EQUAL(d.u.hello.id, "backd@host:1");
    CU_ASSERT_EQUAL(memcmp(d.u.hello.nonce, m.u.hello.nonce, PROTO_NONCE_BYTES), 0);
    CU_ASSERT_EQUAL(d.u.hello.addr_len, 16);

    for (unsigned i = 0; i < sizeof(page); i++)
        page[i] = (uint8_t)(i * 13);
    m = (struct proto_msg){ .type = PROTO_PAGE_WRITE, .req_id = 5 };
    m.u.page.slab = 3;
    m.u.page.page = 17;
    m.u.page.data = page;
    m.u.page.vid = 0x1122334455667788ull;
    m.u.page.epoch = 9;
    m.u.page.recs[0] = (struct proto_wrec){ .lpn = 77, .seq = 9ull << 40 | 4, .hash = { 1, 2, 3, [15] = 16 } };
    n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, PROTO_HDR_SIZE + 24 + 4 + PROTO_WREC_SIZE + PROTO_PAGE_SIZE);
    CU_ASSERT_EQUAL_FATAL(proto_decode(buf, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(d.u.page.vid, 0x1122334455667788ull);
    CU_ASSERT_EQUAL(d.u.page.epoch, 9);
    CU_ASSERT_EQUAL(d.u.page.slab, 3);
    CU_ASSERT_EQUAL(d.u.page.page, 17);
    CU_ASSERT_EQUAL(d.u.page.npages, 1);
    CU_ASSERT_EQUAL(d.u.page.slots[0], 17);
    CU_ASSERT_EQUAL(memcmp(d.u.page.data, page, PROTO_PAGE_SIZE), 0);
    /* The record rides with the page. */
    CU_ASSERT_EQUAL(d.u.page.recs[0].lpn, 77);
    CU_ASSERT_EQUAL(d.u.page.recs[0].seq, 9ull << 40 | 4);
    CU_ASSERT_EQUAL(memcmp(d.u.page.recs[0].hash, m.u.page.recs[0].hash, 16), 0);
    /* A record is a volume's: one in a write of no volume is refused. */
    m.u.page.vid = 0;
    n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_NOT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "no volume"));
    m.u.page.recs[0].seq = 0;
    CU_ASSERT_EQUAL(proto_decode(buf, proto_encode(&m, buf, sizeof(buf)), &d, why, sizeof(why)), 0);

    /* A run: PROTO_RUN_MAX pages, each with its own slot.  Without data only
     * the header and slots are encoded (the pages follow from elsewhere). */
    static uint8_t pages[PROTO_RUN_MAX][PROTO_PAGE_SIZE], big[PROTO_WRITE_MAX];
    m = (struct proto_msg){ .type = PROTO_PAGE_WRITE, .req_id = 7 };
    m.u.page.slab = 4;
    m.u.page.npages = PROTO_RUN_MAX;
    for (unsigned i = 0; i < PROTO_RUN_MAX; i++) {
        m.u.page.slots[i] = 100 - 3 * i;
        memset(pages[i], (int)i + 1, PROTO_PAGE_SIZE);
    }
    m.u.page.data = pages[0];
    n = proto_encode(&m, big, sizeof(big));
    CU_ASSERT_EQUAL(n, PROTO_WRITE_MAX);
    CU_ASSERT_EQUAL(proto_encode(&m, buf, sizeof(buf)), 0);     /* too small for the pages */
    CU_ASSERT_EQUAL_FATAL(proto_decode(big, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(d.u.page.npages, PROTO_RUN_MAX);
    CU_ASSERT_EQUAL(d.u.page.page, 100);
    CU_ASSERT_EQUAL(d.u.page.slots[PROTO_RUN_MAX - 1], 100 - 3 * (PROTO_RUN_MAX - 1));
    CU_ASSERT_EQUAL(memcmp(d.u.page.data, pages, sizeof(pages)), 0);
    m.u.page.data = NULL;
    CU_ASSERT_EQUAL(proto_encode(&m, buf, sizeof(buf)), PROTO_HDR_SIZE + 24 + (4 + PROTO_WREC_SIZE) * PROTO_RUN_MAX);
    /* Page counts outside 1..PROTO_RUN_MAX, and bodies that disagree with theirs, are refused. */
    m.u.page.npages = PROTO_RUN_MAX + 1;
    CU_ASSERT_EQUAL(proto_encode(&m, big, sizeof(big)), 0);
    uint8_t save[4];
    memcpy(save, big + PROTO_HDR_SIZE + 4, 4);
    memset(big + PROTO_HDR_SIZE + 4, 0, 4);
    CU_ASSERT_NOT_EQUAL(proto_decode(big, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "0 pages"));
    big[PROTO_HDR_SIZE + 4] = PROTO_RUN_MAX + 1;
    CU_ASSERT_NOT_EQUAL(proto_decode(big, n, &d, why, sizeof(why)), 0);
    memcpy(big + PROTO_HDR_SIZE + 4, save, 4);
    big[PROTO_HDR_SIZE + 4] = PROTO_RUN_MAX - 1;        /* one page short of its body */
    CU_ASSERT_NOT_EQUAL(proto_decode(big, n, &d, why, sizeof(why)), 0);

    /* A write's reply says how long the server spent on it. */
    m = (struct proto_msg){ .type = PROTO_PAGE_WRITE_R, .req_id = 6 };
    m.u.page.slab = 3;
    m.u.page.page = 17;
    m.u.page.server_ns = 123456;
    n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, PROTO_HDR_SIZE + 12);
    CU_ASSERT_EQUAL_FATAL(proto_decode(buf, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(d.u.page.page, 17);
    CU_ASSERT_EQUAL(d.u.page.server_ns, 123456);

    /* A failed PAGE_READ_R carries no data; an ENOSPC SLAB_ALLOC_R keeps its status. */
    m = (struct proto_msg){ .type = PROTO_PAGE_READ_R, .status = 1 };
    n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, PROTO_HDR_SIZE + 8);
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), 0);
    m = (struct proto_msg){ .type = PROTO_SLAB_ALLOC_R, .status = 28 };
    n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(d.status, 28);

    /* Volume records: every field survives, and a decoded batch re-encodes as is. */
    struct proto_rec recs[3] = {
        { .lpn = 7, .seq = 1ull << 40 | 3, .uid = 0xabcdef, .page = 12, .kind = PROTO_REC_PAGE,
          .hash = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } },
        { .lpn = 8, .seq = 5, .kind = PROTO_REC_ZERO },
        { .lpn = 1ull << 33, .seq = 6, .kind = PROTO_REC_NONE },
    };
    m = (struct proto_msg){ .type = PROTO_META_PUT, .req_id = 77 };
    m.u.meta.vid = 42;
    m.u.meta.epoch = 2;
    m.u.meta.n = 3;
    m.u.meta.recs = recs;
    n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_EQUAL(n, PROTO_HDR_SIZE + 32 + 3 * PROTO_REC_SIZE);
    CU_ASSERT_EQUAL_FATAL(proto_decode(buf, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_EQUAL(d.u.meta.n, 3);
    CU_ASSERT_EQUAL(d.u.meta.vid, 42);
    CU_ASSERT_EQUAL(d.u.meta.epoch, 2);
    for (uint32_t i = 0; i < 3; i++) {
        struct proto_rec r;
        proto_rec_get(d.u.meta.raw, i, &r);
        CU_ASSERT_EQUAL(r.lpn, recs[i].lpn);
        CU_ASSERT_EQUAL(r.seq, recs[i].seq);
        CU_ASSERT_EQUAL(r.uid, recs[i].uid);
        CU_ASSERT_EQUAL(r.page, recs[i].page);
        CU_ASSERT_EQUAL(r.kind, recs[i].kind);
        CU_ASSERT_EQUAL(memcmp(r.hash, recs[i].hash, 16), 0);
    }
    uint8_t again[PROTO_MSG_MAX];
    CU_ASSERT_EQUAL(proto_encode(&d, again, sizeof(again)), n);
    CU_ASSERT_EQUAL(memcmp(again, buf, n), 0);
    /* A page record must name a slab; a record count past the limit is refused. */
    recs[0].uid = 0;
    n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), -1);
    m.u.meta.n = PROTO_REC_MAX + 1;
    CU_ASSERT_EQUAL(proto_encode(&m, buf, sizeof(buf)), 0);

    m = (struct proto_msg){ .type = PROTO_VOL_CLAIM, .req_id = 3 };
    m.u.vol.vid = 5;
    m.u.vol.epoch = 4;
    m.u.vol.size = 1 << 20;
    strcpy(m.u.vol.name, "swap-vm1");
    n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_EQUAL_FATAL(proto_decode(buf, n, &d, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(d.u.vol.name, "swap-vm1");
    CU_ASSERT_EQUAL(d.u.vol.epoch, 4);
}

static void test_rejects(void)
{
    uint8_t buf[PROTO_MSG_MAX];
    char why[160];
    struct proto_msg m = { .type = PROTO_SLAB_FREE, .req_id = 1 }, d;
    size_t n = proto_encode(&m, buf, sizeof(buf));
    CU_ASSERT_EQUAL(proto_decode(buf, 10, &d, why, sizeof(why)), -1);
    CU_ASSERT_EQUAL(proto_decode(buf, n - 1, &d, why, sizeof(why)), -1);
    buf[0] ^= 1;
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), -1);
    CU_ASSERT_STRING_EQUAL(why, "bad magic 0x584d454c");
    buf[0] ^= 1;
    buf[5] = 99;                                /* unknown type */
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), -1);
    buf[5] = PROTO_SLAB_FREE;
    buf[6] = 1;                                 /* a request with a status */
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), -1);
    buf[6] = 0;
    buf[8] = 200;                               /* body length lies */
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), -1);

    m = (struct proto_msg){ .type = PROTO_REFUSED };
    strcpy(m.u.refused.reason, "no");
    n = proto_encode(&m, buf, sizeof(buf));
    buf[PROTO_HDR_SIZE + 1] = '\n';             /* control character in a string */
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), -1);
    memset(buf + PROTO_HDR_SIZE, 'a', PROTO_ID_MAX); /* unterminated */
    CU_ASSERT_EQUAL(proto_decode(buf, n, &d, why, sizeof(why)), -1);
    memset(m.u.refused.reason, 'a', sizeof(m.u.refused.reason));
    CU_ASSERT_EQUAL(proto_encode(&m, buf, sizeof(buf)), 0);
}

/* Thousands of random and mutated buffers: decode must never crash (ASan
 * runs catch overreads), and whatever it accepts re-encodes to the same bytes. */
static void test_fuzzish(void)
{
    static uint8_t buf[PROTO_MSG_MAX + 64], again[PROTO_MSG_MAX];
    char why[160];
    struct proto_msg d;
    srand(12345);
    unsigned accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        struct proto_msg m = { .type = (uint8_t)(1 + rand() % (PROTO_TYPE_MAX - 1)), .req_id = (uint64_t)rand() };
        m.u.page.data = page;
        static const struct proto_rec recs[2] = { { .lpn = 1, .seq = 2, .uid = 3, .kind = PROTO_REC_PAGE },
                                                  { .lpn = 9, .seq = 4, .kind = PROTO_REC_ZERO } };
        if (m.type >= PROTO_VOL_CLAIM && m.type <= PROTO_VOL_DROP_R) {
            memset(&m.u, 0, sizeof(m.u));
            m.u.vol.vid = 1 + (uint64_t)rand();
        }
        if (m.type >= PROTO_META_PUT && m.type <= PROTO_META_LIST_R) {
            memset(&m.u, 0, sizeof(m.u));
            m.u.meta.vid = 1 + (uint64_t)rand();
            m.u.meta.n = (uint32_t)(rand() % 3);
            m.u.meta.recs = recs;
        }
        if (m.type == PROTO_SLAB_ALLOC || m.type == PROTO_SLAB_FIND) {
            memset(&m.u, 0, sizeof(m.u));
            m.u.slab_alloc.uid = 1 + (uint64_t)rand();
        }
        if (m.type == PROTO_SLAB_FIND_R) {
            memset(&m.u, 0, sizeof(m.u));
            m.u.slab_find_r.npages = 64;
            m.u.slab_find_r.size = 64 * PROTO_PAGE_SIZE;
        }
        if (m.type == PROTO_HELLO || m.type == PROTO_CHALLENGE)
            strcpy(m.u.hello.id, "id");
        if (m.type == PROTO_REFUSED)
            strcpy(m.u.refused.reason, "r");
        if (m.type == PROTO_WELCOME)
            m.u.welcome.slab_size = 1 << 20;
        if (m.type == PROTO_SLAB_ALLOC_R)
            m.u.slab_alloc_r.size = 1 << 20;
        size_t n = proto_encode(&m, buf, sizeof(buf));
        CU_ASSERT_NOT_EQUAL_FATAL(n, 0);
        int flips = rand() % 4;
        for (int f = 0; f < flips; f++)
            buf[rand() % n] ^= (uint8_t)(1u << (rand() % 8));
        if (rand() % 8 == 0)
            n = (size_t)rand() % (n + 1);
        if (rand() % 16 == 0)
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)rand();
        if (proto_decode(buf, n, &d, why, sizeof(why)) == 0) {
            accepted++;
            size_t n2 = proto_encode(&d, again, sizeof(again));
            CU_ASSERT_EQUAL(n2, n);
            /* seq and tag are auth.h's (encode leaves them zero): everything else round-trips. */
            CU_ASSERT_EQUAL(memcmp(again, buf, PROTO_SEQ_OFF), 0);
            CU_ASSERT_EQUAL(memcmp(again + PROTO_HDR_SIZE, buf + PROTO_HDR_SIZE, n - PROTO_HDR_SIZE), 0);
        } else {
            CU_ASSERT_NOT_EQUAL(why[0], '\0');
        }
    }
    CU_ASSERT(accepted > 1000);     /* the unmutated share decodes */
}

static const struct cu_test tests[] = {
    { "encode/decode round trip", test_roundtrip },
    { "malformed messages rejected", test_rejects },
    { "random and mutated buffers", test_fuzzish },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "proto", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
