/* test_pool_eagain.c — the pool when a memory server answers a PAGE_WRITE
 * with EAGAIN (it cannot prove the writer's ownership of the volume current
 * now: its etcd watch is not fresh), through the fake server connection
 * (pool_harness.c).  Such a replica missed the slot (copied later), it is not
 * dead; a write no replica acknowledged completes -EAGAIN (vstore retries
 * it), and no replica is given up. */
#include "evloop.h"
#include "fake_srvconn.h"
#include "pool_harness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void test_one_replica_again(void)
{
    mkpool(2, 2);
    write_pages(4, 41);
    struct pslab *ps = &p->slabs[0];
    int again = ps->rep[1].srv;
    fake_srv_refuse_writes(p->srv[again], 1, EAGAIN);
    static uint8_t page[POOL_PAGE_SIZE];
    memset(page, 0x3c, sizeof(page));
    struct op w = { 0 };
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, 500));
    CU_ASSERT_EQUAL(w.status, 0);                       /* the other replica acked */
    uint32_t slab, pg;
    CU_ASSERT_FATAL(split_page(p, w.page, &slab, &pg) && slab == 0);
    CU_ASSERT_FALSE(ps->rep[1].dead);
    CU_ASSERT_TRUE(rep_missed(&ps->rep[1], pg));
    CU_ASSERT_FALSE(rep_missed(&ps->rep[0], pg));
    CU_ASSERT_FALSE(rep_missed(&ps->rep[1], (uint32_t)pages[0] % p->pages_per_slab));
    memcpy(data[4], page, sizeof(page));
    pages[4] = w.page;
    read_all(5);
    /* The missed slot is copied over; both copies good again. */
    run_until(NULL, 150);           /* a tick: the degraded count is the tick's */
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_EQUAL(good(ps), 2);
    CU_ASSERT_FALSE(rep_missed(&ps->rep[1], pg));
    check_replicas(5);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.lost_slabs, 0);
    endpool();
}

static void test_every_replica_again(void)
{
    mkpool(2, 2);
    write_pages(4, 42);
    struct pslab *ps = &p->slabs[0];
    for (int i = 0; i < 2; i++)
        fake_srv_refuse_writes(p->srv[i], 1, EAGAIN);
    static uint8_t page[POOL_PAGE_SIZE];
    memset(page, 0x4d, sizeof(page));
    struct op w = { 0 };
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, 500));
    CU_ASSERT_EQUAL(w.status, -EAGAIN);
    for (int r = 0; r < ps->nrep; r++)
        CU_ASSERT_FALSE(ps->rep[r].dead);
    CU_ASSERT_EQUAL(pool_live_servers(p), 2);
    /* The slot went back and nobody acked it: the slab's other pages still read, at once. */
    CU_ASSERT_EQUAL(good(ps), 2);
    read_all(4);
    /* Tried again, it is stored; the pages written before are intact. */
    w = (struct op){ 0 };
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, 500));
    CU_ASSERT_EQUAL(w.status, 0);
    memcpy(data[4], page, sizeof(page));
    pages[4] = w.page;
    read_all(5);
    run_until(NULL, 150);
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_EQUAL(good(ps), 2);
    check_replicas(5);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.lost_slabs, 0);
    endpool();
}

static int init(void) { return harness_suite_init("test_pool_eagain"); }

static const struct cu_test tests[] = {
    { "one replica EAGAIN: write acked, slot missed there, not dead", test_one_replica_again },
    { "every replica EAGAIN: -EAGAIN, no replica dead", test_every_replica_again },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "pool_eagain", init, harness_suite_clean, tests },
                                          { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
