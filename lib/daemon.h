/* daemon.h — the start-up every MemX daemon repeats (memx-backd, memx-memd,
 * memx-simxsd).
 *
 * Shutdown is an event like any other: SIGTERM and SIGINT are blocked and
 * read from a signalfd on the event loop, so a daemon stops between two
 * callbacks, never inside one, and can take its time closing (memx-backd
 * answers in-flight I/O first).
 */
#ifndef MEMX_DAEMON_H
#define MEMX_DAEMON_H

#include "config.h"
#include "evloop.h"

#include <stddef.h>

/* What follows getopt in a daemon configured by memx.conf: it takes no
 * operands, then memx_config_setup(cfg, prog, path, ov, n).  Returns 0, or 2
 * (the exit status of a usage error) once "<prog>: ..." is on stderr. */
int memx_daemon_config(struct memx_config *cfg, const char *prog, int argc, char **argv,
                       const char *path, const struct memx_cli_override *ov, size_t n);

/* Blocks SIGTERM and SIGINT and calls cb on el when one arrives (read it
 * with memx_daemon_signal).  Also ignores SIGPIPE: a client that hangs up
 * must fail a write, not kill the daemon.  Returns the signalfd to close at
 * exit, or -1 with errno. */
int memx_daemon_signals(struct evloop *el, ev_fd_cb cb, void *arg);
/* The same, with the nextra signals of extra read from the signalfd too
 * (memx-backd: SIGUSR2, an upgrade).  Blocked signals stay blocked across
 * execve, and one that arrives meanwhile waits for the new image's
 * signalfd: a daemon that re-executes itself loses none. */
int memx_daemon_signals_with(struct evloop *el, const int *extra, int nextra, ev_fd_cb cb, void *arg);

/* The signal number waiting on that fd, or 0 if none could be read. */
int memx_daemon_signal(int fd);

#endif
