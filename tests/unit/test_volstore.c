/* test_volstore.c — the memory server's volume records (lib/net/volstore.c):
 * claims and fencing by epoch, newest record wins, slab reference counts,
 * listing in batches. */
#include "cu_main.h"
#include "proto.h"
#include "volstore.h"

#include <errno.h>
#include <string.h>

/* Encodes records the way META_PUT carries them. */
static const uint8_t *raw_of(const struct proto_rec *recs, uint32_t n)
{
    static uint8_t buf[PROTO_MSG_MAX];
    static struct proto_msg d;
    struct proto_msg m = { .type = PROTO_META_PUT, .req_id = 1 };
    m.u.meta.vid = 9;
    m.u.meta.epoch = 1;
    m.u.meta.n = n;
    m.u.meta.recs = recs;
    size_t len = proto_encode(&m, buf, sizeof(buf));
    char why[160];
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(proto_decode(buf, len, &d, why, sizeof(why)), 0);
    return d.u.meta.raw;
}

static void test_claims(void)
{
    struct volstore *vs = volstore_new();
    uint64_t e, sz, n;
    /* Asking about an unknown volume changes nothing. */
    CU_ASSERT_EQUAL(volstore_claim(vs, 9, "swap", 1 << 20, 0, 1, &e, &sz, &n), 0);
    CU_ASSERT_EQUAL(e, 0);
    CU_ASSERT_EQUAL(volstore_volumes(vs), 0);
    CU_ASSERT_EQUAL(volstore_claim(vs, 9, "swap", 1 << 20, 1, 1, &e, &sz, &n), 0);
    CU_ASSERT_EQUAL(e, 1);
    /* The same owner again (a reconnect): fine.  Another owner at that epoch: no. */
    CU_ASSERT_EQUAL(volstore_claim(vs, 9, "swap", 1 << 20, 1, 1, &e, &sz, &n), 0);
    CU_ASSERT_EQUAL(volstore_claim(vs, 9, "swap", 1 << 20, 1, 2, &e, &sz, &n), ESTALE);
    /* Another size, or another name behind the same id: refused. */
    CU_ASSERT_EQUAL(volstore_claim(vs, 9, "swap", 2 << 20, 5, 2, &e, &sz, &n), EEXIST);
    CU_ASSERT_EQUAL(volstore_claim(vs, 9, "other", 1 << 20, 5, 2, &e, &sz, &n), EEXIST);
    /* A higher epoch takes it; the old owner is fenced. */
    CU_ASSERT_EQUAL(volstore_claim(vs, 9, "swap", 1 << 20, 2, 2, &e, &sz, &n), 0);
    CU_ASSERT_EQUAL(volstore_check(vs, 9, 1), ESTALE);
    CU_ASSERT_EQUAL(volstore_check(vs, 9, 2), 0);
    CU_ASSERT_EQUAL(volstore_check(vs, 77, 1), 0);          /* unknown here: accepted */
    struct proto_rec r = { .lpn = 1, .seq = 1, .kind = PROTO_REC_ZERO };
    CU_ASSERT_EQUAL(volstore_put(vs, 9, 1, raw_of(&r, 1), 1), ESTALE);
    CU_ASSERT_EQUAL(volstore_put(vs, 9, 2, raw_of(&r, 1), 1), 0);
    CU_ASSERT_EQUAL(volstore_drop(vs, 9, 1), ESTALE);
    CU_ASSERT_EQUAL(volstore_drop(vs, 9, 2), 0);
    CU_ASSERT_EQUAL(volstore_drop(vs, 9, 2), ENOENT);
    volstore_free(vs);
}

static void test_newest_wins_and_refs(void)
{
    struct volstore *vs = volstore_new();
    struct proto_rec a[2] = {
        { .lpn = 5, .seq = 10, .uid = 100, .page = 1, .kind = PROTO_REC_PAGE },
        { .lpn = 6, .seq = 11, .uid = 100, .page = 2, .kind = PROTO_REC_PAGE },
    };
    CU_ASSERT_EQUAL(volstore_put(vs, 9, 1, raw_of(a, 2), 2), 0);
    CU_ASSERT_EQUAL(volstore_refs(vs, 100), 2);
    /* An older record arriving late is ignored; a newer one moves the page. */
    struct proto_rec old = { .lpn = 5, .seq = 3, .uid = 200, .page = 7, .kind = PROTO_REC_PAGE };
    CU_ASSERT_EQUAL(volstore_put(vs, 9, 1, raw_of(&old, 1), 1), 0);
    CU_ASSERT_EQUAL(volstore_refs(vs, 200), 0);
    struct proto_rec nw = { .lpn = 5, .seq = 12, .uid = 200, .page = 7, .kind = PROTO_REC_PAGE };
    CU_ASSERT_EQUAL(volstore_put(vs, 9, 1, raw_of(&nw, 1), 1), 0);
    CU_ASSERT_EQUAL(volstore_refs(vs, 100), 1);
    CU_ASSERT_EQUAL(volstore_refs(vs, 200), 1);
    /* A put under a newer epoch (the new owner's first) moves the volume on. */
    struct proto_rec z = { .lpn = 6, .seq = 2ull << 40 | 1, .kind = PROTO_REC_ZERO };
    CU_ASSERT_EQUAL(volstore_put(vs, 9, 2, raw_of(&z, 1), 1), 0);
    CU_ASSERT_EQUAL(volstore_refs(vs, 100), 0);
    CU_ASSERT_EQUAL(volstore_check(vs, 9, 1), ESTALE);
    struct proto_rec out[4];
    uint64_t cursor = 0;
    int n = volstore_list(vs, 9, &cursor, out, 4);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(cursor, 0);
    for (int i = 0; i < n; i++)
        CU_ASSERT(out[i].lpn == 5 ? out[i].uid == 200 && out[i].seq == 12
                                  : out[i].lpn == 6 && out[i].kind == PROTO_REC_ZERO);
    /* Dropping the volume releases its references. */
    CU_ASSERT_EQUAL(volstore_drop(vs, 9, 2), 0);
    CU_ASSERT_EQUAL(volstore_refs(vs, 200), 0);
    CU_ASSERT_EQUAL(volstore_list(vs, 9, &cursor, out, 4), -1);
    volstore_free(vs);
}

/* Thousands of records come back complete, a batch at a time. */
static void test_list_batches(void)
{
    struct volstore *vs = volstore_new();
    enum { N = 5000 };
    static struct proto_rec recs[PROTO_REC_MAX];
    for (uint32_t base = 0; base < N; base += PROTO_REC_MAX) {
        uint32_t k = N - base < PROTO_REC_MAX ? N - base : PROTO_REC_MAX;
        for (uint32_t i = 0; i < k; i++)
            recs[i] = (struct proto_rec){ .lpn = base + i, .seq = 1, .uid = 1 + (base + i) % 7,
                                          .page = base + i, .kind = PROTO_REC_PAGE };
        CU_ASSERT_EQUAL_FATAL(volstore_put(vs, 9, 1, raw_of(recs, k), k), 0);
    }
    static unsigned char seen[N];
    memset(seen, 0, sizeof(seen));
    uint64_t cursor = 0;
    int total = 0, calls = 0;
    do {
        int n = volstore_list(vs, 9, &cursor, recs, PROTO_REC_MAX);
        CU_ASSERT_FATAL(n >= 0);
        for (int i = 0; i < n; i++) {
            CU_ASSERT_FATAL(recs[i].lpn < N);
            CU_ASSERT_EQUAL(seen[recs[i].lpn], 0);
            seen[recs[i].lpn] = 1;
            CU_ASSERT_EQUAL(recs[i].page, recs[i].lpn);
        }
        total += n;
    } while (cursor && ++calls < 1000);
    CU_ASSERT_EQUAL(total, N);
    uint64_t refs = 0;
    for (uint64_t u = 1; u <= 7; u++)
        refs += volstore_refs(vs, u);
    CU_ASSERT_EQUAL(refs, N);
    volstore_free(vs);
}

static const struct cu_test tests[] = {
    { "claims and fencing by epoch", test_claims },
    { "newest record wins; slab references follow", test_newest_wins_and_refs },
    { "listing in batches returns every record once", test_list_batches },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "volstore", NULL, NULL, tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
