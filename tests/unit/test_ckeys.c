/* test_ckeys.c — the values MemX keeps in etcd: every encoder round-trips
 * through its decoder, and each decoder refuses what is not MemX's with a
 * reason naming the key and the field. */
#include <string.h>

#include "ckeys.h"
#include "cu_main.h"

static char why[256];

#define REJECT(call, text)                                                                          \
    do {                                                                                            \
        why[0] = '\0';                                                                              \
        CU_ASSERT_EQUAL(call, -1);                                                                  \
        if (!strstr(why, text))                                                                     \
            fprintf(stderr, "want \"%s\" in: %s\n", text, why);                                     \
        CU_ASSERT_PTR_NOT_NULL(strstr(why, text));                                                  \
    } while (0)

static void test_server(void)
{
    struct ck_server s = { .addr = "10.0.0.5:7480", .capacity = 1ull << 30, .provider = "tcp;ofi_rxm",
                           .incarnation = 0x0123456789abcdefull, .draining = true }, t;
    char buf[512], key[256];
    int n = ck_server_encode(&s, buf, sizeof(buf));
    CU_ASSERT(n > 0 && (size_t)n == strlen(buf));
    CU_ASSERT_EQUAL(ck_server_key(s.addr, key, sizeof(key)), (int)strlen("servers/10.0.0.5:7480"));
    CU_ASSERT_STRING_EQUAL(key, "servers/10.0.0.5:7480");
    CU_ASSERT_EQUAL(ck_server_decode(key, buf, (size_t)n, &t, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(t.addr, s.addr);
    CU_ASSERT_EQUAL(t.capacity, s.capacity);
    CU_ASSERT_STRING_EQUAL(t.provider, s.provider);
    CU_ASSERT_EQUAL(t.incarnation, s.incarnation);
    CU_ASSERT(t.draining);
    CU_ASSERT_EQUAL(ck_server_encode(&s, buf, 10), -1);
    const char *v = "{\"addr\":\"10.0.0.5:7480\",\"capacity\":\"big\",\"provider\":\"tcp\","
                    "\"incarnation\":\"0000000000000001\",\"state\":\"up\"}";
    REJECT(ck_server_decode(key, v, strlen(v), &t, why, sizeof(why)), "servers/10.0.0.5:7480: \"capacity\" is not a number");
    v = "{\"addr\":\"10.0.0.5:7480\",\"capacity\":1,\"provider\":\"tcp\",\"incarnation\":\"xyz\",\"state\":\"up\"}";
    REJECT(ck_server_decode(key, v, strlen(v), &t, why, sizeof(why)), "\"incarnation\" is not 16 hex digits");
    v = "{\"addr\":\"10.0.0.5:7480\",\"capacity\":1,\"provider\":\"tcp\",\"incarnation\":\"0000000000000001\",\"state\":\"gone\"}";
    REJECT(ck_server_decode(key, v, strlen(v), &t, why, sizeof(why)), "\"state\"");
    v = "{\"addr\":\"10.0.0.6:7480\",\"capacity\":1,\"provider\":\"tcp\",\"incarnation\":\"0000000000000001\",\"state\":\"up\"}";
    REJECT(ck_server_decode(key, v, strlen(v), &t, why, sizeof(why)), "not the key's");
    v = "{\"addr\":\"10.0.0.5:7480\",\"capacity\":-1,\"provider\":\"tcp\",\"incarnation\":\"0000000000000001\",\"state\":\"up\"}";
    REJECT(ck_server_decode(key, v, strlen(v), &t, why, sizeof(why)), "negative");
    v = "{\"addr\":\"10.0.0.5:7480\",\"provider\":\"tcp\",\"incarnation\":\"0000000000000001\",\"state\":\"up\"}";
    REJECT(ck_server_decode(key, v, strlen(v), &t, why, sizeof(why)), "no \"capacity\"");
    REJECT(ck_server_decode(key, "{", 1, &t, why, sizeof(why)), "not JSON");
    REJECT(ck_server_decode(key, "[1]", 3, &t, why, sizeof(why)), "not a JSON object");
    REJECT(ck_server_decode(key, "{} x", 4, &t, why, sizeof(why)), "bytes after");
    REJECT(ck_server_decode("backends/x", buf, (size_t)n, &t, why, sizeof(why)), "not a servers key");
    CU_ASSERT_EQUAL(ck_server_key("a/b", key, sizeof(key)), -1);
    CU_ASSERT_EQUAL(ck_server_key("", key, sizeof(key)), -1);
    CU_ASSERT_EQUAL(ck_server_key("10.0.0.5:7480", key, 8), -1);
}

static void test_backend(void)
{
    struct ck_backend b = { .node = "backd@h1", .pid = 123 }, t;
    char buf[256], key[128];
    int n = ck_backend_encode(&b, buf, sizeof(buf));
    CU_ASSERT(n > 0);
    CU_ASSERT(ck_backend_key(b.node, key, sizeof(key)) > 0);
    CU_ASSERT_STRING_EQUAL(key, "backends/backd@h1");
    CU_ASSERT_EQUAL(ck_backend_decode(key, buf, (size_t)n, &t, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(t.node, "backd@h1");
    CU_ASSERT_EQUAL(t.pid, 123);
    const char *v = "{\"node\":\"backd@h1\",\"pid\":99999999999}";
    REJECT(ck_backend_decode(key, v, strlen(v), &t, why, sizeof(why)), "out of range");
    v = "{\"node\":\"backd/h1\",\"pid\":1}";
    REJECT(ck_backend_decode(key, v, strlen(v), &t, why, sizeof(why)), "'/'");
    char longn[200];
    memset(longn, 'n', sizeof(longn) - 1);
    longn[sizeof(longn) - 1] = '\0';
    char lv[300];
    snprintf(lv, sizeof(lv), "{\"node\":\"%s\",\"pid\":1}", longn);
    REJECT(ck_backend_decode(key, lv, strlen(lv), &t, why, sizeof(why)), "longer than");
    CU_ASSERT_EQUAL(ck_backend_key(longn, key, sizeof(key)), -1);
}

static void test_volume_owner(void)
{
    struct ck_volume v = { .vid = 0xfeedull, .size = 4294967296ull, .epoch = 7 }, tv;
    struct ck_owner o = { .node = "backd@h1", .vid = 0xfeedull, .epoch = 7 }, to;
    char buf[256], key[128], name[CK_NAME_MAX];
    int n = ck_volume_encode(&v, buf, sizeof(buf));
    CU_ASSERT(n > 0);
    CU_ASSERT(strstr(buf, "\"000000000000feed\"") != NULL);
    CU_ASSERT(ck_volume_key("vol1", key, sizeof(key)) > 0);
    CU_ASSERT_EQUAL(ck_volume_decode(key, buf, (size_t)n, name, &tv, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(name, "vol1");
    CU_ASSERT(tv.vid == v.vid && tv.size == v.size && tv.epoch == 7);
    REJECT(ck_volume_decode("volumes/a/b", buf, (size_t)n, name, &tv, why, sizeof(why)), "'/'");
    REJECT(ck_volume_decode("volumes/", buf, (size_t)n, name, &tv, why, sizeof(why)), "empty");
    n = ck_owner_encode(&o, buf, sizeof(buf));
    CU_ASSERT(n > 0);
    CU_ASSERT(ck_owner_key("vol1", key, sizeof(key)) > 0);
    CU_ASSERT_STRING_EQUAL(key, "owners/vol1");
    CU_ASSERT_EQUAL(ck_owner_decode(key, buf, (size_t)n, name, &to, why, sizeof(why)), 0);
    CU_ASSERT(to.vid == o.vid && to.epoch == 7 && !strcmp(to.node, o.node));
    const char *s = "{\"node\":\"backd@h1\",\"vid\":\"000000000000feed\",\"epoch\":\"7\"}";
    REJECT(ck_owner_decode("owners/x", s, strlen(s), name, &to, why, sizeof(why)), "owners/x: \"epoch\" is not a number");
    s = "{\"node\":\"backd@h1\",\"vid\":\"000000000000feeg\",\"epoch\":7}";
    REJECT(ck_owner_decode("owners/x", s, strlen(s), name, &to, why, sizeof(why)), "\"vid\" is not 16 hex digits");
    s = "{\"node\":\"backd@h1\",\"vid\":\"feed\",\"epoch\":7}";
    REJECT(ck_owner_decode("owners/x", s, strlen(s), name, &to, why, sizeof(why)), "\"vid\"");
    s = "{\"node\":\"backd@h1\",\"vid\":\"000000000000feed\",\"epoch\":1.5}";
    REJECT(ck_owner_decode("owners/x", s, strlen(s), name, &to, why, sizeof(why)), "\"epoch\" is not a number");
    /* A value with a NUL inside is not JSON we wrote. */
    REJECT(ck_owner_decode("owners/x", "{}\0x", 4, name, &to, why, sizeof(why)), "bytes after");
}

static void test_slab(void)
{
    struct ck_slab s = { .size = 8388608, .nrep = 2, .replicas = { "10.0.0.5:7480", "10.0.0.6:7480" } }, t;
    char buf[512], key[128], node[CK_NODE_MAX];
    uint64_t uid = 0;
    int n = ck_slab_encode(&s, buf, sizeof(buf));
    CU_ASSERT(n > 0);
    CU_ASSERT(ck_slab_key("backd@h1", 0xabcull, key, sizeof(key)) > 0);
    CU_ASSERT_STRING_EQUAL(key, "slabs/backd@h1/0000000000000abc");
    CU_ASSERT_EQUAL(ck_slab_decode(key, buf, (size_t)n, node, &uid, &t, why, sizeof(why)), 0);
    CU_ASSERT_STRING_EQUAL(node, "backd@h1");
    CU_ASSERT_EQUAL(uid, 0xabc);
    CU_ASSERT_EQUAL(t.size, s.size);
    CU_ASSERT_EQUAL(t.nrep, 2);
    CU_ASSERT_STRING_EQUAL(t.replicas[1], "10.0.0.6:7480");
    REJECT(ck_slab_decode("slabs/backd@h1/zz", buf, (size_t)n, node, &uid, &t, why, sizeof(why)), "uid");
    REJECT(ck_slab_decode("slabs/backd@h1/0000000000000abc/x", buf, (size_t)n, node, &uid, &t, why, sizeof(why)), "uid");
    REJECT(ck_slab_decode("slabs//0000000000000abc", buf, (size_t)n, node, &uid, &t, why, sizeof(why)), "node");
    const char *v = "{\"size\":1,\"replicas\":[]}";
    REJECT(ck_slab_decode(key, v, strlen(v), node, &uid, &t, why, sizeof(why)), "\"replicas\" holds 0");
    v = "{\"size\":1,\"replicas\":[\"a\",\"b\",\"c\",\"d\"]}";
    REJECT(ck_slab_decode(key, v, strlen(v), node, &uid, &t, why, sizeof(why)), "\"replicas\" holds 4");
    v = "{\"size\":1,\"replicas\":[\"a\",7]}";
    REJECT(ck_slab_decode(key, v, strlen(v), node, &uid, &t, why, sizeof(why)), "replica 1");
    v = "{\"size\":1,\"replicas\":\"a\"}";
    REJECT(ck_slab_decode(key, v, strlen(v), node, &uid, &t, why, sizeof(why)), "not an array");
}

static const struct cu_test tests[] = {
    { "server", test_server }, { "backend", test_backend }, { "volume_owner", test_volume_owner },
    { "slab", test_slab }, { NULL, NULL },
};
static const struct cu_suite suites[] = { { "ckeys", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
