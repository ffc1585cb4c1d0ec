#include "evloop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

struct ev_fd {
    ev_fd_cb cb;
    void *arg;
    unsigned events;
    bool used;
};

struct ev_timer {
    long long id;
    uint64_t when_ms;
    uint64_t pass;              /* the last timer pass that ran it */
    ev_timer_cb cb;
    void *arg;
    struct ev_timer *next;
};

struct ev_prepare {
    ev_prepare_cb cb;
    void *arg;
    struct ev_prepare *next;
};

struct evloop {
    int epfd;
    struct ev_fd *fds;      /* indexed by fd */
    int nfds;
    struct ev_timer *timers; /* unsorted; daemons keep only a handful */
    long long next_timer_id;
    struct ev_prepare *prepares;
    int limit_us;           /* set by prepare hooks for the current iteration; -1: none */
    bool stop;
    uint64_t turn;              /* loop turns so far: guards passes against re-arming */
    TAILQ_HEAD(, ev_defer) defers;
};

uint64_t evloop_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t evloop_now_ms(void) { return evloop_now_ns() / 1000000ull; }

struct evloop *evloop_new(void)
{
    struct evloop *el = calloc(1, sizeof(*el));
    if (!el)
        return NULL;
    el->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (el->epfd < 0) {
        free(el);
        return NULL;
    }
    el->next_timer_id = 1;
    el->limit_us = -1;
    el->turn = 1;
    TAILQ_INIT(&el->defers);
    return el;
}

void evloop_free(struct evloop *el)
{
    if (!el)
        return;
    while (el->timers) {
        struct ev_timer *t = el->timers;
        el->timers = t->next;
        free(t);
    }
    while (el->prepares) {
        struct ev_prepare *p = el->prepares;
        el->prepares = p->next;
        free(p);
    }
    close(el->epfd);
    free(el->fds);
    free(el);
}

static uint32_t to_epoll(unsigned events)
{
    return (events & EV_READ ? EPOLLIN : 0) | (events & EV_WRITE ? EPOLLOUT : 0);
}

int evloop_add_fd(struct evloop *el, int fd, unsigned events, ev_fd_cb cb, void *arg)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (fd >= el->nfds) {
        int n = fd + 64;
        struct ev_fd *nf = realloc(el->fds, (size_t)n * sizeof(*nf));
        if (!nf)
            return -1;
        memset(nf + el->nfds, 0, (size_t)(n - el->nfds) * sizeof(*nf));
        el->fds = nf;
        el->nfds = n;
    }
    if (el->fds[fd].used) {
        errno = EEXIST;
        return -1;
    }
    struct epoll_event ev = { .events = to_epoll(events), .data.fd = fd };
    if (epoll_ctl(el->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    el->fds[fd] = (struct ev_fd){ .cb = cb, .arg = arg, .events = events, .used = true };
    return 0;
}

int evloop_mod_fd(struct evloop *el, int fd, unsigned events)
{
    if (fd < 0 || fd >= el->nfds || !el->fds[fd].used) {
        errno = ENOENT;
        return -1;
    }
    struct epoll_event ev = { .events = to_epoll(events), .data.fd = fd };
    if (epoll_ctl(el->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    el->fds[fd].events = events;
    return 0;
}

void evloop_del_fd(struct evloop *el, int fd)
{
    if (fd < 0 || fd >= el->nfds || !el->fds[fd].used)
        return;
    epoll_ctl(el->epfd, EPOLL_CTL_DEL, fd, NULL);
    el->fds[fd].used = false;
}

long long evloop_add_timer(struct evloop *el, int ms, ev_timer_cb cb, void *arg)
{
    struct ev_timer *t = calloc(1, sizeof(*t));
    if (!t)
        return -1;
    t->id = el->next_timer_id++;
    t->when_ms = evloop_now_ms() + (uint64_t)(ms < 0 ? 0 : ms);
    t->cb = cb;
    t->arg = arg;
    t->next = el->timers;
    el->timers = t;
    return t->id;
}

void evloop_del_timer(struct evloop *el, long long id)
{
    for (struct ev_timer **pp = &el->timers; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct ev_timer *t = *pp;
            *pp = t->next;
            free(t);
            return;
        }
    }
}

int evloop_add_prepare(struct evloop *el, ev_prepare_cb cb, void *arg)
{
    struct ev_prepare *p = calloc(1, sizeof(*p));
    if (!p)
        return -1;
    p->cb = cb;
    p->arg = arg;
    p->next = el->prepares;
    el->prepares = p;
    return 0;
}

void evloop_del_prepare(struct evloop *el, ev_prepare_cb cb, void *arg)
{
    for (struct ev_prepare **pp = &el->prepares; *pp; pp = &(*pp)->next) {
        if ((*pp)->cb == cb && (*pp)->arg == arg) {
            struct ev_prepare *p = *pp;
            *pp = p->next;
            free(p);
            return;
        }
    }
}

void evloop_limit_wait_us(struct evloop *el, unsigned us)
{
    if (us > INT32_MAX)
        us = INT32_MAX;
    if (el->limit_us < 0 || (int)us < el->limit_us)
        el->limit_us = (int)us;
}

void evloop_defer_init(struct ev_defer *d, void (*cb)(struct evloop *el, void *arg), void *arg)
{
    *d = (struct ev_defer){ .cb = cb, .arg = arg };
}

void evloop_defer(struct evloop *el, struct ev_defer *d)
{
    if (d->queued)
        return;
    d->queued = true;
    d->turn = el->turn;
    TAILQ_INSERT_TAIL(&el->defers, d, link);
}

void evloop_defer_cancel(struct evloop *el, struct ev_defer *d)
{
    if (!d->queued)
        return;
    d->queued = false;
    TAILQ_REMOVE(&el->defers, d, link);
}

static void run_defers(struct evloop *el)
{
    /* FIFO: what is queued during this pass carries the next turn and sits
     * behind the calls queued before it, so the pass stops at the first. */
    el->turn++;
    struct ev_defer *d;
    while ((d = TAILQ_FIRST(&el->defers)) && d->turn < el->turn) {
        TAILQ_REMOVE(&el->defers, d, link);
        d->queued = false;
        d->cb(el, d->arg);
    }
}

static int next_timeout(struct evloop *el, int timeout_ms)
{
    if (!TAILQ_EMPTY(&el->defers))
        return 0;
    if (!el->timers)
        return timeout_ms;
    uint64_t now = evloop_now_ms(), earliest = UINT64_MAX;
    for (struct ev_timer *t = el->timers; t; t = t->next)
        if (t->when_ms < earliest)
            earliest = t->when_ms;
    int until = earliest <= now ? 0 : (int)(earliest - now);
    return (timeout_ms < 0 || until < timeout_ms) ? until : timeout_ms;
}

static void run_timers(struct evloop *el)
{
    uint64_t now = evloop_now_ms();
    long long max_id = el->next_timer_id - 1;
    /* Restart the scan after each callback: a callback may add or delete
     * timers.  A timer added or already run in this pass waits for the next. */
    for (bool again = true; again;) {
        again = false;
        for (struct ev_timer *t = el->timers; t; t = t->next) {
            if (t->when_ms > now || t->id > max_id || t->pass == el->turn)
                continue;
            t->pass = el->turn;
            long long id = t->id;
            /* Push it out first so a callback that deletes itself is harmless. */
            t->when_ms = UINT64_MAX;
            int next = t->cb(el, id, t->arg);
            for (struct ev_timer *u = el->timers; u; u = u->next) {
                if (u->id == id) {
                    if (next < 0)
                        evloop_del_timer(el, id);
                    else
                        u->when_ms = evloop_now_ms() + (uint64_t)next;
                    break;
                }
            }
            again = true;
            break;
        }
    }
}

int evloop_run_once(struct evloop *el, int timeout_ms)
{
    bool busy = false;
    el->limit_us = -1;
    for (struct ev_prepare *p = el->prepares, *next; p; p = next) {
        next = p->next;
        if (p->cb(el, p->arg))
            busy = true;
    }
    int timeout = busy ? 0 : next_timeout(el, timeout_ms);
    struct epoll_event evs[64];
    int n;
    if (!busy && el->limit_us >= 0 && (timeout < 0 || (long long)timeout * 1000 > el->limit_us)) {
        /* epoll_wait counts in ms; a sub-ms bound needs epoll_pwait2's timespec. */
        struct timespec ts = { .tv_sec = el->limit_us / 1000000, .tv_nsec = (long)(el->limit_us % 1000000) * 1000 };
        n = epoll_pwait2(el->epfd, evs, 64, &ts, NULL);
        if (n < 0 && errno == ENOSYS)   /* kernel < 5.11: round up to 1 ms */
            n = epoll_wait(el->epfd, evs, 64, (el->limit_us + 999) / 1000);
    } else {
        n = epoll_wait(el->epfd, evs, 64, timeout);
    }
    if (n < 0) {
        if (errno == EINTR)
            return 0;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        /* An earlier callback in this batch may have removed this fd. */
        if (fd >= el->nfds || !el->fds[fd].used)
            continue;
        unsigned events = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            events |= EV_READ;
        if (evs[i].events & EPOLLOUT)
            events |= EV_WRITE;
        el->fds[fd].cb(el, fd, events, el->fds[fd].arg);
    }
    run_timers(el);
    run_defers(el);
    return n;
}

int evloop_run(struct evloop *el)
{
    el->stop = false;
    while (!el->stop)
        if (evloop_run_once(el, -1) < 0)
            return -1;
    return 0;
}

void evloop_stop(struct evloop *el) { el->stop = true; }
