/* test_ownership.c — backend/ownership.c (volume claims in etcd) against a
 * real throw-away etcd (etcd_harness.c): epochs of new and taken-over
 * volumes, renewal after a lost lease (kept when nobody claimed meanwhile,
 * fenced when somebody did), size mismatches, corrupt records, claims racing
 * (CAS retries), forget, and self-fencing while the lease is unprovable.
 * Each test works under its own prefix. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckeys.h"
#include "coord.h"
#include "cu_main.h"
#include "etcd_harness.h"
#include "evloop.h"
#include "ownership.h"

/* A volume's id: ownership only keeps it (volmeta_vid_of in the backend). */
static uint64_t vid_of(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (; *name; name++)
        h = (h ^ (uint8_t)*name) * 1099511628211ull;
    return h;
}

struct claimres { bool done; int st; uint64_t epoch; bool takeover; char msg[256]; };
static void on_claimed(void *arg, int st, const struct volclaim_result *res, const char *msg)
{
    struct claimres *r = arg;
    r->done = true;
    r->st = st;
    r->epoch = res ? res->epoch : 0;
    r->takeover = res && res->takeover;
    snprintf(r->msg, sizeof(r->msg), "%s", msg ? msg : "");
}

struct changes { int n; char name[8][CK_NAME_MAX]; uint64_t epoch[8]; };
static void on_changed(void *arg, const char *name, uint64_t epoch)
{
    struct changes *c = arg;
    if (c->n < 8) {
        snprintf(c->name[c->n], CK_NAME_MAX, "%s", name);
        c->epoch[c->n++] = epoch;
    }
}
static void relay_health(void *arg, enum coord_health h) { ownership_health(arg, h); }

/* One backend: its coord (lease TTL 5), its ownership, what it was told. */
struct be { struct coord *c; struct ownership *o; const struct volclaim_ops *ops; struct changes ch; };

static void be_open(struct be *b, const char *prefix, const char *node)
{
    memset(b, 0, sizeof(*b));
    b->c = eh_open(prefix, 5);
    b->o = ownership_new(b->c, node, on_changed, &b->ch);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->o);
    coord_on_health(b->c, relay_health, b->o);
    b->ops = ownership_ops(b->o);
}

static void be_close(struct be *b)
{
    coord_close(b->c);
    ownership_free(b->o);
}

static struct claimres claim(struct be *b, const char *name, uint64_t size)
{
    struct claimres r = { 0 };
    CU_ASSERT_EQUAL_FATAL(b->ops->claim(b->ops->ctx, name, vid_of(name), size, on_claimed, &r), 0);
    CU_ASSERT_FALSE(r.done);        /* never inside the call */
    CU_ASSERT_FATAL(eh_run_until(&r.done, 5000));
    if (r.st)   /* the reason, for a failure seen only under a loaded make check */
        printf("claim of %s: %s (%s) ", name, strerror(-r.st), r.msg);
    return r;
}

/* volumes/<name> as etcd holds it; false when absent or unreadable. */
static bool volume_rec(struct coord *c, const char *name, struct ck_volume *cv)
{
    char key[128], nm[CK_NAME_MAX], why[160];
    snprintf(key, sizeof(key), "volumes/%s", name);
    struct eh_range r = eh_get(c, key, false);
    CU_ASSERT_EQUAL(r.st, 0);
    return r.n == 1 && ck_volume_decode(r.keys[0], r.vals[0], strlen(r.vals[0]), nm, cv, why, sizeof(why)) == 0;
}

static bool owner_rec(struct coord *c, const char *name, struct ck_owner *co, int64_t *lease)
{
    char key[128], nm[CK_NAME_MAX], why[160];
    snprintf(key, sizeof(key), "owners/%s", name);
    struct eh_range r = eh_get(c, key, false);
    CU_ASSERT_EQUAL(r.st, 0);
    if (lease)
        *lease = r.n == 1 ? r.lease[0] : 0;
    return r.n == 1 && ck_owner_decode(r.keys[0], r.vals[0], strlen(r.vals[0]), nm, co, why, sizeof(why)) == 0;
}

static void test_new_and_takeover(void)
{
    struct be a, b;
    be_open(&a, "/t/own/take", "nodeA");
    be_open(&b, "/t/own/take", "nodeB");
    struct claimres r = claim(&a, "vol", 1 << 20);
    CU_ASSERT_EQUAL(r.st, 0);
    CU_ASSERT_EQUAL(r.epoch, 1);
    CU_ASSERT_FALSE(r.takeover);
    struct ck_volume cv;
    struct ck_owner co;
    int64_t lease;
    CU_ASSERT_FATAL(volume_rec(a.c, "vol", &cv));
    CU_ASSERT_EQUAL(cv.epoch, 1);
    CU_ASSERT_EQUAL(cv.size, 1 << 20);
    CU_ASSERT_FATAL(owner_rec(a.c, "vol", &co, &lease));
    CU_ASSERT_STRING_EQUAL(co.node, "nodeA");
    CU_ASSERT_EQUAL(lease, coord_lease_id(a.c));
    /* Claiming again on the same lease (a re-attach) is no takeover. */
    r = claim(&a, "vol", 1 << 20);
    CU_ASSERT_EQUAL(r.st, 0);
    CU_ASSERT_EQUAL(r.epoch, 2);
    CU_ASSERT_FALSE(r.takeover);
    /* Another node claims: a higher epoch, and it knows it takes over. */
    r = claim(&b, "vol", 1 << 20);
    CU_ASSERT_EQUAL(r.st, 0);
    CU_ASSERT_EQUAL(r.epoch, 3);
    CU_ASSERT_TRUE(r.takeover);
    CU_ASSERT_FATAL(owner_rec(a.c, "vol", &co, &lease));
    CU_ASSERT_STRING_EQUAL(co.node, "nodeB");
    CU_ASSERT_EQUAL(co.epoch, 3);
    CU_ASSERT_EQUAL(lease, coord_lease_id(b.c));
    be_close(&a);
    be_close(&b);
}

static void on_put_done(void *arg, int st, int64_t rev)
{
    struct { bool done; int st; } *d = arg;
    (void)rev;
    d->done = true;
    d->st = st;
}

static bool got_changes(void *arg) { return ((struct changes *)arg)->n >= 2; }

/* A's lease is revoked behind its back.  Of its two claims, "kept" was
 * claimed by nobody meanwhile: renewed under epoch + 1 with owners/ on the
 * new lease; "taken" was claimed by B: changed(taken, 0), and etcd keeps B's. */
static void test_renew_after_lost_lease(void)
{
    struct be a, b;
    be_open(&a, "/t/own/renew", "nodeA");
    be_open(&b, "/t/own/renew", "nodeB");
    CU_ASSERT_EQUAL(claim(&a, "kept", 4096).epoch, 1);
    CU_ASSERT_EQUAL(claim(&a, "taken", 4096).epoch, 1);
    CU_ASSERT_TRUE(a.ops->may_write(a.ops->ctx));
    struct claimres r = claim(&b, "taken", 4096);
    CU_ASSERT_EQUAL(r.epoch, 2);
    CU_ASSERT_TRUE(r.takeover);
    int64_t old = coord_lease_id(a.c);
    eh_revoke(old);
    CU_ASSERT_FATAL(eh_run_cond(got_changes, &a.ch, 6000));
    CU_ASSERT_EQUAL(a.ch.n, 2);
    for (int i = 0; i < a.ch.n; i++) {
        if (!strcmp(a.ch.name[i], "kept"))
            CU_ASSERT_EQUAL(a.ch.epoch[i], 2);
        if (!strcmp(a.ch.name[i], "taken"))
            CU_ASSERT_EQUAL(a.ch.epoch[i], 0);
    }
    CU_ASSERT(coord_lease_id(a.c) != old);
    struct ck_volume cv;
    struct ck_owner co;
    int64_t lease;
    CU_ASSERT(volume_rec(a.c, "kept", &cv) && cv.epoch == 2);
    CU_ASSERT(owner_rec(a.c, "kept", &co, &lease) && co.epoch == 2 && !strcmp(co.node, "nodeA"));
    CU_ASSERT_EQUAL(lease, coord_lease_id(a.c));
    CU_ASSERT(volume_rec(a.c, "taken", &cv) && cv.epoch == 2);
    CU_ASSERT(owner_rec(a.c, "taken", &co, &lease) && !strcmp(co.node, "nodeB"));
    CU_ASSERT_EQUAL(lease, coord_lease_id(b.c));
    eh_run_for(300);
    CU_ASSERT_TRUE(a.ops->may_write(a.ops->ctx));
    /* The lost one is forgotten by A: its forget leaves B's claim alone. */
    a.ops->forget(a.ops->ctx, "taken");
    eh_run_for(300);
    CU_ASSERT(volume_rec(a.c, "taken", &cv) && cv.epoch == 2);
    be_close(&a);
    be_close(&b);
}

static void test_size_mismatch(void)
{
    struct be a, b;
    be_open(&a, "/t/own/size", "nodeA");
    be_open(&b, "/t/own/size", "nodeB");
    CU_ASSERT_EQUAL(claim(&a, "vol", 4096).st, 0);
    struct claimres r = claim(&b, "vol", 8192);
    CU_ASSERT_EQUAL(r.st, -EEXIST);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "4096"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "8192"));
    struct ck_volume cv;
    CU_ASSERT(volume_rec(a.c, "vol", &cv) && cv.epoch == 1 && cv.size == 4096);   /* untouched */
    be_close(&a);
    be_close(&b);
}

static void test_corrupt_record(void)
{
    struct be a;
    be_open(&a, "/t/own/corrupt", "nodeA");
    CU_ASSERT_EQUAL(eh_put(a.c, "volumes/bad", "{not json"), 0);
    struct claimres r = claim(&a, "bad", 4096);
    CU_ASSERT_EQUAL(r.st, -EIO);
    CU_ASSERT(r.msg[0] != 0);
    struct eh_range g = eh_get(a.c, "volumes/bad", false);
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_STRING_EQUAL(g.vals[0], "{not json");          /* never overwritten */
    CU_ASSERT_EQUAL(eh_get(a.c, "owners/bad", false).n, 0);
    /* Another volume's id under this name: refused too. */
    char val[256];
    struct ck_volume cv = { .vid = 42, .size = 4096, .epoch = 7 };
    CU_ASSERT_FATAL(ck_volume_encode(&cv, val, sizeof(val)) >= 0);
    CU_ASSERT_EQUAL(eh_put(a.c, "volumes/other", val), 0);
    r = claim(&a, "other", 4096);
    CU_ASSERT_EQUAL(r.st, -EIO);
    CU_ASSERT_STRING_EQUAL(eh_get(a.c, "volumes/other", false).vals[0], val);
    be_close(&a);
}

/* An owner key MemX cannot read is somebody's claim: taken over, never
 * taken for ours (even under our lease, even right after a claim of ours
 * read a good owner key). */
static void test_corrupt_owner(void)
{
    struct be a;
    be_open(&a, "/t/own/corrupt-owner", "nodeA");
    CU_ASSERT_EQUAL(claim(&a, "good", 4096).st, 0);
    CU_ASSERT_FALSE(claim(&a, "good", 4096).takeover);  /* read our own owner key */
    struct sd { bool done; int st; } d = { 0 };
    CU_ASSERT_EQUAL_FATAL(coord_put(a.c, "owners/odd", "{\"node\":7}", true, on_put_done, &d), 0);
    CU_ASSERT_FATAL(eh_run_until(&d.done, 3000));
    struct claimres r = claim(&a, "odd", 4096);
    CU_ASSERT_EQUAL(r.st, 0);
    CU_ASSERT_EQUAL(r.epoch, 1);
    CU_ASSERT_TRUE(r.takeover);
    struct ck_owner co;
    CU_ASSERT(owner_rec(a.c, "odd", &co, NULL) && !strcmp(co.node, "nodeA"));
    be_close(&a);
}

/* Two backends claim the same volumes at the same moment: one transaction
 * wins, the other reads again and goes higher.  Never the same epoch. */
static void test_racing_claims(void)
{
    struct be a, b;
    be_open(&a, "/t/own/race", "nodeA");
    be_open(&b, "/t/own/race", "nodeB");
    for (int round = 0; round < 6; round++) {
        char name[32];
        snprintf(name, sizeof(name), "race%d", round % 3);
        struct claimres ra = { 0 }, rb = { 0 };
        uint64_t vid = vid_of(name);
        CU_ASSERT_EQUAL_FATAL(a.ops->claim(a.ops->ctx, name, vid, 4096, on_claimed, &ra), 0);
        CU_ASSERT_EQUAL_FATAL(b.ops->claim(b.ops->ctx, name, vid, 4096, on_claimed, &rb), 0);
        CU_ASSERT_FATAL(eh_run_until(&ra.done, 5000) && eh_run_until(&rb.done, 5000));
        CU_ASSERT_EQUAL(ra.st, 0);
        CU_ASSERT_EQUAL(rb.st, 0);
        CU_ASSERT(ra.epoch != rb.epoch);
        struct ck_volume cv;
        CU_ASSERT(volume_rec(a.c, name, &cv));
        CU_ASSERT_EQUAL(cv.epoch, ra.epoch > rb.epoch ? ra.epoch : rb.epoch);
        /* The later claim knows it took the volume from the earlier one. */
        CU_ASSERT_TRUE(ra.epoch > rb.epoch ? ra.takeover : rb.takeover);
    }
    be_close(&a);
    be_close(&b);
}

static void test_forget(void)
{
    struct be a, b;
    be_open(&a, "/t/own/forget", "nodeA");
    be_open(&b, "/t/own/forget", "nodeB");
    CU_ASSERT_EQUAL(claim(&a, "mine", 4096).st, 0);
    a.ops->forget(a.ops->ctx, "mine");
    eh_run_for(400);
    CU_ASSERT_EQUAL(eh_get(a.c, "volumes/mine", false).n, 0);
    CU_ASSERT_EQUAL(eh_get(a.c, "owners/mine", false).n, 0);
    /* Claimed by B after us: our forget leaves its claim. */
    CU_ASSERT_EQUAL(claim(&a, "theirs", 4096).st, 0);
    CU_ASSERT_EQUAL(claim(&b, "theirs", 4096).epoch, 2);
    a.ops->forget(a.ops->ctx, "theirs");
    eh_run_for(400);
    struct ck_volume cv;
    struct ck_owner co;
    CU_ASSERT(volume_rec(a.c, "theirs", &cv) && cv.epoch == 2);
    CU_ASSERT(owner_rec(a.c, "theirs", &co, NULL) && !strcmp(co.node, "nodeB"));
    /* A volume never claimed here: forget sends nothing. */
    b.ops->forget(b.ops->ctx, "never");
    be_close(&a);
    be_close(&b);
}

/* An exclusive claim (deleting an orphan) never takes a volume over: a live
 * owner key of another backend refuses it, naming that backend; once that
 * lease is gone the claim goes ahead under the next epoch. */
static void test_exclusive(void)
{
    struct be a, b;
    be_open(&a, "/t/own/excl", "nodeA");
    be_open(&b, "/t/own/excl", "nodeB");
    CU_ASSERT_EQUAL(claim(&a, "busy", 4096).st, 0);
    CU_ASSERT_EQUAL(ownership_set_exclusive(b.o, "busy", true), 0);
    struct claimres r = claim(&b, "busy", 4096);
    CU_ASSERT_EQUAL(r.st, -EBUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "in use by nodeA (its claim, epoch 1"));
    struct ck_volume cv;
    struct ck_owner co;
    CU_ASSERT(volume_rec(a.c, "busy", &cv) && cv.epoch == 1);      /* nothing written */
    CU_ASSERT(owner_rec(a.c, "busy", &co, NULL) && !strcmp(co.node, "nodeA"));
    /* Refused again while A lives (the claim entry went with the refusal). */
    CU_ASSERT_EQUAL(ownership_set_exclusive(b.o, "busy", true), 0);
    CU_ASSERT_EQUAL(claim(&b, "busy", 4096).st, -EBUSY);
    /* A's own exclusive claim of its volume is no takeover: it goes ahead. */
    CU_ASSERT_EQUAL(ownership_set_exclusive(a.o, "busy", true), 0);
    r = claim(&a, "busy", 4096);
    CU_ASSERT_EQUAL(r.st, 0);
    CU_ASSERT_EQUAL(r.epoch, 2);
    CU_ASSERT_EQUAL(ownership_set_exclusive(a.o, "busy", false), 0);
    /* A goes away (its lease revoked, its owner key with it): an orphan now. */
    be_close(&a);
    be_open(&a, "/t/own/excl", "nodeA");
    CU_ASSERT_EQUAL(ownership_set_exclusive(b.o, "busy", true), 0);
    r = claim(&b, "busy", 4096);
    CU_ASSERT_EQUAL(r.st, 0);
    CU_ASSERT_EQUAL(r.epoch, 3);
    CU_ASSERT(owner_rec(b.c, "busy", &co, NULL) && !strcmp(co.node, "nodeB"));
    /* An owner key MemX cannot read is not taken over by an exclusive claim. */
    struct sd { bool done; int st; } d = { 0 };
    CU_ASSERT_EQUAL_FATAL(coord_put(a.c, "owners/odd", "{\"node\":7}", true, on_put_done, &d), 0);
    CU_ASSERT_FATAL(eh_run_until(&d.done, 3000));
    CU_ASSERT_EQUAL(ownership_set_exclusive(b.o, "odd", true), 0);
    r = claim(&b, "odd", 4096);
    CU_ASSERT_EQUAL(r.st, -EBUSY);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.msg, "cannot read"));
    /* Switched on and off without a claim: nothing is kept (forget sends nothing). */
    CU_ASSERT_EQUAL(ownership_set_exclusive(b.o, "never", true), 0);
    CU_ASSERT_EQUAL(ownership_set_exclusive(b.o, "never", false), 0);
    be_close(&a);
    be_close(&b);
}

static bool may_write(void *arg)
{
    struct be *b = arg;
    return b->ops->may_write(b->ops->ctx);
}

/* etcd frozen longer than TTL - COORD_FENCE_MARGIN_MS (TTL 5 s): the lease
 * cannot be proven alive, so writes must stop before it could expire. */
static void test_may_write_unsafe_lease(void)
{
    struct be a;
    be_open(&a, "/t/own/unsafe", "nodeA");
    CU_ASSERT_EQUAL(claim(&a, "vol", 4096).st, 0);
    CU_ASSERT_TRUE(may_write(&a));
    eh_run_for(1800);           /* a keepalive answered */
    int pid = eh_etcd_pid();
    CU_ASSERT_EQUAL_FATAL(kill(pid, SIGSTOP), 0);
    bool went_false = false;
    uint64_t end = evloop_now_ms() + 5000 - COORD_FENCE_MARGIN_MS + 500;
    while (evloop_now_ms() < end && !went_false) {
        evloop_run_once(el, 20);
        went_false = !may_write(&a);
    }
    uint64_t at = evloop_now_ms(), deadline = coord_lease_deadline_ms(a.c);
    kill(pid, SIGCONT);
    CU_ASSERT_TRUE(went_false);
    /* It stopped no later than the margin before the provable deadline (give
     * or take a loaded machine's late loop turns: 400 ms of the 2 s margin). */
    CU_ASSERT(at <= deadline - COORD_FENCE_MARGIN_MS + 400);
    CU_ASSERT(at < deadline);
    CU_ASSERT(eh_run_cond(may_write, &a, 8000));
    be_close(&a);
}

static const struct cu_test tests[] = {
    { "new volume epoch 1, takeover by another node", test_new_and_takeover },
    { "renewal after a lost lease: kept, or fenced when claimed meanwhile", test_renew_after_lost_lease },
    { "size mismatch is -EEXIST naming both sizes", test_size_mismatch },
    { "corrupt or foreign record: refused, not overwritten", test_corrupt_record },
    { "unreadable owner key: taken over", test_corrupt_owner },
    { "racing claims: both succeed, distinct epochs", test_racing_claims },
    { "forget only while our claim is the last", test_forget },
    { "may_write false while the lease is unprovable", test_may_write_unsafe_lease },
    { "exclusive claims refuse a live owner, naming it", test_exclusive },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "ownership", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };

int main(int argc, char **argv)
{
    (void)argc;
    return etcd_main("test_ownership", argv, suites);
}
