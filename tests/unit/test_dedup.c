/* test_dedup.c — page de-duplication across volumes (volume.c + dedup.c) over the fake pool. */
#include "cu_main.h"
#include "dedup.h"
#include "evloop.h"
#include "fake_pool.h"
#include "vol_wait.h"
#include "volume.h"

#include <errno.h>
#include <string.h>

#define PG VOLUME_PAGE_SIZE
#define SPP (VOLUME_PAGE_SIZE / VOLUME_SECTOR_SIZE)

static struct evloop *el;
static struct pool *pool;
static struct volumes *vs;
static struct volume *v1, *v2;

static struct volume *attach(const char *name)
{
    char err[128];
    struct volume *v = volume_attach(vs, name, 64 * PG, "test", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(wait_ready(el, v), 0);
    return v;
}

static void setup_with(bool dedup)
{
    el = evloop_new();
    pool = fake_pool_new(el);
    vs = volumes_new(pool, dedup);
    v1 = attach("v1");
    v2 = attach("v2");
}

static void setup(void) { setup_with(true); }

/* The backend restarts (nothing of it kept but the pool) and loads v1 and v2 again. */
static void restart_backend(void)
{
    volume_detach(v1);
    volume_detach(v2);
    volumes_free(vs);
    fake_pool_restart(pool);
    vs = volumes_new(pool, true);
    v1 = attach("v1");
    v2 = attach("v2");
}

static void teardown(void)
{
    CU_ASSERT_EQUAL(fake_pool_violations(pool), 0);
    volumes_free(vs);
    pool_free(pool);
    evloop_free(el);
    dedup_test_hooks(NULL, -1);
}

static int do_write(struct volume *v, uint64_t sector, uint32_t nsect, const void *buf)
{
    struct done d = { 0, 1 };
    volume_write(v, sector, nsect, buf, on_done, &d);
    CU_ASSERT_EQUAL(d.calls, 0);            /* never inside the call, even when shared at once */
    run_until(el, &d, 1);
    CU_ASSERT_EQUAL(d.calls, 1);
    return d.status;
}

static int do_discard(struct volume *v, uint64_t sector, uint64_t nsect)
{
    struct done d = { 0, 1 };
    volume_discard(v, sector, nsect, on_done, &d);
    run_until(el, &d, 1);
    CU_ASSERT_EQUAL(d.calls, 1);
    return d.status;
}

/* Reads one page and compares it with want (NULL: zeros). */
static bool page_is(struct volume *v, uint64_t idx, const uint8_t *want)
{
    static uint8_t r[PG], z[PG];
    struct done d = { 0, 1 };
    memset(r, 0xee, PG);
    volume_read(v, idx * SPP, SPP, r, on_done, &d);
    run_until(el, &d, 1);
    return d.calls == 1 && d.status == 0 && memcmp(r, want ? want : z, PG) == 0;
}

/* Bytes that differ from page to page (and seed to seed), never a zero page. */
static void fill(uint8_t *b, size_t n, unsigned seed)
{
    uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)(x >> 24) | 1;
    }
}

static struct volume_stats vstats(struct volume *v)
{
    struct volume_stats st;
    volume_get_stats(v, &st);
    return st;
}

static struct volumes_stats hstats(void)
{
    struct volumes_stats st;
    volumes_get_stats(vs, &st);
    return st;
}

/* Every page collides: only the byte compare tells them apart. */
static struct dedup_hash same_hash(const void *page)
{
    (void)page;
    return (struct dedup_hash){ 42, 42 };
}

/* ---- tests ------------------------------------------------------------- */

static void test_shared_across_volumes(void)
{
    setup();
    static uint8_t a[PG], b[PG];
    fill(a, PG, 1);
    fill(b, PG, 2);
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v1, SPP, SPP, b), 0);
    CU_ASSERT_EQUAL(do_write(v2, 5 * SPP, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, 6 * SPP, SPP, a), 0);     /* a third copy, inside one volume */
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_TRUE(page_is(v1, 0, a));
    CU_ASSERT_TRUE(page_is(v1, 1, b));
    CU_ASSERT_TRUE(page_is(v2, 5, a));
    CU_ASSERT_TRUE(page_is(v2, 6, a));
    CU_ASSERT_EQUAL(vstats(v1).stored_pages, 2);
    CU_ASSERT_EQUAL(vstats(v2).stored_pages, 0);
    CU_ASSERT_EQUAL(vstats(v2).dup_pages, 2);
    CU_ASSERT_EQUAL(vstats(v2).logical_pages, 2);
    struct volumes_stats h = hstats();
    CU_ASSERT_TRUE(h.dedup);
    CU_ASSERT_EQUAL(h.logical_pages, 4);
    CU_ASSERT_EQUAL(h.stored_pages, 2);
    CU_ASSERT_EQUAL(h.dup_pages, 2);
    CU_ASSERT_EQUAL(h.dedup_hits, 2);
    CU_ASSERT_EQUAL(h.collisions, 0);
    CU_ASSERT_EQUAL(h.compare_reads, 0);                    /* compared from the byte cache */
    CU_ASSERT_EQUAL(h.index_pages, 2);
    teardown();
}

static void test_dedup_off_stores_duplicates(void)
{
    setup_with(false);
    static uint8_t a[PG];
    fill(a, PG, 3);
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, SPP, SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 3);
    struct volumes_stats h = hstats();
    CU_ASSERT_FALSE(h.dedup);
    CU_ASSERT_EQUAL(h.stored_pages, 3);
    CU_ASSERT_EQUAL(h.dup_pages, 0);
    CU_ASSERT_EQUAL(h.dedup_hits, 0);
    CU_ASSERT_EQUAL(vstats(v2).stored_pages, 2);
    teardown();
}

static void check_collision(long cache_pages)
{
    dedup_test_hooks(same_hash, cache_pages);
    setup();
    static uint8_t a[PG], b[PG], c[PG];
    fill(a, PG, 4);
    fill(b, PG, 5);
    fill(c, PG, 6);
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, 0, SPP, b), 0);            /* same hash, other bytes */
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_TRUE(page_is(v1, 0, a));
    CU_ASSERT_TRUE(page_is(v2, 0, b));
    /* Behind a colliding candidate, the equal page is still found. */
    CU_ASSERT_EQUAL(do_write(v2, SPP, SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_TRUE(page_is(v2, 1, a));
    CU_ASSERT_EQUAL(do_write(v1, SPP, SPP, c), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 3);
    CU_ASSERT_TRUE(page_is(v1, 1, c));
    struct volumes_stats h = hstats();
    CU_ASSERT_EQUAL(h.dedup_hits, 1);
    CU_ASSERT(h.collisions >= 3);
    if (cache_pages == 0)
        CU_ASSERT(h.compare_reads >= 4);
    CU_ASSERT_EQUAL(h.stored_pages, 3);
    CU_ASSERT_EQUAL(h.dup_pages, 1);
    teardown();
}

static void test_collision_keeps_both(void) { check_collision(-1); }
static void test_collision_read_back(void) { check_collision(0); }

static void test_overwrite_one_copy(void)
{
    setup();
    static uint8_t a[PG], b[PG];
    fill(a, PG, 7);
    fill(b, PG, 8);
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, b), 0);            /* full overwrite of the first writer's copy */
    CU_ASSERT_TRUE(page_is(v1, 0, b));
    CU_ASSERT_TRUE(page_is(v2, 0, a));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    /* A sector-sized overwrite of a shared page: copy-on-write through the RMW. */
    static uint8_t s[512];
    fill(s, 512, 9);
    CU_ASSERT_EQUAL(do_write(v1, SPP, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v1, SPP + 3, 1, s), 0);
    static uint8_t merged[PG];
    memcpy(merged, a, PG);
    memcpy(merged + 3 * 512, s, 512);
    CU_ASSERT_TRUE(page_is(v1, 1, merged));
    CU_ASSERT_TRUE(page_is(v2, 0, a));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 3);
    /* The RMW result is de-duplicated too. */
    CU_ASSERT_EQUAL(do_write(v2, 0, SPP, merged), 0);
    CU_ASSERT_TRUE(page_is(v2, 0, merged));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);         /* a's last reference went */
    struct volumes_stats h = hstats();
    CU_ASSERT_EQUAL(h.stored_pages, 2);
    CU_ASSERT_EQUAL(h.logical_pages, 3);
    CU_ASSERT_EQUAL(h.dup_pages, 1);
    CU_ASSERT_EQUAL(h.index_pages, 2);
    teardown();
}

static void test_discard_one_copy(void)
{
    setup();
    static uint8_t a[2 * PG];
    fill(a, sizeof(a), 10);
    CU_ASSERT_EQUAL(do_write(v1, 0, 2 * SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, 0, 2 * SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_EQUAL(do_discard(v2, 0, 2 * SPP), 0);
    CU_ASSERT_TRUE(page_is(v2, 0, NULL));
    CU_ASSERT_TRUE(page_is(v1, 0, a));
    CU_ASSERT_TRUE(page_is(v1, 1, a + PG));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_EQUAL(do_discard(v1, 0, SPP), 0);             /* the last reference of page 0 */
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 1);
    CU_ASSERT_EQUAL(hstats().index_pages, 1);
    /* A freed page is out of the index: writing it again stores it anew. */
    CU_ASSERT_EQUAL(do_write(v2, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_TRUE(page_is(v2, 0, a));
    teardown();
}

static void test_replay(void)
{
    setup();
    static uint8_t a[4 * PG], b[PG];
    fill(a, sizeof(a), 11);
    fill(b, PG, 12);
    CU_ASSERT_EQUAL(do_write(v1, 0, 4 * SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, 0, SPP, a), 0);
    /* blkfront resubmits after a reconnect: the same write, twice more. */
    CU_ASSERT_EQUAL(do_write(v1, 0, 4 * SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v1, 0, 4 * SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 4);
    CU_ASSERT_EQUAL(vstats(v1).stored_pages, 4);            /* still the writer of its pages */
    CU_ASSERT_EQUAL(vstats(v1).dup_pages, 0);
    struct volumes_stats h = hstats();
    CU_ASSERT_EQUAL(h.stored_pages, 4);
    CU_ASSERT_EQUAL(h.dup_pages, 1);
    CU_ASSERT_EQUAL(h.logical_pages, 5);
    /* The refcount is exactly right: dropping v1's and v2's copies frees the page. */
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, b), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 5);
    CU_ASSERT_EQUAL(do_discard(v2, 0, SPP), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 4);
    /* Replays racing each other (both in flight at once) end the same way. */
    struct done d1 = { 0, 1 }, d2 = { 0, 1 };
    fake_pool_hold(pool, true);
    volume_write(v2, 8 * SPP, SPP, b, on_done, &d1);
    volume_write(v2, 8 * SPP, SPP, b, on_done, &d2);
    fake_pool_release(pool, 1);
    fake_pool_release(pool, 0);
    settle(el);
    fake_pool_hold(pool, false);
    run_until(el, &d2, 1);
    run_until(el, &d1, 1);
    CU_ASSERT_EQUAL(d1.status, 0);
    CU_ASSERT_EQUAL(d2.status, 0);
    CU_ASSERT_TRUE(page_is(v2, 8, b));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 4);
    teardown();
}

static void test_delete_shared(void)
{
    setup();
    static uint8_t a[2 * PG];
    fill(a, sizeof(a), 13);
    CU_ASSERT_EQUAL(do_write(v1, 0, 2 * SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, 10 * SPP, 2 * SPP, a), 0);
    /* Detach and re-attach elsewhere: nothing moves. */
    volume_detach(v1);
    char err[128];
    CU_ASSERT_PTR_EQUAL(volume_attach(vs, "v1", 64 * PG, "dom7", err, sizeof(err)), v1);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_TRUE(page_is(v1, 1, a + PG));
    /* The first writer goes: the survivor keeps the pages. */
    volume_detach(v1);
    CU_ASSERT_EQUAL(volume_delete(vs, "v1"), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_TRUE(page_is(v2, 10, a));
    CU_ASSERT_TRUE(page_is(v2, 11, a + PG));
    struct volumes_stats h = hstats();
    CU_ASSERT_EQUAL(h.logical_pages, 2);
    CU_ASSERT_EQUAL(h.stored_pages, 2);
    CU_ASSERT_EQUAL(h.dup_pages, 0);
    /* The last reference frees them. */
    volume_detach(v2);
    CU_ASSERT_EQUAL(volume_delete(vs, "v2"), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    h = hstats();
    CU_ASSERT_EQUAL(h.logical_pages, 0);
    CU_ASSERT_EQUAL(h.stored_pages, 0);
    CU_ASSERT_EQUAL(h.index_pages, 0);
    teardown();
}

static void test_concurrent_equal_writes(void)
{
    setup();
    static uint8_t a[PG];
    fill(a, PG, 14);
    struct done d1 = { 0, 1 }, d2 = { 0, 1 };
    fake_pool_hold(pool, true);
    volume_write(v1, 0, SPP, a, on_done, &d1);
    volume_write(v2, 0, SPP, a, on_done, &d2);
    CU_ASSERT_EQUAL(fake_pool_pending(pool), 2);            /* neither knew of the other */
    fake_pool_release_all(pool);
    settle(el);
    fake_pool_hold(pool, false);
    run_until(el, &d1, 1);
    run_until(el, &d2, 1);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 1);         /* the second copy was given back */
    CU_ASSERT_TRUE(page_is(v1, 0, a));
    CU_ASSERT_TRUE(page_is(v2, 0, a));
    struct volumes_stats h = hstats();
    CU_ASSERT_EQUAL(h.late_hits, 1);
    CU_ASSERT_EQUAL(h.stored_pages, 1);
    CU_ASSERT_EQUAL(h.dup_pages, 1);
    /* The second write's own copy was given back, though its record went
     * with it to the servers: the sharing record (numbered after it) wins
     * when the volumes are loaded again. */
    restart_backend();
    CU_ASSERT_TRUE(page_is(v1, 0, a));
    CU_ASSERT_TRUE(page_is(v2, 0, a));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 1);
    teardown();
}

static void test_compare_read(void)
{
    dedup_test_hooks(NULL, 0);              /* no byte cache: every compare reads back */
    setup();
    static uint8_t a[PG], b[PG];
    fill(a, PG, 15);
    fill(b, PG, 16);
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, a), 0);
    /* The candidate is overwritten while its compare read is in flight: the
     * reference the compare holds keeps it alive (the fake pool would count
     * a free under a read), and the share still lands. */
    struct done d1 = { 0, 1 }, d2 = { 0, 1 };
    fake_pool_hold(pool, true);
    volume_write(v2, 0, SPP, a, on_done, &d1);
    volume_write(v1, 0, SPP, b, on_done, &d2);
    CU_ASSERT_EQUAL(fake_pool_pending(pool), 2);            /* a compare read, a write */
    fake_pool_release(pool, 1);
    fake_pool_release(pool, 0);
    settle(el);
    fake_pool_hold(pool, false);
    run_until(el, &d1, 1);
    run_until(el, &d2, 1);
    CU_ASSERT_TRUE(page_is(v2, 0, a));
    CU_ASSERT_TRUE(page_is(v1, 0, b));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_EQUAL(hstats().compare_reads, 1);
    CU_ASSERT_EQUAL(hstats().dedup_hits, 1);
    /* A failed compare read costs the sharing, not the write. */
    fake_pool_fail_reads(pool, 1, -EIO);
    CU_ASSERT_EQUAL(do_write(v2, SPP, SPP, a), 0);
    CU_ASSERT_TRUE(page_is(v2, 1, a));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 3);
    /* A failed write of a page to be stored anew fails the request, leaving the old contents. */
    fake_pool_fail_writes(pool, 1, -EIO);
    static uint8_t c[PG];
    fill(c, PG, 17);
    CU_ASSERT_EQUAL(do_write(v2, SPP, SPP, c), -EIO);
    CU_ASSERT_TRUE(page_is(v2, 1, a));
    teardown();
}

static void test_zero_pages_not_indexed(void)
{
    setup();
    static uint8_t z[2 * PG];
    CU_ASSERT_EQUAL(do_write(v1, 0, 2 * SPP, z), 0);
    CU_ASSERT_EQUAL(do_write(v2, 0, 2 * SPP, z), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    struct volumes_stats h = hstats();
    CU_ASSERT_EQUAL(h.zero_pages, 4);
    CU_ASSERT_EQUAL(h.logical_pages, 4);
    CU_ASSERT_EQUAL(h.stored_pages, 0);
    CU_ASSERT_EQUAL(h.dup_pages, 0);
    CU_ASSERT_EQUAL(h.index_pages, 0);
    teardown();
}

static void test_volume_dedup_off(void)
{
    setup();
    static uint8_t a[PG], b[PG], c[PG];
    fill(a, PG, 18);
    fill(b, PG, 19);
    fill(c, PG, 20);
    volume_set_dedup(v2, false);
    CU_ASSERT_TRUE(vstats(v1).dedup);
    CU_ASSERT_FALSE(vstats(v2).dedup);
    CU_ASSERT_TRUE(hstats().dedup);                         /* the host switch is still on */
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, a), 0);
    /* v2 neither shares v1's page nor its own equal pages. */
    CU_ASSERT_EQUAL(do_write(v2, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v2, SPP, SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 3);
    /* Nor does it offer its pages: v1 writing what only v2 holds stores it. */
    CU_ASSERT_EQUAL(do_write(v2, 2 * SPP, SPP, b), 0);
    CU_ASSERT_EQUAL(do_write(v1, SPP, SPP, b), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 5);
    CU_ASSERT_TRUE(page_is(v2, 0, a));
    CU_ASSERT_TRUE(page_is(v2, 1, a));
    CU_ASSERT_TRUE(page_is(v2, 2, b));
    CU_ASSERT_TRUE(page_is(v1, 1, b));
    CU_ASSERT_EQUAL(vstats(v2).stored_pages, 3);
    CU_ASSERT_EQUAL(vstats(v2).dup_pages, 0);
    CU_ASSERT_EQUAL(vstats(v2).logical_pages, 3);
    struct volumes_stats h = hstats();
    CU_ASSERT_EQUAL(h.stored_pages, 5);
    CU_ASSERT_EQUAL(h.dup_pages, 0);
    CU_ASSERT_EQUAL(h.dedup_hits, 0);
    CU_ASSERT_EQUAL(h.index_pages, 2);                      /* v1's a and b only */
    /* Zero pages are still never stored. */
    static uint8_t z[PG];
    CU_ASSERT_EQUAL(do_write(v2, 3 * SPP, SPP, z), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 5);
    CU_ASSERT_EQUAL(vstats(v2).zero_pages, 1);
    /* Turned back on (a re-attach with dedup=yes), new writes share again;
     * the pages stored while off are not indexed, so c is stored once, then shared. */
    volume_detach(v2);
    char err[128];
    CU_ASSERT_PTR_EQUAL(volume_attach(vs, "v2", 64 * PG, "dom9", err, sizeof(err)), v2);
    volume_set_dedup(v2, true);
    CU_ASSERT_EQUAL(do_write(v2, 4 * SPP, SPP, a), 0);      /* shares v1's a */
    CU_ASSERT_EQUAL(do_write(v2, 5 * SPP, SPP, c), 0);
    CU_ASSERT_EQUAL(do_write(v1, 2 * SPP, SPP, c), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 6);
    CU_ASSERT_EQUAL(hstats().dup_pages, 2);
    CU_ASSERT_TRUE(page_is(v2, 4, a));
    CU_ASSERT_TRUE(page_is(v1, 2, c));
    teardown();
}

static void test_host_off_wins(void)
{
    setup_with(false);
    volume_set_dedup(v1, true);
    CU_ASSERT_FALSE(vstats(v1).dedup);
    static uint8_t a[PG];
    fill(a, PG, 21);
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v1, SPP, SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    teardown();
}

static void test_target_options(void)
{
    char name[VOLUME_NAME_MAX], err[200];
    uint64_t size = 0;
    struct volume_opts o = { .dedup = false };
    CU_ASSERT_EQUAL(volume_parse_target_opts("memx:vm1-swap:2G", name, sizeof(name), &size, &o, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(name, "vm1-swap");
    CU_ASSERT_EQUAL(size, 2ull << 30);
    CU_ASSERT_TRUE(o.dedup);                                /* the default */
    CU_ASSERT_EQUAL(volume_parse_target_opts("memx:vm2:512M:dedup=no", name, sizeof(name), &size, &o, err,
                                             sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(name, "vm2");
    CU_ASSERT_EQUAL(size, 512ull << 20);
    CU_ASSERT_FALSE(o.dedup);
    CU_ASSERT_EQUAL(volume_parse_target_opts("memx:vm2:4096:dedup=no:dedup=yes", name, sizeof(name), &size, &o, err,
                                             sizeof(err)), 0);
    CU_ASSERT_TRUE(o.dedup);                                /* the last one wins */
    /* Without opts the options are still checked. */
    CU_ASSERT_EQUAL(volume_parse_target("memx:vm2:4096:dedup=no", name, sizeof(name), &size, err, sizeof(err)), 0);
    static const char *bad[] = { "memx:vm2:4G:", "memx:vm2:4G:dedup", "memx:vm2:4G:dedup=off", "memx:vm2:4G::dedup=no",
                                 "memx:vm2:4G:dedup=nox", "memx:vm2:4G:compress=yes", "memx:vm2:4Q:dedup=no",
                                 "memx:vm2::dedup=no", "memx:vm2:1000:dedup=no" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CU_ASSERT_EQUAL(volume_parse_target_opts(bad[i], name, sizeof(name), &size, &o, err, sizeof(err)), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i]));        /* the message names the target */
    }
    volume_parse_target("memx:vm2:4G:nodedup", name, sizeof(name), &size, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "dedup=no"));        /* and says what is known */
}

/* The index's hash and the volume record's check come from one pass; the
 * record's must be the real XXH3-128 even while a test hook fakes the index's. */
/* A restarted backend rebuilds the content index from the volume records in
 * the pool: shared pages keep their refcounts, and new writes go on sharing
 * the pages stored before the restart (compared after a checked read, the
 * bytes cache being empty). */
static void test_restart_keeps_sharing(void)
{
    setup();
    static uint8_t a[PG], b[PG];
    fill(a, PG, 41);
    fill(b, PG, 42);
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(do_write(v1, SPP, SPP, b), 0);
    CU_ASSERT_EQUAL(do_write(v2, 5 * SPP, SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    restart_backend();
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    struct volumes_stats h = hstats();
    CU_ASSERT_EQUAL(h.logical_pages, 3);
    CU_ASSERT_EQUAL(h.stored_pages, 2);
    CU_ASSERT_EQUAL(h.dup_pages, 1);
    CU_ASSERT_EQUAL(h.index_pages, 2);
    /* v1 overwrites its copy of a with b: b is shared, a stays for v2. */
    CU_ASSERT_EQUAL(do_write(v1, 0, SPP, b), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_TRUE(page_is(v1, 0, b));
    CU_ASSERT_TRUE(page_is(v1, 1, b));
    CU_ASSERT_TRUE(page_is(v2, 5, a));
    /* A third volume writing a shares the page stored before the restart. */
    struct volume *v3 = attach("v3");
    CU_ASSERT_EQUAL(do_write(v3, 0, SPP, a), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    h = hstats();
    CU_ASSERT_EQUAL(h.dedup_hits, 2);
    CU_ASSERT_EQUAL(h.compare_reads, 2);
    CU_ASSERT_EQUAL(h.collisions, 0);
    /* v2 lets go of a: v3's reference keeps it. */
    CU_ASSERT_EQUAL(do_discard(v2, 5 * SPP, SPP), 0);
    CU_ASSERT_TRUE(page_is(v3, 0, a));
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 2);
    CU_ASSERT_EQUAL(do_discard(v3, 0, SPP), 0);
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 1);
    CU_ASSERT_EQUAL(hstats().index_pages, 1);
    teardown();
}

static void test_hash_once(void)
{
    static uint8_t a[PG];
    fill(a, PG, 22);
    uint8_t want[16], got[16];
    pool_hash(a, want);
    struct dedup_hash h = dedup_hash_page(a, got);
    CU_ASSERT_EQUAL(memcmp(got, want, 16), 0);
    struct dedup_hash plain = dedup_hash(a);
    CU_ASSERT_TRUE(h.lo == plain.lo && h.hi == plain.hi);
    dedup_test_hooks(same_hash, -1);
    memset(got, 0, 16);
    h = dedup_hash_page(a, got);
    CU_ASSERT_EQUAL(memcmp(got, want, 16), 0);
    CU_ASSERT_TRUE(h.lo == 42 && h.hi == 42);
    dedup_test_hooks(NULL, -1);
}

static const struct cu_test dedup_tests[] = {
    { "shared_across_volumes", test_shared_across_volumes },
    { "dedup_off_stores_duplicates", test_dedup_off_stores_duplicates },
    { "collision_keeps_both", test_collision_keeps_both },
    { "collision_read_back", test_collision_read_back },
    { "overwrite_one_copy", test_overwrite_one_copy },
    { "discard_one_copy", test_discard_one_copy },
    { "replay", test_replay },
    { "delete_shared", test_delete_shared },
    { "concurrent_equal_writes", test_concurrent_equal_writes },
    { "compare_read", test_compare_read },
    { "zero_pages_not_indexed", test_zero_pages_not_indexed },
    { "volume_dedup_off", test_volume_dedup_off },
    { "host_off_wins", test_host_off_wins },
    { "target_options", test_target_options },
    { "hash_once", test_hash_once },
    { "restart_keeps_sharing", test_restart_keeps_sharing },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "dedup", NULL, NULL, dedup_tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
