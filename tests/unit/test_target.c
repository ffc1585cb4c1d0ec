/* test_target.c — the target-string parser (backend/volume/target.c): pure,
 * no loop, no pool.  Every failure must leave the outputs untouched and say
 * which target it was. */
#include "cu_main.h"
#include "target.h"

#include <stdint.h>
#include <string.h>

struct out {
    int rc;
    char name[VOLUME_NAME_MAX];
    uint64_t size;
    struct volume_opts opts;
    char err[256];
};

static struct out parse(const char *target)
{
    struct out o = { .size = 7, .opts = { .dedup = false, .quota_bytes = 3 } };
    strcpy(o.name, "untouched");
    o.rc = volume_parse_target_opts(target, o.name, sizeof(o.name), &o.size, &o.opts, o.err, sizeof(o.err));
    return o;
}

static void ok(const char *target, const char *name, uint64_t size, bool dedup)
{
    struct out o = parse(target);
    CU_ASSERT_EQUAL(o.rc, 0);
    CU_ASSERT_STRING_EQUAL(o.name, name);
    CU_ASSERT_EQUAL(o.size, size);
    CU_ASSERT_EQUAL(o.opts.dedup, dedup);
}

/* Fails, leaves the outputs alone, quotes the target and says why. */
static void bad(const char *target, const char *why)
{
    struct out o = parse(target);
    CU_ASSERT_EQUAL(o.rc, -1);
    CU_ASSERT_STRING_EQUAL(o.name, "untouched");
    CU_ASSERT_EQUAL(o.size, 7);
    CU_ASSERT_FALSE(o.opts.dedup);
    CU_ASSERT_EQUAL(o.opts.quota_bytes, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(o.err, target));
    if (!strstr(o.err, why))
        fprintf(stderr, "target '%s': message '%s' lacks '%s'\n", target, o.err, why);
    CU_ASSERT_PTR_NOT_NULL(strstr(o.err, why));
}

static void test_valid(void)
{
    ok("memx:vol1:2G", "vol1", 2ull << 30, true);
    ok("memx:a.b_c-D9:4096", "a.b_c-D9", 4096, true);
    ok("memx:v:4k", "v", 4096, true);
    ok("memx:v:4KiB", "v", 4096, true);
    ok("memx:v:512M", "v", 512ull << 20, true);
    ok("memx:v:1T", "v", 1ull << 40, true);
    /* The largest size that fits in 64 bits as T (a multiple of 4K). */
    ok("memx:v:16777215T", "v", 16777215ull << 40, true);
}

static void test_name(void)
{
    char t[128], name[64];
    memset(name, 'n', 63);
    name[63] = '\0';
    snprintf(t, sizeof(t), "memx:%s:1G", name);
    ok(t, name, 1ull << 30, true);          /* 63 characters: the longest */
    snprintf(t, sizeof(t), "memx:%sn:1G", name);
    bad(t, "volume name must be 1..63");    /* 64 */
    bad("memx::1G", "volume name must be 1..63");
    bad("memx:a/b:1G", "volume name");
    bad("memx:a b:1G", "volume name");
    bad("memx:vol\xc3\xa9:1G", "volume name");
    bad("memx:v:l:1G", "is not a size");    /* the name ends at the first colon */
}

static void test_namelen(void)
{
    /* The caller's buffer must hold the name and its NUL. */
    char name[4] = "xyz", err[128];
    uint64_t size = 7;
    CU_ASSERT_EQUAL(volume_parse_target("memx:vol1:1G", name, sizeof(name), &size, err, sizeof(err)), -1);
    CU_ASSERT_STRING_EQUAL(name, "xyz");
    CU_ASSERT_EQUAL(size, 7);
    CU_ASSERT_EQUAL(volume_parse_target("memx:vol:1G", name, sizeof(name), &size, err, sizeof(err)), 0);
    CU_ASSERT_STRING_EQUAL(name, "vol");
    CU_ASSERT_EQUAL(size, 1ull << 30);
}

static void test_sizes(void)
{
    bad("memx:v", "missing size");
    bad("memx:v:", "is not a size");
    bad("memx:v:0", "non-zero multiple of 4K");
    bad("memx:v:1000", "non-zero multiple of 4K");
    bad("memx:v:4097", "non-zero multiple of 4K");
    bad("memx:v:-4K", "is not a size");
    bad("memx:v: 4K", "is not a size");
    bad("memx:v:4X", "is not a size");
    bad("memx:v:1G junk", "is not a size");
    bad("memx:v:G", "is not a size");
}

static void test_overflow(void)
{
    bad("memx:v:99999999999999999999", "is not a size");       /* > 2^64 */
    bad("memx:v:18446744073709551616", "is not a size");       /* 2^64 */
    bad("memx:v:17179869184G", "is not a size");               /* 2^64 as G */
    bad("memx:v:16777216T", "is not a size");                  /* 2^64 as T */
    /* Longer than any size (31 characters): refused, not truncated. */
    bad("memx:v:000000000000000000000000000004096", "is not a size");
}

static void test_options(void)
{
    ok("memx:v:1G:dedup=no", "v", 1ull << 30, false);
    ok("memx:v:1G:dedup=yes", "v", 1ull << 30, true);
    ok("memx:v:1G:dedup=no:dedup=yes", "v", 1ull << 30, true);   /* the last one wins */
    ok("memx:v:1G:dedup=yes:dedup=no", "v", 1ull << 30, false);
    bad("memx:v:1G:", "unknown option ''");
    bad("memx:v:1G::dedup=no", "unknown option ''");
    bad("memx:v:1G:dedup=", "unknown option 'dedup='");
    bad("memx:v:1G:dedup=YES", "unknown option 'dedup=YES'");
    bad("memx:v:1G:dedup=nope", "unknown option");
    bad("memx:v:1G:cache=yes", "unknown option 'cache=yes'");
    bad("memx:v:1G:dedup=no:x", "unknown option 'x'");
    /* Without opts, options are still checked. */
    char name[64], err[128];
    uint64_t size;
    CU_ASSERT_EQUAL(volume_parse_target("memx:v:1G:dedup=no", name, sizeof(name), &size, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(volume_parse_target("memx:v:1G:bogus", name, sizeof(name), &size, err, sizeof(err)), -1);
}

static uint64_t quota_of(const char *target)
{
    struct out o = parse(target);
    CU_ASSERT_EQUAL(o.rc, 0);
    return o.rc == 0 ? o.opts.quota_bytes : UINT64_MAX;
}

static void test_quota(void)
{
    CU_ASSERT_EQUAL(quota_of("memx:vm1:8G"), 0);                        /* none by default */
    CU_ASSERT_EQUAL(quota_of("memx:vm1:8G:quota=2G"), 2ull << 30);
    CU_ASSERT_EQUAL(quota_of("memx:vm1:8G:quota=4096"), 4096);
    CU_ASSERT_EQUAL(quota_of("memx:vm1:8G:quota=8G"), 8ull << 30);      /* the whole volume */
    CU_ASSERT_EQUAL(quota_of("memx:vm1:8G:dedup=no:quota=1G"), 1ull << 30);
    CU_ASSERT_EQUAL(quota_of("memx:vm1:8G:quota=1G:quota=3G"), 3ull << 30);  /* the last one wins */
    ok("memx:vm1:8G:quota=1G:dedup=no", "vm1", 8ull << 30, false);
    bad("memx:vm1:8G:quota=", "quota '' is not a size");
    bad("memx:vm1:8G:quota", "unknown option 'quota'");
    bad("memx:vm1:8G:quota=0", "quota must be a non-zero multiple of 4K");
    bad("memx:vm1:8G:quota=1000", "quota must be a non-zero multiple of 4K");
    bad("memx:vm1:8G:quota=-4K", "quota '-4K' is not a size");
    bad("memx:vm1:8G:quota=2X", "quota '2X' is not a size");
    bad("memx:vm1:8G:quota=2G ", "is not a size");
    bad("memx:vm1:8G:quota=99999999999999999999", "is not a size");
    bad("memx:vm1:8G:quota=000000000000000000000000000004096", "is not a size");   /* too long */
    bad("memx:vm1:8G:quota=9G", "quota is larger than the volume");
    bad("memx:vm1:8G:QUOTA=1G", "unknown option 'QUOTA=1G'");
}

static void test_junk(void)
{
    bad("", "expected memx:<volume>:<size>");
    bad("memx", "expected memx:<volume>:<size>");
    bad("MEMX:v:1G", "expected memx:<volume>:<size>");
    bad("file:/tmp/x", "expected memx:<volume>:<size>");
    bad(" memx:v:1G", "expected memx:<volume>:<size>");
    bad("memx:", "missing size");
    bad("memx:::", "volume name");
    /* A tiny error buffer is filled, NUL-terminated, never overrun. */
    char name[64], err[9];
    uint64_t size;
    memset(err, 'x', sizeof(err));
    CU_ASSERT_EQUAL(volume_parse_target("nonsense", name, sizeof(name), &size, err, sizeof(err) - 1), -1);
    CU_ASSERT_EQUAL(err[7], '\0');
    CU_ASSERT_EQUAL(err[8], 'x');
}

static const struct cu_test tests[] = {
    { "valid", test_valid },       { "name", test_name },         { "namelen", test_namelen },
    { "sizes", test_sizes },       { "overflow", test_overflow }, { "options", test_options },
    { "junk", test_junk },         { "quota", test_quota },       { NULL, NULL },
};
static const struct cu_suite suites[] = { { "target", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
