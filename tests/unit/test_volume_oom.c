/* test_volume_oom.c — the volume layer when memory runs out (lib/xalloc.h's
 * policy): every request still completes exactly once, never inside the
 * call, with 0 or -ENOMEM; the volume stays consistent (each page reads back
 * as its old or its new contents) and no pool page leaks.
 *
 * The data-path files are included (as SPDK's *_ut.c do) with calloc and
 * xcalloc routed through a counter that fails the k-th allocation; the test
 * runs each operation for k = 0, 1, 2, ... until one needs fewer than k.  The
 * table (volumes.c), dedup and the fake pool allocate normally. */
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

static long fail_in = -1;       /* allocations left before the one that fails; -1: none fails */
static unsigned oom_failed;

static void *test_calloc(size_t n, size_t size)
{
    if (fail_in == 0) {
        fail_in = -1;
        oom_failed++;
        return NULL;
    }
    if (fail_in > 0)
        fail_in--;
    return calloc(n, size);
}

static void *test_xreallocarray(void *p, size_t n, size_t size)
{
    if (fail_in == 0) {
        fail_in = -1;
        oom_failed++;
        return NULL;
    }
    if (fail_in > 0)
        fail_in--;
    return xreallocarray(p, n, size);
}

#define calloc test_calloc
#define xcalloc test_calloc
#define xreallocarray test_xreallocarray
#include "pagemap.c"
#include "pageref.c"
#include "vmap.c"
#include "volume.c"
#include "vstore.c"
#include "volmeta.c"
#include "volpub.c"
#undef calloc
#undef xcalloc
#undef xreallocarray

#include "cu_main.h"
#include "fake_pool.h"
#include "vol_wait.h"

#define PG VOLUME_PAGE_SIZE
#define SPP (VOLUME_PAGE_SIZE / VOLUME_SECTOR_SIZE)
#define NPG 8

static struct evloop *el;
static struct pool *pool;
static struct volumes *vs;
static struct volume *vol;
static uint8_t disk[NPG * PG];        /* what each page held before the operation */

static void setup(bool dedup)
{
    el = evloop_new();
    pool = fake_pool_new(el);
    vs = volumes_new(pool, dedup);
    char err[128];
    vol = volume_attach(vs, "oom", NPG * PG, "test", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(vol);
    CU_ASSERT_EQUAL_FATAL(wait_ready(el, vol), 0);
}

static void teardown(void)
{
    CU_ASSERT_EQUAL(fake_pool_violations(pool), 0);
    CU_ASSERT_EQUAL(volume_delete(vs, "oom"), -EBUSY);
    volume_detach(vol);
    CU_ASSERT_EQUAL(volume_delete(vs, "oom"), 0);
    settle(el);
    /* Every page the volume held went back: nothing leaked by a failed path. */
    CU_ASSERT_EQUAL(fake_pool_live_pages(pool), 0);
    volumes_free(vs);
    pool_free(pool);
    evloop_free(el);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed * 131 + i * 7 + 1) | 1;
}

enum op { OP_WRITE, OP_READ, OP_DISCARD, OP_FLUSH };

/* Runs one request with the k-th allocation failing; returns its status. */
static int run_op(enum op op, uint64_t sector, uint32_t nsect, void *buf, long k)
{
    struct done d = { 0, 1 };
    fail_in = k;
    switch (op) {
    case OP_WRITE: volume_write(vol, sector, nsect, buf, on_done, &d); break;
    case OP_READ: volume_read(vol, sector, nsect, buf, on_done, &d); break;
    case OP_DISCARD: volume_discard(vol, sector, nsect, on_done, &d); break;
    case OP_FLUSH: volume_flush(vol, on_done, &d); break;
    }
    CU_ASSERT_EQUAL(d.calls, 0);            /* never inside the call */
    run_until(el, &d, 1);
    fail_in = -1;
    settle(el);
    CU_ASSERT_EQUAL(d.calls, 1);            /* exactly once */
    CU_ASSERT(d.status == 0 || d.status == -ENOMEM);
    return d.status;
}

/* Each page of the volume reads back (with nothing failing) as before or as
 * after the operation; disk becomes what it holds now. */
static unsigned check_pages(const uint8_t *after)
{
    static uint8_t now[NPG * PG];
    CU_ASSERT_EQUAL(run_op(OP_READ, 0, NPG * SPP, now, -1), 0);
    unsigned torn = 0;
    for (unsigned i = 0; i < NPG; i++)
        torn += memcmp(now + i * PG, disk + i * PG, PG) != 0 && memcmp(now + i * PG, after + i * PG, PG) != 0;
    memcpy(disk, now, sizeof(disk));
    return torn;
}

/* Applies op for k = 0, 1, ... until it completes without meeting the
 * failure; expect is the whole volume after a success. */
static void sweep(enum op op, uint64_t sector, uint32_t nsect, const uint8_t *data, const uint8_t *expect)
{
    static uint8_t buf[NPG * PG];
    unsigned torn = 0, nomem = 0, rounds = 0;
    for (long k = 0; k < 200; k++, rounds++) {
        unsigned before = oom_failed;
        if (data)
            memcpy(buf, data, (size_t)nsect * VOLUME_SECTOR_SIZE);
        int st = run_op(op, sector, nsect, buf, k);
        bool hit = oom_failed != before;
        nomem += st == -ENOMEM;
        if (op == OP_READ && st == 0)
            torn += memcmp(buf, expect + sector * VOLUME_SECTOR_SIZE, (size_t)nsect * VOLUME_SECTOR_SIZE) != 0;
        else
            torn += check_pages(expect);
        if (!hit) {
            CU_ASSERT_EQUAL(st, 0);         /* nothing failed: it must succeed */
            break;
        }
    }
    CU_ASSERT_EQUAL(torn, 0);
    CU_ASSERT(rounds < 200);
    CU_ASSERT(nomem > 0);                   /* some allocation was on its path */
}

static void base_image(uint8_t *img, unsigned seed)
{
    fill(img, NPG * PG, seed);
    memset(img + 6 * PG, 0, PG);            /* page 6 zeros */
    CU_ASSERT_EQUAL(run_op(OP_WRITE, 0, NPG * SPP, img, -1), 0);
    memcpy(disk, img, NPG * PG);
}

static void test_writes(bool dedup)
{
    setup(dedup);
    static uint8_t img[NPG * PG], w[NPG * PG], expect[NPG * PG];
    base_image(img, 1);
    /* Full pages, one of them zeros, one a duplicate of another page. */
    fill(w, 3 * PG, 2);
    memset(w + PG, 0, PG);
    memcpy(w + 2 * PG, img, PG);
    memcpy(expect, disk, sizeof(expect));
    memcpy(expect + 2 * PG, w, 3 * PG);
    sweep(OP_WRITE, 2 * SPP, 3 * SPP, w, expect);
    /* Sectors straddling two pages: read-modify-write of both. */
    fill(w, 3 * 512, 3);
    memcpy(expect, disk, sizeof(expect));
    memcpy(expect + PG - 512, w, 3 * 512);
    sweep(OP_WRITE, SPP - 1, 3, w, expect);
    teardown();
}

static void test_writes_nodedup(void) { test_writes(false); }
static void test_writes_dedup(void) { test_writes(true); }

static void test_reads(void)
{
    setup(true);
    static uint8_t img[NPG * PG];
    base_image(img, 4);
    sweep(OP_READ, 0, NPG * SPP, NULL, disk);                /* runs of full pages */
    sweep(OP_READ, 3, 2 * SPP, NULL, disk);                  /* partial pages */
    teardown();
}

static void test_discard(void)
{
    setup(false);
    static uint8_t img[NPG * PG], expect[NPG * PG];
    base_image(img, 5);
    memcpy(expect, disk, sizeof(expect));
    memset(expect + PG + 512, 0, 3 * PG);                    /* edges zeroed, whole pages freed */
    sweep(OP_DISCARD, SPP + 1, 3 * SPP, NULL, expect);
    teardown();
}

static const struct cu_test tests[] = {
    { "writes", test_writes_nodedup }, { "writes_dedup", test_writes_dedup },
    { "reads", test_reads },           { "discard", test_discard },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "volume_oom", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
