/* test_memd_meta.c — the memory server's answers about volumes
 * (memserver/memd_meta.c) without a fabric or a process: each request goes
 * through proto_encode/proto_decode as on the wire, and so does each reply. */
#include "cu_main.h"
#include "log.h"
#include "memd_meta.h"
#include "memd_owners.h"
#include "proto.h"
#include "volstore.h"

#include <errno.h>
#include <string.h>

static struct volstore *vs;
static const struct memd_meta_peer a = { .owner = 1, .server = "memd test", .peer = "peer-a", .client = "backd@a" };
static const struct memd_meta_peer b = { .owner = 2, .server = "memd test", .peer = "peer-b", .client = "backd@b" };

/* q as the server would decode it off the wire. */
static struct proto_msg wire(const struct proto_msg *q)
{
    static uint8_t buf[PROTO_MSG_MAX];
    struct proto_msg d;
    char why[160];
    size_t len = proto_encode(q, buf, sizeof(buf));
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(proto_decode(buf, len, &d, why, sizeof(why)), 0);
    return d;
}

/* Answers q from who; returns the reply as the client decodes it. */
static struct proto_msg ask(const struct memd_meta_peer *who, const struct proto_msg *q)
{
    static uint8_t rbuf[PROTO_MSG_MAX];
    struct proto_msg d = wire(q), r, out;
    char why[160];
    CU_ASSERT_EQUAL_FATAL(memd_meta_answer(vs, who, &d, &r), 0);
    CU_ASSERT_EQUAL(r.req_id, q->req_id);
    size_t len = proto_encode(&r, rbuf, sizeof(rbuf));
    CU_ASSERT_FATAL(len > 0);
    CU_ASSERT_EQUAL_FATAL(proto_decode(rbuf, len, &out, why, sizeof(why)), 0);
    return out;
}

static struct proto_msg claim(const struct memd_meta_peer *who, uint64_t epoch)
{
    struct proto_msg q = { .type = PROTO_VOL_CLAIM, .req_id = 10 + epoch };
    q.u.vol.vid = 9;
    q.u.vol.epoch = epoch;
    q.u.vol.size = 1 << 20;
    strcpy(q.u.vol.name, "swap");
    return ask(who, &q);
}

static struct proto_msg put(const struct memd_meta_peer *who, uint64_t epoch, uint64_t lpn)
{
    struct proto_rec rec = { .lpn = lpn, .seq = epoch << 40 | 1, .uid = 77, .page = 3, .kind = PROTO_REC_PAGE };
    struct proto_msg q = { .type = PROTO_META_PUT, .req_id = 20 };
    q.u.meta.vid = 9;
    q.u.meta.epoch = epoch;
    q.u.meta.n = 1;
    q.u.meta.recs = &rec;
    return ask(who, &q);
}

static int init(void)
{
    mx_log_init("test_memd_meta", MX_LOG_ERR);
    return (vs = volstore_new()) ? 0 : -1;
}

static int clean(void)
{
    volstore_free(vs);
    return 0;
}

static void test_claim_fence_records(void)
{
    struct proto_msg r = claim(&a, 0);                  /* asking only */
    CU_ASSERT_EQUAL(r.type, PROTO_VOL_CLAIM_R);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(r.u.vol.epoch, 0);
    r = claim(&a, 1);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(r.u.vol.epoch, 1);
    CU_ASSERT_EQUAL(put(&a, 1, 5).status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, 9, 1), 0);
    /* b at the same epoch is refused and told who holds it; at a higher one it fences a. */
    r = claim(&b, 1);
    CU_ASSERT_EQUAL(r.status, ESTALE);
    CU_ASSERT_EQUAL(r.u.vol.epoch, 1);
    r = claim(&b, 2);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(r.u.vol.nrecs, 1);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, 9, 1), ESTALE);
    CU_ASSERT_EQUAL(put(&a, 1, 6).type, PROTO_META_PUT_R);
    CU_ASSERT_EQUAL(put(&a, 1, 6).status, ESTALE);
    CU_ASSERT_EQUAL(put(&b, 2, 6).status, 0);
    /* The list carries both records, and stops. */
    struct proto_msg q = { .type = PROTO_META_LIST, .req_id = 30 };
    q.u.meta.vid = 9;
    q.u.meta.epoch = 2;
    r = ask(&b, &q);
    CU_ASSERT_EQUAL(r.type, PROTO_META_LIST_R);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(r.u.meta.n, 2);
    CU_ASSERT_EQUAL(r.u.meta.cursor, 0);
    struct proto_rec got[2];
    for (uint32_t i = 0; i < 2 && i < r.u.meta.n; i++)
        proto_rec_get(r.u.meta.raw, i, &got[i]);
    CU_ASSERT_TRUE((got[0].lpn == 5 && got[1].lpn == 6) || (got[0].lpn == 6 && got[1].lpn == 5));
    /* Drop: only under the current epoch. */
    struct proto_msg d = { .type = PROTO_VOL_DROP, .req_id = 40 };
    d.u.vol.vid = 9;
    d.u.vol.epoch = 1;
    strcpy(d.u.vol.name, "swap");
    CU_ASSERT_EQUAL(ask(&a, &d).status, ESTALE);
    d.u.vol.epoch = 2;
    r = ask(&b, &d);
    CU_ASSERT_EQUAL(r.type, PROTO_VOL_DROP_R);
    CU_ASSERT_EQUAL(r.status, 0);
    r = ask(&b, &q);
    CU_ASSERT_EQUAL(r.status, ENOENT);
    CU_ASSERT_EQUAL(volstore_volumes(vs), 0);
}

static struct proto_msg vclaim(const struct memd_meta_peer *who, uint64_t vid, uint64_t epoch)
{
    struct proto_msg q = { .type = PROTO_VOL_CLAIM, .req_id = 50 };
    q.u.vol.vid = vid;
    q.u.vol.epoch = epoch;
    q.u.vol.size = 1 << 20;
    strcpy(q.u.vol.name, "v");
    return ask(who, &q);
}

static struct proto_msg vlist(const struct memd_meta_peer *who, uint64_t vid, uint64_t epoch)
{
    struct proto_msg q = { .type = PROTO_META_LIST, .req_id = 51 };
    q.u.meta.vid = vid;
    q.u.meta.epoch = epoch;
    return ask(who, &q);
}

static struct proto_msg vdrop(const struct memd_meta_peer *who, uint64_t vid, uint64_t epoch)
{
    struct proto_msg q = { .type = PROTO_VOL_DROP, .req_id = 52 };
    q.u.vol.vid = vid;
    q.u.vol.epoch = epoch;
    strcpy(q.u.vol.name, "v");
    return ask(who, &q);
}

static struct proto_msg vput(const struct memd_meta_peer *who, uint64_t vid, uint64_t epoch)
{
    struct proto_rec rec = { .lpn = 1, .seq = epoch << 40 | 1, .uid = 88, .page = 0, .kind = PROTO_REC_PAGE };
    struct proto_msg q = { .type = PROTO_META_PUT, .req_id = 53 };
    q.u.meta.vid = vid;
    q.u.meta.epoch = epoch;
    q.u.meta.n = 1;
    q.u.meta.recs = &rec;
    return ask(who, &q);
}

/* Item 11: a volume's records, its drop and its page writes are the current
 * owner's: another key holder naming the owner's epoch (or any other one) is
 * refused.  Claiming stays open: it is how a backend takes a volume over. */
static void test_owner_only(void)
{
    const uint64_t v = 0x1111;
    CU_ASSERT_EQUAL(vclaim(&a, v, 3).status, 0);
    CU_ASSERT_EQUAL(vput(&a, v, 3).status, 0);
    CU_ASSERT_EQUAL(vlist(&a, v, 3).status, 0);
    CU_ASSERT_EQUAL(vlist(&a, v, 3).u.meta.n, 1);
    /* b never claimed it: not its records, not its volume to drop or write. */
    CU_ASSERT_EQUAL(vlist(&b, v, 3).status, EPERM);
    CU_ASSERT_EQUAL(vlist(&b, v, 0).status, ESTALE);
    CU_ASSERT_EQUAL(vlist(&b, v, 9).status, ESTALE);      /* a made-up newer epoch is no claim */
    CU_ASSERT_EQUAL(vput(&b, v, 3).status, EPERM);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, v, 3), EPERM);
    CU_ASSERT_EQUAL(vdrop(&b, v, 3).status, EPERM);
    CU_ASSERT_EQUAL(vdrop(&b, v, 9).status, ESTALE);
    CU_ASSERT_EQUAL(vlist(&a, v, 3).status, 0);          /* all still there */
    /* The owner itself must name its current epoch. */
    CU_ASSERT_EQUAL(vlist(&a, v, 2).status, ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 3), 0);
    /* A claim moves the volume to b; then a is the one refused. */
    CU_ASSERT_EQUAL(vclaim(&b, v, 4).status, 0);
    CU_ASSERT_EQUAL(vlist(&b, v, 4).status, 0);
    CU_ASSERT_EQUAL(vlist(&a, v, 4).status, EPERM);
    CU_ASSERT_EQUAL(vlist(&a, v, 3).status, ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 4), EPERM);
    CU_ASSERT_EQUAL(vdrop(&a, v, 4).status, EPERM);
    CU_ASSERT_EQUAL(vdrop(&b, v, 4).status, 0);
    /* A server that missed the claim learns the owner from its first put. */
    const uint64_t w = 0x2222;
    CU_ASSERT_EQUAL(vput(&a, w, 5).status, 0);
    CU_ASSERT_EQUAL(vlist(&a, w, 5).status, 0);
    CU_ASSERT_EQUAL(vlist(&b, w, 5).status, EPERM);
    CU_ASSERT_EQUAL(vdrop(&b, w, 5).status, EPERM);
    CU_ASSERT_EQUAL(vdrop(&a, w, 5).status, 0);
}

static void test_not_mine(void)
{
    struct proto_msg q = { .type = PROTO_SLAB_ALLOC, .req_id = 1 }, r;
    CU_ASSERT_FALSE(memd_meta_handles(PROTO_SLAB_ALLOC));
    CU_ASSERT_TRUE(memd_meta_handles(PROTO_META_LIST));
    CU_ASSERT_EQUAL(memd_meta_answer(vs, &a, &q, &r), -1);
}

/* A fenced owner never frees the new owner's copies: a slab that records of
 * a volume another identity owns point at stays, even on a forced free (its
 * old owner's re-replication or settle path believes its good copies live
 * elsewhere, but the new owner reads this one).  Its own volume's records do
 * not keep a forced free from going through. */
static void test_free_fenced(void)
{
    const uint64_t slab_uid = 77;       /* put() points every record there */
    struct proto_msg r = claim(&a, 1);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    CU_ASSERT_EQUAL(put(&a, 1, 5).status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_free(vs, &a, slab_uid, 0), EBUSY);
    CU_ASSERT_EQUAL(memd_meta_check_free(vs, &a, slab_uid, PROTO_FREE_FORCE), 0);  /* its own volume */
    CU_ASSERT_EQUAL(memd_meta_check_free(vs, &a, 78, 0), 0);                       /* nobody's */
    /* b takes the volume over and keeps pointing at the slab. */
    r = claim(&b, 2);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_free(vs, &a, slab_uid, PROTO_FREE_FORCE), EBUSY);
    CU_ASSERT_EQUAL(put(&b, 2, 6).status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_free(vs, &a, slab_uid, PROTO_FREE_FORCE), EBUSY);
    CU_ASSERT_EQUAL(memd_meta_check_free(vs, &a, 78, PROTO_FREE_FORCE), 0);
    /* A volume learned only from records (no claim reached this server) has
     * no known owner: nobody's forced free may destroy what it points at. */
    struct proto_rec rec = { .lpn = 1, .seq = 3ull << 40 | 1, .uid = 79, .page = 0, .kind = PROTO_REC_PAGE };
    struct proto_msg q = { .type = PROTO_META_PUT, .req_id = 21 };
    q.u.meta.vid = 10;
    q.u.meta.epoch = 3;
    q.u.meta.n = 1;
    q.u.meta.recs = &rec;
    CU_ASSERT_EQUAL(ask(&b, &q).status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_free(vs, &a, 79, PROTO_FREE_FORCE), EBUSY);
    /* Once b drops the volume, a may free its slab. */
    struct proto_msg d = { .type = PROTO_VOL_DROP, .req_id = 41 };
    d.u.vol.vid = 9;
    d.u.vol.epoch = 2;
    strcpy(d.u.vol.name, "swap");
    CU_ASSERT_EQUAL(ask(&b, &d).status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_free(vs, &a, slab_uid, 0), 0);
    d.u.vol.vid = 10;
    d.u.vol.epoch = 3;
    d.u.vol.name[0] = 0;
    CU_ASSERT_EQUAL(ask(&b, &d).status, 0);
}

/* etcd mode (issue 14): owners/ keys are the authority.  etcd says volume
 * 0x3333 is a's under epoch 5: a's epoch-4 requests are fenced, b's epoch-5
 * ones are not its epoch, a's epoch-5 ones pass, claims included. */
static void test_etcd_owner(void)
{
    struct volstore *keep = vs;
    CU_ASSERT_FATAL((vs = volstore_new()) != NULL);
    const uint64_t v = 0x3333;
    /* Static mode until enabled: etcd's view is not consulted. */
    CU_ASSERT_EQUAL(volstore_etcd_check(vs, v, 1, "backd@a"), -1);
    volstore_etcd_enable(vs);
    volstore_etcd_proven(vs, true);
    volstore_etcd_reset(vs);
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "v", v, 5, "backd@a"), 0);
    volstore_etcd_sync(vs);
    /* The server never saw a claim of it: etcd alone fences. */
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 4), ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, v, 5), EPERM);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), 0);
    CU_ASSERT_EQUAL(vput(&a, v, 4).status, ESTALE);
    CU_ASSERT_EQUAL(vput(&b, v, 5).status, EPERM);
    CU_ASSERT_EQUAL(vclaim(&a, v, 4).status, ESTALE);
    CU_ASSERT_EQUAL(vclaim(&b, v, 5).status, EPERM);
    CU_ASSERT_EQUAL(vclaim(&a, v, 5).status, 0);
    CU_ASSERT_EQUAL(vput(&a, v, 5).status, 0);
    CU_ASSERT_EQUAL(vlist(&a, v, 5).u.meta.n, 1);
    /* b just committed epoch 6 in etcd; its claim reaches the server before
     * the watch does: newer than the server's view, accepted, and a fenced. */
    CU_ASSERT_EQUAL(vclaim(&b, v, 6).status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, v, 6), 0);
    /* The watch catches up; an older put arriving late changes nothing. */
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "v", v, 6, "backd@b"), 0);
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "v", v, 5, "backd@a"), ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 6), EPERM);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, v, 6), 0);
    volstore_free(vs);
    vs = keep;
}

/* Without proof that the view is recent the server cannot tell a fenced
 * owner from the owner: writes wait (EAGAIN), reads go on. */
static void test_etcd_unproven(void)
{
    struct volstore *keep = vs;
    CU_ASSERT_FATAL((vs = volstore_new()) != NULL);
    const uint64_t v = 0x4444;
    volstore_etcd_enable(vs);
    volstore_etcd_proven(vs, true);
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "v", v, 5, "backd@a"), 0);
    CU_ASSERT_EQUAL(vclaim(&a, v, 5).status, 0);
    CU_ASSERT_EQUAL(vput(&a, v, 5).status, 0);
    volstore_etcd_proven(vs, false);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), EAGAIN);
    CU_ASSERT_EQUAL(vput(&a, v, 5).status, EAGAIN);
    CU_ASSERT_EQUAL(vclaim(&a, v, 6).status, EAGAIN);
    CU_ASSERT_EQUAL(vdrop(&a, v, 5).status, EAGAIN);
    struct proto_msg r = vclaim(&a, v, 0);               /* asking only: a read */
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(r.u.vol.epoch, 5);
    r = vlist(&a, v, 5);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(r.u.meta.n, 1);
    volstore_etcd_proven(vs, true);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), 0);
    volstore_free(vs);
    vs = keep;
}

/* A deleted owners/ key (its owner's lease expired, or it released the
 * volume) ends its epoch: nobody writes under it, a newer claim still can.
 * A key gone while the watch was broken (absent from the next snapshot)
 * counts as deleted. */
static void test_etcd_del(void)
{
    struct volstore *keep = vs;
    CU_ASSERT_FATAL((vs = volstore_new()) != NULL);
    const uint64_t v = 0x5555, w = 0x6666;
    volstore_etcd_enable(vs);
    volstore_etcd_proven(vs, true);
    volstore_etcd_reset(vs);
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "v", v, 5, "backd@a"), 0);
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "w", w, 2, "backd@a"), 0);
    volstore_etcd_sync(vs);
    CU_ASSERT_EQUAL(vclaim(&a, v, 5).status, 0);
    volstore_etcd_del(vs, "v");
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), ESTALE);
    CU_ASSERT_EQUAL(vput(&a, v, 5).status, ESTALE);
    CU_ASSERT_EQUAL(vclaim(&a, v, 5).status, ESTALE);
    CU_ASSERT_EQUAL(vclaim(&b, v, 6).status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, v, 6), 0);
    /* The stream broke; the new snapshot has v's owner but not w's. */
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, w, 2), 0);
    volstore_etcd_reset(vs);
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "v", v, 6, "backd@b"), 0);
    volstore_etcd_sync(vs);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, w, 2), ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, v, 6), 0);
    volstore_free(vs);
    vs = keep;
}

static int reverted;
static void on_revert(void *arg, uint64_t vid, uint64_t bogus, uint64_t epoch)
{
    CU_ASSERT_EQUAL(vid, 0x9999);
    CU_ASSERT_EQUAL(bogus, 6);
    CU_ASSERT_EQUAL(epoch, 5);
    reverted++;
}

/* A claim above etcd's view is taken on trust (the claimer just committed
 * it), then checked once the watch's proof covers the time it was taken:
 * one etcd still does not show was never committed, and must not lock the
 * real owner out. */
static void test_etcd_catch_up(void)
{
    struct volstore *keep = vs;
    CU_ASSERT_FATAL((vs = volstore_new()) != NULL);
    const uint64_t v = 0x9999;
    volstore_etcd_enable(vs);
    volstore_etcd_proven(vs, true);
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "v", v, 5, "backd@a"), 0);
    volstore_etcd_now(vs, 1000);
    CU_ASSERT_EQUAL(vclaim(&a, v, 5).status, 0);
    volstore_etcd_now(vs, 2000);
    CU_ASSERT_EQUAL(vclaim(&b, v, 6).status, 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), ESTALE);
    /* The proof does not reach the claim yet: it stands. */
    CU_ASSERT_EQUAL(volstore_etcd_catch_up(vs, 2000, on_revert, NULL), 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), ESTALE);
    /* It does, and etcd still says 5: b's claim was never committed. */
    CU_ASSERT_EQUAL(volstore_etcd_catch_up(vs, 2001, on_revert, NULL), 1);
    CU_ASSERT_EQUAL(reverted, 1);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), 0);
    CU_ASSERT_EQUAL(vput(&a, v, 5).status, 0);
    CU_ASSERT_EQUAL(volstore_etcd_catch_up(vs, 5000, on_revert, NULL), 0);
    /* A committed one is kept: etcd shows it once caught up. */
    volstore_etcd_now(vs, 6000);
    CU_ASSERT_EQUAL(vclaim(&b, v, 7).status, 0);
    CU_ASSERT_EQUAL(volstore_etcd_put(vs, "v", v, 7, "backd@b"), 0);
    CU_ASSERT_EQUAL(volstore_etcd_catch_up(vs, 9000, on_revert, NULL), 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, v, 7), 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, v, 5), ESTALE);
    volstore_free(vs);
    vs = keep;
}

static int owner_ev(enum coord_ev ev, const char *key, const char *val, char *why)
{
    struct coord_kv kv = { .key = key, .val = val ? val : "", .vlen = val ? strlen(val) : 0 };
    return memd_owners_event(vs, ev, ev == COORD_EV_PUT || ev == COORD_EV_DEL ? &kv : NULL, why, 256);
}

/* The watch's events as memd gets them: a value that does not decode (a
 * corrupt one, or a foreign program's) is reported with its reason and
 * never trusted: it lets nobody write, and it ends what the key said. */
static void test_etcd_events(void)
{
    struct volstore *keep = vs;
    CU_ASSERT_FATAL((vs = volstore_new()) != NULL);
    char why[256] = "";
    volstore_etcd_enable(vs);
    volstore_etcd_proven(vs, true);
    CU_ASSERT_EQUAL(owner_ev(COORD_EV_RESET, NULL, NULL, why), 0);
    CU_ASSERT_EQUAL(owner_ev(COORD_EV_PUT, "owners/v",
                             "{\"node\":\"backd@a\",\"vid\":\"0000000000007777\",\"epoch\":5}", why), 0);
    CU_ASSERT_EQUAL(owner_ev(COORD_EV_SYNC, NULL, NULL, why), 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, 0x7777, 4), ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, 0x7777, 5), EPERM);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, 0x7777, 5), 0);
    /* A foreign value naming b at a huge epoch for another volume: not a claim. */
    why[0] = 0;
    CU_ASSERT_EQUAL(owner_ev(COORD_EV_PUT, "owners/w", "{\"node\":\"backd@b\",\"epoch\":\"lots\"}", why), -1);
    CU_ASSERT_NOT_EQUAL(why[0], 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "owners/w"));
    uint64_t e;
    const char *node;
    bool gone;
    CU_ASSERT_FALSE(volstore_etcd_owner(vs, 0x8888, &e, &node, &gone));
    /* Garbage over a's key: a's epoch is no longer vouched for. */
    CU_ASSERT_EQUAL(owner_ev(COORD_EV_PUT, "owners/v", "not json", why), -1);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, 0x7777, 5), ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, 0x7777, 5), ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, 0x7777, 6), 0);    /* a newer claim still can */
    /* A delete ends the epoch too. */
    CU_ASSERT_EQUAL(owner_ev(COORD_EV_PUT, "owners/v",
                             "{\"node\":\"backd@b\",\"vid\":\"0000000000007777\",\"epoch\":6}", why), 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, 0x7777, 6), 0);
    CU_ASSERT_EQUAL(owner_ev(COORD_EV_DEL, "owners/v", NULL, why), 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, 0x7777, 6), ESTALE);
    volstore_free(vs);
    vs = keep;
}

/* A page write's records (they came in the PAGE_WRITE) are kept with the
 * slab's uid and each page's slot, as a META_PUT of them would be: an older
 * one never replaces a newer, a write with no record (seq 0) leaves none,
 * and a write that moves the epoch up stands for the claim this server
 * missed (the old owner is refused from then on). */
static void test_page_write_records(void)
{
    const uint64_t vid = 0x2222;
    struct proto_wrec recs[3] = {
        { .lpn = 10, .seq = 1ull << 40 | 4, .hash = { 7 } },
        { .lpn = 11, .seq = 0 },                        /* no record */
        { .lpn = 12, .seq = 1ull << 40 | 6 },
    };
    uint32_t slots[3] = { 5, 6, 7 };
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, vid, 1), 0);
    CU_ASSERT_EQUAL(memd_meta_put_page_recs(vs, &a, vid, 1, 0xabc, slots, recs, 3), 0);
    /* An older record of page 10 in another slab loses. */
    struct proto_wrec old = { .lpn = 10, .seq = 1ull << 40 | 2 };
    CU_ASSERT_EQUAL(memd_meta_put_page_recs(vs, &a, vid, 1, 0xdef, slots, &old, 1), 0);
    struct proto_msg r = vlist(&a, vid, 1);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    CU_ASSERT_EQUAL_FATAL(r.u.meta.n, 2);
    for (uint32_t i = 0; i < r.u.meta.n; i++) {
        struct proto_rec g;
        proto_rec_get(r.u.meta.raw, i, &g);
        CU_ASSERT_EQUAL(g.kind, PROTO_REC_PAGE);
        CU_ASSERT_EQUAL(g.uid, 0xabc);
        CU_ASSERT_TRUE((g.lpn == 10 && g.page == 5 && g.hash[0] == 7) || (g.lpn == 12 && g.page == 7));
    }
    CU_ASSERT_EQUAL(volstore_refs(vs, 0xabc), 2);
    CU_ASSERT_EQUAL(volstore_refs(vs, 0xdef), 0);
    /* b writes under epoch 2, a claim this server never saw: a is fenced. */
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &b, vid, 2), 0);
    struct proto_wrec nb = { .lpn = 10, .seq = 2ull << 40 | 2 };
    CU_ASSERT_EQUAL(memd_meta_put_page_recs(vs, &b, vid, 2, 0x123, slots, &nb, 1), 0);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, vid, 1), ESTALE);
    CU_ASSERT_EQUAL(memd_meta_check_write(vs, &a, vid, 2), EPERM);
    CU_ASSERT_EQUAL(volstore_refs(vs, 0xabc), 1);
    CU_ASSERT_EQUAL(vdrop(&b, vid, 2).status, 0);
}

static const struct cu_test tests[] = {
    { "claim, fence, records, list, drop", test_claim_fence_records },
    { "only the owner lists, drops, writes", test_owner_only },
    { "page writes keep their records", test_page_write_records },
    { "other requests are not answered", test_not_mine },
    { "a fenced owner cannot free the new owner's slab", test_free_fenced },
    { "etcd mode: owners/ says who writes under which epoch", test_etcd_owner },
    { "etcd mode: no recent proof, no writes; reads go on", test_etcd_unproven },
    { "etcd mode: a deleted owner key ends its epoch", test_etcd_del },
    { "etcd mode: owners/ events, a corrupt value is not trusted", test_etcd_events },
    { "etcd mode: a claim etcd never shows is undone", test_etcd_catch_up },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "memd_meta", init, clean, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
