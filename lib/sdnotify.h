/* sdnotify.h — telling systemd how a daemon is doing (Type=notify units,
 * memx-backd.service and memx-memd.service).
 *
 * systemd starts a unit's dependents (xendomains after memx-backd) only once
 * the daemon says READY=1, so READY means "serving": a backend watching
 * XenStore with its pool reachable, a memory server listening.  STATUS= is
 * the one line `systemctl status` shows.  With WatchdogSec= set, the event
 * loop itself feeds the watchdog from a timer: a loop stuck in one callback
 * stops feeding it and systemd restarts the daemon (a restarted memx-backd
 * resumes its guests' rings).  Without NOTIFY_SOCKET (not under systemd, or
 * a test) every call does nothing.
 */
#ifndef MEMX_SDNOTIFY_H
#define MEMX_SDNOTIFY_H

#include "evloop.h"

/* READY=1 with a STATUS line. */
void sdn_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sdn_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1: shutdown began (devices closing, a drain). */
void sdn_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 ... READY=1 around a configuration reload. */
void sdn_reloading(void);
/* If systemd asked for a watchdog (WATCHDOG_USEC), feeds it from el at half
 * its interval; 0, or -errno when the timer cannot be set. */
int sdn_watchdog_start(struct evloop *el);

#endif
