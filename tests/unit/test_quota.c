/* test_quota.c — a volume's page quota (backend/volume/quota.c) through the
 * volume layer over the fake pool: what counts (pages holding data, once
 * each; not zeros, not discarded pages), that a write which would exceed it
 * fails whole with -ENOSPC and changes nothing, that overwrites and reads go
 * on at the limit, that writes in flight cannot overshoot it, and that a
 * failed or superseded write gives its reservation back. */
#include "cu_main.h"
#include "evloop.h"
#include "fake_pool.h"
#include "vol_harness.h"
#include "vol_wait.h"
#include "volume.h"

#include <errno.h>
#include <string.h>

static void setup_quota(uint64_t pages)
{
    setup();
    volume_set_quota(v, pages * PG);
    CU_ASSERT_EQUAL(stats().quota_pages, pages);
}

static uint64_t held(void)
{
    struct volume_stats st = stats();
    return st.stored_pages + st.dup_pages;
}

static void test_none(void)
{
    /* Without a quota every page of the volume may be written. */
    setup();
    static uint8_t w[64 * PG], r[64 * PG];
    fill(w, sizeof(w), 1);
    CU_ASSERT_EQUAL(do_write(0, 64 * SPP, w), 0);
    CU_ASSERT_EQUAL(do_read(0, 64 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, sizeof(w)), 0);
    CU_ASSERT_EQUAL(stats().quota_pages, 0);
    CU_ASSERT_EQUAL(stats().quota_refused, 0);
    teardown();
}

static void test_limit(void)
{
    setup_quota(4);
    static uint8_t w[5 * PG], r[5 * PG], z[PG];
    fill(w, sizeof(w), 2);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(do_write((uint64_t)i * SPP, SPP, w + i * PG), 0);
    CU_ASSERT_EQUAL(held(), 4);
    /* A fifth page does not fit: refused, nothing stored, nothing changed. */
    uint64_t live = fake_pool_live_pages(pool);
    CU_ASSERT_EQUAL(do_write(4 * SPP, SPP, w + 4 * PG), -ENOSPC);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), live);
    CU_ASSERT_EQUAL(stats().quota_refused, 1);
    CU_ASSERT_EQUAL(stats().errors, 1);
    memset(r, 0xAA, PG);
    CU_ASSERT_EQUAL(do_read(4 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, z, PG), 0);                  /* never written */
    /* So is a sub-page write to a page without data. */
    CU_ASSERT_EQUAL(do_write(9 * SPP + 1, 1, w), -ENOSPC);
    CU_ASSERT_EQUAL(stats().quota_refused, 2);
    /* Overwrites at the limit go on, whole or in part. */
    fill(w, PG, 3);
    CU_ASSERT_EQUAL(do_write(SPP, SPP, w), 0);
    CU_ASSERT_EQUAL(do_write(2 * SPP + 3, 2, w + 100), 0);
    CU_ASSERT_EQUAL(do_read(SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, w, PG), 0);
    CU_ASSERT_EQUAL(held(), 4);
    /* Zeros are recorded, not stored: they fit whatever the quota. */
    CU_ASSERT_EQUAL(do_write(20 * SPP, SPP, z), 0);
    CU_ASSERT_EQUAL(stats().zero_pages, 1);
    CU_ASSERT_EQUAL(stats().quota_refused, 2);
    teardown();
}

static void test_whole_write(void)
{
    /* A write of several pages is admitted or refused as a whole. */
    setup_quota(4);
    static uint8_t a[3 * PG], b[3 * PG], r[3 * PG];
    fill(a, sizeof(a), 4);
    fill(b, sizeof(b), 5);
    CU_ASSERT_EQUAL(do_write(0, 3 * SPP, a), 0);
    /* Pages 2..4: page 2 has data, 3 and 4 are new: one too many. */
    CU_ASSERT_EQUAL(do_write(2 * SPP, 3 * SPP, b), -ENOSPC);
    CU_ASSERT_EQUAL(do_read(0, 3 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, a, sizeof(a)), 0);             /* page 2 untouched */
    CU_ASSERT_EQUAL(held(), 3);
    /* Pages 1..3: one new page, it fits. */
    CU_ASSERT_EQUAL(do_write(1 * SPP, 3 * SPP, b), 0);
    CU_ASSERT_EQUAL(held(), 4);
    /* Zero pages inside a write take no room. */
    static uint8_t mix[2 * PG];
    fill(mix, PG, 6);
    CU_ASSERT_EQUAL(do_write(3 * SPP, 2 * SPP, mix), 0);    /* page 3 data (has data), page 4 zeros */
    CU_ASSERT_EQUAL(held(), 4);
    teardown();
}

static void test_discard_frees(void)
{
    setup_quota(2);
    static uint8_t w[PG], z[PG];
    fill(w, PG, 7);
    CU_ASSERT_EQUAL(do_write(0, SPP, w), 0);
    CU_ASSERT_EQUAL(do_write(SPP, SPP, w + 0), 0);          /* the same bytes: shared, still counted */
    CU_ASSERT_EQUAL(held(), 2);
    CU_ASSERT_EQUAL(do_write(2 * SPP, SPP, w), -ENOSPC);
    /* Discarding a page, or zeroing one, makes room. */
    CU_ASSERT_EQUAL(do_discard(0, SPP), 0);
    CU_ASSERT_EQUAL(held(), 1);
    CU_ASSERT_EQUAL(do_write(2 * SPP, SPP, w), 0);
    CU_ASSERT_EQUAL(do_write(SPP, SPP, z), 0);
    CU_ASSERT_EQUAL(held(), 1);
    fill(w, PG, 8);
    CU_ASSERT_EQUAL(do_write(5 * SPP, SPP, w), 0);
    CU_ASSERT_EQUAL(held(), 2);
    teardown();
}

static void test_in_flight(void)
{
    /* Writes in flight reserve their pages: they cannot all pass the check and overshoot. */
    setup_quota(3);
    static uint8_t w[6 * PG], r[PG];
    fill(w, sizeof(w), 9);
    struct done d[6];
    memset(d, 0, sizeof(d));
    fake_pool_hold(pool, true);
    for (int i = 0; i < 5; i++)
        volume_write(v, (uint64_t)i * SPP, SPP, w + i * PG, on_done, &d[i]);
    /* The same new page twice while it is in flight: one reservation. */
    volume_write(v, 0, SPP, w + 5 * PG, on_done, &d[5]);
    settle(el);
    CU_ASSERT_EQUAL(d[3].calls, 1);
    CU_ASSERT_EQUAL(d[3].status, -ENOSPC);
    CU_ASSERT_EQUAL(d[4].calls, 1);
    CU_ASSERT_EQUAL(d[4].status, -ENOSPC);
    fake_pool_release_all(pool);
    settle(el);
    fake_pool_hold(pool, false);
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(d[i].calls, 1);
        CU_ASSERT_EQUAL(d[i].status, 0);
    }
    CU_ASSERT_EQUAL(d[5].status, 0);
    CU_ASSERT_EQUAL(held(), 3);
    CU_ASSERT_EQUAL(stats().quota_refused, 2);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, w + 5 * PG, PG), 0);          /* the later write won */
    /* Everything settled: nothing stays reserved. */
    CU_ASSERT_EQUAL(do_discard(SPP, SPP), 0);
    CU_ASSERT_EQUAL(do_write(10 * SPP, SPP, w + PG), 0);
    teardown();
}

static void test_failed_write_returns(void)
{
    /* A write the pool fails gives its page back to the quota. */
    setup_quota(1);
    static uint8_t w[PG], r[PG];
    fill(w, PG, 10);
    fake_pool_fail_writes(pool, 1, -EIO);
    CU_ASSERT_NOT_EQUAL(do_write(0, SPP, w), 0);
    CU_ASSERT_EQUAL(held(), 0);
    CU_ASSERT_EQUAL(stats().quota_refused, 0);
    CU_ASSERT_EQUAL(do_write(3 * SPP, SPP, w), 0);
    CU_ASSERT_EQUAL(do_read(3 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, w, PG), 0);
    CU_ASSERT_EQUAL(do_write(0, SPP, w), -ENOSPC);
    /* A write overtaken by zeros before it landed: the page is free again. */
    teardown();
    setup_quota(1);
    static uint8_t z[PG];
    struct done da = { 0, 1 }, dz = { 0, 1 };
    fake_pool_hold(pool, true);
    volume_write(v, 0, SPP, w, on_done, &da);
    volume_write(v, 0, SPP, z, on_done, &dz);
    fake_pool_release_all(pool);
    settle(el);
    fake_pool_hold(pool, false);
    CU_ASSERT_EQUAL(da.status, 0);
    CU_ASSERT_EQUAL(dz.status, 0);
    CU_ASSERT_EQUAL(held(), 0);
    CU_ASSERT_EQUAL(do_write(7 * SPP, SPP, w), 0);
    teardown();
}

static void test_lowered(void)
{
    /* A quota lowered below what the volume holds: its pages stay, overwrites go on, new pages wait. */
    setup_quota(8);
    static uint8_t w[4 * PG], r[4 * PG];
    fill(w, sizeof(w), 11);
    CU_ASSERT_EQUAL(do_write(0, 4 * SPP, w), 0);
    volume_set_quota(v, 2 * PG);
    CU_ASSERT_EQUAL(do_read(0, 4 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, w, sizeof(w)), 0);
    CU_ASSERT_EQUAL(do_write(SPP, SPP, w), 0);
    CU_ASSERT_EQUAL(do_write(6 * SPP, SPP, w), -ENOSPC);
    volume_set_quota(v, 0);                                 /* off */
    CU_ASSERT_EQUAL(do_write(6 * SPP, SPP, w), 0);
    teardown();
}

static const struct cu_test tests[] = {
    { "none", test_none },           { "limit", test_limit },
    { "whole_write", test_whole_write }, { "discard_frees", test_discard_frees },
    { "in_flight", test_in_flight }, { "failed_write_returns", test_failed_write_returns },
    { "lowered", test_lowered },     { NULL, NULL },
};
static const struct cu_suite suites[] = { { "quota", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
