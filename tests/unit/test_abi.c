/* test_abi.c — blkif request/response layouts of the three ABIs, checked
 * byte by byte against the offsets Linux's xen-blkfront produces. */
#include <stdint.h>
#include <string.h>

#include "blkif_abi.h"
#include "cu_main.h"

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void test_sizes(void)
{
    CU_ASSERT_EQUAL(blkif_abi_entry_size(BLKIF_ABI_X86_32), 108);
    CU_ASSERT_EQUAL(blkif_abi_entry_size(BLKIF_ABI_X86_64), 112);
    CU_ASSERT_EQUAL(blkif_abi_entry_size(BLKIF_ABI_NATIVE), sizeof(union blkif_sring_entry));
    /* __CONST_RING_SIZE(blkif, 4096) is 32 for both; 4 pages hold 128. */
    CU_ASSERT_EQUAL(blkif_abi_ring_size(BLKIF_ABI_X86_64, 1), 32);
    CU_ASSERT_EQUAL(blkif_abi_ring_size(BLKIF_ABI_X86_32, 1), 32);
    CU_ASSERT_EQUAL(blkif_abi_ring_size(BLKIF_ABI_NATIVE, 1), __CONST_RING_SIZE(blkif, 4096));
    CU_ASSERT_EQUAL(blkif_abi_ring_size(BLKIF_ABI_X86_64, 4), 128);
    CU_ASSERT_EQUAL(blkif_abi_ring_size(BLKIF_ABI_X86_64, 16), __CONST_RING_SIZE(blkif, 16 * 4096));
    CU_ASSERT_EQUAL(blkif_abi_ring_size(BLKIF_ABI_X86_32, 16), 512);
}

static void test_parse(void)
{
#if defined(__i386__) || defined(__x86_64__)
    /* No protocol node: the x86_32 ABI on x86, whatever the backend's own
     * width, as Linux blkback (BLKIF_PROTOCOL_DEFAULT under CONFIG_X86) and
     * QEMU's xen-block (x86 machines) assume: only old i386 frontends omit it. */
    CU_ASSERT_EQUAL(blkif_abi_parse(NULL), BLKIF_ABI_X86_32);
    CU_ASSERT_EQUAL(blkif_abi_parse(""), BLKIF_ABI_X86_32);
#else
    CU_ASSERT_EQUAL(blkif_abi_parse(NULL), BLKIF_ABI_NATIVE);
    CU_ASSERT_EQUAL(blkif_abi_parse(""), BLKIF_ABI_NATIVE);
#endif
    CU_ASSERT_EQUAL(blkif_abi_parse("x86_32-abi"), BLKIF_ABI_X86_32);
    CU_ASSERT_EQUAL(blkif_abi_parse("x86_64-abi"), BLKIF_ABI_X86_64);
    CU_ASSERT_EQUAL(blkif_abi_parse("sparc-abi"), -1);
    CU_ASSERT_STRING_EQUAL(blkif_abi_name(BLKIF_ABI_X86_32), "x86_32-abi");
}

/* An i386 guest's read: id at 4, sector at 12, segments from 20. */
static void test_x86_32_rw(void)
{
    uint8_t e[112];
    memset(e, 0xee, sizeof(e));
    e[0] = BLKIF_OP_READ;
    e[1] = 2;
    put16(e + 2, 51712);
    put64(e + 4, 0x1122334455667788ull);
    put64(e + 12, 4096);
    put32(e + 20, 77); e[24] = 1; e[25] = 7;
    put32(e + 28, 78); e[32] = 0; e[33] = 3;
    struct blkif_req r;
    blkif_abi_get_request(BLKIF_ABI_X86_32, e, &r);
    CU_ASSERT_EQUAL(r.operation, BLKIF_OP_READ);
    CU_ASSERT_EQUAL(r.nr_segments, 2);
    CU_ASSERT_EQUAL(r.handle, 51712);
    CU_ASSERT_EQUAL(r.id, 0x1122334455667788ull);
    CU_ASSERT_EQUAL(r.sector_number, 4096);
    CU_ASSERT_EQUAL(r.seg[0].gref, 77);
    CU_ASSERT_EQUAL(r.seg[0].first_sect, 1);
    CU_ASSERT_EQUAL(r.seg[0].last_sect, 7);
    CU_ASSERT_EQUAL(r.seg[1].gref, 78);
    CU_ASSERT_EQUAL(r.seg[1].last_sect, 3);
}

/* The same request from an x86_64 guest: id at 8, sector at 16, segments from 24. */
static void test_x86_64_rw(void)
{
    uint8_t e[112];
    memset(e, 0xee, sizeof(e));
    e[0] = BLKIF_OP_WRITE;
    e[1] = 11;
    put16(e + 2, 51728);
    put64(e + 8, 42);
    put64(e + 16, 1ull << 40);
    for (int i = 0; i < 11; i++) {
        put32(e + 24 + 8 * i, 100u + (unsigned)i);
        e[24 + 8 * i + 4] = 0;
        e[24 + 8 * i + 5] = 7;
    }
    struct blkif_req r;
    blkif_abi_get_request(BLKIF_ABI_X86_64, e, &r);
    CU_ASSERT_EQUAL(r.operation, BLKIF_OP_WRITE);
    CU_ASSERT_EQUAL(r.nr_segments, 11);
    CU_ASSERT_EQUAL(r.id, 42);
    CU_ASSERT_EQUAL(r.sector_number, 1ull << 40);
    CU_ASSERT_EQUAL(r.seg[10].gref, 110);
    CU_ASSERT_EQUAL(r.seg[10].last_sect, 7);
    /* Native on this host is the public header's struct blkif_request. */
    struct blkif_request n;
    memcpy(&n, e, sizeof(n));
    blkif_abi_get_request(BLKIF_ABI_NATIVE, e, &r);
    CU_ASSERT_EQUAL(r.id, n.id);
    CU_ASSERT_EQUAL(r.sector_number, n.sector_number);
    CU_ASSERT_EQUAL(r.seg[3].gref, n.seg[3].gref);
}

/* A direct request claiming 200 segments decodes only the 11 that fit in the
 * entry: the count is kept for the validator to reject. */
static void test_too_many_segments(void)
{
    uint8_t e[112] = { BLKIF_OP_READ, 200 };
    struct blkif_req r;
    blkif_abi_get_request(BLKIF_ABI_X86_64, e, &r);
    CU_ASSERT_EQUAL(r.nr_segments, 200);
}

static void test_discard(void)
{
    uint8_t e[112] = { 0 };
    e[0] = BLKIF_OP_DISCARD;
    e[1] = BLKIF_DISCARD_SECURE;
    put64(e + 4, 9);        /* x86_32: id at 4 */
    put64(e + 12, 800);
    put64(e + 20, 64);
    struct blkif_req r;
    blkif_abi_get_request(BLKIF_ABI_X86_32, e, &r);
    CU_ASSERT_EQUAL(r.id, 9);
    CU_ASSERT_EQUAL(r.sector_number, 800);
    CU_ASSERT_EQUAL(r.nr_sectors, 64);
    CU_ASSERT_EQUAL(r.discard_flag, BLKIF_DISCARD_SECURE);

    memset(e, 0, sizeof(e));
    e[0] = BLKIF_OP_DISCARD;
    put64(e + 8, 10);       /* x86_64: id at 8 */
    put64(e + 16, 1600);
    put64(e + 24, 8);
    blkif_abi_get_request(BLKIF_ABI_X86_64, e, &r);
    CU_ASSERT_EQUAL(r.id, 10);
    CU_ASSERT_EQUAL(r.sector_number, 1600);
    CU_ASSERT_EQUAL(r.nr_sectors, 8);
}

static void test_indirect(void)
{
    uint8_t e[112] = { 0 };
    e[0] = BLKIF_OP_INDIRECT;
    e[1] = BLKIF_OP_WRITE;
    put16(e + 2, 600);
    put64(e + 8, 5);
    put64(e + 16, 128);
    put16(e + 24, 51712);
    put32(e + 28, 900);
    put32(e + 32, 901);
    struct blkif_req r;
    blkif_abi_get_request(BLKIF_ABI_X86_64, e, &r);
    CU_ASSERT_EQUAL(r.operation, BLKIF_OP_INDIRECT);
    CU_ASSERT_EQUAL(r.indirect_op, BLKIF_OP_WRITE);
    CU_ASSERT_EQUAL(r.nr_segments, 600);
    CU_ASSERT_EQUAL(r.id, 5);
    CU_ASSERT_EQUAL(r.sector_number, 128);
    CU_ASSERT_EQUAL(r.handle, 51712);
    CU_ASSERT_EQUAL(r.indirect_grefs[0], 900);
    CU_ASSERT_EQUAL(r.indirect_grefs[1], 901);

    memset(e, 0, sizeof(e));
    e[0] = BLKIF_OP_INDIRECT;
    e[1] = BLKIF_OP_READ;
    put16(e + 2, 16);
    put64(e + 4, 6);
    put64(e + 12, 256);
    put16(e + 20, 51728);
    put32(e + 24, 700);
    blkif_abi_get_request(BLKIF_ABI_X86_32, e, &r);
    CU_ASSERT_EQUAL(r.id, 6);
    CU_ASSERT_EQUAL(r.sector_number, 256);
    CU_ASSERT_EQUAL(r.handle, 51728);
    CU_ASSERT_EQUAL(r.indirect_grefs[0], 700);
}

static void test_responses(void)
{
    uint8_t e[112];
    memset(e, 0xee, sizeof(e));
    blkif_abi_put_response(BLKIF_ABI_X86_32, e, 0xabcdefull, BLKIF_OP_WRITE, BLKIF_RSP_ERROR);
    uint64_t id;
    int16_t st;
    memcpy(&id, e, 8);
    memcpy(&st, e + 10, 2);
    CU_ASSERT_EQUAL(id, 0xabcdefull);
    CU_ASSERT_EQUAL(e[8], BLKIF_OP_WRITE);
    CU_ASSERT_EQUAL(st, BLKIF_RSP_ERROR);
    CU_ASSERT_EQUAL(e[12], 0xee);           /* 12 bytes, nothing more */

    memset(e, 0xee, sizeof(e));
    blkif_abi_put_response(BLKIF_ABI_X86_64, e, 7, BLKIF_OP_READ, BLKIF_RSP_EOPNOTSUPP);
    struct blkif_response n;
    memcpy(&n, e, sizeof(n));
    CU_ASSERT_EQUAL(n.id, 7);
    CU_ASSERT_EQUAL(n.operation, BLKIF_OP_READ);
    CU_ASSERT_EQUAL(n.status, BLKIF_RSP_EOPNOTSUPP);
    CU_ASSERT_EQUAL(e[9], 0);               /* padding written: no stale guest bytes */
}

static const struct cu_test abi_tests[] = {
    { "sizes", test_sizes },
    { "parse", test_parse },
    { "x86_32 read/write", test_x86_32_rw },
    { "x86_64 read/write", test_x86_64_rw },
    { "segment count kept", test_too_many_segments },
    { "discard", test_discard },
    { "indirect", test_indirect },
    { "responses", test_responses },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "blkif_abi", NULL, NULL, abi_tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
