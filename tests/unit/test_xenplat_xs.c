/* XenStore through the seam against memx-simxsd: the xenstored semantics the
 * backend relies on, and a daemon that survives malformed clients. */
#include "cu_main.h"
#include "test_xenplat_sim.h"

#include <stdint.h>
#include <xen/io/xs_wire.h>

static struct xp *x0, *x3;      /* dom0 and guest dom3 */

static int suite_init(void)
{
    if (sim_start() < 0)
        return -1;
    x0 = xp_open_sim(sim_dir, 0);
    x3 = xp_open_sim(sim_dir, 3);
    return x0 && x3 ? 0 : -1;
}

static int suite_clean(void)
{
    xp_close(x0);
    xp_close(x3);
    return sim_stop();
}

static void drain(struct xp *xp)
{
    char *p, *t;
    while (sim_next_watch(xp, 50, &p, &t) == 1) {
        free(p);
        free(t);
    }
}

static void test_basic(void)
{
    unsigned len, n;
    CU_ASSERT_STRING_EQUAL(xp_name(x0), "sim");
    CU_ASSERT_EQUAL(xp_domid(x3), 3);
    CU_ASSERT_EQUAL(xp_xs_write(x0, XP_TXN_NULL, "/t/a/b", "hello"), 0);
    char *v = xp_xs_read(x0, XP_TXN_NULL, "/t/a/b", &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    CU_ASSERT_STRING_EQUAL(v, "hello");
    CU_ASSERT_EQUAL(len, 5);
    free(v);
    v = xp_xs_read(x0, XP_TXN_NULL, "/t/a", NULL);      /* parent created, empty */
    CU_ASSERT_PTR_NOT_NULL(v);
    CU_ASSERT_STRING_EQUAL(v ? v : "x", "");
    free(v);
    CU_ASSERT_EQUAL(xp_xs_printf(x0, XP_TXN_NULL, "/t/a/n", "%d-%s", 42, "x"), 0);
    CU_ASSERT_EQUAL(xp_xs_mkdir(x0, XP_TXN_NULL, "/t/a/d"), 0);
    char **d = xp_xs_directory(x0, XP_TXN_NULL, "/t/a", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(n, 3);
    if (n == 3) {
        CU_ASSERT_STRING_EQUAL(d[0], "b");
        CU_ASSERT_STRING_EQUAL(d[1], "n");
        CU_ASSERT_STRING_EQUAL(d[2], "d");
    }
    free(d);
    errno = 0;
    CU_ASSERT_PTR_NULL(xp_xs_read(x0, XP_TXN_NULL, "/t/missing", NULL));
    CU_ASSERT_EQUAL(errno, ENOENT);
    CU_ASSERT_PTR_NULL(xp_xs_read(x0, XP_TXN_NULL, "/t//a", NULL));
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(xp_xs_write(x0, XP_TXN_NULL, "/t/bad path", "x"), -1);
    CU_ASSERT_EQUAL(xp_xs_rm(x0, XP_TXN_NULL, "/t/a"), 0);
    CU_ASSERT_PTR_NULL(xp_xs_read(x0, XP_TXN_NULL, "/t/a/b", NULL));
    CU_ASSERT_EQUAL(xp_xs_rm(x0, XP_TXN_NULL, "/t/a"), 0);      /* gone, parent exists: fine */
    CU_ASSERT_EQUAL(xp_xs_rm(x0, XP_TXN_NULL, "/t/x/y"), -1);   /* no parent */
    CU_ASSERT_EQUAL(errno, ENOENT);
}

static void test_relative_and_perms(void)
{
    CU_ASSERT_EQUAL(xp_xs_write(x3, XP_TXN_NULL, "device/vbd/1/state", "1"), 0);
    char *v = xp_xs_read(x0, XP_TXN_NULL, "/local/domain/3/device/vbd/1/state", NULL);
    CU_ASSERT_PTR_NOT_NULL(v);
    CU_ASSERT_STRING_EQUAL(v ? v : "", "1");
    free(v);
    v = xp_xs_read(x0, XP_TXN_NULL, "domid", NULL);      /* dom0's own node */
    CU_ASSERT_STRING_EQUAL(v ? v : "", "0");
    free(v);
    CU_ASSERT_EQUAL(xp_xs_set_perms_rw(x0, XP_TXN_NULL, "/local/domain/3/device/vbd/1", 3, 0), 0);
    CU_ASSERT_EQUAL(xp_xs_set_perms_rw(x0, XP_TXN_NULL, "/nonexistent/node", 3, 0), -1);

    /* GET_PERMS returns what was set, in the wire format. */
    int fd = sim_connect_raw();
    CU_ASSERT_FATAL(fd >= 0);
    const char path[] = "/local/domain/3/device/vbd/1";
    struct xsd_sockmsg h = { .type = XS_GET_PERMS, .req_id = 7, .len = sizeof(path) };
    CU_ASSERT_EQUAL(write(fd, &h, sizeof(h)), (ssize_t)sizeof(h));
    CU_ASSERT_EQUAL(write(fd, path, sizeof(path)), (ssize_t)sizeof(path));
    struct xsd_sockmsg r;
    char buf[64] = "";
    CU_ASSERT_EQUAL(read(fd, &r, sizeof(r)), (ssize_t)sizeof(r));
    CU_ASSERT_EQUAL(r.type, XS_GET_PERMS);
    CU_ASSERT_EQUAL(r.req_id, 7);
    CU_ASSERT_EQUAL(r.len, 6);
    CU_ASSERT_EQUAL(read(fd, buf, r.len), (ssize_t)r.len);
    CU_ASSERT_EQUAL(memcmp(buf, "n3\0r0\0", 6), 0);
    close(fd);
}

static void expect_event(struct xp *xp, const char *path, const char *token)
{
    char *p = NULL, *t = NULL;
    CU_ASSERT_EQUAL_FATAL(sim_next_watch(xp, 2000, &p, &t), 1);
    CU_ASSERT_STRING_EQUAL(p, path);
    CU_ASSERT_STRING_EQUAL(t, token);
    free(p);
    free(t);
}

static void test_watch(void)
{
    char *p, *t;
    CU_ASSERT_EQUAL(xp_xs_watch(x0, "/w", "tk"), 0);
    expect_event(x0, "/w", "tk");                      /* the initial event */
    CU_ASSERT_EQUAL(xp_xs_write(x3, XP_TXN_NULL, "/w/a/b", "1"), 0);
    expect_event(x0, "/w/a/b", "tk");
    CU_ASSERT_EQUAL(xp_xs_write(x3, XP_TXN_NULL, "/wx", "1"), 0);   /* a sibling, not under /w */
    CU_ASSERT_EQUAL(sim_next_watch(x0, 100, &p, &t), 0);
    CU_ASSERT_EQUAL(xp_xs_watch(x0, "/w/a/b/c", "deep"), 0);
    expect_event(x0, "/w/a/b/c", "deep");
    /* Removing an ancestor fires both the watch above and the one below. */
    CU_ASSERT_EQUAL(xp_xs_rm(x0, XP_TXN_NULL, "/w/a"), 0);
    int seen_tk = 0, seen_deep = 0;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(sim_next_watch(x0, 2000, &p, &t), 1);
        if (!strcmp(t, "tk") && !strcmp(p, "/w/a"))
            seen_tk++;
        if (!strcmp(t, "deep") && !strcmp(p, "/w/a/b/c"))
            seen_deep++;
        free(p);
        free(t);
    }
    CU_ASSERT_EQUAL(seen_tk, 1);
    CU_ASSERT_EQUAL(seen_deep, 1);
    CU_ASSERT_EQUAL(xp_xs_unwatch(x0, "/w/a/b/c", "deep"), 0);
    CU_ASSERT_EQUAL(xp_xs_unwatch(x0, "/w", "tk"), 0);
    CU_ASSERT_EQUAL(xp_xs_unwatch(x0, "/w", "tk"), -1);
    CU_ASSERT_EQUAL(xp_xs_write(x3, XP_TXN_NULL, "/w/z", "1"), 0);
    CU_ASSERT_EQUAL(sim_next_watch(x0, 100, &p, &t), 0);

    /* A relative watch reports relative paths. */
    CU_ASSERT_EQUAL(xp_xs_watch(x3, "device", "rel"), 0);
    expect_event(x3, "device", "rel");
    CU_ASSERT_EQUAL(xp_xs_write(x0, XP_TXN_NULL, "/local/domain/3/device/x", "1"), 0);
    expect_event(x3, "device/x", "rel");
    CU_ASSERT_EQUAL(xp_xs_unwatch(x3, "device", "rel"), 0);
    drain(x3);
}

static void test_transaction(void)
{
    char *v;
    CU_ASSERT_EQUAL(xp_xs_write(x0, XP_TXN_NULL, "/tx/k", "0"), 0);
    CU_ASSERT_EQUAL(xp_xs_watch(x0, "/tx", "tx"), 0);
    expect_event(x0, "/tx", "tx");

    xp_txn_t t = xp_xs_txn_start(x3);
    CU_ASSERT_NOT_EQUAL_FATAL(t, XP_TXN_NULL);
    CU_ASSERT_EQUAL(xp_xs_write(x3, t, "/tx/k", "1"), 0);
    CU_ASSERT_EQUAL(xp_xs_write(x3, t, "/tx/new/leaf", "2"), 0);
    v = xp_xs_read(x3, t, "/tx/k", NULL);             /* sees its own write */
    CU_ASSERT_STRING_EQUAL(v ? v : "", "1");
    free(v);
    v = xp_xs_read(x0, XP_TXN_NULL, "/tx/k", NULL);   /* others do not, yet */
    CU_ASSERT_STRING_EQUAL(v ? v : "", "0");
    free(v);
    char *p, *tk;
    CU_ASSERT_EQUAL(sim_next_watch(x0, 100, &p, &tk), 0);   /* no events before commit */
    CU_ASSERT_EQUAL(xp_xs_txn_end(x3, t, false), 0);
    expect_event(x0, "/tx/k", "tx");
    expect_event(x0, "/tx/new/leaf", "tx");
    v = xp_xs_read(x0, XP_TXN_NULL, "/tx/new/leaf", NULL);
    CU_ASSERT_STRING_EQUAL(v ? v : "", "2");
    free(v);

    /* Conflict: someone else commits while the transaction is open. */
    t = xp_xs_txn_start(x3);
    CU_ASSERT_EQUAL(xp_xs_write(x3, t, "/tx/k", "3"), 0);
    CU_ASSERT_EQUAL(xp_xs_write(x0, XP_TXN_NULL, "/tx/other", "x"), 0);
    errno = 0;
    CU_ASSERT_EQUAL(xp_xs_txn_end(x3, t, false), -1);
    CU_ASSERT_EQUAL(errno, EAGAIN);
    v = xp_xs_read(x0, XP_TXN_NULL, "/tx/k", NULL);
    CU_ASSERT_STRING_EQUAL(v ? v : "", "1");
    free(v);

    /* Abort discards; a read-only transaction commits despite other writes. */
    t = xp_xs_txn_start(x3);
    CU_ASSERT_EQUAL(xp_xs_rm(x3, t, "/tx/k"), 0);
    CU_ASSERT_EQUAL(xp_xs_txn_end(x3, t, true), 0);
    v = xp_xs_read(x0, XP_TXN_NULL, "/tx/k", NULL);
    CU_ASSERT_PTR_NOT_NULL(v);
    free(v);
    t = xp_xs_txn_start(x3);
    v = xp_xs_read(x3, t, "/tx/k", NULL);
    free(v);
    CU_ASSERT_EQUAL(xp_xs_write(x0, XP_TXN_NULL, "/tx/other", "y"), 0);
    CU_ASSERT_EQUAL(xp_xs_txn_end(x3, t, false), 0);
    CU_ASSERT_EQUAL(xp_xs_unwatch(x0, "/tx", "tx"), 0);
    drain(x0);
}

static void test_big_directory(void)
{
    /* More names than fit in one reply: libxenstore falls back to DIRECTORY_PART. */
    char path[64];
    xp_txn_t t = xp_xs_txn_start(x0);
    for (int i = 0; i < 600; i++) {
        snprintf(path, sizeof(path), "/big/entry-number-%04d", i);
        CU_ASSERT_EQUAL(xp_xs_write(x0, t, path, "v"), 0);
    }
    CU_ASSERT_EQUAL(xp_xs_txn_end(x0, t, false), 0);
    unsigned n = 0;
    char **d = xp_xs_directory(x0, XP_TXN_NULL, "/big", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(n, 600);
    CU_ASSERT_STRING_EQUAL(d[0], "entry-number-0000");
    CU_ASSERT_STRING_EQUAL(d[n - 1], "entry-number-0599");
    free(d);
}

/* Sends one message; returns the reply type, or -1 if the daemon hung up. */
static int raw_req(int fd, uint32_t type, uint32_t tx, const void *payload, uint32_t len,
                   char *reply, size_t rlen)
{
    struct xsd_sockmsg h = { .type = type, .req_id = 1, .tx_id = tx, .len = len };
    /* MSG_NOSIGNAL: the daemon may hang up on us mid-message, by design. */
    if (send(fd, &h, sizeof(h), MSG_NOSIGNAL) != (ssize_t)sizeof(h) ||
        (len && send(fd, payload, len, MSG_NOSIGNAL) != (ssize_t)len))
        return -1;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 2000) <= 0)
            return -2;
        if (recv(fd, &h, sizeof(h), MSG_WAITALL) != (ssize_t)sizeof(h))
            return -1;
        char buf[XENSTORE_PAYLOAD_MAX + 1];
        if (h.len > XENSTORE_PAYLOAD_MAX || (h.len && recv(fd, buf, h.len, MSG_WAITALL) != (ssize_t)h.len))
            return -1;
        buf[h.len] = '\0';
        if (h.type == XS_WATCH_EVENT)
            continue;
        if (reply) {
            size_t l = strnlen(buf, rlen - 1);
            memcpy(reply, buf, l);
            reply[l] = '\0';
        }
        return (int)h.type;
    }
}

static void test_malformed(void)
{
    char rep[64];
    int fd = sim_connect_raw();
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(raw_req(fd, XS_READ, 0, "/tool", 5, rep, sizeof(rep)), XS_ERROR);   /* no nul */
    CU_ASSERT_STRING_EQUAL(rep, "EINVAL");
    CU_ASSERT_EQUAL(raw_req(fd, XS_READ, 0, "/a//b", 6, rep, sizeof(rep)), XS_ERROR);
    CU_ASSERT_STRING_EQUAL(rep, "EINVAL");
    CU_ASSERT_EQUAL(raw_req(fd, XS_READ, 0, "/nope", 6, rep, sizeof(rep)), XS_ERROR);
    CU_ASSERT_STRING_EQUAL(rep, "ENOENT");
    CU_ASSERT_EQUAL(raw_req(fd, XS_WATCH, 0, "/a", 3, rep, sizeof(rep)), XS_ERROR);     /* no token */
    CU_ASSERT_EQUAL(raw_req(fd, XS_READ, 99, "/tool", 6, rep, sizeof(rep)), XS_ERROR);  /* no such txn */
    CU_ASSERT_EQUAL(raw_req(fd, XS_TRANSACTION_END, 0, "T", 2, rep, sizeof(rep)), XS_ERROR);
    CU_ASSERT_EQUAL(raw_req(fd, XS_SET_PERMS, 0, "/tool\0q7", 9, rep, sizeof(rep)), XS_ERROR);
    CU_ASSERT_EQUAL(raw_req(fd, XS_WRITE, 0, "/tool", 5, rep, sizeof(rep)), XS_ERROR);  /* no value part */
    CU_ASSERT_EQUAL(raw_req(fd, 0x1234, 0, NULL, 0, rep, sizeof(rep)), XS_ERROR);
    CU_ASSERT_STRING_EQUAL(rep, "ENOSYS");
    CU_ASSERT_EQUAL(raw_req(fd, XS_GET_DOMAIN_PATH, 0, "7", 2, rep, sizeof(rep)), XS_GET_DOMAIN_PATH);
    CU_ASSERT_STRING_EQUAL(rep, "/local/domain/7");
    char longpath[XENSTORE_ABS_PATH_MAX + 10];
    memset(longpath, 'a', sizeof(longpath));
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    CU_ASSERT_EQUAL(raw_req(fd, XS_WRITE, 0, longpath, sizeof(longpath), rep, sizeof(rep)), XS_ERROR);
    /* An oversized header gets the client disconnected (a real body: with none, send() failed
     * with EFAULT and the check passed whatever the daemon did; found by check-valgrind). */
    static char big[XENSTORE_PAYLOAD_MAX + 1];
    CU_ASSERT_EQUAL(raw_req(fd, XS_READ, 0, big, sizeof(big), rep, sizeof(rep)), -1);
    close(fd);

    /* Random garbage from many clients; the daemon must keep serving. */
    srand(12345);
    char junk[XENSTORE_PAYLOAD_MAX];
    for (int c = 0; c < 40; c++) {
        fd = sim_connect_raw();
        CU_ASSERT_FATAL(fd >= 0);
        for (int m = 0; m < 25; m++) {
            uint32_t len = (uint32_t)(rand() % 64 == 0 ? XENSTORE_PAYLOAD_MAX : rand() % 96);
            for (uint32_t i = 0; i < len; i++) {
                int r = rand() % 8;
                junk[i] = r == 0 ? '\0' : r == 1 ? '/' : (char)(rand() % 256);
            }
            uint32_t type = (uint32_t)(rand() % (XS_TYPE_COUNT + 2));
            uint32_t tx = rand() % 4 == 0 ? (uint32_t)rand() % 3 : 0;
            if (type == XS_CONTROL)
                type = XS_READ;      /* keep this connection's domid as it is */
            if (raw_req(fd, type, tx, junk, len, NULL, 0) == -1)
                break;
        }
        close(fd);
    }
    char *v = xp_xs_read(x0, XP_TXN_NULL, "/local/domain/0/name", NULL);
    CU_ASSERT_STRING_EQUAL(v ? v : "", "Domain-0");
    free(v);
    struct xp *fresh = xp_open_sim(sim_dir, 9);
    CU_ASSERT_PTR_NOT_NULL(fresh);
    CU_ASSERT_EQUAL(xp_xs_write(fresh, XP_TXN_NULL, "x", "still alive"), 0);
    xp_close(fresh);
}

/* A watch event longer than a message may be (a long token, a long path under the watch):
 * libxenstore refuses it (E2BIG) and that connection is lost, so xenstored drops such
 * events (Xen commit "tools/xenstore: drop watch event messages exceeding maximum size").
 * The watcher keeps its connection and sees the next event that fits.  Found by fuzz_xsd. */
static void test_oversized_event(void)
{
    struct xp *w = xp_open_sim(sim_dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    char token[4001], path[260];
    memset(token, 'k', sizeof(token) - 1);
    token[sizeof(token) - 1] = '\0';
    CU_ASSERT_EQUAL(xp_xs_watch(w, "/big", token), 0);     /* 4005 bytes: fits */
    char *p, *t;
    CU_ASSERT_EQUAL_FATAL(sim_next_watch(w, 2000, &p, &t), 1);
    CU_ASSERT_STRING_EQUAL(p, "/big");
    free(p);
    free(t);
    snprintf(path, sizeof(path), "/big/%0250d", 0);        /* its event: 4257 bytes */
    CU_ASSERT_EQUAL(xp_xs_write(x0, XP_TXN_NULL, path, "v"), 0);
    CU_ASSERT_EQUAL(xp_xs_write(x0, XP_TXN_NULL, "/big/s", "v"), 0);   /* this one fits */
    int r = sim_next_watch(w, 2000, &p, &t);
    CU_ASSERT_EQUAL(r, 1);
    if (r == 1) {
        CU_ASSERT_STRING_EQUAL(p, "/big/s");
        CU_ASSERT_EQUAL(strlen(t), sizeof(token) - 1);
        free(p);
        free(t);
    }
    char *v = xp_xs_read(w, XP_TXN_NULL, "/local/domain/0/name", NULL);
    CU_ASSERT_STRING_EQUAL(v ? v : "(lost)", "Domain-0");
    free(v);
    xp_close(w);
    CU_ASSERT_EQUAL(xp_xs_rm(x0, XP_TXN_NULL, "/big"), 0);
}

static void test_no_daemon(void)
{
    errno = 0;
    CU_ASSERT_PTR_NULL(xp_open_sim("/nonexistent-memx-dir", 0));
    CU_ASSERT_NOT_EQUAL(errno, 0);
}

static const struct cu_test tests[] = {
    { "read/write/mkdir/directory/rm", test_basic },
    { "relative paths, domid, permissions", test_relative_and_perms },
    { "watches: initial, subtree, rm, relative", test_watch },
    { "transactions: isolation, conflict, abort", test_transaction },
    { "directory larger than one message", test_big_directory },
    { "malformed and random messages", test_malformed },
    { "a watch event over the message limit is dropped", test_oversized_event },
    { "no daemon", test_no_daemon },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "xenplat-xs", suite_init, suite_clean, tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
