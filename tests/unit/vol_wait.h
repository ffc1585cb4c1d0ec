/* vol_wait.h — waiting for volume callbacks in unit tests that drive a loop. */
#ifndef MEMX_VOL_WAIT_H
#define MEMX_VOL_WAIT_H

#include "evloop.h"
#include "volumes.h"

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

/* Runs the loop until the volume has loaded from the pool (volume_state 0);
 * returns its state. */
static inline int wait_ready(struct evloop *el, struct volume *v)
{
    const char *err;
    for (int i = 0; i < 1000 && volume_state(v, &err) > 0; i++)
        evloop_run_once(el, 10);
    return volume_state(v, &err);
}

/* A few loop turns: lets records reach the (fake) servers after page I/O was
 * released by hand, so the writes complete. */
static inline void settle(struct evloop *el)
{
    for (int i = 0; i < 5; i++)
        evloop_run_once(el, 1);
}

#endif
