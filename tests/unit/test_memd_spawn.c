/* test_memd_spawn.c — start and stop real memx-memd processes for the network
 * tests: a free loopback port, a temp key and config, and a wait until the
 * server logs that it is serving.  Declarations live in the tests that use it
 * (test_memd.c, test_pool.c) as "spawn API" blocks.
 *
 * Temp files: one private run dir per test process under the build dir
 * (tests/unit/memd-run.XXXXXX) holds every server's log, its config and the
 * keys, so nothing lands in /tmp.  spawn_kill_all() removes the logs when no
 * test has failed so far and keeps them when one has; the keys go at exit, and
 * the dir with them when it is empty (else its path is printed).  A crash
 * leaves them in the build dir, never in /tmp. */
#include <arpa/inet.h>
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* log: the file name inside the run dir (the tests never open it themselves). */
struct memd_proc { pid_t pid; int port; char addr[32]; char log[64]; };

/* Lines added to the [cluster] section of the next servers' configs (e.g.
 * "etcd = http://...\n"); NULL: none. */
const char *spawn_cluster_extra;

/* Every child started, so a failed fatal assert cannot leave servers behind. */
static pid_t children[64];
static int nchildren;

static char run_dir[PATH_MAX];    /* "" until the first file is needed */
/* Keys that did not fit in the caller's buffer under run_dir went to /tmp: removed at exit. */
static char tmp_keys[8][64];
static int ntmp_keys;

static void remove_run_files(const char *prefix)
{
    DIR *d = run_dir[0] ? opendir(run_dir) : NULL;
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.' || (prefix && strncmp(e->d_name, prefix, strlen(prefix))))
            continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof(p), "%s/%s", run_dir, e->d_name);
        unlink(p);
    }
    closedir(d);
}

/* At exit: the keys and configs always (they explain nothing), then the dir if it is empty. */
static void spawn_atexit(void)
{
    for (int i = 0; i < ntmp_keys; i++)
        unlink(tmp_keys[i]);
    remove_run_files("key-");
    remove_run_files("conf-");
    if (run_dir[0] && rmdir(run_dir) < 0)
        fprintf(stderr, "test_memd_spawn: memx-memd logs kept in %s\n", run_dir);
}

static const char *spawn_run_dir(void)
{
    if (!run_dir[0]) {
        snprintf(run_dir, sizeof(run_dir), "%s/tests/unit/memd-run.XXXXXX", MEMX_BUILDDIR);
        if (!mkdtemp(run_dir)) {
            run_dir[0] = 0;
            return NULL;
        }
        atexit(spawn_atexit);
    }
    return run_dir;
}

static void spawn_log_path(const struct memd_proc *m, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", run_dir, m->log);
}

/* Kills every server still running; then removes their logs unless a test has failed. */
void spawn_kill_all(void)
{
    for (int i = 0; i < nchildren; i++)
        if (children[i] > 0 && kill(children[i], SIGKILL) == 0)
            waitpid(children[i], NULL, 0);
    nchildren = 0;
    if (CU_get_number_of_failures() == 0 && CU_get_number_of_suites_failed() == 0)
        remove_run_files("memd-");
}

int spawn_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &l)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Writes a random 64-hex-char key into a new temp file named in path (len bytes); removed at exit. */
int spawn_write_key(char *path, size_t len, unsigned char raw[32])
{
    const char *dir = spawn_run_dir();
    if (!dir)
        return -1;
    bool in_tmp = (size_t)snprintf(path, len, "%s/key-XXXXXX", dir) >= len;
    if (in_tmp) {
        if (ntmp_keys == 8)
            return -1;
        snprintf(path, len, "/tmp/memx-test-key-XXXXXX");
    }
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    if (in_tmp)
        snprintf(tmp_keys[ntmp_keys++], sizeof(tmp_keys[0]), "%s", path);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 32; i++) {
        raw[i] = (unsigned char)(rand() & 0xff);
        fprintf(f, "%02x", raw[i]);
    }
    fprintf(f, "\n");
    fclose(f);
    return 0;
}

int spawn_memd_port(struct memd_proc *m, const char *key_path, const char *cap, const char *slab,
                    int port);

/* Starts memx-memd with capacity cap and slab size slab ("256K"), waits until it serves. */
int spawn_memd(struct memd_proc *m, const char *key_path, const char *cap, const char *slab)
{
    return spawn_memd_port(m, key_path, cap, slab, 0);
}

/* The same on a given port (0: a free one), e.g. to restart a server where it was. */
int spawn_memd_port(struct memd_proc *m, const char *key_path, const char *cap, const char *slab,
                    int port)
{
    const char *dir = spawn_run_dir();
    if (!dir)
        return -1;
    char conf[PATH_MAX + 16], log[PATH_MAX + 64];
    snprintf(conf, sizeof(conf), "%s/conf-XXXXXX", dir);
    int cfd = mkstemp(conf);
    if (cfd < 0)
        return -1;
    dprintf(cfd, "[cluster]\nslab_size = %s\n%s[memserver]\nlog_level = info\n", slab,
            spawn_cluster_extra ? spawn_cluster_extra : "");
    close(cfd);
    for (int attempt = 0; attempt < 5; attempt++) {
        m->port = port ? port : spawn_free_port();
        snprintf(m->addr, sizeof(m->addr), "127.0.0.1:%d", m->port);
        snprintf(m->log, sizeof(m->log), "memd-%d.log", m->port);
        spawn_log_path(m, log, sizeof(log));
        /* A log left by an earlier server on this port says "serving" too:
         * remove it before the child exists, or we could read it first. */
        unlink(log);
        m->pid = fork();
        if (m->pid == 0) {
            int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            dup2(lfd, 2);
            /* The parent's libfabric tracing would bury the line we wait for. */
            unsetenv("FI_LOG_LEVEL");
            close_range(3, ~0u, 0);
            execl(MEMX_BUILDDIR "/memx-memd", "memx-memd", "--config", conf, "--listen", m->addr,
                  "--capacity", cap, "--key-file", key_path, (char *)NULL);
            _exit(127);
        }
        if (nchildren < 64)
            children[nchildren++] = m->pid;
        /* Ready when the log says so; a port someone grabbed meanwhile makes it exit. */
        for (int i = 0; i < 200; i++) {
            char buf[4096] = { 0 };
            FILE *f = fopen(log, "r");
            if (f) {
                size_t n = fread(buf, 1, sizeof(buf) - 1, f);
                buf[n] = 0;
                fclose(f);
            }
            if (strstr(buf, "serving")) {
                unlink(conf);
                return 0;
            }
            int st;
            if (waitpid(m->pid, &st, WNOHANG) == m->pid)
                break;
            struct timespec ts = { 0, 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        kill(m->pid, SIGKILL);
        waitpid(m->pid, NULL, 0);
    }
    unlink(conf);
    return -1;
}

/* Sends sig and reaps; returns the exit status (or 128+signal). */
int spawn_stop(struct memd_proc *m, int sig)
{
    if (m->pid <= 0)
        return -1;
    int st = 0;
    kill(m->pid, sig);
    waitpid(m->pid, &st, 0);
    m->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* How many times the memd's log (its first 64 KiB) contains s. */
int spawn_log_count(const struct memd_proc *m, const char *s)
{
    char buf[65536] = { 0 }, log[PATH_MAX + 64];
    spawn_log_path(m, log, sizeof(log));
    FILE *f = fopen(log, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    int k = 0;
    for (const char *p = buf; (p = strstr(p, s)); p += strlen(s))
        k++;
    return k;
}

/* Whether the memd's log contains s. */
int spawn_log_has(const struct memd_proc *m, const char *s)
{
    return spawn_log_count(m, s) > 0;
}
