/* Grants and event channels on the sim platform, between two processes as on
 * Xen (a forked "guest" dom5 and this process as dom0), plus the real
 * platform's behaviour off Xen. */
#include "cu_main.h"
#include "test_xenplat_sim.h"

#include <fcntl.h>
#include <signal.h>
#include <xen/grant_table.h>

#define GUEST 5

static int suite_init(void) { return sim_start(); }
static int suite_clean(void) { return sim_stop(); }

/* Two pipes make a lock-step conversation between parent and child. */
struct chan { int to_child[2], to_parent[2]; };

static int chan_send(int fd, const void *p, size_t n) { return write(fd, p, n) == (ssize_t)n ? 0 : -1; }

static int chan_recv(int fd, void *p, size_t n)
{
    struct pollfd pf = { .fd = fd, .events = POLLIN };
    if (poll(&pf, 1, 5000) <= 0)
        return -1;
    return read(fd, p, n) == (ssize_t)n ? 0 : -1;
}

static int child_exit_status(pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

/* 0 when the child died of SIGKILL: a child that must leave its bindings as
 * a kill -9 does kills itself, rather than _exit(), whose leak check under
 * memcheck would fail the child for the xp it leaves open on purpose. */
static int child_killed_status(pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
        return 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

struct shared_refs {
    uint32_t rw[4];         /* writable, to dom0, page i filled with 'A'+i */
    uint32_t ro;            /* read-only, to dom0 */
    uint32_t other;         /* writable, to dom7 */
    uint32_t freed;         /* shared then unshared */
};

/* The guest: shares pages, waits for dom0 to work on them, checks dom0's
 * writes.  Exit codes name the failing step. */
static int grant_child(struct chan *ch)
{
    struct xp *xp = xp_open_sim(sim_dir, GUEST);
    if (!xp)
        return 10;
    struct shared_refs r;
    char *rw = xp_gnt_share(xp, 0, 4, r.rw, true);
    char *ro = xp_gnt_share(xp, 0, 1, &r.ro, false);
    char *other = xp_gnt_share(xp, 7, 1, &r.other, true);
    char *freed = xp_gnt_share(xp, 0, 1, &r.freed, true);
    if (!rw || !ro || !other || !freed)
        return 11;
    for (int i = 0; i < 4; i++) {
        if (rw[i * XP_PAGE_SIZE] != 0)        /* pages come zeroed */
            return 12;
        memset(rw + i * XP_PAGE_SIZE, 'A' + i, XP_PAGE_SIZE);
    }
    memset(ro, 'R', XP_PAGE_SIZE);
    memset(other, 'O', XP_PAGE_SIZE);
    if (xp_gnt_unshare(xp, freed, 1) < 0 || xp_gnt_unshare(xp, freed, 1) == 0)
        return 13;
    if (chan_send(ch->to_parent[1], &r, sizeof(r)) < 0)
        return 14;
    char go;
    if (chan_recv(ch->to_child[0], &go, 1) < 0)
        return 15;
    /* dom0 wrote 'M' through its mapping into page 1 and 'W' by grant copy
     * into page 2 at offset 100..199; the other pages are untouched. */
    if (rw[XP_PAGE_SIZE + 17] != 'M' || rw[2 * XP_PAGE_SIZE + 100] != 'W' ||
        rw[2 * XP_PAGE_SIZE + 199] != 'W' || rw[2 * XP_PAGE_SIZE + 200] != 'C' ||
        rw[2 * XP_PAGE_SIZE + 99] != 'C')
        return 16;
    if (ro[0] != 'R' || other[0] != 'O')
        return 17;
    if (xp_gnt_unshare(xp, rw, 4) < 0)
        return 18;
    if (chan_send(ch->to_parent[1], "u", 1) < 0)
        return 19;
    if (chan_recv(ch->to_child[0], &go, 1) < 0)
        return 20;
    xp_close(xp);
    return 0;
}

static void test_grants(void)
{
    struct chan ch;
    CU_ASSERT_FATAL(pipe(ch.to_child) == 0 && pipe(ch.to_parent) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(grant_child(&ch));
    struct xp *xp = xp_open_sim(sim_dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(xp);
    struct shared_refs r;
    CU_ASSERT_EQUAL_FATAL(chan_recv(ch.to_parent[0], &r, sizeof(r)), 0);

    /* Map all four contiguously, read the guest's data, write through it. */
    char *m = xp_gnt_map(xp, GUEST, 4, r.rw, true);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(m[i * XP_PAGE_SIZE + 4095], 'A' + i);
    m[XP_PAGE_SIZE + 17] = 'M';
    CU_ASSERT_EQUAL(xp_gnt_unmap(xp, m, 4), 0);
    CU_ASSERT_EQUAL(xp_gnt_unmap(xp, m, 4), -1);       /* not mapped any more */

    /* Every bad map fails cleanly. */
    uint32_t bad[][2] = { { r.rw[0], 0 }, { r.rw[0], 16384 }, { r.rw[0], 0xffffffffu },
                          { r.rw[0], r.other }, { r.rw[0], r.freed }, { r.rw[0], r.rw[0] ^ 0x2000u } };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        CU_ASSERT_PTR_NULL(xp_gnt_map(xp, GUEST, 2, bad[i], false));
        CU_ASSERT_EQUAL(errno, EINVAL);
    }
    CU_ASSERT_PTR_NULL(xp_gnt_map(xp, GUEST, 1, &r.ro, true));    /* read-only mapped writable */
    CU_ASSERT_PTR_NULL(xp_gnt_map(xp, 42, 1, r.rw, false));       /* no such domain */
    CU_ASSERT_PTR_NULL(xp_gnt_map(xp, GUEST, 0, r.rw, false));
    char *ro = xp_gnt_map(xp, GUEST, 1, &r.ro, false);
    CU_ASSERT_PTR_NOT_NULL(ro);
    if (ro) {
        CU_ASSERT_EQUAL(ro[10], 'R');
        CU_ASSERT_EQUAL(xp_gnt_unmap(xp, ro, 1), 0);
    }

    /* Grant copy: good segments succeed, each bad one reports its status. */
    char in[XP_PAGE_SIZE], out[100], sink[XP_PAGE_SIZE];
    memset(out, 'W', sizeof(out));
    struct xp_gcopy segs[] = {
        { .to_guest = false, .domid = GUEST, .ref = r.rw[3], .offset = 0, .len = XP_PAGE_SIZE, .local = in },
        { .to_guest = true, .domid = GUEST, .ref = r.rw[2], .offset = 100, .len = 100, .local = out },
        { .to_guest = false, .domid = GUEST, .ref = r.ro, .offset = 4000, .len = 96, .local = sink },
        { .to_guest = true, .domid = GUEST, .ref = r.ro, .offset = 0, .len = 10, .local = out },
        { .to_guest = false, .domid = GUEST, .ref = r.other, .offset = 0, .len = 10, .local = sink },
        { .to_guest = false, .domid = GUEST, .ref = 0, .offset = 0, .len = 10, .local = sink },
        { .to_guest = false, .domid = GUEST, .ref = 99999, .offset = 0, .len = 10, .local = sink },
        { .to_guest = false, .domid = GUEST, .ref = r.freed, .offset = 0, .len = 10, .local = sink },
        { .to_guest = false, .domid = GUEST, .ref = r.rw[0], .offset = 4000, .len = 97, .local = sink },
        { .to_guest = false, .domid = 42, .ref = r.rw[0], .offset = 0, .len = 10, .local = sink },
    };
    int16_t want[] = { GNTST_okay, GNTST_okay, GNTST_okay, GNTST_permission_denied,
                       GNTST_permission_denied, GNTST_bad_gntref, GNTST_bad_gntref, GNTST_bad_gntref,
                       GNTST_bad_copy_arg, GNTST_bad_domain };
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
        segs[i].status = 99;
    CU_ASSERT_EQUAL(xp_gnt_copy(xp, sizeof(segs) / sizeof(segs[0]), segs), -1);
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++)
        CU_ASSERT_EQUAL(segs[i].status, want[i]);
    CU_ASSERT_EQUAL(in[0], 'D');
    CU_ASSERT_EQUAL(in[4095], 'D');
    CU_ASSERT_EQUAL(sink[95], 'R');
    CU_ASSERT_EQUAL(xp_gnt_copy(xp, 2, segs), 0);        /* only the good ones */

    CU_ASSERT_EQUAL(chan_send(ch.to_child[1], "g", 1), 0);
    char u;
    CU_ASSERT_EQUAL(chan_recv(ch.to_parent[0], &u, 1), 0);
    /* The guest unshared: its refs are dead for mapping and copying. */
    CU_ASSERT_PTR_NULL(xp_gnt_map(xp, GUEST, 1, r.rw, false));
    struct xp_gcopy late = { .domid = GUEST, .ref = r.rw[1], .len = 1, .local = sink };
    CU_ASSERT_EQUAL(xp_gnt_copy(xp, 1, &late), -1);
    CU_ASSERT_EQUAL(late.status, GNTST_bad_gntref);
    CU_ASSERT_EQUAL(chan_send(ch.to_child[1], "q", 1), 0);
    CU_ASSERT_EQUAL(child_exit_status(pid), 0);
    xp_close(xp);
    for (int i = 0; i < 2; i++) {
        close(ch.to_child[i]);
        close(ch.to_parent[i]);
    }
}

static int wait_pending(struct xp *xp, int ms)
{
    struct pollfd p = { .fd = xp_evtchn_fd(xp), .events = POLLIN };
    if (poll(&p, 1, ms) <= 0)
        return -1;
    return xp_evtchn_pending(xp);
}

/* The guest end: allocates an unbound port for dom0 and plays ping-pong. */
static int evtchn_child(struct chan *ch)
{
    struct xp *xp = xp_open_sim(sim_dir, GUEST);
    if (!xp)
        return 30;
    int port = xp_evtchn_alloc_unbound(xp, 0);
    int wrong = xp_evtchn_alloc_unbound(xp, 9);       /* for a different domain */
    if (port <= 0 || wrong <= 0 || port == wrong)
        return 31;
    if (xp_evtchn_notify(xp, (uint32_t)port) != 0)    /* unbound: silently dropped */
        return 32;
    int ports[2] = { port, wrong };
    char c;
    if (chan_send(ch->to_parent[1], ports, sizeof(ports)) < 0 || chan_recv(ch->to_child[0], &c, 1) < 0)
        return 33;
    /* dom0 bound and notified twice: one pending report, then masked. */
    if (wait_pending(xp, 2000) != port)
        return 34;
    if (xp_evtchn_pending(xp) != -1 || errno != EAGAIN)
        return 35;
    if (chan_send(ch->to_parent[1], "1", 1) < 0 || chan_recv(ch->to_child[0], &c, 1) < 0)
        return 36;
    /* dom0 notified again while masked: nothing until unmask. */
    if (wait_pending(xp, 100) != -1)
        return 37;
    if (xp_evtchn_unmask(xp, (uint32_t)port) < 0 || wait_pending(xp, 2000) != port)
        return 38;
    if (xp_evtchn_unmask(xp, (uint32_t)port) < 0 || xp_evtchn_notify(xp, (uint32_t)port) < 0)
        return 39;
    if (chan_send(ch->to_parent[1], "2", 1) < 0 || chan_recv(ch->to_child[0], &c, 1) < 0)
        return 40;
    if (xp_evtchn_unbind(xp, (uint32_t)port) < 0 || xp_evtchn_unbind(xp, (uint32_t)port) == 0 ||
        xp_evtchn_notify(xp, (uint32_t)port) == 0)
        return 41;
    xp_close(xp);
    return chan_send(ch->to_parent[1], "3", 1) < 0 ? 42 : 0;
}

static void test_evtchn(void)
{
    struct chan ch;
    CU_ASSERT_FATAL(pipe(ch.to_child) == 0 && pipe(ch.to_parent) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0)
        _exit(evtchn_child(&ch));
    struct xp *xp = xp_open_sim(sim_dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(xp);
    int ports[2];
    char c;
    CU_ASSERT_EQUAL_FATAL(chan_recv(ch.to_parent[0], ports, sizeof(ports)), 0);
    CU_ASSERT_EQUAL(xp_evtchn_bind_interdomain(xp, GUEST, (uint32_t)ports[1]), -1);  /* not ours */
    CU_ASSERT_EQUAL(errno, EINVAL);
    CU_ASSERT_EQUAL(xp_evtchn_bind_interdomain(xp, GUEST, 4000), -1);                /* no such port */
    CU_ASSERT_EQUAL(xp_evtchn_bind_interdomain(xp, 42, (uint32_t)ports[0]), -1);
    int local = xp_evtchn_bind_interdomain(xp, GUEST, (uint32_t)ports[0]);
    CU_ASSERT_FATAL(local > 0);
    CU_ASSERT_EQUAL(xp_evtchn_bind_interdomain(xp, GUEST, (uint32_t)ports[0]), -1);   /* binds once */
    CU_ASSERT_EQUAL(errno, EBUSY);
    CU_ASSERT_EQUAL(xp_evtchn_pending(xp), -1);                  /* nothing yet */
    CU_ASSERT_EQUAL(xp_evtchn_notify(xp, (uint32_t)local), 0);
    CU_ASSERT_EQUAL(xp_evtchn_notify(xp, (uint32_t)local), 0);
    CU_ASSERT_EQUAL(xp_evtchn_notify(xp, 999), -1);              /* not our port */
    CU_ASSERT_EQUAL(chan_send(ch.to_child[1], "a", 1), 0);
    CU_ASSERT_EQUAL(chan_recv(ch.to_parent[0], &c, 1), 0);
    CU_ASSERT_EQUAL(xp_evtchn_notify(xp, (uint32_t)local), 0);
    CU_ASSERT_EQUAL(chan_send(ch.to_child[1], "b", 1), 0);
    CU_ASSERT_EQUAL(chan_recv(ch.to_parent[0], &c, 1), 0);
    CU_ASSERT_EQUAL(wait_pending(xp, 2000), local);              /* the guest's notify */
    CU_ASSERT_EQUAL(xp_evtchn_unmask(xp, (uint32_t)local), 0);
    CU_ASSERT_EQUAL(chan_send(ch.to_child[1], "c", 1), 0);
    CU_ASSERT_EQUAL(chan_recv(ch.to_parent[0], &c, 1), 0);
    /* The guest unbound and closed: notifying it is quietly a no-op. */
    CU_ASSERT_EQUAL(xp_evtchn_notify(xp, (uint32_t)local), 0);
    CU_ASSERT_EQUAL(child_exit_status(pid), 0);
    CU_ASSERT_EQUAL(xp_evtchn_unbind(xp, (uint32_t)local), 0);
    xp_close(xp);
    for (int i = 0; i < 2; i++) {
        close(ch.to_child[i]);
        close(ch.to_parent[i]);
    }
}

/* A backend that died (or exec'd: same pid, fds closed) without unbinding,
 * and its successor bound the guest's port again: the guest's next notify
 * reaches the successor, as Xen delivers a send to whoever holds the
 * binding now, though the guest last sent to the dead binder.  A notify
 * lost there deadlocks a guest that waits for answers to requests the
 * successor never heard of. */
static void test_evtchn_rebound(void)
{
    struct xp *g = xp_open_sim(sim_dir, GUEST);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int gport = xp_evtchn_alloc_unbound(g, 0);
    CU_ASSERT_FATAL(gport > 0);
    struct chan ch;
    CU_ASSERT_FATAL(pipe(ch.to_child) == 0 && pipe(ch.to_parent) == 0);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        struct xp *d = xp_open_sim(sim_dir, 0);
        int l = d ? xp_evtchn_bind_interdomain(d, GUEST, (uint32_t)gport) : -1;
        char c;
        if (l <= 0 || chan_send(ch.to_parent[1], "b", 1) < 0 || wait_pending(d, 2000) != l)
            _exit(1);
        chan_send(ch.to_parent[1], "n", 1);
        chan_recv(ch.to_child[0], &c, 1);
        raise(SIGKILL);     /* no unbind: as a kill -9 or an exec leaves it */
        _exit(1);
    }
    char c;
    CU_ASSERT_EQUAL_FATAL(chan_recv(ch.to_parent[0], &c, 1), 0);
    CU_ASSERT_EQUAL(xp_evtchn_notify(g, (uint32_t)gport), 0);     /* to the first binder */
    CU_ASSERT_EQUAL(chan_recv(ch.to_parent[0], &c, 1), 0);
    CU_ASSERT_EQUAL(chan_send(ch.to_child[1], "x", 1), 0);
    CU_ASSERT_EQUAL(child_killed_status(pid), 0);
    struct xp *b = xp_open_sim(sim_dir, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    int local = xp_evtchn_bind_interdomain(b, GUEST, (uint32_t)gport);
    CU_ASSERT_FATAL(local > 0);
    CU_ASSERT_EQUAL(xp_evtchn_notify(g, (uint32_t)gport), 0);     /* one notify, to the successor */
    CU_ASSERT_EQUAL(wait_pending(b, 2000), local);
    xp_close(b);
    xp_close(g);
    for (int i = 0; i < 2; i++) {
        close(ch.to_child[i]);
        close(ch.to_parent[i]);
    }
}

static void test_grant_table_full(void)
{
    struct xp *xp = xp_open_sim(sim_dir, 11);
    CU_ASSERT_PTR_NOT_NULL_FATAL(xp);
    uint32_t *refs = calloc(16384, sizeof(*refs));
    CU_ASSERT_PTR_NULL(xp_gnt_share(xp, 0, 16384, refs, true));     /* more than the table */
    char *a = xp_gnt_share(xp, 0, 16000, refs, true);
    CU_ASSERT_PTR_NOT_NULL(a);
    errno = 0;
    CU_ASSERT_PTR_NULL(xp_gnt_share(xp, 0, 1000, refs + 16000, true));
    CU_ASSERT_EQUAL(errno, ENOSPC);
    CU_ASSERT_EQUAL(xp_gnt_unshare(xp, a, 16000), 0);
    char *b = xp_gnt_share(xp, 0, 1000, refs, true);
    CU_ASSERT_PTR_NOT_NULL(b);
    xp_close(xp);     /* unshares what is left */
    free(refs);
}

static void test_real_off_xen(void)
{
    if (access("/dev/xen/evtchn", F_OK) == 0)
        return;      /* on a Xen host this property cannot be checked */
    /* Off Xen: NULL with ENOENT and not a word on stderr. */
    char path[] = "/tmp/memx-test-stderr-XXXXXX";
    int tmp = mkstemp(path);
    CU_ASSERT_FATAL(tmp >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(tmp, 2);
    errno = 0;
    struct xp *xp = xp_open_real();
    int e = errno;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    CU_ASSERT_PTR_NULL(xp);
    CU_ASSERT_EQUAL(e, ENOENT);
    struct stat st;
    CU_ASSERT_EQUAL(fstat(tmp, &st), 0);
    CU_ASSERT_EQUAL(st.st_size, 0);
    close(tmp);
    unlink(path);
}

static const struct cu_test tests[] = {
    { "grants across processes: map, copy, every bad ref", test_grants },
    { "event channels across processes: bind, notify, mask", test_evtchn },
    { "event channels: a notify reaches the binder that replaced a dead one", test_evtchn_rebound },
    { "grant table full, then reuse", test_grant_table_full },
    { "real platform off Xen: NULL, ENOENT, quiet", test_real_off_xen },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "xenplat-gnt-evtchn", suite_init, suite_clean, tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
