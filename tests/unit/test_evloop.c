#include "evloop.h"
#include "cu_main.h"

#include <sys/eventfd.h>
#include <unistd.h>

static int fired, timer_runs, prepare_calls;

static void on_fd(struct evloop *el, int fd, unsigned ev, void *arg)
{
    uint64_t v;
    CU_ASSERT(ev & EV_READ);
    CU_ASSERT_EQUAL(read(fd, &v, sizeof(v)), sizeof(v));
    fired += (int)v;
    evloop_stop(el);
}

static int on_timer(struct evloop *el, long long id, void *arg)
{
    timer_runs++;
    if (timer_runs == 3) {
        evloop_stop(el);
        return -1;
    }
    return 1;
}

static int on_prepare(struct evloop *el, void *arg)
{
    prepare_calls++;
    return 0;
}

static void test_fd_and_timer(void)
{
    struct evloop *el = evloop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(el);
    int efd = eventfd(0, EFD_NONBLOCK);
    CU_ASSERT_EQUAL(evloop_add_fd(el, efd, EV_READ, on_fd, NULL), 0);
    CU_ASSERT_EQUAL(evloop_add_fd(el, efd, EV_READ, on_fd, NULL), -1);   /* one handler per fd */
    CU_ASSERT_EQUAL(evloop_add_prepare(el, on_prepare, NULL), 0);
    uint64_t one = 5;
    CU_ASSERT_EQUAL(write(efd, &one, sizeof(one)), sizeof(one));
    CU_ASSERT_EQUAL(evloop_run(el), 0);
    CU_ASSERT_EQUAL(fired, 5);
    CU_ASSERT(prepare_calls >= 1);
    evloop_del_fd(el, efd);

    uint64_t t0 = evloop_now_ms();
    CU_ASSERT(evloop_add_timer(el, 2, on_timer, NULL) > 0);
    CU_ASSERT_EQUAL(evloop_run(el), 0);
    CU_ASSERT_EQUAL(timer_runs, 3);
    CU_ASSERT(evloop_now_ms() - t0 >= 4);
    /* The timer deleted itself: a bounded wait returns with nothing to do. */
    CU_ASSERT_EQUAL(evloop_run_once(el, 5), 0);
    close(efd);
    evloop_free(el);
}

struct dctx { struct ev_defer d, other; int runs, other_runs, requeue; struct evloop *el; };

static void on_other(struct evloop *el, void *arg)
{
    ((struct dctx *)arg)->other_runs++;
}

static void on_defer(struct evloop *el, void *arg)
{
    struct dctx *c = arg;
    c->runs++;
    if (c->requeue-- > 0)
        evloop_defer(el, &c->d);        /* runs on the next turn, not in this pass */
}

static void test_defer(void)
{
    struct evloop *el = evloop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(el);
    struct dctx c = { .requeue = 2 };
    evloop_defer_init(&c.d, on_defer, &c);
    evloop_defer_init(&c.other, on_other, &c);
    evloop_defer(el, &c.d);
    evloop_defer(el, &c.d);             /* already queued: once */
    CU_ASSERT_EQUAL(c.runs, 0);         /* never inside the call */
    uint64_t t0 = evloop_now_ms();
    CU_ASSERT_EQUAL(evloop_run_once(el, 1000), 0);      /* queued: the loop does not sleep */
    CU_ASSERT(evloop_now_ms() - t0 < 500);
    CU_ASSERT_EQUAL(c.runs, 1);
    CU_ASSERT_EQUAL(evloop_run_once(el, 1000), 0);
    CU_ASSERT_EQUAL(c.runs, 2);
    CU_ASSERT_EQUAL(evloop_run_once(el, 1000), 0);
    CU_ASSERT_EQUAL(c.runs, 3);
    CU_ASSERT_FALSE(c.d.queued);
    /* Cancelled before its turn: it never runs; cancelling again is harmless. */
    evloop_defer(el, &c.other);
    evloop_defer_cancel(el, &c.other);
    evloop_defer_cancel(el, &c.other);
    CU_ASSERT_EQUAL(evloop_run_once(el, 5), 0);
    CU_ASSERT_EQUAL(c.other_runs, 0);
    evloop_free(el);
}

static int zero_runs;
static int on_zero(struct evloop *el, long long id, void *arg)
{
    zero_runs++;
    return zero_runs < 100 ? 0 : -1;   /* re-arms itself at once */
}

static void test_timer_rearm_waits_a_turn(void)
{
    struct evloop *el = evloop_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(el);
    CU_ASSERT(evloop_add_timer(el, 0, on_zero, NULL) > 0);
    CU_ASSERT_EQUAL(evloop_run_once(el, 0), 0);
    CU_ASSERT_EQUAL(zero_runs, 1);      /* one run per turn: fds get their turn */
    CU_ASSERT_EQUAL(evloop_run_once(el, 0), 0);
    CU_ASSERT_EQUAL(zero_runs, 2);
    evloop_free(el);
}

static const struct cu_test tests[] = {
    { "fd_and_timer", test_fd_and_timer },
    { "defer", test_defer },
    { "timer_rearm_waits_a_turn", test_timer_rearm_waits_a_turn },
    { NULL, NULL },
};
static const struct cu_suite suites[] = { { "evloop", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
