/* test_membership.c — the pool's server set at run time (issue 14: etcd
 * membership), over the fake server connection (pool_harness.c): more
 * servers than the old compile-time cap, servers added while the pool runs,
 * a server that left the membership while holding replicas (every page
 * still reads, redundancy comes back from the good copies, nothing is freed
 * on the survivors), the same address removed and added again, and a pool
 * that starts with no server at all. */
#include "evloop.h"
#include "fake_srvconn.h"
#include "pool_harness.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *state_of(int srv)
{
    static struct pool_server_info info[HARNESS_MAX_SERVERS + 8];
    int n = pool_get_servers(p, info, HARNESS_MAX_SERVERS + 8);
    CU_ASSERT_FATAL(srv < n);
    return info[srv].state;
}

static unsigned slabs_on_all(void)
{
    unsigned n = 0;
    for (int i = 0; i < p->nsrv; i++)
        n += fake_srv_slabs(p->srv[i]);
    return n;
}

/* 40 servers, one slab of room each: twenty slabs of two replicas fill
 * every one of them, so placement reaches servers past index 32. */
static void test_forty_servers(void)
{
    fake_srv_set_capacity(1);
    mkpool(40, 2);
    CU_ASSERT_EQUAL(pool_nservers(p), 40);
    for (unsigned round = 0; round < 20; round++) {
        write_pages(MAXPAGES, 100 + round);
        read_all(MAXPAGES);
        check_replicas(MAXPAGES);
    }
    for (int i = 0; i < 40; i++)
        CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[i]), 1);
    struct pool_stats st;
    pool_get_stats(p, &st);
    CU_ASSERT_EQUAL(st.servers, 40);
    CU_ASSERT_EQUAL(st.live_servers, 40);
    CU_ASSERT_EQUAL(st.degraded_slabs, 0);
    endpool();
    fake_srv_set_capacity(16);
}

/* Servers added at run time take the new slabs (the first ones are full). */
static void test_add_at_run_time(void)
{
    char err[200];
    fake_srv_set_capacity(1);
    mkpool(2, 2);
    write_pages(MAXPAGES, 1);           /* the one slab both servers have room for */
    CU_ASSERT_EQUAL(pool_add_server(p, "fake:7100", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(pool_add_server(p, "fake:7101", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(pool_add_server(p, "fake:7100", err, sizeof(err)), 0);     /* known: left as it is */
    CU_ASSERT_EQUAL(pool_add_server(p, "no-port", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "host:port"));
    CU_ASSERT_EQUAL(pool_nservers(p), 4);
    CU_ASSERT_EQUAL(pool_live_servers(p), 4);
    CU_ASSERT_STRING_EQUAL(state_of(3), "up");
    write_pages(MAXPAGES, 2);
    read_all(MAXPAGES);
    check_replicas(MAXPAGES);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[2]), 1);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[3]), 1);
    endpool();
    fake_srv_set_capacity(16);
}

/* A server that left the membership while holding replicas: every page
 * still reads, the slab gets back to R good copies from the survivor, and
 * nothing is freed anywhere (the gone server keeps its copy: never freed on
 * it by us). */
static void test_remove_with_replicas(void)
{
    mkpool(3, 2);
    write_pages(NPAGES, 3);
    struct pslab *ps = &p->slabs[0];
    CU_ASSERT_EQUAL_FATAL(good(ps), 2);
    int victim = ps->rep[0].srv, kept = ps->rep[1].srv;
    unsigned before = slabs_on_all();
    CU_ASSERT_EQUAL(pool_remove_server(p, "fake:9999"), -1);
    CU_ASSERT_EQUAL(pool_remove_server(p, p->srv[victim]->addr), 0);
    CU_ASSERT_EQUAL(pool_remove_server(p, p->srv[victim]->addr), 0);      /* already gone */
    CU_ASSERT_STRING_EQUAL(state_of(victim), "gone");
    CU_ASSERT_EQUAL(pool_live_servers(p), 2);
    CU_ASSERT_EQUAL(pool_nservers(p), 3);
    read_all(NPAGES);
    CU_ASSERT_TRUE(wait_healed(3000));
    ps = &p->slabs[0];
    CU_ASSERT_EQUAL(good(ps), 2);
    CU_ASSERT_FALSE(holds_good(ps, victim));
    CU_ASSERT_TRUE(holds_good(ps, kept));
    check_replicas(NPAGES);
    read_all(NPAGES);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[victim]), 1);    /* not freed on it */
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[kept]), 1);      /* nor on the survivor */
    CU_ASSERT_EQUAL(slabs_on_all(), before + 1);           /* only the new copy */
    /* The gone server's copy is forgotten once R good copies exist (its
     * slot in the slab is free for a later rebuild), still not freed. */
    run_until(NULL, 300);
    CU_ASSERT_EQUAL(p->slabs[0].nrep, 2);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[victim]), 1);
    /* A gone server never comes back by itself. */
    run_until(NULL, 300);
    CU_ASSERT_STRING_EQUAL(state_of(victim), "gone");
    endpool();
}

/* R = 3 and two of a slab's servers leave at once: the good copy and the
 * two gone ones, with the first new copy, fill every replica slot; the
 * second new copy takes a gone server's slot (never a merely away one's),
 * so the slab gets back to three good copies.  Nothing is freed on the gone
 * servers. */
static void test_remove_two_r3(void)
{
    mkpool(5, 3);
    write_pages(NPAGES, 6);
    int a = p->slabs[0].rep[0].srv, b = p->slabs[0].rep[1].srv;
    CU_ASSERT_EQUAL(pool_remove_server(p, p->srv[a]->addr), 0);
    CU_ASSERT_EQUAL(pool_remove_server(p, p->srv[b]->addr), 0);
    read_all(NPAGES);
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_EQUAL(good(&p->slabs[0]), 3);
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], a));
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], b));
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[a]), 1);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[b]), 1);
    check_replicas(NPAGES);
    read_all(NPAGES);
    endpool();
}

/* Removed, then added again before the slab was re-replicated: the same
 * process is back, its replica is revalidated, and nothing is copied or
 * freed. */
static void test_remove_readd_same(void)
{
    char err[200];
    mkpool(2, 2);
    write_pages(NPAGES, 4);
    int victim = p->slabs[0].rep[0].srv;
    CU_ASSERT_EQUAL(pool_remove_server(p, p->srv[victim]->addr), 0);
    CU_ASSERT_FALSE(holds_good(&p->slabs[0], victim));
    struct server *was = p->srv[victim];
    CU_ASSERT_EQUAL(pool_add_server(p, was->addr, err, sizeof(err)), 0);
    CU_ASSERT_PTR_EQUAL(p->srv[victim], was);      /* its slot stays */
    CU_ASSERT_EQUAL(pool_nservers(p), 2);
    CU_ASSERT_STRING_EQUAL(state_of(victim), "up");
    CU_ASSERT_TRUE(wait_healed(3000));
    CU_ASSERT_TRUE(holds_good(&p->slabs[0], victim));
    CU_ASSERT_EQUAL(slabs_on_all(), 2);
    check_replicas(NPAGES);
    read_all(NPAGES);
    endpool();
}

/* Removed, re-replicated elsewhere, then back: the copy it still holds was
 * given up meanwhile, so it is freed there now (the same process: nothing
 * else of ours is in that slab), and new slabs go to it again. */
static void test_remove_heal_readd(void)
{
    char err[200];
    mkpool(3, 2);
    write_pages(NPAGES, 5);
    int victim = p->slabs[0].rep[0].srv;
    CU_ASSERT_EQUAL(pool_remove_server(p, p->srv[victim]->addr), 0);
    CU_ASSERT_TRUE(wait_healed(3000));
    run_until(NULL, 300);
    CU_ASSERT_EQUAL(p->slabs[0].nrep, 2);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[victim]), 1);
    CU_ASSERT_EQUAL(pool_add_server(p, p->srv[victim]->addr, err, sizeof(err)), 0);
    run_until(NULL, 100);
    CU_ASSERT_EQUAL(fake_srv_slabs(p->srv[victim]), 0);    /* the orphan, freed now it is back */
    CU_ASSERT_EQUAL(pool_live_servers(p), 3);
    read_all(NPAGES);
    check_replicas(NPAGES);
    endpool();
}

/* No server at pool_new (etcd mode): a write waits for one; the first
 * server to join takes it. */
static void test_zero_then_add(void)
{
    char err[200];
    mkpool(0, 1);
    CU_ASSERT_EQUAL(pool_nservers(p), 0);
    CU_ASSERT_EQUAL(pool_get_servers(p, NULL, 0), 0);
    static uint8_t page[POOL_PAGE_SIZE], back[POOL_PAGE_SIZE];
    memset(page, 0x5a, sizeof(page));
    struct op w = { 0 };
    pool_write_new(p, page, wdone, &w);
    run_until(NULL, 300);
    CU_ASSERT_FALSE(w.done);            /* waiting, as for a first connection */
    CU_ASSERT_EQUAL(pool_add_server(p, "fake:7000", err, sizeof(err)), 0);
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, 1000));
    CU_ASSERT_EQUAL(w.status, 0);
    CU_ASSERT_EQUAL(read_page(w.page, back), 0);
    CU_ASSERT_EQUAL(memcmp(back, page, sizeof(page)), 0);
    endpool();
}

/* ... and when none comes, it fails with -EIO after a first connection's
 * bound (SRV_HELLO_TIMEOUT_MS), not never. */
static void test_zero_times_out(void)
{
    mkpool(0, 2);
    static uint8_t page[POOL_PAGE_SIZE];
    struct op w = { 0 };
    uint64_t t0 = evloop_now_ms();
    pool_write_new(p, page, wdone, &w);
    CU_ASSERT_TRUE_FATAL(run_until(&w.done, SRV_HELLO_TIMEOUT_MS + 1000));
    /* Nothing was stored, so the pool says "try again": the volume holds the
     * guest's write for io_hold_s before it answers EIO (test_volume). */
    CU_ASSERT_EQUAL(w.status, -EHOSTUNREACH);
    CU_ASSERT(evloop_now_ms() - t0 >= SRV_HELLO_TIMEOUT_MS - 200);
    endpool();
}

static int suite_init(void) { return harness_suite_init("test_membership"); }

static const struct cu_test membership_tests[] = {
    { "forty servers place and read", test_forty_servers },
    { "servers added at run time take new slabs", test_add_at_run_time },
    { "a removed server's replicas: pages read, R good copies again, nothing freed", test_remove_with_replicas },
    { "R = 3, two servers removed at once: three good copies again", test_remove_two_r3 },
    { "removed and added again: revalidated", test_remove_readd_same },
    { "removed, healed, added again: its orphan freed", test_remove_heal_readd },
    { "no server at pool_new, then one joins", test_zero_then_add },
    { "no server ever: the write is answered unreachable after the first-connection bound", test_zero_times_out },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "membership", suite_init, harness_suite_clean, membership_tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
