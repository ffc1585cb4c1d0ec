/* test_pagemap.c — the page map (backend/volume/pagemap.c): pure, no loop,
 * no pool.  The file under test is included (as SPDK's *_ut.c do) so that its
 * allocations can be made to fail: the failure contract in pagemap.h is
 * tested, not assumed. */
#include <stdlib.h>

static long calloc_fail_after = -1;     /* callocs that succeed before they fail; -1: never fail */
static unsigned callocs;

static void *test_calloc(size_t n, size_t size)
{
    callocs++;
    if (calloc_fail_after == 0)
        return NULL;
    if (calloc_fail_after > 0)
        calloc_fail_after--;
    return calloc(n, size);
}

#define calloc test_calloc
#include "pagemap.c"
#undef calloc

#include "cu_main.h"

static struct pm_ent page_ent(uint64_t page, bool dup)
{
    struct pm_ent e = { .kind = PM_PAGE, .page = page, .dup = dup };
    for (int i = 0; i < 16; i++)
        e.hash[i] = (uint8_t)(page * 16 + (uint64_t)i);
    return e;
}

static const struct pm_ent none = { .kind = PM_NONE }, zero = { .kind = PM_ZERO }, lost = { .kind = PM_LOST };

static void test_set_get_clear(void)
{
    struct pagemap m;
    CU_ASSERT_EQUAL(pagemap_init(&m, 100), 0);
    for (uint64_t i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(pagemap_get(&m, i).kind, PM_NONE);
    CU_ASSERT_EQUAL(pagemap_leaves(&m), 0);

    struct pm_ent old = zero;
    CU_ASSERT_EQUAL(pagemap_set(&m, 5, &(struct pm_ent){ .kind = PM_PAGE, .page = 42 }, &old), 0);
    CU_ASSERT_EQUAL(old.kind, PM_NONE);
    struct pm_ent p = page_ent(43, true);
    CU_ASSERT_EQUAL(pagemap_set(&m, 5, &p, &old), 0);
    CU_ASSERT_EQUAL(old.kind, PM_PAGE);
    CU_ASSERT_EQUAL(old.page, 42);
    CU_ASSERT_FALSE(old.dup);
    struct pm_ent g = pagemap_get(&m, 5);
    CU_ASSERT_EQUAL(g.kind, PM_PAGE);
    CU_ASSERT_EQUAL(g.page, 43);
    CU_ASSERT_TRUE(g.dup);
    CU_ASSERT_EQUAL(memcmp(g.hash, p.hash, 16), 0);
    CU_ASSERT_EQUAL(pagemap_leaves(&m), 1);

    /* Every transition: no kind leaves a trace in the next. */
    CU_ASSERT_EQUAL(pagemap_set(&m, 5, &zero, &old), 0);
    CU_ASSERT_EQUAL(old.page, 43);
    g = pagemap_get(&m, 5);
    CU_ASSERT_EQUAL(g.kind, PM_ZERO);
    CU_ASSERT_EQUAL(g.page, 0);
    CU_ASSERT_EQUAL(pagemap_set(&m, 5, &lost, &old), 0);
    CU_ASSERT_EQUAL(old.kind, PM_ZERO);
    CU_ASSERT_EQUAL(pagemap_get(&m, 5).kind, PM_LOST);
    p = page_ent(44, false);
    CU_ASSERT_EQUAL(pagemap_set(&m, 5, &p, &old), 0);
    CU_ASSERT_EQUAL(old.kind, PM_LOST);
    g = pagemap_get(&m, 5);
    CU_ASSERT_EQUAL(g.kind, PM_PAGE);
    CU_ASSERT_FALSE(g.dup);
    CU_ASSERT_EQUAL(pagemap_set(&m, 5, &zero, NULL), 0);   /* old may be NULL */
    CU_ASSERT_EQUAL(pagemap_set(&m, 5, &none, &old), 0);
    CU_ASSERT_EQUAL(old.kind, PM_ZERO);
    CU_ASSERT_EQUAL(pagemap_get(&m, 5).kind, PM_NONE);
    /* The last entry gone, the leaf goes. */
    CU_ASSERT_EQUAL(pagemap_leaves(&m), 0);
    CU_ASSERT_FALSE(pagemap_has_leaf(&m, 5));
    /* Neighbours are untouched. */
    CU_ASSERT_EQUAL(pagemap_set(&m, 4, &zero, NULL), 0);
    CU_ASSERT_EQUAL(pagemap_set(&m, 6, &lost, NULL), 0);
    CU_ASSERT_EQUAL(pagemap_get(&m, 5).kind, PM_NONE);
    CU_ASSERT_EQUAL(pagemap_get(&m, 4).kind, PM_ZERO);
    CU_ASSERT_EQUAL(pagemap_get(&m, 6).kind, PM_LOST);
    pagemap_fini(&m, NULL, NULL);
}

static void test_sparse(void)
{
    /* 1 TiB: the top array only, until something is written. */
    struct pagemap m;
    uint64_t n = (1ull << 40) / 4096;
    CU_ASSERT_EQUAL(pagemap_init(&m, n), 0);
    CU_ASSERT_EQUAL(m.ntop, n / PAGEMAP_LEAF_N);
    struct pm_ent a = page_ent(1, false), b = page_ent(2, false);
    CU_ASSERT_EQUAL(pagemap_set(&m, 0, &a, NULL), 0);
    CU_ASSERT_EQUAL(pagemap_set(&m, n - 1, &b, NULL), 0);
    CU_ASSERT_EQUAL(pagemap_leaves(&m), 2);
    CU_ASSERT_TRUE(pagemap_has_leaf(&m, PAGEMAP_LEAF_N - 1));   /* same leaf as 0 */
    CU_ASSERT_FALSE(pagemap_has_leaf(&m, PAGEMAP_LEAF_N));
    CU_ASSERT_FALSE(pagemap_has_leaf(&m, n / 2));
    CU_ASSERT_TRUE(pagemap_has_leaf(&m, n - PAGEMAP_LEAF_N));
    CU_ASSERT_EQUAL(pagemap_get(&m, n / 2).kind, PM_NONE);
    CU_ASSERT_EQUAL(pagemap_get(&m, n - 1).page, 2);
    /* Clearing what was never written allocates nothing. */
    calloc_fail_after = 0;
    CU_ASSERT_EQUAL(pagemap_set(&m, n / 2, &none, NULL), 0);
    calloc_fail_after = -1;
    CU_ASSERT_EQUAL(pagemap_leaves(&m), 2);
    pagemap_fini(&m, NULL, NULL);
}

static void test_bounds(void)
{
    /* Sizes that are not a multiple of a leaf: the last leaf is partial. */
    uint64_t sizes[] = { 1, PAGEMAP_LEAF_N - 1, PAGEMAP_LEAF_N, PAGEMAP_LEAF_N + 1, 3 * PAGEMAP_LEAF_N + 7 };
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        struct pagemap m;
        uint64_t n = sizes[s];
        CU_ASSERT_EQUAL(pagemap_init(&m, n), 0);
        CU_ASSERT_EQUAL(m.ntop, (n + PAGEMAP_LEAF_N - 1) / PAGEMAP_LEAF_N);
        struct pm_ent e = page_ent(n, false);
        CU_ASSERT_EQUAL(pagemap_set(&m, n - 1, &e, NULL), 0);
        CU_ASSERT_EQUAL(pagemap_get(&m, n - 1).page, n);
        CU_ASSERT_EQUAL(pagemap_set(&m, 0, &zero, NULL), 0);
        CU_ASSERT_EQUAL(pagemap_get(&m, 0).kind, PM_ZERO);
        CU_ASSERT_EQUAL(pagemap_leaves(&m), (n - 1) / PAGEMAP_LEAF_N ? 2 : 1);
        pagemap_fini(&m, NULL, NULL);
        CU_ASSERT_PTR_NULL(m.top);
    }
}

static void test_growth(void)
{
    /* Leaves come with the first entry in their range and go with the last. */
    struct pagemap m;
    CU_ASSERT_EQUAL(pagemap_init(&m, 4 * PAGEMAP_LEAF_N), 0);
    unsigned bad = 0;
    for (uint64_t i = 0; i < 2 * PAGEMAP_LEAF_N; i++) {
        struct pm_ent e = page_ent(i + 1, i % 3 == 0);
        bad += pagemap_set(&m, i, &e, NULL) != 0;
        bad += pagemap_leaves(&m) != (i < PAGEMAP_LEAF_N ? 1u : 2u);
    }
    CU_ASSERT_EQUAL(bad, 0);
    bad = 0;
    for (uint64_t i = 0; i < 2 * PAGEMAP_LEAF_N; i++) {
        struct pm_ent g = pagemap_get(&m, i);
        bad += g.kind != PM_PAGE || g.page != i + 1 || g.dup != (i % 3 == 0) || g.hash[15] != (uint8_t)((i + 1) * 16 + 15);
    }
    CU_ASSERT_EQUAL(bad, 0);
    bad = 0;
    for (uint64_t i = 0; i < PAGEMAP_LEAF_N; i++) {
        bad += pagemap_leaves(&m) != 2;
        bad += pagemap_set(&m, PAGEMAP_LEAF_N - 1 - i, &none, NULL) != 0;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(pagemap_leaves(&m), 1);
    CU_ASSERT_FALSE(pagemap_has_leaf(&m, 0));
    CU_ASSERT_TRUE(pagemap_has_leaf(&m, PAGEMAP_LEAF_N));
    pagemap_fini(&m, NULL, NULL);
}

static void count_page(void *arg, uint64_t page)
{
    uint64_t *sum = arg;
    sum[0]++;
    sum[1] += page;
}

static void test_fini(void)
{
    /* fini hands back every page exactly once, and nothing else. */
    struct pagemap m;
    CU_ASSERT_EQUAL(pagemap_init(&m, 3 * PAGEMAP_LEAF_N), 0);
    struct pm_ent a = page_ent(10, false), b = page_ent(20, true), c = page_ent(30, false);
    pagemap_set(&m, 1, &a, NULL);
    pagemap_set(&m, 2, &zero, NULL);
    pagemap_set(&m, PAGEMAP_LEAF_N + 5, &b, NULL);
    pagemap_set(&m, 3 * PAGEMAP_LEAF_N - 1, &c, NULL);
    pagemap_set(&m, 3 * PAGEMAP_LEAF_N - 2, &lost, NULL);
    uint64_t sum[2] = { 0, 0 };
    pagemap_fini(&m, count_page, sum);
    CU_ASSERT_EQUAL(sum[0], 3);
    CU_ASSERT_EQUAL(sum[1], 60);
}

static void test_failure_contract(void)
{
    struct pagemap m;
    /* init: -ENOMEM, nothing to free. */
    calloc_fail_after = 0;
    CU_ASSERT_EQUAL(pagemap_init(&m, 1000), -ENOMEM);
    calloc_fail_after = -1;

    CU_ASSERT_EQUAL(pagemap_init(&m, 2 * PAGEMAP_LEAF_N), 0);
    struct pm_ent a = page_ent(7, false);
    CU_ASSERT_EQUAL(pagemap_set(&m, 3, &a, NULL), 0);

    /* A new leaf that cannot be allocated: -ENOMEM and the map unchanged,
     * *old not written. */
    unsigned before = callocs;
    calloc_fail_after = 0;
    struct pm_ent old = lost;
    CU_ASSERT_EQUAL(pagemap_set(&m, PAGEMAP_LEAF_N, &zero, &old), -ENOMEM);
    CU_ASSERT_EQUAL(callocs, before + 1);
    CU_ASSERT_EQUAL(old.kind, PM_LOST);
    CU_ASSERT_EQUAL(pagemap_get(&m, PAGEMAP_LEAF_N).kind, PM_NONE);
    CU_ASSERT_FALSE(pagemap_has_leaf(&m, PAGEMAP_LEAF_N));
    CU_ASSERT_EQUAL(pagemap_leaves(&m), 1);
    struct pm_ent b = page_ent(8, false);
    CU_ASSERT_EQUAL(pagemap_set(&m, PAGEMAP_LEAF_N + 1, &b, NULL), -ENOMEM);
    CU_ASSERT_EQUAL(pagemap_set(&m, PAGEMAP_LEAF_N + 2, &lost, NULL), -ENOMEM);

    /* With its leaf there, a set allocates nothing and cannot fail; PM_NONE never fails. */
    before = callocs;
    CU_ASSERT_EQUAL(pagemap_set(&m, 4, &zero, NULL), 0);
    CU_ASSERT_EQUAL(pagemap_set(&m, 5, &b, NULL), 0);
    CU_ASSERT_EQUAL(pagemap_set(&m, 3, &none, &old), 0);
    CU_ASSERT_EQUAL(old.page, 7);
    CU_ASSERT_EQUAL(pagemap_set(&m, PAGEMAP_LEAF_N + 3, &none, NULL), 0);
    CU_ASSERT_EQUAL(callocs, before);
    CU_ASSERT_EQUAL(pagemap_get(&m, 5).page, 8);

    /* Memory back: the same call succeeds. */
    calloc_fail_after = -1;
    CU_ASSERT_EQUAL(pagemap_set(&m, PAGEMAP_LEAF_N, &zero, NULL), 0);
    CU_ASSERT_EQUAL(pagemap_get(&m, PAGEMAP_LEAF_N).kind, PM_ZERO);
    CU_ASSERT_EQUAL(pagemap_leaves(&m), 2);
    pagemap_fini(&m, NULL, NULL);
}

static const struct cu_test tests[] = {
    { "set_get_clear", test_set_get_clear }, { "sparse", test_sparse },
    { "bounds", test_bounds },               { "growth", test_growth },
    { "fini", test_fini },                   { "failure_contract", test_failure_contract },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "pagemap", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
