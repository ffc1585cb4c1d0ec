#include "daemon.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

int memx_daemon_config(struct memx_config *cfg, const char *prog, int argc, char **argv,
                       const char *path, const struct memx_cli_override *ov, size_t n)
{
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, argv[optind]);
        return 2;
    }
    return memx_config_setup(cfg, prog, path, ov, n) ? 2 : 0;
}

int memx_daemon_signals(struct evloop *el, ev_fd_cb cb, void *arg)
{
    return memx_daemon_signals_with(el, NULL, 0, cb, arg);
}

int memx_daemon_signals_with(struct evloop *el, const int *extra, int nextra, ev_fd_cb cb, void *arg)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    for (int i = 0; i < nextra; i++)
        sigaddset(&mask, extra[i]);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return -1;
    if (evloop_add_fd(el, fd, EV_READ, cb, arg)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int memx_daemon_signal(int fd)
{
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return 0;
    return (int)si.ssi_signo;
}
