/* evloop.h — a tiny single-threaded event loop (epoll), in the spirit of Redis ae.c.
 *
 * Every MemX daemon runs one loop: XenStore watch fds, event-channel fds,
 * libfabric CQ wait fds, the control socket and timers all hang off it.
 *
 * Prepare hooks run before each blocking wait.  A hook returns nonzero when it
 * still has work (e.g. libfabric's fi_trywait() said "not now"), and the loop
 * then polls with a zero timeout instead of sleeping.  This is how transports
 * with manual progress are driven without a spinning thread.
 *
 * One turn: prepare hooks, the wait, fd callbacks, due timers, then the
 * deferred calls queued before the turn's deferred pass began.  A timer or
 * deferred call (re)armed during its own pass runs on the next turn, never in
 * the same one (as Redis's processTimeEvents guards), so a callback that keeps
 * re-queueing itself cannot keep the loop from its fds.
 */
#ifndef MEMX_EVLOOP_H
#define MEMX_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "queue.h"

#define EV_READ  1u
#define EV_WRITE 2u

struct evloop;

typedef void (*ev_fd_cb)(struct evloop *el, int fd, unsigned events, void *arg);
/* Return the delay in ms until the next run, or -1 to delete the timer. */
typedef int (*ev_timer_cb)(struct evloop *el, long long id, void *arg);
typedef int (*ev_prepare_cb)(struct evloop *el, void *arg);

struct evloop *evloop_new(void);
void evloop_free(struct evloop *el);

/* One handler per fd.  add fails with EEXIST if the fd is already watched. */
int  evloop_add_fd(struct evloop *el, int fd, unsigned events, ev_fd_cb cb, void *arg);
int  evloop_mod_fd(struct evloop *el, int fd, unsigned events);
void evloop_del_fd(struct evloop *el, int fd);

long long evloop_add_timer(struct evloop *el, int ms, ev_timer_cb cb, void *arg);
void evloop_del_timer(struct evloop *el, long long id);

/* A deferred call: cb runs once, at the end of the loop's next turn, never
 * inside the call that queued it.  It lives in the object it serves (no
 * allocation: this is what the data path uses instead of zero-delay timers).
 * Queuing one that is already queued does nothing; cancel is safe on one
 * that is not queued.  The loop never sleeps while one is queued. */
struct ev_defer {
    void (*cb)(struct evloop *el, void *arg);
    void *arg;
    uint64_t turn;              /* the turn it was queued in */
    bool queued;
    TAILQ_ENTRY(ev_defer) link;
};
void evloop_defer_init(struct ev_defer *d, void (*cb)(struct evloop *el, void *arg), void *arg);
void evloop_defer(struct evloop *el, struct ev_defer *d);
void evloop_defer_cancel(struct evloop *el, struct ev_defer *d);

int  evloop_add_prepare(struct evloop *el, ev_prepare_cb cb, void *arg);
/* From a prepare hook: sleep at most us microseconds in this iteration (a hook
 * that may sleep but wants a safety net, without a timer per iteration). */
void evloop_limit_wait_us(struct evloop *el, unsigned us);
void evloop_del_prepare(struct evloop *el, ev_prepare_cb cb, void *arg);

/* Runs one iteration, waiting at most timeout_ms (-1: until something happens). */
int  evloop_run_once(struct evloop *el, int timeout_ms);
/* Runs until evloop_stop(); returns 0, or -1 on an epoll error. */
int  evloop_run(struct evloop *el);
void evloop_stop(struct evloop *el);

uint64_t evloop_now_ms(void);   /* CLOCK_MONOTONIC */
uint64_t evloop_now_ns(void);

#endif
