/* vol_wait.h — waiting for volume callbacks in unit tests that drive a loop. */
#ifndef MEMX_VOL_WAIT_H
#define MEMX_VOL_WAIT_H

#include "evloop.h"

struct done {
    int calls;
    int status;
};

/* A volume_cb: counts calls and keeps the last status. */
static inline void on_done(void *arg, int status)
{
    struct done *d = arg;
    d->calls++;
    d->status = status;
}

/* Runs the loop until d has seen calls callbacks, or about 10 s have passed. */
static inline void run_until(struct evloop *el, const struct done *d, int calls)
{
    for (int i = 0; i < 1000 && d->calls < calls; i++)
        evloop_run_once(el, 10);
}

#endif
