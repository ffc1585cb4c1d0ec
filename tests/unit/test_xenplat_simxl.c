/* memx-simxl against a fake backend (this process as dom0): create writes
 * what libxl writes and waits for InitWait, destroy closes and removes. */
#include "cu_main.h"
#include "test_xenplat_sim.h"

#include <fcntl.h>

static struct xp *xp;

static int suite_init(void)
{
    if (sim_start() < 0)
        return -1;
    xp = xp_open_sim(sim_dir, 0);
    return xp ? 0 : -1;
}

static int suite_clean(void)
{
    xp_close(xp);
    return sim_stop();
}

static pid_t spawn_simxl(const char *const *args)
{
    char bin[PATH_MAX];
    snprintf(bin, sizeof(bin), "%s/memx-simxl", sim_builddir());
    const char *argv[24] = { bin, "--dir", sim_dir };
    int n = 3;
    for (; args[n - 3] && n < 23; n++)
        argv[n] = args[n - 3];
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Runs memx-simxl and, while it runs, plays the backend: when path reads
 * trigger, writes reply there.  Returns simxl's exit status. */
static int run_with_backend(const char *const *args, const char *path, const char *trigger,
                            const char *reply)
{
    pid_t pid = spawn_simxl(args);
    if (pid < 0)
        return -1;
    bool answered = !path;
    for (int i = 0; i < 1500; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
        if (!answered) {
            char *v = xp_xs_read(xp, XP_TXN_NULL, path, NULL);
            if (v && strcmp(v, trigger) == 0) {
                xp_xs_write(xp, XP_TXN_NULL, path, reply);
                answered = true;
            }
            free(v);
        }
        sim_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void expect(const char *path, const char *want)
{
    char *v = xp_xs_read(xp, XP_TXN_NULL, path, NULL);
    if (!v || strcmp(v, want) != 0)
        fprintf(stderr, "\n  %s: got \"%s\", want \"%s\"\n", path, v ? v : "(absent)", want);
    CU_ASSERT_PTR_NOT_NULL(v);
    CU_ASSERT_STRING_EQUAL(v ? v : "", want);
    free(v);
}

#define BE "/local/domain/0/backend/vbd/4/51728"
#define FE "/local/domain/4/device/vbd/51728"

static void test_create_destroy(void)
{
    const char *const create[] = { "create", "--domid", "4", "--vdev", "xvdb", "--target", "memx:vol:256M", NULL };
    CU_ASSERT_EQUAL(run_with_backend(create, BE "/state", "1", "2"), 0);
    expect(BE "/frontend", FE);
    expect(BE "/frontend-id", "4");
    expect(BE "/params", "memx:vol:256M");
    expect(BE "/online", "1");
    expect(BE "/state", "2");
    expect(BE "/dev", "xvdb");
    expect(BE "/type", "phy");
    expect(BE "/mode", "w");
    expect(BE "/device-type", "disk");
    expect(BE "/discard-enable", "1");
    expect(FE "/backend", BE);
    expect(FE "/backend-id", "0");
    expect(FE "/state", "1");
    expect(FE "/virtual-device", "51728");
    expect(FE "/device-type", "disk");

    const char *const destroy[] = { "destroy", "--domid", "4", "--vdev", "51728", NULL };
    CU_ASSERT_EQUAL(run_with_backend(destroy, BE "/state", "5", "6"), 0);
    CU_ASSERT_PTR_NULL(xp_xs_read(xp, XP_TXN_NULL, BE, NULL));
    CU_ASSERT_PTR_NULL(xp_xs_read(xp, XP_TXN_NULL, FE, NULL));
}

static void test_variants(void)
{
    /* xvda, read-only, vbd3, backend in a driver domain. */
    const char *const create[] = { "create", "--domid", "6", "--vdev", "xvda", "--target", "memx:a:1G",
                                   "--type", "vbd3", "--access", "ro", "--backend-domid", "2", NULL };
    CU_ASSERT_EQUAL(run_with_backend(create, "/local/domain/2/backend/vbd3/6/51712/state", "1", "2"), 0);
    expect("/local/domain/2/backend/vbd3/6/51712/mode", "r");
    expect("/local/domain/6/device/vbd/51712/backend-id", "2");
    const char *const destroy[] = { "destroy", "--domid", "6", "--vdev", "xvda", "--type", "vbd3",
                                    "--backend-domid", "2", NULL };
    CU_ASSERT_EQUAL(run_with_backend(destroy, "/local/domain/2/backend/vbd3/6/51712/state", "5", "6"), 0);
    CU_ASSERT_PTR_NULL(xp_xs_read(xp, XP_TXN_NULL, "/local/domain/6/device/vbd/51712", NULL));
}

static void test_timeouts_and_errors(void)
{
    /* No backend answers: create fails after its timeout and leaves nothing. */
    const char *const create[] = { "create", "--domid", "8", "--vdev", "xvdc", "--target", "memx:t:1M",
                                   "--timeout", "1", NULL };
    CU_ASSERT_EQUAL(run_with_backend(create, NULL, NULL, NULL), 1);
    CU_ASSERT_PTR_NULL(xp_xs_read(xp, XP_TXN_NULL, "/local/domain/0/backend/vbd/8/51744", NULL));
    CU_ASSERT_PTR_NULL(xp_xs_read(xp, XP_TXN_NULL, "/local/domain/8/device/vbd/51744", NULL));

    /* A backend that never closes: destroy removes anyway and says so. */
    CU_ASSERT_EQUAL(run_with_backend(create, "/local/domain/0/backend/vbd/8/51744/state", "1", "2"), 0);
    const char *const destroy[] = { "destroy", "--domid", "8", "--vdev", "xvdc", "--timeout", "1", NULL };
    CU_ASSERT_EQUAL(run_with_backend(destroy, NULL, NULL, NULL), 1);
    CU_ASSERT_PTR_NULL(xp_xs_read(xp, XP_TXN_NULL, "/local/domain/0/backend/vbd/8/51744", NULL));
    CU_ASSERT_EQUAL(run_with_backend(destroy, NULL, NULL, NULL), 1);        /* no such device */

    const char *const bad_vdev[] = { "create", "--domid", "8", "--vdev", "sda", "--target", "x", NULL };
    CU_ASSERT_EQUAL(run_with_backend(bad_vdev, NULL, NULL, NULL), 2);
    const char *const bad_dom[] = { "create", "--domid", "0", "--vdev", "xvdb", "--target", "x", NULL };
    CU_ASSERT_EQUAL(run_with_backend(bad_dom, NULL, NULL, NULL), 2);
    const char *const no_target[] = { "create", "--domid", "3", "--vdev", "xvdb", NULL };
    CU_ASSERT_EQUAL(run_with_backend(no_target, NULL, NULL, NULL), 2);
    const char *const unknown[] = { "frobnicate", NULL };
    CU_ASSERT_EQUAL(run_with_backend(unknown, NULL, NULL, NULL), 2);
}

static void test_script_commands(void)
{
    const char *const wr[] = { "write", "/s/k", "v1", NULL };
    CU_ASSERT_EQUAL(run_with_backend(wr, NULL, NULL, NULL), 0);
    expect("/s/k", "v1");
    const char *const rd[] = { "read", "/s/k", NULL };
    CU_ASSERT_EQUAL(run_with_backend(rd, NULL, NULL, NULL), 0);
    const char *const rd_missing[] = { "read", "/s/none", NULL };
    CU_ASSERT_EQUAL(run_with_backend(rd_missing, NULL, NULL, NULL), 1);
    const char *const ls[] = { "ls", "/s", NULL };
    CU_ASSERT_EQUAL(run_with_backend(ls, NULL, NULL, NULL), 0);
    /* wait returns once someone else writes the value. */
    const char *const wt[] = { "wait", "/s/k", "v2", "--timeout", "5", NULL };
    CU_ASSERT_EQUAL(run_with_backend(wt, "/s/k", "v1", "v2"), 0);
    const char *const wt_fail[] = { "wait", "/s/k", "v3", "--timeout", "1", NULL };
    CU_ASSERT_EQUAL(run_with_backend(wt_fail, NULL, NULL, NULL), 1);
}

static const struct cu_test tests[] = {
    { "create and destroy against a fake backend", test_create_destroy },
    { "xvda, ro, vbd3, driver domain", test_variants },
    { "timeouts and argument errors", test_timeouts_and_errors },
    { "ls/read/write/wait", test_script_commands },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "memx-simxl", suite_init, suite_clean, tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
