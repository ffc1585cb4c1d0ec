/* Placement of slab replicas (backend/pool/place.c): pure, no processes.
 * The random source is the test's, so every choice is reproducible. */
#include "place.h"
#include "cu_main.h"

#define MB (1ull << 20)
#define NEED (8 * MB)

static unsigned seq[64], nseq, pos;

/* Returns seq[] in turn, then 0s. */
static int rnd(void) { return pos < nseq ? (int)seq[pos++] : 0; }
static void script(unsigned n, const unsigned *v)
{
    for (unsigned i = 0; i < n; i++)
        seq[i] = v[i];
    nseq = n;
    pos = 0;
}

static unsigned lcg_state = 1;
static int lcg(void)
{
    lcg_state = lcg_state * 1103515245u + 12345u;
    return (int)(lcg_state >> 16 & 0x7fff);
}

static struct place_srv up(uint64_t free_mb) { return (struct place_srv){ .up = true, .free = free_mb * MB }; }

/* Of the two drawn, the one with more free room wins, whichever is drawn first. */
static void test_more_free_of_two(void)
{
    struct place_srv s[3] = { up(100), up(300), up(200) };
    script(2, (unsigned[]){ 0, 1 });
    CU_ASSERT_EQUAL(place_new_replica(s, 3, NULL, 0, NEED, rnd), 1);
    script(2, (unsigned[]){ 1, 0 });
    CU_ASSERT_EQUAL(place_new_replica(s, 3, NULL, 0, NEED, rnd), 1);
    script(2, (unsigned[]){ 0, 2 });
    CU_ASSERT_EQUAL(place_new_replica(s, 3, NULL, 0, NEED, rnd), 2);
    script(2, (unsigned[]){ 0, 0 });                    /* the same one twice: it */
    CU_ASSERT_EQUAL(place_new_replica(s, 3, NULL, 0, NEED, rnd), 0);
    /* Draws index the candidates, not the servers: with server 1 excluded,
     * draws 0 and 1 are servers 0 and 2. */
    struct place_rep r[1] = { { .srv = 1, .ok = true } };
    script(2, (unsigned[]){ 0, 1 });
    CU_ASSERT_EQUAL(place_new_replica(s, 3, r, 1, NEED, rnd), 2);
    CU_ASSERT_EQUAL(pos, 2);                            /* exactly two draws */
}

/* Down, full, draining and too-small servers never get a replica. */
static void test_excluded(void)
{
    struct place_srv s[5] = { up(100), up(100), up(100), up(100), up(100) };
    s[0].up = false;
    s[1].full = true;
    s[2].draining = true;
    s[3].free = NEED - 1;
    for (int i = 0; i < 200; i++)
        CU_ASSERT_EQUAL(place_new_replica(s, 5, NULL, 0, NEED, lcg), 4);
    s[4].up = false;
    CU_ASSERT_EQUAL(place_new_replica(s, 5, NULL, 0, NEED, lcg), -1);
    CU_ASSERT_EQUAL(place_rebuild_target(s, 5, NULL, 0, NEED, lcg), -1);
    s[3].free = NEED;                                   /* exactly enough room */
    CU_ASSERT_EQUAL(place_rebuild_target(s, 5, NULL, 0, NEED, lcg), 3);
}

/* A late server is passed over while another can take the replica, and
 * taken when every one is late (an emulated or overloaded host): refusing
 * them all failed guest writes with ENOSPC under Xen-in-QEMU. */
static void test_late_last(void)
{
    struct place_srv s[3] = { up(100), up(100), up(100) };
    s[0].late = s[1].late = true;
    for (int i = 0; i < 100; i++)
        CU_ASSERT_EQUAL(place_new_replica(s, 3, NULL, 0, NEED, lcg), 2);
    s[2].late = true;
    int got = place_new_replica(s, 3, NULL, 0, NEED, lcg);
    CU_ASSERT(got >= 0 && got < 3);
    CU_ASSERT(place_rebuild_target(s, 3, NULL, 0, NEED, lcg) >= 0);
}

/* Placing R replicas one after another never puts two on one server, and
 * runs out (-1) once every usable server holds one. */
static void test_never_two_on_one_server(void)
{
    struct place_srv s[6] = { up(50), up(900), up(400), up(400), up(10), up(700) };
    s[4].free = 0;      /* full in all but name */
    for (int round = 0; round < 500; round++) {
        struct place_rep r[6];
        int n = 0, t;
        while ((t = place_new_replica(s, 6, r, n, NEED, lcg)) >= 0) {
            for (int i = 0; i < n; i++)
                CU_ASSERT_NOT_EQUAL_FATAL(r[i].srv, t);
            /* A placeholder (allocation in flight) counts as held too. */
            r[n] = (struct place_rep){ .srv = t, .ok = n % 2 == 0 };
            n++;
        }
        CU_ASSERT_EQUAL(n, 5);
    }
}

/* A rebuild never targets a server with a good copy, but may reuse the
 * server of a stale one; the new copy takes a stale slot, else a draining
 * one, else a new one. */
static void test_rebuild_target(void)
{
    struct place_srv s[3] = { up(100), up(100), up(100) };
    struct place_rep r[2] = { { .srv = 0, .ok = true }, { .srv = 1, .ok = false } };
    for (int i = 0; i < 200; i++) {
        int t = place_rebuild_target(s, 3, r, 2, NEED, lcg);
        CU_ASSERT(t == 1 || t == 2);
        CU_ASSERT_NOT_EQUAL(place_new_replica(s, 3, r, 2, NEED, lcg), 1);   /* new slabs: any copy excludes */
    }
    s[2].up = false;
    CU_ASSERT_EQUAL(place_rebuild_target(s, 3, r, 2, NEED, lcg), 1);
    CU_ASSERT_EQUAL(place_new_replica(s, 3, r, 2, NEED, lcg), -1);
    CU_ASSERT_EQUAL(place_rebuild_slot(s, r, 2, 3), 1);            /* the stale one */

    /* Drain: both copies good, server 0 draining: its slot is replaced, and
     * it is no target itself. */
    struct place_srv d[3] = { up(100), up(100), up(100) };
    d[0].draining = true;
    struct place_rep g[2] = { { .srv = 0, .ok = true }, { .srv = 1, .ok = true } };
    CU_ASSERT_EQUAL(place_rebuild_slot(d, g, 2, 3), 0);
    for (int i = 0; i < 50; i++)
        CU_ASSERT_EQUAL(place_rebuild_target(d, 3, g, 2, NEED, lcg), 2);
    /* Nothing stale, nothing draining: a new slot while there is room. */
    d[0].draining = false;
    CU_ASSERT_EQUAL(place_rebuild_slot(d, g, 2, 3), 2);
    struct place_rep full[3] = { { 0, true }, { 1, true }, { 2, true } };
    CU_ASSERT_EQUAL(place_rebuild_slot(d, full, 3, 3), -1);
    CU_ASSERT_EQUAL(place_rebuild_target(d, 3, full, 3, NEED, lcg), -1);
}

/* Over many draws both candidates are used, the one with more room more. */
static void test_balance(void)
{
    struct place_srv s[2] = { up(100), up(200) };
    int hits[2] = { 0, 0 };
    for (int i = 0; i < 4000; i++)
        hits[place_new_replica(s, 2, NULL, 0, NEED, lcg)]++;
    CU_ASSERT(hits[0] > 0 && hits[1] > 0);
    CU_ASSERT(hits[1] > 2 * hits[0]);       /* it wins unless both draws hit the other (1 in 4) */
}

/* Any number of servers takes part: with 100 equal candidates every one is
 * chosen over enough draws (placement once looked at the first 64 only),
 * and a lone qualifying server at index 90 is found. */
static void test_many_servers(void)
{
    enum { N = 100 };
    static struct place_srv s[N];
    int hits[N] = { 0 };
    for (int i = 0; i < N; i++)
        s[i] = up(100);
    for (int i = 0; i < 20000; i++)
        hits[place_new_replica(s, N, NULL, 0, NEED, lcg)]++;
    int unused = 0;
    for (int i = 0; i < N; i++)
        unused += hits[i] == 0;
    CU_ASSERT_EQUAL(unused, 0);
    for (int i = 0; i < N; i++)
        s[i].up = i == 90;
    CU_ASSERT_EQUAL(place_new_replica(s, N, NULL, 0, NEED, lcg), 90);
    struct place_rep on90 = { .srv = 90, .ok = true };
    CU_ASSERT_EQUAL(place_rebuild_target(s, N, &on90, 1, NEED, lcg), -1);
}

static const struct cu_test tests[] = {
    { "any number of servers", test_many_servers },
    { "a late server only when every one is late", test_late_last },
    { "more free of two", test_more_free_of_two },
    { "down, full, draining, small excluded", test_excluded },
    { "never two replicas on one server", test_never_two_on_one_server },
    { "rebuild target and slot", test_rebuild_target },
    { "balance", test_balance },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "place", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
