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

static const struct cu_test tests[] = { { "fd_and_timer", test_fd_and_timer }, { NULL, NULL } };
static const struct cu_suite suites[] = { { "evloop", NULL, NULL, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
