/* test_ring.c — ring.c's index arithmetic and event hold-off, over a local
 * page and a fake platform (this file defines the xp_* calls ring.c uses), so
 * every index the frontend controls can be set directly. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "cu_main.h"
#include "ports.h"
#include "ring.h"
#include "ringstate.h"
#include "xenplat.h"

#include <stdio.h>
#include <unistd.h>

static uint8_t page[4096] __attribute__((aligned(4096)));
static int notifies, binds, unmaps;

void *xp_gnt_map(struct xp *xp, uint16_t domid, uint32_t count, const uint32_t *refs, bool writable)
{
    return refs[0] == 13 ? page : NULL;
}
int xp_gnt_unmap(struct xp *xp, void *addr, uint32_t count) { unmaps++; return 0; }
int xp_evtchn_bind_interdomain(struct xp *xp, uint16_t domid, uint32_t remote_port)
{
    binds++;
    return remote_port == 666 ? -1 : 9;
}
int xp_evtchn_unbind(struct xp *xp, uint32_t port) { binds--; return 0; }
int xp_evtchn_notify(struct xp *xp, uint32_t port) { notifies++; return 0; }

struct hdr { uint32_t req_prod, req_event, rsp_prod, rsp_event; };
static struct hdr *H(void) { return (struct hdr *)page; }

static void fresh(struct ring *r)
{
    memset(page, 0, sizeof(page));
    H()->req_event = H()->rsp_event = 1;      /* SHARED_RING_INIT */
    uint32_t ref = 13;
    char err[128];
    CU_ASSERT_EQUAL_FATAL(ring_map(r, NULL, 1, BLKIF_ABI_X86_64, &ref, 1, 4, err, sizeof(err)), 0);
    notifies = 0;
}

static void put_req(uint32_t idx, uint64_t id)
{
    struct blkif_x86_64_request q = { .operation = BLKIF_OP_READ, .nr_segments = 1, .id = id };
    memcpy(page + 64 + (idx & 31) * 112, &q, sizeof(q));
}

static void test_map_errors(void)
{
    struct ring r;
    char err[128];
    uint32_t bad = 14, good = 13;
    CU_ASSERT_EQUAL(ring_map(&r, NULL, 1, BLKIF_ABI_X86_64, &bad, 1, 4, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "ring page"));
    unmaps = 0;
    CU_ASSERT_EQUAL(ring_map(&r, NULL, 1, BLKIF_ABI_X86_64, &good, 1, 666, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "event channel"));
    CU_ASSERT_EQUAL(unmaps, 1);                 /* nothing left mapped */
    CU_ASSERT_EQUAL(binds, 1);                  /* the failed bind only */
    binds = 0;
}

static void test_batch_and_full(void)
{
    struct ring r;
    struct blkif_req q;
    fresh(&r);
    CU_ASSERT_EQUAL(r.size, 32);
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), 0);
    for (uint32_t i = 0; i < 32; i++)
        put_req(i, 100 + i);
    H()->req_prod = 32;
    for (uint32_t i = 0; i < 32; i++) {
        CU_ASSERT_EQUAL_FATAL(ring_get_request(&r, &q), 1);
        CU_ASSERT_EQUAL(q.id, 100 + i);
    }
    CU_ASSERT_EQUAL(ring_inflight(&r), 32);
    /* Every slot holds an unanswered request: nothing more may be taken, even
     * if the frontend claims more (it cannot have room for them). */
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), 0);
    ring_put_response(&r, 100, BLKIF_OP_READ, 0);
    CU_ASSERT(ring_push_responses(&r));          /* rsp_event 1: the frontend waits for one */
    CU_ASSERT_EQUAL(H()->rsp_prod, 1);
    put_req(32, 200);
    H()->req_prod = 33;
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), 1);
    CU_ASSERT_EQUAL(q.id, 200);
    ring_unmap(&r);
}

static void test_overrun(void)
{
    struct ring r;
    struct blkif_req q;
    fresh(&r);
    H()->req_prod = 33;                           /* more than the ring holds */
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), -1);
    ring_unmap(&r);

    fresh(&r);
    put_req(0, 1);
    put_req(1, 2);
    H()->req_prod = 2;
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), 1);
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), 1);
    H()->req_prod = 1;                            /* moved backwards behind req_cons */
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), -1);
    H()->req_prod = 0xfffffff0u;                  /* wrapped far ahead */
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), -1);
    ring_unmap(&r);
}

static void test_wraparound(void)
{
    struct ring r;
    struct blkif_req q;
    memset(page, 0, sizeof(page));
    /* A resumed frontend near the 2^32 wrap: we start where its responses end. */
    H()->req_prod = H()->rsp_prod = 0xfffffffeu;
    uint32_t ref = 13;
    char err[64];
    CU_ASSERT_EQUAL_FATAL(ring_map(&r, NULL, 1, BLKIF_ABI_X86_64, &ref, 1, 4, err, sizeof(err)), 0);
    for (uint32_t i = 0; i < 4; i++)
        put_req(0xfffffffeu + i, 50 + i);
    H()->req_prod = 2;
    for (uint32_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL_FATAL(ring_get_request(&r, &q), 1);
        CU_ASSERT_EQUAL(q.id, 50 + i);
    }
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), 0);
    ring_unmap(&r);
}

static void test_event_holdoff(void)
{
    struct ring r;
    struct blkif_req q;
    fresh(&r);
    /* Nothing pending: final check asks for an event on the next request. */
    CU_ASSERT(!ring_final_check(&r));
    CU_ASSERT_EQUAL(H()->req_event, 1);
    put_req(0, 7);
    H()->req_prod = 1;
    CU_ASSERT(ring_final_check(&r));              /* a request raced in */
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), 1);
    CU_ASSERT(!ring_final_check(&r));
    CU_ASSERT_EQUAL(H()->req_event, 2);

    /* Responses: notify only when the frontend's rsp_event lies in the pushed range. */
    H()->rsp_event = 5;
    ring_put_response(&r, 7, BLKIF_OP_READ, 0);
    CU_ASSERT(!ring_push_responses(&r));         /* rsp_prod 1 < 5: the frontend is polling */
    CU_ASSERT_EQUAL(notifies, 0);
    CU_ASSERT(!ring_push_responses(&r));         /* nothing new */
    H()->rsp_event = 2;
    put_req(1, 8);
    H()->req_prod = 2;
    CU_ASSERT_EQUAL(ring_get_request(&r, &q), 1);
    ring_put_response(&r, 8, BLKIF_OP_READ, 0);
    CU_ASSERT(ring_push_responses(&r));
    CU_ASSERT_EQUAL(notifies, 1);
    CU_ASSERT_EQUAL(H()->rsp_prod, 2);
    ring_unmap(&r);
}

/* The port -> queue table the event handler indexes (vbd_kick_port). */
static void test_port_table(void)
{
    struct port_table *pt = port_table_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(pt);
    int a, b;
    CU_ASSERT_PTR_NULL(port_table_get(pt, 5));          /* empty */
    CU_ASSERT_EQUAL(port_table_set(pt, 5, &a), 0);
    CU_ASSERT_EQUAL(port_table_set(pt, 1000, &b), 0);   /* grows past its first size */
    CU_ASSERT_PTR_EQUAL(port_table_get(pt, 5), &a);
    CU_ASSERT_PTR_EQUAL(port_table_get(pt, 1000), &b);
    CU_ASSERT_PTR_NULL(port_table_get(pt, 999));
    CU_ASSERT_PTR_NULL(port_table_get(pt, -1));
    CU_ASSERT_PTR_NULL(port_table_get(pt, 1 << 20));
    port_table_clear(pt, 5);
    port_table_clear(pt, 1 << 20);                      /* out of range: harmless */
    CU_ASSERT_PTR_NULL(port_table_get(pt, 5));
    CU_ASSERT_PTR_EQUAL(port_table_get(pt, 1000), &b);
    port_table_free(pt);
    CU_ASSERT_EQUAL(port_table_set(NULL, 3, &a), 0);   /* no table: accepted, forgotten */
    CU_ASSERT_PTR_NULL(port_table_get(NULL, 3));
}

/* ---- ringstate.c: resuming a ring after the backend died (issue 13 item 9) ---- */

static void *ent_at(uint32_t idx) { return page + 64 + (idx & 31) * 112; }

static void rs_put_req(uint32_t idx, uint64_t id)
{
    struct blkif_x86_64_request q = { .operation = BLKIF_OP_READ, .nr_segments = 1, .id = id,
                                      .sector_number = 8 * id };
    q.seg[0] = (struct blkif_wire_seg){ .gref = 7, .first_sect = 0, .last_sect = 7 };
    memcpy(ent_at(idx), &q, sizeof(q));
}

static uint64_t rsp_id(uint32_t idx)
{
    uint64_t id;
    memcpy(&id, ent_at(idx), sizeof(id));
    return id;
}

/* Five requests taken; the 5th and 3rd answered and published (out of
 * order), the 1st answered and not published when the process "dies".  The
 * successor must replay exactly the 1st, 2nd and 4th, in that order, take
 * nothing from the slot holding the unpublished answer, and after its own
 * answers the guest sees each id once. */
static void test_ringstate_resume(void)
{
    char path[] = "/tmp/memx-ringstate-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    unlink(path);               /* rs_open creates it */
    struct ring r;
    fresh(&r);
    char why[200];
    int n;
    struct ringstate *s = rs_open(path, &r, 13, &n, why, sizeof(why));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(n, 0);
    for (uint32_t i = 0; i < 5; i++)
        rs_put_req(i, 100 + i);
    H()->req_prod = 5;
    int ent[5];
    uint8_t raw[112];
    struct blkif_req req;
    for (uint32_t i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL_FATAL(ring_get_request_raw(&r, &req, raw), 1);
        CU_ASSERT_EQUAL(req.id, 100 + i);
        ent[i] = rs_take(s, i, raw);
        CU_ASSERT(ent[i] >= 0);
    }
    rs_answer(s, ent[4], r.rsp_prod_pvt);
    ring_put_response(&r, 104, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    rs_answer(s, ent[2], r.rsp_prod_pvt);
    ring_put_response(&r, 102, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    uint32_t old = r.rsp_prod_pub;
    ring_push_responses(&r);
    rs_published(s, old, r.rsp_prod_pub);
    rs_answer(s, ent[0], r.rsp_prod_pvt);
    ring_put_response(&r, 100, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    CU_ASSERT_EQUAL(H()->rsp_prod, 2);      /* the crash: slot 2 holds an unpublished answer */

    struct ring r2;                         /* the successor maps the same ring */
    uint32_t ref = 13;
    CU_ASSERT_EQUAL_FATAL(ring_map(&r2, NULL, 1, BLKIF_ABI_X86_64, &ref, 1, 4, why, sizeof(why)), 0);
    struct ringstate *s2 = rs_open(path, &r2, 13, &n, why, sizeof(why));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    static const uint64_t want[3] = { 100, 101, 103 };
    for (int k = 0; k < 3; k++) {
        int e = rs_replay_ent(s2, (unsigned)k);
        blkif_abi_get_request(BLKIF_ABI_X86_64, rs_raw(s2, e), &req);
        CU_ASSERT_EQUAL(req.id, want[k]);
        CU_ASSERT_EQUAL(req.operation, BLKIF_OP_READ);
        rs_answer(s2, e, r2.rsp_prod_pvt);
        ring_put_response(&r2, req.id, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    }
    CU_ASSERT_EQUAL(r2.req_cons, 5);
    CU_ASSERT_EQUAL(ring_get_request(&r2, &req), 0);   /* nothing new, nothing read from slot 2 */
    old = r2.rsp_prod_pub;
    ring_push_responses(&r2);
    rs_published(s2, old, r2.rsp_prod_pub);
    CU_ASSERT_EQUAL(H()->rsp_prod, 5);
    unsigned seen = 0;
    for (uint32_t i = 0; i < 5; i++) {
        uint64_t id = rsp_id(i);
        CU_ASSERT(id >= 100 && id <= 104);
        if (id >= 100 && id <= 104) {
            CU_ASSERT_FALSE(seen & (1u << (id - 100)));     /* answered once */
            seen |= 1u << (id - 100);
        }
    }
    CU_ASSERT_EQUAL(seen, 0x1f);
    rs_close(s, false);
    ring_unmap(&r2);

    /* A fresh ring (the frontend reconnected) over the old file: not resumed. */
    struct ring r3;
    fresh(&r3);
    struct ringstate *s3 = rs_open(path, &r3, 13, &n, why, sizeof(why));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s3);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT(why[0] != 0);
    CU_ASSERT_EQUAL(r3.req_cons, 0);
    rs_close(s3, false);
    rs_close(s2, true);
    ring_unmap(&r3);
    ring_unmap(&r);
    CU_ASSERT_EQUAL(access(path, F_OK), -1);
}

/* A crash inside rs_take (the entry's state stored, the header's req_cons
 * not yet), a successor that serves on, then a second crash: the third
 * process must still replay exactly the request in flight.  The offset
 * written is entry 1's state in the file (rs_hdr is 10 words, rs_ent starts
 * with state): the crash point, as the successor's mmap sees it. */
static void test_ringstate_double_crash(void)
{
    char path[] = "/tmp/memx-ringstate-2XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    close(fd);
    unlink(path);
    struct ring r;
    fresh(&r);
    char why[200];
    int n;
    struct ringstate *s = rs_open(path, &r, 13, &n, why, sizeof(why));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    for (uint32_t i = 0; i < 3; i++)
        rs_put_req(i, 100 + i);
    H()->req_prod = 3;
    uint8_t raw[112];
    struct blkif_req req;
    CU_ASSERT_EQUAL_FATAL(ring_get_request_raw(&r, &req, raw), 1);
    rs_take(s, 0, raw);
    CU_ASSERT_EQUAL_FATAL(ring_get_request_raw(&r, &req, raw), 1);
    rs_take(s, 1, raw);
    /* the crash came between rs_take's state store and its req_cons store */
    uint32_t one = 1;
    int f = open(path, O_RDWR);
    CU_ASSERT_EQUAL_FATAL(pwrite(f, &one, 4, 28), 4);
    close(f);
    rs_close(s, false);

    uint32_t ref = 13;
    struct ring r2;
    CU_ASSERT_EQUAL_FATAL(ring_map(&r2, NULL, 1, BLKIF_ABI_X86_64, &ref, 1, 4, why, sizeof(why)), 0);
    struct ringstate *s2 = rs_open(path, &r2, 13, &n, why, sizeof(why));
    CU_ASSERT_EQUAL_FATAL(n, 1);
    int e = rs_replay_ent(s2, 0);
    blkif_abi_get_request(BLKIF_ABI_X86_64, rs_raw(s2, e), &req);
    rs_answer(s2, e, r2.rsp_prod_pvt);
    ring_put_response(&r2, req.id, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    uint32_t old = r2.rsp_prod_pub; ring_push_responses(&r2); rs_published(s2, old, r2.rsp_prod_pub);
    /* request 1 taken again (the ring still had it), answered, published */
    CU_ASSERT_EQUAL_FATAL(ring_get_request_raw(&r2, &req, raw), 1);
    CU_ASSERT_EQUAL(req.id, 101);
    e = rs_take(s2, 1, raw);
    rs_answer(s2, e, r2.rsp_prod_pvt);
    ring_put_response(&r2, req.id, BLKIF_OP_READ, BLKIF_RSP_OKAY);
    old = r2.rsp_prod_pub; ring_push_responses(&r2); rs_published(s2, old, r2.rsp_prod_pub);
    /* request 2 taken, in flight: second crash */
    CU_ASSERT_EQUAL_FATAL(ring_get_request_raw(&r2, &req, raw), 1);
    CU_ASSERT_EQUAL(req.id, 102);
    rs_take(s2, 2, raw);
    rs_close(s2, false);

    struct ring r3;
    CU_ASSERT_EQUAL_FATAL(ring_map(&r3, NULL, 1, BLKIF_ABI_X86_64, &ref, 1, 4, why, sizeof(why)), 0);
    struct ringstate *s3 = rs_open(path, &r3, 13, &n, why, sizeof(why));
    CU_ASSERT_EQUAL(n, 1);
    rs_close(s3, true);
    ring_unmap(&r3);
    ring_unmap(&r2);
    ring_unmap(&r);
}


/* A frontend never sees more than the published responses, so a req_prod
 * more than a ring ahead of rsp_prod (published) is corrupt: accepting it
 * would let the backend take a slot holding its own unpublished answer. */
static void test_unpublished_not_requests(void)
{
    struct ring r;
    fresh(&r);
    struct blkif_req req;
    for (uint32_t i = 0; i < 32; i++)
        put_req(i, 1000 + i);
    H()->req_prod = 32;
    for (uint32_t i = 0; i < 32; i++)
        CU_ASSERT_EQUAL_FATAL(ring_get_request(&r, &req), 1);
    for (uint32_t i = 0; i < 32; i++)
        ring_put_response(&r, 1000 + i, BLKIF_OP_READ, BLKIF_RSP_OKAY);   /* completions, push deferred */
    CU_ASSERT_EQUAL(H()->rsp_prod, 0);
    H()->req_prod = 64;            /* a frontend that never saw a response */
    int got = ring_get_request(&r, &req);
    CU_ASSERT_EQUAL(got, -1);
    ring_unmap(&r);
}

static const struct cu_test ring_tests[] = {
    { "map errors unwind", test_map_errors },
    { "batch, full ring", test_batch_and_full },
    { "req_prod overrun and rewind", test_overrun },
    { "index wraparound", test_wraparound },
    { "event hold-off both ways", test_event_holdoff },
    { "port -> queue table", test_port_table },
    { "ring state: resume after a crash between answer and push", test_ringstate_resume },
    { "ring state: a crash inside take, then a second crash", test_ringstate_double_crash },
    { "req_prod past the published responses is corrupt", test_unpublished_not_requests },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "ring", NULL, NULL, ring_tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
