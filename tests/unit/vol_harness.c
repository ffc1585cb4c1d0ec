/* vol_harness.c — the one-volume fixture of test_volume and test_volmeta
 * (see vol_harness.h). */
#include "vol_harness.h"

#include <CUnit/CUnit.h>

#include "fake_pool.h"
#include "vol_wait.h"

struct evloop *el;
struct pool *pool;
struct volumes *vs;
struct volume *v;

void setup(void)
{
    el = evloop_new();
    pool = fake_pool_new(el);
    vs = volumes_new(pool, false);
    char err[128];
    v = volume_attach(vs, "t", 64 * PG, "test", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_EQUAL_FATAL(wait_ready(el, v), 0);
}

void setup_claimer(const struct volclaim_ops *claimer, int nmeta)
{
    el = evloop_new();
    pool = fake_pool_new(el);
    fake_pool_meta_servers(pool, nmeta);
    vs = volumes_new(pool, false);
    volumes_set_claimer(vs, claimer);
    char err[128];
    v = volume_attach(vs, "t", 64 * PG, "test", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
}

void teardown(void)
{
    CU_ASSERT_EQUAL(fake_pool_violations(pool), 0);
    volumes_free(vs);
    pool_free(pool);
    evloop_free(el);
}

int do_write(uint64_t sector, uint32_t nsect, const void *buf)
{
    struct done d = { 0, 1 };
    volume_write(v, sector, nsect, buf, on_done, &d);
    CU_ASSERT_EQUAL(d.calls, 0);            /* never inside the call */
    run_until(el, &d, 1);
    CU_ASSERT_EQUAL(d.calls, 1);
    return d.status;
}

int do_read(uint64_t sector, uint32_t nsect, void *buf)
{
    struct done d = { 0, 1 };
    volume_read(v, sector, nsect, buf, on_done, &d);
    CU_ASSERT_EQUAL(d.calls, 0);
    run_until(el, &d, 1);
    CU_ASSERT_EQUAL(d.calls, 1);
    return d.status;
}

int do_discard(uint64_t sector, uint64_t nsect)
{
    struct done d = { 0, 1 };
    volume_discard(v, sector, nsect, on_done, &d);
    CU_ASSERT_EQUAL(d.calls, 0);
    run_until(el, &d, 1);
    CU_ASSERT_EQUAL(d.calls, 1);
    return d.status;
}

void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed * 131 + i * 7 + 1) | 1;   /* never zero */
}

struct volume_stats stats(void)
{
    struct volume_stats st;
    volume_get_stats(v, &st);
    return st;
}
