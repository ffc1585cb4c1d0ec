/* test_xenplat_sim.h — shared by the platform tests: runs a memx-simxsd in a
 * fresh temp dir and stops it again, checking that SIGTERM exits cleanly. */
#ifndef MEMX_TEST_XENPLAT_SIM_H
#define MEMX_TEST_XENPLAT_SIM_H

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "xenplat.h"

static char sim_dir[64];          /* /tmp/memx-simtest-XXXXXX */
static pid_t sim_pid = -1;

/* The build dir: $MEMX_BUILDDIR from `make check`, else the configure-time one. */
static inline const char *sim_builddir(void)
{
    const char *b = getenv("MEMX_BUILDDIR");
    return b && *b ? b : MEMX_BUILDDIR;
}

static inline int sim_connect_raw(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/xenstore.sock", sim_dir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline void sim_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static inline int sim_stop(void);

static inline int sim_start(void)
{
    strcpy(sim_dir, "/tmp/memx-simtest-XXXXXX");
    if (!mkdtemp(sim_dir))
        return -1;
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s/memx-simxsd", sim_builddir());
    sim_pid = fork();
    if (sim_pid < 0) {
        rmdir(sim_dir);
        return -1;
    }
    if (sim_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);      /* never outlive a crashed test */
        execl(bin, bin, "--dir", sim_dir, "--log-level", "error", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int fd = sim_connect_raw();
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        sim_sleep_ms(10);
    }
    fprintf(stderr, "memx-simxsd (%s) did not start\n", bin);
    /* CUnit runs no suite cleanup after a failed init: remove the dir here. */
    sim_stop();
    return -1;
}

/* Returns 0 when the daemon exited 0 on SIGTERM and removed its socket. */
static inline int sim_stop(void)
{
    int st = -1;
    if (sim_pid > 0) {
        kill(sim_pid, SIGTERM);
        waitpid(sim_pid, &st, 0);
        sim_pid = -1;
    }
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/xenstore.sock", sim_dir);
    int sock_gone = access(path, F_OK) < 0;
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sim_dir);
    if (system(cmd) != 0)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && sock_gone ? 0 : -1;
}

/* Waits up to ms for a watch event; 1 with path/token, 0 on timeout. */
static inline int sim_next_watch(struct xp *xp, int ms, char **path, char **token)
{
    for (int waited = 0;; waited += 10) {
        int r = xp_xs_next_watch(xp, path, token);
        if (r != 0 || waited >= ms)
            return r;
        struct pollfd p = { .fd = xp_xs_fd(xp), .events = POLLIN };
        poll(&p, 1, 10);
    }
}

#endif
