/* test_slabdir.c — backend/slabdir.c (the slab directory in etcd, the pool's
 * pool_dir_ops) against a real throw-away etcd (etcd_harness.c): changes of
 * one slab coalesced (one request in flight, etcd ends with the newest),
 * deletes, lookups served from one read of the prefix for 3 s, corrupt keys
 * ignored. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckeys.h"
#include "coord.h"
#include "cu_main.h"
#include "etcd_harness.h"
#include "evloop.h"
#include "slabdir.h"

static struct ck_slab slab_at(struct coord *c, const char *node, uint64_t uid, bool *found)
{
    char key[128], nd[CK_NODE_MAX], why[160];
    struct ck_slab s = { 0 };
    uint64_t u = 0;
    CU_ASSERT_FATAL(ck_slab_key(node, uid, key, sizeof(key)) >= 0);
    struct eh_range r = eh_get(c, key, false);
    CU_ASSERT_EQUAL(r.st, 0);
    *found = r.n == 1;
    if (r.n == 1) {
        CU_ASSERT_EQUAL(ck_slab_decode(r.keys[0], r.vals[0], strlen(r.vals[0]), nd, &u, &s, why, sizeof(why)), 0);
        CU_ASSERT_EQUAL(u, uid);
        CU_ASSERT_STRING_EQUAL(nd, node);
    }
    return s;
}

/* Until every write the directory sent has answered (its writes stop moving). */
static void settle(struct slabdir *d)
{
    struct slabdir_stats a, b;
    slabdir_get_stats(d, &a);
    for (int i = 0; i < 100; i++) {
        eh_run_for(100);
        slabdir_get_stats(d, &b);
        if (b.writes == a.writes)
            break;
        a = b;
    }
}

static void test_put_coalesced(void)
{
    struct coord *c = eh_open("/t/slabdir/put", 5);
    struct slabdir *d = slabdir_new(el, c, "nodeA");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    const struct pool_dir_ops *ops = slabdir_ops(d);
    char a[3][CK_ADDR_MAX];
    const char *addrs[3] = { a[0], a[1], a[2] };
    for (int i = 0; i < 50; i++) {
        for (int k = 0; k < 3; k++)
            snprintf(a[k], sizeof(a[k]), "10.0.0.%d:7480", i + k);
        ops->put(ops->ctx, 0x1234, 256 << 10, addrs, 2 + i % 2);
    }
    settle(d);
    struct slabdir_stats st;
    slabdir_get_stats(d, &st);
    CU_ASSERT(st.writes >= 1 && st.writes <= 3);        /* one in flight, then the newest */
    CU_ASSERT_EQUAL(st.failures, 0);
    bool found;
    struct ck_slab s = slab_at(c, "nodeA", 0x1234, &found);
    CU_ASSERT_FATAL(found);
    CU_ASSERT_EQUAL(s.size, 256 << 10);
    CU_ASSERT_EQUAL(s.nrep, 3);                          /* i = 49: 2 + 1 */
    CU_ASSERT_STRING_EQUAL(s.replicas[0], "10.0.0.49:7480");
    CU_ASSERT_STRING_EQUAL(s.replicas[2], "10.0.0.51:7480");
    /* Deleted: the key goes. */
    ops->del(ops->ctx, 0x1234);
    settle(d);
    slab_at(c, "nodeA", 0x1234, &found);
    CU_ASSERT_FALSE(found);
    /* A put and a delete in a row, and a delete and a put: the last one wins. */
    ops->put(ops->ctx, 0x55, 4096, addrs, 1);
    ops->del(ops->ctx, 0x55);
    ops->del(ops->ctx, 0x66);
    ops->put(ops->ctx, 0x66, 4096, addrs, 1);
    settle(d);
    slab_at(c, "nodeA", 0x55, &found);
    CU_ASSERT_FALSE(found);
    s = slab_at(c, "nodeA", 0x66, &found);
    CU_ASSERT(found && s.nrep == 1 && !strcmp(s.replicas[0], a[0]));
    coord_close(c);
    slabdir_free(d);
}

struct look { bool done; int n; char addrs[3][CK_ADDR_MAX]; };
static void on_look(void *arg, int n, const char (*addrs)[128])
{
    struct look *l = arg;
    l->done = true;
    l->n = n;
    for (int i = 0; i < n && i < 3; i++)
        snprintf(l->addrs[i], sizeof(l->addrs[i]), "%s", addrs[i]);
}

static struct look lookup(const struct pool_dir_ops *ops, uint64_t uid)
{
    struct look l = { 0 };
    CU_ASSERT_EQUAL_FATAL(ops->get(ops->ctx, uid, on_look, &l), 0);
    CU_ASSERT_FALSE(l.done);            /* from the loop */
    CU_ASSERT_FATAL(eh_run_until(&l.done, 3000));
    return l;
}

static void test_get(void)
{
    struct coord *c = eh_open("/t/slabdir/get", 5);
    struct slabdir *d = slabdir_new(el, c, "nodeA");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    const struct pool_dir_ops *ops = slabdir_ops(d);
    const char *addrs[2] = { "10.0.0.1:7480", "10.0.0.2:7480" };
    ops->put(ops->ctx, 0xabc, 256 << 10, addrs, 2);
    settle(d);
    /* Keys that are not MemX's under slabs/: ignored, the rest still served. */
    CU_ASSERT_EQUAL(eh_put(c, "slabs/nodeA/zzzz", "{\"size\":1}"), 0);
    CU_ASSERT_EQUAL(eh_put(c, "slabs/nodeA/0000000000000def", "not json"), 0);
    CU_ASSERT_EQUAL(eh_put(c, "slabs/junk", "x"), 0);
    struct look l = lookup(ops, 0xabc);
    CU_ASSERT_EQUAL(l.n, 2);
    CU_ASSERT_STRING_EQUAL(l.addrs[0], "10.0.0.1:7480");
    CU_ASSERT_STRING_EQUAL(l.addrs[1], "10.0.0.2:7480");
    CU_ASSERT(lookup(ops, 0x999).n < 0);
    CU_ASSERT(lookup(ops, 0xdef).n < 0);                /* its value did not parse */
    /* Many lookups in a row, some at once: one read of the prefix. */
    struct look many[8] = { { 0 } };
    for (int i = 0; i < 8; i++)
        CU_ASSERT_EQUAL(ops->get(ops->ctx, i % 2 ? 0xabc : 0x1, on_look, &many[i]), 0);
    for (int i = 0; i < 8; i++)
        CU_ASSERT(eh_run_until(&many[i].done, 3000) && (i % 2 ? many[i].n == 2 : many[i].n < 0));
    struct slabdir_stats st;
    slabdir_get_stats(d, &st);
    CU_ASSERT_EQUAL(st.reads, 1);
    CU_ASSERT_EQUAL(st.lookups, 11);
    CU_ASSERT_EQUAL(st.hits, 5);
    /* Another backend's slab, written after that read: not seen until the copy is 3 s old. */
    CU_ASSERT_EQUAL(eh_put(c, "slabs/nodeB/0000000000000777", "{\"size\":4096,\"replicas\":[\"10.0.0.9:7480\"]}"), 0);
    eh_run_for(3100);
    l = lookup(ops, 0x777);
    slabdir_get_stats(d, &st);
    CU_ASSERT_EQUAL(st.reads, 2);
    CU_ASSERT(l.n == 1 && !strcmp(l.addrs[0], "10.0.0.9:7480"));
    coord_close(c);
    slabdir_free(d);
}

/* etcd unreachable: writes fail and are retried once it answers; lookups answer "unknown". */
static void test_retry(void)
{
    struct coord *c = eh_open_at(eh_proxy_url(), "/t/slabdir/retry", 5);
    struct coord *direct = eh_open("/t/slabdir/retry", 5);
    struct slabdir *d = slabdir_new(el, c, "nodeA");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    const struct pool_dir_ops *ops = slabdir_ops(d);
    const char *addrs[1] = { "10.0.0.3:7480" };
    eh_proxy_cut(true);
    ops->put(ops->ctx, 0x42, 4096, addrs, 1);
    struct look l = lookup(ops, 0x42);
    CU_ASSERT(l.n < 0);
    eh_run_for(500);
    struct slabdir_stats st;
    slabdir_get_stats(d, &st);
    CU_ASSERT(st.failures >= 1);
    eh_proxy_cut(false);
    bool found = false;
    for (int i = 0; i < 40 && !found; i++) {
        eh_run_for(100);
        slab_at(direct, "nodeA", 0x42, &found);
    }
    CU_ASSERT_TRUE(found);
    coord_close(c);         /* first: no callback may come to a freed directory */
    slabdir_free(d);
    coord_close(direct);
}

static const struct cu_test tests[] = {
    { "puts of one slab coalesced, the newest in etcd; deletes", test_put_coalesced },
    { "lookups: one read of the prefix for 3 s, corrupt keys ignored", test_get },
    { "writes retried after etcd was unreachable", test_retry },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "slabdir", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };

int main(int argc, char **argv)
{
    (void)argc;
    return etcd_main("test_slabdir", argv, suites);
}
