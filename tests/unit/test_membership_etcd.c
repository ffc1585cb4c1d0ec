/* test_membership_etcd.c — backend/membership.c (etcd's servers/ keys into
 * the pool) against a real throw-away etcd (etcd_harness.c), over the pool
 * with the fake server connection (pool_harness.c: the pool's code, servers
 * in memory): registrations add servers, values that are not MemX's (not
 * JSON, wrong types) and servers of another provider add nothing, a
 * draining state drains, a delete removes, and a key deleted while the
 * watch was broken is removed at the next snapshot (one whose key is there
 * with a bad value is not). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckeys.h"
#include "coord.h"
#include "etcd_harness.h"
#include "evloop.h"
#include "fake_srvconn.h"
#include "membership.h"
#include "pool_harness.h"

#define PROVIDER "tcp;ofi_rxm"

/* The pool's listing state of addr, or NULL when it does not know it. */
static const char *state_of(const char *addr)
{
    static struct pool_server_info info[16];
    int n = pool_get_servers(p, info, 16);
    for (int i = 0; i < n && i < 16; i++)
        if (!strcmp(info[i].addr, addr))
            return info[i].state;
    return NULL;
}

struct want { const char *addr, *state; };
static bool in_state(void *arg)
{
    const struct want *w = arg;
    const char *s = state_of(w->addr);
    return s && !strcmp(s, w->state);
}
static bool wait_state(const char *addr, const char *state, int ms)
{
    struct want w = { addr, state };
    return eh_run_cond(in_state, &w, ms);
}

static int put_server(struct coord *c, const char *addr, const char *provider, bool draining)
{
    struct ck_server s = { .capacity = 1ull << 30, .incarnation = 1, .draining = draining };
    char key[CK_ADDR_MAX + 16], val[512];
    snprintf(s.addr, sizeof(s.addr), "%s", addr);
    snprintf(s.provider, sizeof(s.provider), "%s", provider);
    CU_ASSERT_FATAL(ck_server_key(addr, key, sizeof(key)) >= 0 && ck_server_encode(&s, val, sizeof(val)) >= 0);
    return eh_put(c, key, val);
}

static bool contains(const struct membership *ms, const char *what)
{
    char buf[256];
    return strstr(membership_describe(ms, buf, sizeof(buf)), what) != NULL;
}

static void test_membership(void)
{
    mkpool(0, 2);
    struct coord *direct = eh_open("/t/members", 5);
    /* Through the relay: its watch stream can be broken while etcd runs on. */
    struct coord *c = eh_open_at(eh_proxy_url(), "/t/members", 5);
    CU_ASSERT_EQUAL(put_server(direct, "127.0.0.1:7001", PROVIDER, false), 0);
    struct membership *ms = membership_new(c, p, PROVIDER);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ms);
    CU_ASSERT(wait_state("127.0.0.1:7001", "up", 3000));        /* from the snapshot */
    CU_ASSERT_EQUAL(put_server(direct, "127.0.0.1:7002", PROVIDER, false), 0);
    CU_ASSERT(wait_state("127.0.0.1:7002", "up", 3000));        /* from the watch */
    CU_ASSERT_EQUAL(pool_nservers(p), 2);
    CU_ASSERT_EQUAL(pool_live_servers(p), 2);

    /* Not MemX's: counted, nothing added. */
    CU_ASSERT_EQUAL(eh_put(direct, "servers/127.0.0.1:7003", "not json"), 0);
    CU_ASSERT_EQUAL(eh_put(direct, "servers/127.0.0.1:7004",
                           "{\"addr\":\"127.0.0.1:7004\",\"capacity\":\"lots\",\"provider\":7,"
                           "\"incarnation\":\"0000000000000001\",\"state\":\"up\"}"), 0);
    CU_ASSERT_EQUAL(eh_put(direct, "servers/127.0.0.1:7006",
                           "{\"addr\":\"127.0.0.1:7999\",\"capacity\":1,\"provider\":\"" PROVIDER "\","
                           "\"incarnation\":\"0000000000000001\",\"state\":\"up\"}"), 0);   /* not the key's */
    /* Another provider: skipped. */
    CU_ASSERT_EQUAL(put_server(direct, "127.0.0.1:7005", "verbs;ofi_rxm", false), 0);
    eh_run_for(500);
    CU_ASSERT_EQUAL(pool_nservers(p), 2);
    CU_ASSERT_PTR_NULL(state_of("127.0.0.1:7003"));
    CU_ASSERT_PTR_NULL(state_of("127.0.0.1:7004"));
    CU_ASSERT_PTR_NULL(state_of("127.0.0.1:7005"));
    CU_ASSERT_PTR_NULL(state_of("127.0.0.1:7999"));
    CU_ASSERT(contains(ms, "3 bad key(s)"));
    CU_ASSERT(contains(ms, "1 skipped"));

    /* Replicas on both; then 7002 drains (nowhere to move them: it stays draining). */
    write_pages(8, 1);
    CU_ASSERT_EQUAL(put_server(direct, "127.0.0.1:7002", PROVIDER, true), 0);
    CU_ASSERT(wait_state("127.0.0.1:7002", "draining", 3000));
    CU_ASSERT(contains(ms, "1 draining"));
    /* A bad value for a known server neither drains, undrains nor removes it. */
    CU_ASSERT_EQUAL(eh_put(direct, "servers/127.0.0.1:7001", "{}"), 0);
    eh_run_for(400);
    CU_ASSERT_STRING_EQUAL(state_of("127.0.0.1:7001"), "up");
    /* Deregistered: removed. */
    CU_ASSERT_EQUAL(eh_del(direct, "servers/127.0.0.1:7002", false), 0);
    CU_ASSERT(wait_state("127.0.0.1:7002", "gone", 3000));
    read_all(8);                        /* every page still reads from 7001 */

    /* Deleted while the watch was broken: gone at the next snapshot. */
    CU_ASSERT_EQUAL(put_server(direct, "127.0.0.1:7007", PROVIDER, false), 0);
    CU_ASSERT(wait_state("127.0.0.1:7007", "up", 3000));
    eh_proxy_cut(true);
    eh_run_for(300);
    CU_ASSERT_EQUAL(eh_del(direct, "servers/127.0.0.1:7007", false), 0);
    eh_run_for(300);
    CU_ASSERT_STRING_EQUAL(state_of("127.0.0.1:7007"), "up");  /* it cannot know yet */
    eh_proxy_cut(false);
    CU_ASSERT(wait_state("127.0.0.1:7007", "gone", 8000));
    /* 7001's key is in the snapshot, with the bad value: not removed either. */
    CU_ASSERT_STRING_EQUAL(state_of("127.0.0.1:7001"), "up");
    CU_ASSERT_EQUAL(put_server(direct, "127.0.0.1:7001", PROVIDER, false), 0);

    /* A removed server registering again comes back. */
    CU_ASSERT_EQUAL(put_server(direct, "127.0.0.1:7002", PROVIDER, false), 0);
    if (!wait_state("127.0.0.1:7002", "up", 3000)) {
        fprintf(stderr, "\n    127.0.0.1:7002 registered again is %s, not up ", state_of("127.0.0.1:7002"));
        CU_FAIL("a server removed while draining and registered again (up) stays drained");
    }
    membership_free(ms);    /* first: it unwatches (coord_close frees the watch) */
    coord_close(c);
    coord_close(direct);
    endpool();
}

static const struct cu_test tests[] = {
    { "servers/ into the pool: add, bad, skipped, drain, remove, resync", test_membership },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "membership_etcd", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };

int main(int argc, char **argv)
{
    (void)argc;
    return etcd_main("test_membership_etcd", argv, suites);
}
