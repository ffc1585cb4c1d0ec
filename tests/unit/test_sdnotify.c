/* test_sdnotify.c — the systemd notify protocol (sdnotify.h) as a unit with
 * Type=notify sees it: a datagram socket stands in for systemd
 * (NOTIFY_SOCKET), first for the calls themselves and the loop-fed
 * watchdog, then for a real memx-memd: READY=1 once it serves, WATCHDOG=1
 * while its loop runs, STOPPING=1 on SIGTERM. */
#include "cu_main.h"
#include "evloop.h"
#include "sdnotify.h"

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* spawn API (test_memd_spawn.c) */
struct memd_proc { pid_t pid; int port; char addr[32]; char log[64]; };
int spawn_write_key(char *path, size_t len, unsigned char raw[32]);
int spawn_memd(struct memd_proc *m, const char *key_path, const char *cap, const char *slab);
int spawn_stop(struct memd_proc *m, int sig);
void spawn_kill_all(void);

/* An abstract socket (no file left behind) named in NOTIFY_SOCKET. */
static int listen_notify(void)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CU_ASSERT_FATAL(fd >= 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    char name[64];
    snprintf(name, sizeof(name), "memx-test-notify-%d", (int)getpid());
    memcpy(a.sun_path + 1, name, strlen(name));
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, len) == 0);
    char env[80];
    snprintf(env, sizeof(env), "@%s", name);
    setenv("NOTIFY_SOCKET", env, 1);
    return fd;
}

/* Waits up to ms for a datagram containing want; true if one came. */
static bool wait_for(int fd, const char *want, int ms)
{
    char buf[512];
    for (int waited = 0; waited < ms; waited += 50) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        if (strstr(buf, want))
            return true;
    }
    return false;
}

static int stop_after(struct evloop *el, long long id, void *arg)
{
    evloop_stop(el);
    return -1;
}

static void test_calls(void)
{
    int fd = listen_notify();
    sdn_ready("serving %d things", 3);
    CU_ASSERT(wait_for(fd, "READY=1\nSTATUS=serving 3 things", 1000));
    sdn_status("busy");
    CU_ASSERT(wait_for(fd, "STATUS=busy", 1000));
    sdn_stopping("bye");
    CU_ASSERT(wait_for(fd, "STOPPING=1\nSTATUS=bye", 1000));

    /* The watchdog is fed from the loop, at half the interval asked for. */
    struct evloop *el = evloop_new();
    CU_ASSERT_EQUAL(sdn_watchdog_start(el), 0);        /* not asked for: nothing */
    setenv("WATCHDOG_USEC", "100000", 1);
    CU_ASSERT_EQUAL(sdn_watchdog_start(el), 0);
    CU_ASSERT(wait_for(fd, "WATCHDOG=1", 100));         /* at once */
    evloop_add_timer(el, 300, stop_after, NULL);
    evloop_run(el);
    int fed = 0;
    while (wait_for(fd, "WATCHDOG=1", 10))
        fed++;
    CU_ASSERT(fed >= 3 && fed <= 8);                    /* about every 50 ms for 300 ms */
    evloop_free(el);
    unsetenv("WATCHDOG_USEC");
    unsetenv("NOTIFY_SOCKET");
    sdn_ready("nobody listens");                        /* not under systemd: no effect */
    close(fd);
}

static void test_memd(void)
{
    int fd = listen_notify();
    setenv("WATCHDOG_USEC", "200000", 1);
    char key[256];
    unsigned char raw[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "64M", "1M"), 0);
    CU_ASSERT(wait_for(fd, "READY=1\nSTATUS=serving 64 MiB on ", 10000));
    CU_ASSERT(wait_for(fd, "WATCHDOG=1", 2000));
    kill(m.pid, SIGTERM);
    CU_ASSERT(wait_for(fd, "STOPPING=1", 10000));
    spawn_stop(&m, SIGKILL);
    unsetenv("WATCHDOG_USEC");
    unsetenv("NOTIFY_SOCKET");
    spawn_kill_all();
    close(fd);
}

static const struct cu_test tests[] = {
    { "calls", test_calls },
    { "memd", test_memd },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "sdnotify", NULL, NULL, tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
