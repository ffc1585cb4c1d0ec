#include "config.h"
#include "cu_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[64];

static int write_conf(const char *text)
{
    strcpy(path, "/tmp/memx-test-conf-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void test_sizes(void)
{
    uint64_t v;
    CU_ASSERT_EQUAL(memx_parse_size("4096", &v), 0); CU_ASSERT_EQUAL(v, 4096);
    CU_ASSERT_EQUAL(memx_parse_size("2G", &v), 0); CU_ASSERT_EQUAL(v, 2ull << 30);
    CU_ASSERT_EQUAL(memx_parse_size("512M", &v), 0); CU_ASSERT_EQUAL(v, 512ull << 20);
    CU_ASSERT_EQUAL(memx_parse_size("1GiB", &v), 0); CU_ASSERT_EQUAL(v, 1ull << 30);
    CU_ASSERT_EQUAL(memx_parse_size("4Q", &v), -1);
    CU_ASSERT_EQUAL(memx_parse_size("", &v), -1);
    CU_ASSERT_EQUAL(memx_parse_size("-1G", &v), -1);
    CU_ASSERT_EQUAL(memx_parse_size("99999999999T", &v), -1);
    char buf[32];
    CU_ASSERT_STRING_EQUAL(memx_format_size(2ull << 30, buf, sizeof(buf)), "2G");
    CU_ASSERT_STRING_EQUAL(memx_format_size(768ull << 20, buf, sizeof(buf)), "768M");
    CU_ASSERT_STRING_EQUAL(memx_format_size(1000, buf, sizeof(buf)), "1000");
}

static void test_hostport(void)
{
    char h[64], p[16];
    CU_ASSERT_EQUAL(memx_split_hostport("127.0.0.1:7480", h, sizeof(h), p, sizeof(p)), 0);
    CU_ASSERT_STRING_EQUAL(h, "127.0.0.1"); CU_ASSERT_STRING_EQUAL(p, "7480");
    CU_ASSERT_EQUAL(memx_split_hostport("[::1]:9", h, sizeof(h), p, sizeof(p)), 0);
    CU_ASSERT_STRING_EQUAL(h, "::1");
    CU_ASSERT_EQUAL(memx_split_hostport("host", h, sizeof(h), p, sizeof(p)), -1);
    CU_ASSERT_EQUAL(memx_split_hostport("host:0", h, sizeof(h), p, sizeof(p)), -1);
    CU_ASSERT_EQUAL(memx_split_hostport("host:70000", h, sizeof(h), p, sizeof(p)), -1);
    CU_ASSERT_EQUAL(memx_split_hostport(":80", h, sizeof(h), p, sizeof(p)), -1);
}

static void test_defaults_and_load(void)
{
    struct memx_config c;
    char err[256];
    memx_config_defaults(&c);
    CU_ASSERT_STRING_EQUAL(c.provider, "tcp;ofi_rxm");
    CU_ASSERT_EQUAL(c.replicas, 2);
    CU_ASSERT_STRING_EQUAL(c.device_type, "vbd");
    CU_ASSERT_EQUAL(c.max_ring_page_order, 4);
    CU_ASSERT_TRUE(c.dedup);
    CU_ASSERT_EQUAL(write_conf("[cluster]\nservers = 127.0.0.1:7001, 127.0.0.1:7002,127.0.0.1:7003\n"
                               "replicas = 3\n[memserver]\ncapacity = 64M\n[backend]\ndedup = no\n"
                               "device_type = vbd3\n"), 0);
    CU_ASSERT_EQUAL(memx_config_load(&c, path, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(c.nservers, 3);
    CU_ASSERT_STRING_EQUAL(c.servers[2], "127.0.0.1:7003");
    CU_ASSERT_EQUAL(c.replicas, 3);
    CU_ASSERT_EQUAL(c.capacity, 64ull << 20);
    CU_ASSERT_FALSE(c.dedup);
    CU_ASSERT_STRING_EQUAL(c.device_type, "vbd3");
    unlink(path);
}

static void expect_error(const char *text, const char *needle)
{
    struct memx_config c;
    char err[256] = "";
    memx_config_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(write_conf(text), 0);
    CU_ASSERT_EQUAL(memx_config_load(&c, path, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    CU_ASSERT_PTR_NULL(strchr(err, '\n'));
    unlink(path);
}

static void test_bad_values(void)
{
    expect_error("[memserver]\ncapacity = 4Q\n", "[memserver] capacity = '4Q': not a size");
    expect_error("[cluster]\nreplicas = 5\n", "[cluster] replicas = '5': must be an integer from 1 to 3");
    expect_error("[cluster]\nservers = nohost\n", "'nohost': not host:port");
    expect_error("[backend]\nplatform = kvm\n", "must be 'real' or 'sim'");
    expect_error("[backend]\nbogus = 1\n", "[backend] bogus: unknown key");
    expect_error("[backend]\ndedup = maybe\n", "must be yes or no");
    expect_error("[backend\n", "syntax error");
    expect_error("[cluster]\nslab_size = 1000\n", "multiple of 4K");
    expect_error("[backend]\nmax_indirect_segments = 513\n", "must be an integer from 0 to 512");
    expect_error("[backend]\nmax_indirect_segments = -1\n", "must be an integer from 0 to 512");
    struct memx_config c;
    char err[256];
    memx_config_defaults(&c);
    CU_ASSERT_EQUAL(memx_config_load(&c, "/nonexistent/memx.conf", err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open config"));
}

/* config.h's documented range of max_indirect_segments: 0 (off) .. 512, nothing between excluded. */
static void test_indirect_range(void)
{
    struct memx_config c;
    char err[256];
    memx_config_defaults(&c);
    CU_ASSERT_EQUAL(c.max_indirect_segments, 256);
    const char *ok[] = { "0", "1", "11", "512" };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        CU_ASSERT_EQUAL(memx_config_set(&c, "backend", "max_indirect_segments", ok[i], err, sizeof(err)), 0);
        CU_ASSERT_EQUAL(c.max_indirect_segments, atoi(ok[i]));
    }
    CU_ASSERT_EQUAL(memx_config_set(&c, "backend", "max_indirect_segments", "513", err, sizeof(err)), -1);
}

static void test_key_file(void)
{
    struct memx_config c;
    char err[256];
    uint8_t key[MEMX_KEY_BYTES];
    memx_config_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(write_conf("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"), 0);
    strcpy(c.key_file, path);
    CU_ASSERT_EQUAL(memx_config_load_key(&c, key, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(key[1], 0x11);
    CU_ASSERT_EQUAL(key[31], 0xff);
    unlink(path);
    CU_ASSERT_EQUAL_FATAL(write_conf("0011zz\n"), 0);
    strcpy(c.key_file, path);
    CU_ASSERT_EQUAL(memx_config_load_key(&c, key, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "hex characters"));
    unlink(path);
}

static const struct cu_test tests[] = {
    { "sizes", test_sizes },
    { "hostport", test_hostport },
    { "defaults_and_load", test_defaults_and_load },
    { "bad_values", test_bad_values },
    { "max_indirect_segments range", test_indirect_range },
    { "key_file", test_key_file },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "config", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
