/* test_volume.c — the volume layer's guest requests over the in-memory fake
 * pool: target parsing, page and sector I/O, zero pages, discard, flush and
 * completion ordering, read-modify-write, read runs, errors and sizes.  Its
 * metadata (attach, reload, fencing, metadata servers) is test_volmeta.c's;
 * the fixture is vol_harness.c's. */
#include "cu_main.h"
#include "evloop.h"
#include "fake_pool.h"
#include "vol_harness.h"
#include "vol_wait.h"
#include "volume.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tests ------------------------------------------------------------- */

static void test_parse_target(void)
{
    char name[VOLUME_NAME_MAX], err[200];
    uint64_t size = 0;
    CU_ASSERT_EQUAL(volume_parse_target("memx:vm1-swap:2G", name, sizeof(name), &size, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(name, "vm1-swap");
    CU_ASSERT_EQUAL(size, 2ull << 30);
    CU_ASSERT_EQUAL(volume_parse_target("memx:a.b_C:4096", name, sizeof(name), &size, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(size, 4096);

    const char *bad[] = { "vm1:2G", "memx:vm1", "memx::2G", "memx:vm 1:2G", "memx:vm1:", "memx:vm1:2Q",
                          "memx:vm1:0", "memx:vm1:1000", "memx:vm1:2G:x", "",
                          "memx:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1G" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(volume_parse_target(bad[i], name, sizeof(name), &size, err, sizeof(err)), -1);
        CU_ASSERT(strlen(err) > 0 && strchr(err, '\n') == NULL);
    }
    volume_parse_target("memx:vm1:1000", name, sizeof(name), &size, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "multiple of 4K"));
}

static void test_page_rw(void)
{
    setup();
    static uint8_t w[3 * PG], r[3 * PG];
    fill(w, sizeof(w), 1);
    CU_ASSERT_EQUAL(do_write(2 * SPP, 3 * SPP, w), 0);
    memset(r, 0, sizeof(r));
    CU_ASSERT_EQUAL(do_read(2 * SPP, 3 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, sizeof(w)), 0);
    struct volume_stats st = stats();
    CU_ASSERT_EQUAL(st.stored_pages, 3);
    CU_ASSERT_EQUAL(st.logical_pages, 3);
    CU_ASSERT_EQUAL(st.writes, 1);
    CU_ASSERT_EQUAL(st.reads, 1);
    CU_ASSERT_EQUAL(st.write_ns.count, 1);
    CU_ASSERT_EQUAL(st.read_ns.count, 1);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 3);
    /* Overwrite goes out of place and frees the old page. */
    fill(w, PG, 9);
    CU_ASSERT_EQUAL(do_write(2 * SPP, SPP, w), 0);
    CU_ASSERT_EQUAL(do_read(2 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, PG), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 3);
    teardown();
}

static void test_sector_rw(void)
{
    setup();
    static uint8_t base[2 * PG], w[3 * 512], r[2 * PG], expect[2 * PG];
    fill(base, sizeof(base), 2);
    CU_ASSERT_EQUAL(do_write(0, 2 * SPP, base), 0);
    /* Three sectors straddling the page boundary: RMW of both pages. */
    fill(w, sizeof(w), 3);
    CU_ASSERT_EQUAL(do_write(SPP - 1, 3, w), 0);
    memcpy(expect, base, sizeof(expect));
    memcpy(expect + (SPP - 1) * 512, w, sizeof(w));
    CU_ASSERT_EQUAL(do_read(0, 2 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, expect, sizeof(r)), 0);
    /* Sector-granular read from the middle. */
    uint8_t one[512];
    CU_ASSERT_EQUAL(do_read(SPP, 1, one), 0);
    CU_ASSERT_EQUAL(memcmp(one, expect + SPP * 512, 512), 0);
    /* A sub-page write to a never-written page: the rest reads as zeros. */
    CU_ASSERT_EQUAL(do_write(10 * SPP + 3, 1, w), 0);
    CU_ASSERT_EQUAL(do_read(10 * SPP, SPP, r), 0);
    for (unsigned i = 0; i < PG; i++)
        if (i / 512 != 3 && r[i] != 0) {
            CU_FAIL("non-zero byte outside the written sector");
            break;
        }
    CU_ASSERT_EQUAL(memcmp(r + 3 * 512, w, 512), 0);
    CU_ASSERT_EQUAL(stats().stored_pages, 3);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 3);
    teardown();
}

static void test_zero_pages(void)
{
    setup();
    static uint8_t z[4 * PG], w[PG], r[PG];
    CU_ASSERT_EQUAL(do_write(0, 4 * SPP, z), 0);
    struct volume_stats st = stats();
    CU_ASSERT_EQUAL(st.zero_pages, 4);
    CU_ASSERT_EQUAL(st.stored_pages, 0);
    CU_ASSERT_EQUAL(st.logical_pages, 4);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    /* A stored page overwritten with zeros is freed. */
    fill(w, PG, 4);
    CU_ASSERT_EQUAL(do_write(8 * SPP, SPP, w), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 1);
    CU_ASSERT_EQUAL(do_write(8 * SPP, SPP, z), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    memset(r, 0xAA, PG);
    CU_ASSERT_EQUAL(do_read(8 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, z, PG), 0);
    /* A sub-page write of zeros into a stored page that leaves it all-zero. */
    memset(w, 0, PG);
    w[100] = 7;
    CU_ASSERT_EQUAL(do_write(9 * SPP, SPP, w), 0);
    CU_ASSERT_EQUAL(do_write(9 * SPP, 1, z), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    st = stats();
    CU_ASSERT_EQUAL(st.zero_pages, 6);
    CU_ASSERT_EQUAL(st.stored_pages, 0);
    teardown();
}

static void test_never_written(void)
{
    setup();
    static uint8_t r[5 * PG];
    memset(r, 0xAA, sizeof(r));
    CU_ASSERT_EQUAL(do_read(3, 5 * SPP, r), 0);
    for (size_t i = 0; i < sizeof(r); i++)
        if (r[i]) {
            CU_FAIL("never-written page read back non-zero");
            break;
        }
    struct pool_stats ps;
    pool_get_stats(pool, &ps);
    CU_ASSERT_EQUAL(ps.reads, 0);           /* the pool was not asked */
    CU_ASSERT_EQUAL(stats().logical_pages, 0);
    teardown();
}

static void test_discard(void)
{
    setup();
    static uint8_t w[6 * PG], r[6 * PG], expect[6 * PG];
    fill(w, sizeof(w), 5);
    CU_ASSERT_EQUAL(do_write(0, 6 * SPP, w), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 6);
    /* From the middle of page 1 to the middle of page 4: pages 2, 3 go, edges are zeroed. */
    uint64_t from = SPP + 2, to = 4 * SPP + 5;
    CU_ASSERT_EQUAL(do_discard(from, to - from), 0);
    memcpy(expect, w, sizeof(w));
    memset(expect + from * 512, 0, (to - from) * 512);
    CU_ASSERT_EQUAL(do_read(0, 6 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, expect, sizeof(r)), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 4);
    struct volume_stats st = stats();
    CU_ASSERT_EQUAL(st.stored_pages, 4);
    CU_ASSERT_EQUAL(st.logical_pages, 4);
    CU_ASSERT_EQUAL(st.discards, 1);
    /* Discarding everything frees everything. */
    CU_ASSERT_EQUAL(do_discard(0, 64 * SPP), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    CU_ASSERT_EQUAL(stats().logical_pages, 0);
    teardown();
}

static void test_flush_ordering(void)
{
    setup();
    static uint8_t w[PG];
    fill(w, PG, 6);
    struct done f0 = { 0, 1 }, wd = { 0, 1 }, f1 = { 0, 1 }, w2 = { 0, 1 };
    /* Nothing in flight: completes, but not inside the call. */
    volume_flush(v, on_done, &f0);
    CU_ASSERT_EQUAL(f0.calls, 0);
    run_until(el, &f0, 1);
    CU_ASSERT_EQUAL(f0.status, 0);

    fake_pool_hold(pool, true);
    volume_write(v, 0, SPP, w, on_done, &wd);
    volume_flush(v, on_done, &f1);
    volume_write(v, SPP, SPP, w, on_done, &w2);     /* issued after the flush */
    for (int i = 0; i < 5; i++)
        evloop_run_once(el, 1);
    CU_ASSERT_EQUAL(f1.calls, 0);
    CU_ASSERT_EQUAL(fake_pool_pending(pool), 2);
    fake_pool_release(pool, 0);                     /* the write before the flush */
    settle(el);
    CU_ASSERT_EQUAL(wd.calls, 1);
    CU_ASSERT_EQUAL(f1.calls, 1);                   /* does not wait for the later write */
    CU_ASSERT_EQUAL(w2.calls, 0);
    fake_pool_release_all(pool);
    settle(el);
    CU_ASSERT_EQUAL(w2.calls, 1);
    CU_ASSERT_EQUAL(stats().flushes, 2);
    teardown();
}

static void test_out_of_order(void)
{
    setup();
    static uint8_t a[PG], b[PG], r[PG];
    fill(a, PG, 7);
    fill(b, PG, 8);
    struct done da = { 0, 1 }, db = { 0, 1 };
    fake_pool_hold(pool, true);
    volume_write(v, 0, SPP, a, on_done, &da);
    volume_write(v, 0, SPP, b, on_done, &db);
    CU_ASSERT_EQUAL(fake_pool_pending(pool), 2);
    fake_pool_release(pool, 1);                     /* the later write lands first */
    fake_pool_release(pool, 0);
    settle(el);
    CU_ASSERT_EQUAL(da.calls, 1);
    CU_ASSERT_EQUAL(db.calls, 1);
    fake_pool_hold(pool, false);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, b, PG), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 1); /* the stale page was freed */

    /* A later zero write wins over an earlier one still in flight. */
    static uint8_t z[PG];
    fake_pool_hold(pool, true);
    volume_write(v, 0, SPP, a, on_done, &da);
    volume_write(v, 0, SPP, z, on_done, &db);
    fake_pool_release_all(pool);
    settle(el);
    fake_pool_hold(pool, false);
    run_until(el, &db, 2);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, z, PG), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    teardown();
}

static void test_concurrent_rmw(void)
{
    setup();
    static uint8_t base[PG], s1[512], s2[512], r[PG];
    fill(base, PG, 9);
    fill(s1, 512, 10);
    fill(s2, 512, 11);
    CU_ASSERT_EQUAL(do_write(0, SPP, base), 0);
    struct done d1 = { 0, 1 }, d2 = { 0, 1 };
    fake_pool_hold(pool, true);
    volume_write(v, 1, 1, s1, on_done, &d1);
    volume_write(v, 6, 1, s2, on_done, &d2);
    CU_ASSERT_EQUAL(fake_pool_pending(pool), 1);    /* the second RMW waits for the first */
    for (int i = 0; i < 10 && fake_pool_pending(pool); i++) {
        fake_pool_release(pool, 0);
        settle(el);
    }
    CU_ASSERT_EQUAL(d1.calls, 1);
    CU_ASSERT_EQUAL(d2.calls, 1);
    CU_ASSERT_EQUAL(d1.status, 0);
    CU_ASSERT_EQUAL(d2.status, 0);
    fake_pool_hold(pool, false);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    memcpy(base + 512, s1, 512);
    memcpy(base + 6 * 512, s2, 512);
    CU_ASSERT_EQUAL(memcmp(r, base, PG), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 1);
    teardown();
}

/* Full pages in consecutive pool slots are read in runs of up to
 * POOL_RUN_MAX, one pool read each; anything else breaks a run. */
static void test_read_runs(void)
{
    setup();
    enum { N = 40 };
    static uint8_t w[N * PG], r[N * PG];
    fill(w, sizeof(w), 21);
    CU_ASSERT_EQUAL(do_write(0, N * SPP, w), 0);
    uint64_t pages0, pages, reads0 = fake_pool_reads(pool, &pages0);
    CU_ASSERT_EQUAL(do_read(0, N * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, sizeof(w)), 0);
    CU_ASSERT_EQUAL(fake_pool_reads(pool, &pages) - reads0, 3);    /* 16 + 16 + 8 */
    CU_ASSERT_EQUAL(pages - pages0, N);

    /* A zero page and an overwritten page (stored elsewhere) split runs. */
    memset(w + 20 * PG, 0, PG);
    CU_ASSERT_EQUAL(do_write(20 * SPP, SPP, w + 20 * PG), 0);
    fill(w + 5 * PG, PG, 22);
    CU_ASSERT_EQUAL(do_write(5 * SPP, SPP, w + 5 * PG), 0);
    reads0 = fake_pool_reads(pool, &pages0);
    memset(r, 0xee, sizeof(r));
    CU_ASSERT_EQUAL(do_read(0, N * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w, r, sizeof(w)), 0);
    /* 0-4, 5, 6-19, 21-36, 37-39 */
    CU_ASSERT_EQUAL(fake_pool_reads(pool, &pages) - reads0, 5);
    CU_ASSERT_EQUAL(pages - pages0, N - 1);

    /* Partial pages are read alone, through a bounce page. */
    reads0 = fake_pool_reads(pool, &pages0);
    memset(r, 0xee, sizeof(r));
    CU_ASSERT_EQUAL(do_read(10 * SPP + 4, 2 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w + 10 * PG + 2048, r, 2 * PG), 0);
    CU_ASSERT_EQUAL(fake_pool_reads(pool, &pages) - reads0, 3);

    /* A failed run fails the request, once. */
    fake_pool_fail_reads(pool, 1, -EIO);
    CU_ASSERT_EQUAL(do_read(21 * SPP, 16 * SPP, r), -EIO);
    CU_ASSERT_EQUAL(do_read(21 * SPP, 16 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(w + 21 * PG, r, 16 * PG), 0);
    teardown();
}

static void test_errors(void)
{
    setup();
    static uint8_t a[4 * PG], b[4 * PG], r[4 * PG];
    fill(a, sizeof(a), 12);
    fill(b, sizeof(b), 13);
    CU_ASSERT_EQUAL(do_write(0, 4 * SPP, a), 0);
    /* One failed page of a four-page write: one completion, -EIO, old data intact. */
    fake_pool_fail_writes(pool, 1, -EIO);
    CU_ASSERT_EQUAL(do_write(0, SPP, b), -EIO);
    CU_ASSERT_EQUAL(do_read(0, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, a, PG), 0);
    fake_pool_fail_writes(pool, 2, -EIO);
    CU_ASSERT_EQUAL(do_write(0, 4 * SPP, b), -EIO);
    /* An RMW whose read fails leaves the page alone. */
    fake_pool_fail_reads(pool, 1, -EIO);
    CU_ASSERT_EQUAL(do_write(3 * SPP + 1, 1, b), -EIO);
    CU_ASSERT_EQUAL(do_read(3 * SPP, SPP, r), 0);
    /* Pages 2 and 3 of the failed 4-page write may hold b; page 3 is not half-merged. */
    CU_ASSERT(memcmp(r, a + 3 * PG, PG) == 0 || memcmp(r, b + 3 * PG, PG) == 0);
    fake_pool_fail_reads(pool, 1, -EIO);
    CU_ASSERT_EQUAL(do_read(0, 4 * SPP, r), -EIO);
    CU_ASSERT_EQUAL(stats().errors, 4);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 4);
    teardown();
}

/* Every server for a page unreachable at once (a flap of every replica, a
 * host declared down while starved): the pool answers -EHOSTUNREACH and the
 * volume holds the operation and tries it again, so the guest sees a pause,
 * not an I/O error (a lost swap page).  Only after io_hold does it fail, with
 * -EIO, the old contents intact. */
static void test_unreachable_held(void)
{
    setup();
    static uint8_t a[4 * PG], b[4 * PG], r[4 * PG];
    fill(a, sizeof(a), 21);
    fill(b, sizeof(b), 22);
    CU_ASSERT_EQUAL(do_write(0, 4 * SPP, a), 0);
    /* Writes: three failed tries, then stored (placed anew). */
    fake_pool_fail_writes(pool, 3, -EHOSTUNREACH);
    CU_ASSERT_EQUAL(do_write(0, 2 * SPP, b), 0);
    CU_ASSERT_EQUAL(do_read(0, 2 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, b, 2 * PG), 0);
    /* A run of full pages, a partial page read, a read-modify-write's read. */
    fake_pool_fail_reads(pool, 2, -EHOSTUNREACH);
    CU_ASSERT_EQUAL(do_read(0, 4 * SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, b, 2 * PG), 0);
    CU_ASSERT_EQUAL(memcmp(r + 2 * PG, a + 2 * PG, 2 * PG), 0);
    fake_pool_fail_reads(pool, 2, -EHOSTUNREACH);
    CU_ASSERT_EQUAL(do_read(2 * SPP + 1, 2, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, a + 2 * PG + 512, 1024), 0);
    fake_pool_fail_reads(pool, 1, -EHOSTUNREACH);
    fake_pool_fail_writes(pool, 1, -EHOSTUNREACH);
    CU_ASSERT_EQUAL(do_write(3 * SPP + 2, 1, b), 0);
    CU_ASSERT_EQUAL(do_read(3 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, a + 3 * PG, 1024), 0);
    CU_ASSERT_EQUAL(memcmp(r + 1024, b, 512), 0);
    CU_ASSERT_EQUAL(memcmp(r + 1536, a + 3 * PG + 1536, PG - 1536), 0);
    CU_ASSERT_EQUAL(stats().errors, 0);
    CU_ASSERT(stats().held_unreach >= 6);
    /* Unreachable for longer than io_hold: -EIO, the old page kept. */
    volumes_set_io_hold(vs, 600);
    fake_pool_fail_writes(pool, 1000, -EHOSTUNREACH);
    uint64_t t0 = evloop_now_ms();
    CU_ASSERT_EQUAL(do_write(SPP, SPP, a), -EIO);
    CU_ASSERT(evloop_now_ms() - t0 >= 600);
    fake_pool_fail_writes(pool, 0, 0);
    fake_pool_fail_reads(pool, 1000, -EHOSTUNREACH);
    CU_ASSERT_EQUAL(do_read(SPP, SPP, r), -EIO);
    fake_pool_fail_reads(pool, 0, 0);
    CU_ASSERT_EQUAL(do_read(SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, b + PG, PG), 0);
    /* io_hold 0: at once. */
    volumes_set_io_hold(vs, 0);
    fake_pool_fail_writes(pool, 1, -EHOSTUNREACH);
    t0 = evloop_now_ms();
    CU_ASSERT_EQUAL(do_write(SPP, SPP, a), -EIO);
    CU_ASSERT(evloop_now_ms() - t0 < 200);
    teardown();
}

static void test_enospc(void)
{
    setup();
    static uint8_t w[4 * PG], r[PG];
    fill(w, sizeof(w), 14);
    fake_pool_set_capacity(pool, 2);
    CU_ASSERT_EQUAL(do_write(0, 4 * SPP, w), -ENOSPC);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_EQUAL(stats().stored_pages, 2);
    /* Zero pages still work on a full pool. */
    static uint8_t z[PG];
    CU_ASSERT_EQUAL(do_write(10 * SPP, SPP, z), 0);
    CU_ASSERT_EQUAL(do_read(10 * SPP, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, z, PG), 0);
    teardown();
}

static void test_huge_volume(void)
{
    el = evloop_new();
    pool = fake_pool_new(el);
    vs = volumes_new(pool, false);
    char err[128];
    struct mallinfo2 before = mallinfo2();
    v = volume_attach(vs, "big", 1ull << 40, "test", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    static uint8_t w[PG], r[PG];
    fill(w, PG, 15);
    uint64_t last = (1ull << 40) / 512 - SPP;
    CU_ASSERT_EQUAL(do_write(last, SPP, w), 0);
    CU_ASSERT_EQUAL(do_write(0, SPP, w), 0);
    CU_ASSERT_EQUAL(do_read(last, SPP, r), 0);
    CU_ASSERT_EQUAL(memcmp(r, w, PG), 0);
    /* Touched memory, not address space: the untouched map costs nothing. */
    struct mallinfo2 after = mallinfo2();
    size_t used = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    CU_ASSERT(used < (8u << 20));
    /* Discarding the whole terabyte walks only written leaves. */
    uint64_t t0 = evloop_now_ms();
    CU_ASSERT_EQUAL(do_discard(0, (1ull << 40) / 512), 0);
    CU_ASSERT(evloop_now_ms() - t0 < 2000);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    teardown();
}

static void test_read_during_overwrite(void)
{
    setup();
    static uint8_t a[PG], b[PG], r[PG];
    fill(a, PG, 17);
    fill(b, PG, 18);
    CU_ASSERT_EQUAL(do_write(0, SPP, a), 0);
    struct done dr = { 0, 1 }, dw = { 0, 1 };
    fake_pool_hold(pool, true);
    volume_read(v, 0, SPP, r, on_done, &dr);
    volume_write(v, 0, SPP, b, on_done, &dw);
    fake_pool_release(pool, 1);     /* the write switches the map while the read is in flight */
    fake_pool_release(pool, 0);
    settle(el);
    CU_ASSERT_EQUAL(dr.status, 0);
    CU_ASSERT_EQUAL(memcmp(r, a, PG), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 1);   /* the old page went after the read */
    fake_pool_hold(pool, false);
    teardown();
}

static const struct cu_test volume_tests[] = {
    { "parse_target", test_parse_target },
    { "page_rw", test_page_rw },
    { "sector_rw", test_sector_rw },
    { "zero_pages", test_zero_pages },
    { "never_written", test_never_written },
    { "discard", test_discard },
    { "flush_ordering", test_flush_ordering },
    { "out_of_order", test_out_of_order },
    { "concurrent_rmw", test_concurrent_rmw },
    { "read_runs", test_read_runs },
    { "errors", test_errors },
    { "enospc", test_enospc },
    { "unreachable_held", test_unreachable_held },
    { "huge_volume", test_huge_volume },
    { "read_during_overwrite", test_read_during_overwrite },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "volume", NULL, NULL, volume_tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
