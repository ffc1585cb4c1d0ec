/* upgrade.c — the graceful hand-over to a new binary; see upgrade.h. */
#include "upgrade.h"

#include "blkback.h"
#include "evloop.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HANDOVER_ENV "MEMX_HANDOVER"

extern char **environ;

struct upgrade {
    struct evloop *el;
    struct blkback *bb;
    char exe[PATH_MAX];             /* where this binary was started from */
    char **argv;                    /* argv as started, NULL-terminated */
    bool abandoned;                 /* shutting down: no hand-over any more */
    int drain_ms_max;               /* UPGRADE_DRAIN_MS; tests shorten it */

    /* A hand-over under way (this process the predecessor). */
    bool busy;
    char binary[PATH_MAX];
    long long drain_timer;
    void (*reply)(void *arg, json_object *r);
    void *reply_arg;

    /* The last hand-over this process took part in, for status: as a
     * predecessor whose exec failed, or as the successor. */
    uint64_t id;                    /* 0: none */
    uint64_t t0_ns;                 /* when the rings stopped being read (CLOCK_MONOTONIC) */
    const char *state;              /* "draining", "failed", "resuming", "done", "incomplete" */
    char error[PATH_MAX + 128];
    uint64_t drain_ms, pause_ms;
    unsigned in_flight;             /* requests handed over in flight (a drain that timed out) */
    int devices, resumed;           /* connected at the hand-over; connected again since */
    long long resume_timer;
};

/* ---- start-up ------------------------------------------------------------ */

static bool same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* argv[0] as the shell or the supervisor found it (a symlink stays a symlink:
 * an upgrade may repoint it), checked against the running image; else what
 * /proc/self/exe names (symlinks resolved, " (deleted)" cut). */
static void resolve_exe(struct upgrade *u, const char *argv0)
{
    char self[PATH_MAX] = "", cand[PATH_MAX] = "";
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    size_t sl = strlen(self);
    if (sl > 10 && !strcmp(self + sl - 10, " (deleted)"))
        self[sl - 10] = '\0';
    if (argv0 && argv0[0] == '/') {
        snprintf(cand, sizeof(cand), "%s", argv0);
    } else if (argv0 && strchr(argv0, '/')) {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) && (size_t)snprintf(cand, sizeof(cand), "%s/%s", cwd, argv0) >= sizeof(cand))
            cand[0] = '\0';
    } else if (argv0 && argv0[0]) {
        const char *path = getenv("PATH");
        for (const char *p = path; p && *p && !cand[0];) {
            const char *e = strchr(p, ':');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            char try[PATH_MAX];
            if (len && (size_t)snprintf(try, sizeof(try), "%.*s/%s", (int)len, p, argv0) < sizeof(try) &&
                access(try, X_OK) == 0 && try[0] == '/')
                snprintf(cand, sizeof(cand), "%s", try);
            p = e ? e + 1 : p + len;
        }
    }
    if (cand[0] && same_file(cand, "/proc/self/exe")) {
        snprintf(u->exe, sizeof(u->exe), "%s", cand);
        return;
    }
    if (cand[0])
        mx_warn("backd: %s is not the running binary: an upgrade without --binary execs %s", cand, self);
    snprintf(u->exe, sizeof(u->exe), "%s", self);
}

/* MEMX_HANDOVER="<id> <t0_ns> <drain_ms> <devices> <in_flight>": this
 * process is the successor of a hand-over. */
static void read_handover(struct upgrade *u)
{
    const char *h = getenv(HANDOVER_ENV);
    if (!h)
        return;
    unsigned long long id, t0, drain;
    int ndev;
    unsigned left;
    if (sscanf(h, "%llu %llu %llu %d %u", &id, &t0, &drain, &ndev, &left) == 5 && id && ndev >= 0) {
        u->id = id;
        u->t0_ns = t0;
        u->drain_ms = drain;
        u->devices = ndev;
        u->in_flight = left;
        u->state = "resuming";
        mx_info("backd: taking over from the previous memx-backd (pid %d): %d device(s) to resume, "
                "%u request(s) handed over in flight", (int)getpid(), ndev, left);
    } else {
        mx_warn("backd: ignoring a malformed %s='%s'", HANDOVER_ENV, h);
    }
    unsetenv(HANDOVER_ENV);     /* not for a process this one execs or starts */
}

struct upgrade *upgrade_new(struct evloop *el, int argc, char **argv)
{
    struct upgrade *u = calloc(1, sizeof(*u));
    if (!u || !(u->argv = calloc((size_t)argc + 1, sizeof(*u->argv)))) {
        free(u);
        return NULL;
    }
    for (int i = 0; i < argc; i++)
        if (!(u->argv[i] = strdup(argv[i]))) {
            upgrade_free(u);
            return NULL;
        }
    u->el = el;
    /* Test-only: a drain bound a test can wait out while memory servers
     * are stopped, before their etcd leases lapse. */
    const char *t = getenv("MEMX_TEST_UPGRADE_DRAIN_MS");
    u->drain_ms_max = t && atoi(t) > 0 ? atoi(t) : UPGRADE_DRAIN_MS;
    resolve_exe(u, argc > 0 ? argv[0] : NULL);
    read_handover(u);
    return u;
}

static void resumed_all(struct upgrade *u)
{
    u->pause_ms = (evloop_now_ns() - u->t0_ns) / 1000000;
    u->state = "done";
    if (u->resume_timer)
        evloop_del_timer(u->el, u->resume_timer);
    u->resume_timer = 0;
    mx_info("backd: hand-over done: %d device(s) resumed; guest I/O paused %" PRIu64 " ms "
            "(drain %" PRIu64 " ms, exec and resume %" PRIu64 " ms)", u->resumed, u->pause_ms, u->drain_ms,
            u->pause_ms - u->drain_ms);
}

static void on_connect(void *arg, const char *dev)
{
    struct upgrade *u = arg;
    if (!u->state || strcmp(u->state, "resuming"))
        return;
    u->resumed++;
    mx_info("backd: hand-over: %s serves again (%d of %d)", dev, u->resumed, u->devices);
    if (u->resumed >= u->devices)
        resumed_all(u);
}

static int resume_late(struct evloop *el, long long id, void *arg)
{
    struct upgrade *u = arg;
    u->resume_timer = 0;
    if (u->state && !strcmp(u->state, "resuming")) {
        u->state = "incomplete";
        mx_warn("backd: hand-over: only %d of %d device(s) serve again after %d ms", u->resumed, u->devices,
                UPGRADE_RESUME_MS);
    }
    return -1;
}

void upgrade_set_blkback(struct upgrade *u, struct blkback *bb)
{
    u->bb = bb;
    blkback_on_connect(bb, on_connect, u);
    if (u->state && !strcmp(u->state, "resuming")) {
        if (u->devices == 0)
            resumed_all(u);
        else
            u->resume_timer = evloop_add_timer(u->el, UPGRADE_RESUME_MS, resume_late, u);
    }
}

void upgrade_free(struct upgrade *u)
{
    if (!u)
        return;
    if (u->drain_timer)
        evloop_del_timer(u->el, u->drain_timer);
    if (u->resume_timer)
        evloop_del_timer(u->el, u->resume_timer);
    if (u->bb)
        blkback_on_connect(u->bb, NULL, NULL);
    for (char **a = u->argv; a && *a; a++)
        free(*a);
    free(u->argv);
    free(u);
}

/* ---- the hand-over --------------------------------------------------------- */

static void answer(struct upgrade *u, json_object *r)
{
    if (u->reply)
        u->reply(u->reply_arg, r);
    u->reply = NULL;
    json_object_put(r);
}

static json_object *error_obj(const char *msg)
{
    json_object *r = json_object_new_object();
    json_object_object_add(r, "error", json_object_new_string(msg));
    return r;
}

/* Every descriptor above stderr closes on exec, whoever opened it: ours
 * are O_CLOEXEC already, but a library's (libfabric's sockets, libxenstore's)
 * left open would keep the old pool connections, or a grant mapping's
 * device, alive in the successor.  Only the flag: if the exec fails, they
 * all still work. */
static void cloexec_all(void)
{
    if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
        return;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(d)) {
            int fl = fcntl(fd, F_GETFD);
            if (fl >= 0 && !(fl & FD_CLOEXEC))
                fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
        }
    }
    closedir(d);
}

static void exec_successor(struct upgrade *u, int ndev, unsigned left)
{
    char env[128];
    snprintf(env, sizeof(env), "%" PRIu64 " %" PRIu64 " %" PRIu64 " %d %u", u->id, u->t0_ns, u->drain_ms, ndev,
             left);
    if (setenv(HANDOVER_ENV, env, 1) == 0) {
        cloexec_all();
        mx_info("backd: hand-over: exec %s (pid %d stays)", u->binary, (int)getpid());
        fflush(stdout);
        fflush(stderr);
        execve(u->binary, u->argv, environ);
    }
    int e = errno;
    unsetenv(HANDOVER_ENV);
    uint64_t paused = (evloop_now_ns() - u->t0_ns) / 1000000;
    snprintf(u->error, sizeof(u->error), "cannot exec %s: %s", u->binary, strerror(e));
    mx_err("backd: hand-over failed: %s; serving on (guest I/O paused %" PRIu64 " ms)", u->error, paused);
    u->state = "failed";
    u->busy = false;
    blkback_resume(u->bb);
}

static void hand_over(struct upgrade *u, bool timed_out)
{
    if (u->drain_timer && !timed_out)
        evloop_del_timer(u->el, u->drain_timer);
    u->drain_timer = 0;
    int ndev;
    unsigned left = blkback_inflight(u->bb, &ndev);
    u->drain_ms = (evloop_now_ns() - u->t0_ns) / 1000000;
    if (timed_out)
        mx_warn("backd: hand-over: the drain did not end within %d ms: %u request(s) still in flight go to "
                "the successor, which replays them", u->drain_ms_max, left);
    else
        mx_info("backd: hand-over: %d device(s) drained in %" PRIu64 " ms", ndev, u->drain_ms);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "ok", json_object_new_boolean(1));
    json_object_object_add(r, "handover", json_object_new_uint64(u->id));
    json_object_object_add(r, "binary", json_object_new_string(u->binary));
    json_object_object_add(r, "pid", json_object_new_int((int)getpid()));
    json_object_object_add(r, "drain_ms", json_object_new_uint64(u->drain_ms));
    json_object_object_add(r, "devices", json_object_new_int(ndev));
    json_object_object_add(r, "in_flight", json_object_new_uint64(left));
    answer(u, r);       /* before the exec: the client's socket closes with it */
    exec_successor(u, ndev, left);
}

static void drained(void *arg) { hand_over(arg, false); }

static int drain_late(struct evloop *el, long long id, void *arg)
{
    hand_over(arg, true);
    return -1;
}

/* Refused before anything stops: the old process serves on untouched. */
static const char *check_binary(const char *path, char *why, size_t len)
{
    struct stat st;
    if (path[0] != '/')
        snprintf(why, len, "%s: not an absolute path", path);
    else if (stat(path, &st) < 0)
        snprintf(why, len, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(why, len, "%s: not a regular file", path);
    else if (access(path, X_OK) < 0)
        snprintf(why, len, "%s: not executable: %s", path, strerror(errno));
    else
        return NULL;
    return why;
}

void upgrade_start(struct upgrade *u, const char *binary, void (*reply)(void *arg, json_object *r), void *arg)
{
    char why[PATH_MAX + 100];
    const char *path = binary && binary[0] ? binary : u->exe;
    if (u->busy || u->abandoned || !u->bb) {
        /* The hand-over under way keeps its own client. */
        json_object *r = error_obj(u->busy ? "a hand-over is already under way" : "memx-backd is shutting down");
        mx_warn("backd: upgrade refused: %s", json_object_get_string(json_object_object_get(r, "error")));
        if (reply)
            reply(arg, r);
        json_object_put(r);
        return;
    }
    u->reply = reply;
    u->reply_arg = arg;
    if (!path[0] || check_binary(path, why, sizeof(why))) {
        if (!path[0])
            snprintf(why, sizeof(why), "the path memx-backd was started from is unknown: give --binary");
        mx_warn("backd: upgrade refused: %s (serving on)", why);
        answer(u, error_obj(why));
        return;
    }
    snprintf(u->binary, sizeof(u->binary), "%s", path);
    u->busy = true;
    u->t0_ns = evloop_now_ns();
    u->id = u->t0_ns;
    u->state = "draining";
    u->error[0] = '\0';
    u->in_flight = 0;
    u->devices = u->resumed = 0;
    int ndev;
    unsigned n = blkback_inflight(u->bb, &ndev);
    mx_info("backd: hand-over to %s: rings no longer read on %d device(s), %u request(s) in flight to finish",
            u->binary, ndev, n);
    u->drain_timer = evloop_add_timer(u->el, u->drain_ms_max, drain_late, u);
    blkback_quiesce(u->bb, drained, u);
}

void upgrade_abandon(struct upgrade *u)
{
    if (!u)
        return;
    u->abandoned = true;
    if (!u->busy)
        return;
    if (u->drain_timer)
        evloop_del_timer(u->el, u->drain_timer);
    u->drain_timer = 0;
    u->busy = false;
    u->state = "failed";
    snprintf(u->error, sizeof(u->error), "memx-backd is shutting down");
    mx_warn("backd: hand-over to %s abandoned: shutting down", u->binary);
    answer(u, error_obj("memx-backd began shutting down during the hand-over; it closes every device"));
    /* No exec once the drain ends; the shutdown that follows closes every
     * device (what they take until then is answered first). */
    blkback_resume(u->bb);
}

void upgrade_status(void *arg, json_object *o)
{
    struct upgrade *u = arg;
    json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
    json_object_object_add(o, "binary", json_object_new_string(u->exe));
    if (!u->id)
        return;
    json_object *h = json_object_new_object();
    json_object_object_add(h, "id", json_object_new_uint64(u->id));
    json_object_object_add(h, "state", json_object_new_string(u->state));
    if (u->error[0])
        json_object_object_add(h, "error", json_object_new_string(u->error));
    json_object_object_add(h, "drain_ms", json_object_new_uint64(u->drain_ms));
    if (!strcmp(u->state, "done"))
        json_object_object_add(h, "pause_ms", json_object_new_uint64(u->pause_ms));
    json_object_object_add(h, "devices", json_object_new_int(u->devices));
    json_object_object_add(h, "resumed", json_object_new_int(u->resumed));
    json_object_object_add(h, "in_flight", json_object_new_uint64(u->in_flight));
    json_object_object_add(o, "handover", h);
}
