#include "histo.h"
#include "cu_main.h"

static void test_quantiles(void)
{
    static struct histo h;
    histo_reset(&h);
    CU_ASSERT_EQUAL(histo_quantile(&h, 0.5), 0);
    for (uint64_t v = 1; v <= 10000; v++)
        histo_record(&h, v);
    CU_ASSERT_EQUAL(h.count, 10000);
    CU_ASSERT_EQUAL(h.min, 1);
    CU_ASSERT_EQUAL(h.max, 10000);
    uint64_t p50 = histo_quantile(&h, 0.5), p99 = histo_quantile(&h, 0.99);
    CU_ASSERT(p50 >= 4900 && p50 <= 5200);
    CU_ASSERT(p99 >= 9800 && p99 <= 10000);
    CU_ASSERT_EQUAL(histo_quantile(&h, 1.0), 10000);
    static struct histo g;
    histo_reset(&g);
    histo_record(&g, 1ull << 40);
    histo_merge(&h, &g);
    CU_ASSERT_EQUAL(h.max, 1ull << 40);
    CU_ASSERT_EQUAL(histo_quantile(&h, 1.0), 1ull << 40);
}

static const struct cu_test tests[] = { { "quantiles", test_quantiles }, { NULL, NULL } };
static const struct cu_suite suites[] = { { "histo", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
