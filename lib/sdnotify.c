/* sdnotify.c — sd_notify(3) for the daemons (sdnotify.h). */
#include "sdnotify.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

static void notify(const char *head, const char *fmt, va_list ap)
{
    char status[256];
    vsnprintf(status, sizeof(status), fmt, ap);
    /* unset_environment 0: a re-executed daemon (memxctl upgrade) notifies too. */
    int rc = sd_notifyf(0, "%sSTATUS=%s", head, status);
    if (rc < 0)
        mx_debug("sd_notify: %s", strerror(-rc));
}

void sdn_ready(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    notify("READY=1\n", fmt, ap);
    va_end(ap);
}

void sdn_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    notify("", fmt, ap);
    va_end(ap);
}

void sdn_stopping(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    notify("STOPPING=1\n", fmt, ap);
    va_end(ap);
}

void sdn_reloading(void)
{
    sd_notify(0, "RELOADING=1");
}

static int feed(struct evloop *el, long long id, void *arg)
{
    (void)el;
    (void)id;
    sd_notify(0, "WATCHDOG=1");
    return (int)(intptr_t)arg;  /* re-armed with the same period */
}

int sdn_watchdog_start(struct evloop *el)
{
    uint64_t usec = 0;
    int rc = sd_watchdog_enabled(0, &usec);
    if (rc <= 0 || !usec)
        return rc < 0 ? rc : 0;
    uint64_t ms = usec / 2000;
    if (ms < 1)
        ms = 1;
    if (ms > 1000000)
        ms = 1000000;
    sd_notify(0, "WATCHDOG=1");
    return evloop_add_timer(el, (int)ms, feed, (void *)(intptr_t)ms) > 0 ? 0 : -ENOMEM;
}
