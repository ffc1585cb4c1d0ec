/* The slot allocator of a pool slab (backend/pool/slabs.c): pure, no processes. */
#include "slabs.h"
#include "cu_main.h"

#include <errno.h>

static void test_init(void)
{
    struct slots s;
    CU_ASSERT_EQUAL(slots_init(&s, 0), -EINVAL);
    CU_ASSERT_EQUAL(slots_init(&s, 100), -EINVAL);     /* not a multiple of 64 */
    CU_ASSERT_EQUAL_FATAL(slots_init(&s, 128), 0);
    CU_ASSERT_EQUAL(s.n, 128);
    CU_ASSERT_EQUAL(s.nfree, 128);
    for (uint32_t i = 0; i < 128; i++)
        CU_ASSERT_FALSE(slots_in_use(&s, i));
    CU_ASSERT_FALSE(slots_in_use(&s, 128));             /* out of range: not in use */
    slots_fini(&s);
    CU_ASSERT_PTR_NULL(s.bits);
}

/* Takes fill the slab front to back, every slot once; then the slab is full. */
static void test_claim_until_exhausted(void)
{
    struct slots s;
    CU_ASSERT_EQUAL_FATAL(slots_init(&s, 192), 0);
    for (uint32_t i = 0; i < 192; i++) {
        uint32_t pg = UINT32_MAX;
        CU_ASSERT_TRUE_FATAL(slots_take(&s, &pg));
        CU_ASSERT_EQUAL(pg, i);
        CU_ASSERT_TRUE(slots_in_use(&s, pg));
        CU_ASSERT_EQUAL(s.nfree, 192 - i - 1);
    }
    uint32_t pg = 7;
    CU_ASSERT_FALSE(slots_take(&s, &pg));
    CU_ASSERT_EQUAL(pg, 7);                             /* untouched on failure */
    CU_ASSERT_FALSE(slots_take_next(&s, 10, &pg));
    CU_ASSERT_FALSE(slots_hold(&s, 10));
    CU_ASSERT_EQUAL(s.nfree, 0);
    slots_fini(&s);
}

/* A freed slot is taken again; freeing a free slot changes nothing. */
static void test_free(void)
{
    struct slots s;
    uint32_t pg;
    CU_ASSERT_EQUAL_FATAL(slots_init(&s, 64), 0);
    for (int i = 0; i < 64; i++)
        CU_ASSERT_TRUE(slots_take(&s, &pg));
    CU_ASSERT_TRUE(slots_put(&s, 17));
    CU_ASSERT_FALSE(slots_put(&s, 17));                 /* double free: no effect */
    CU_ASSERT_EQUAL(s.nfree, 1);
    CU_ASSERT_FALSE(slots_in_use(&s, 17));
    CU_ASSERT_TRUE(slots_take(&s, &pg));
    CU_ASSERT_EQUAL(pg, 17);
    CU_ASSERT_EQUAL(s.nfree, 0);
    CU_ASSERT_FALSE(slots_put(&s, 64));                 /* out of range */
    slots_fini(&s);
}

/* The scan starts at the hint word (where the last take came from) and wraps. */
static void test_hint_word(void)
{
    struct slots s;
    uint32_t pg;
    CU_ASSERT_EQUAL_FATAL(slots_init(&s, 256), 0);
    for (int i = 0; i < 256; i++)
        CU_ASSERT_TRUE(slots_take(&s, &pg));
    CU_ASSERT_EQUAL(s.hint, 3);
    /* Free one slot in word 0 and one in word 2: the scan from word 3 wraps
     * to word 0 first. */
    slots_put(&s, 5);
    slots_put(&s, 130);
    CU_ASSERT_TRUE(slots_take(&s, &pg));
    CU_ASSERT_EQUAL(pg, 5);
    CU_ASSERT_EQUAL(s.hint, 0);
    /* From word 0 on, word 2 is next. */
    slots_put(&s, 200);
    CU_ASSERT_TRUE(slots_take(&s, &pg));
    CU_ASSERT_EQUAL(pg, 130);
    CU_ASSERT_EQUAL(s.hint, 2);
    CU_ASSERT_TRUE(slots_take(&s, &pg));
    CU_ASSERT_EQUAL(pg, 200);
    CU_ASSERT_EQUAL(s.hint, 3);
    slots_fini(&s);
}

/* Runs: the slot right after the previous one when it is free, else the
 * first free from the hint. */
static void test_run_placement(void)
{
    struct slots s;
    uint32_t pg;
    CU_ASSERT_EQUAL_FATAL(slots_init(&s, 128), 0);
    CU_ASSERT_TRUE(slots_take(&s, &pg));
    CU_ASSERT_EQUAL(pg, 0);
    for (uint32_t want = 1; want < 16; want++) {
        CU_ASSERT_TRUE(slots_take_next(&s, pg, &pg));
        CU_ASSERT_EQUAL(pg, want);
    }
    /* A run that meets a taken slot continues at the first free one. */
    CU_ASSERT_TRUE(slots_hold(&s, 40));
    uint32_t after = 39;
    CU_ASSERT_TRUE(slots_hold(&s, after));
    CU_ASSERT_TRUE(slots_take_next(&s, after, &pg));
    CU_ASSERT_EQUAL(pg, 16);
    /* Across the word boundary. */
    CU_ASSERT_TRUE(slots_hold(&s, 63));
    CU_ASSERT_TRUE(slots_take_next(&s, 63, &pg));
    CU_ASSERT_EQUAL(pg, 64);
    /* The last slot has no successor: the hint decides. */
    CU_ASSERT_TRUE(slots_hold(&s, 127));
    CU_ASSERT_TRUE(slots_take_next(&s, 127, &pg));
    CU_ASSERT_FALSE(pg == 127);
    CU_ASSERT_TRUE(slots_in_use(&s, pg));
    slots_fini(&s);
}

/* hold: a loaded volume's page, taken only if nobody holds it yet. */
static void test_hold(void)
{
    struct slots s;
    CU_ASSERT_EQUAL_FATAL(slots_init(&s, 64), 0);
    CU_ASSERT_TRUE(slots_hold(&s, 9));
    CU_ASSERT_FALSE(slots_hold(&s, 9));
    CU_ASSERT_FALSE(slots_hold(&s, 64));
    CU_ASSERT_EQUAL(s.nfree, 63);
    uint32_t pg;
    for (int i = 0; i < 63; i++) {
        CU_ASSERT_TRUE(slots_take(&s, &pg));
        CU_ASSERT_NOT_EQUAL(pg, 9);                     /* never handed out twice */
    }
    CU_ASSERT_FALSE(slots_take(&s, &pg));
    slots_fini(&s);
}

/* A run of writes takes a free stretch where one exists: in a slab whose
 * free slots are scattered singles and one stretch, the stretch; never one
 * that crosses a word's end; none when no word has one. */
static void test_take_run(void)
{
    struct slots s;
    CU_ASSERT_EQUAL_FATAL(slots_init(&s, 192), 0);
    uint32_t pg;
    for (unsigned i = 0; i < 192; i++)
        CU_ASSERT_TRUE(slots_take(&s, &pg));
    /* Free: every 4th slot of word 0, slots 60..63 of word 0 + 64..67 of word 1
     * (8 across the boundary), and 140..149 of word 2. */
    for (unsigned i = 0; i < 56; i += 4)
        slots_put(&s, i);
    for (unsigned i = 60; i < 68; i++)
        slots_put(&s, i);
    for (unsigned i = 140; i < 150; i++)
        slots_put(&s, i);
    s.hint = 0;
    CU_ASSERT_TRUE(slots_take_run(&s, 8, &pg));
    CU_ASSERT_EQUAL(pg, 140);               /* not 60: that one crosses words */
    CU_ASSERT_TRUE(slots_in_use(&s, 140));
    CU_ASSERT_FALSE(slots_in_use(&s, 141));  /* only the first is taken */
    CU_ASSERT_TRUE(slots_take_run(&s, 4, &pg));
    CU_ASSERT(pg == 60 || pg == 64 || pg == 141);
    CU_ASSERT_FALSE(slots_take_run(&s, 12, &pg));   /* none that long */
    CU_ASSERT_TRUE(slots_take_run(&s, 1, &pg));
    CU_ASSERT_FALSE(slots_take_run(&s, 0, &pg));
    slots_fini(&s);
}

static const struct cu_test tests[] = {
    { "take_run", test_take_run },
    { "init", test_init },
    { "claim until exhausted", test_claim_until_exhausted },
    { "free", test_free },
    { "hint word", test_hint_word },
    { "run placement", test_run_placement },
    { "hold", test_hold },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "slabs", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
