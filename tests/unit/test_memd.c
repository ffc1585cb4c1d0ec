/* memx-memd as a process: CLI errors, start-up, clean SIGTERM. */
#include "cu_main.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* spawn API (test_memd_spawn.c) */
struct memd_proc { pid_t pid; int port; char addr[32]; char log[64]; };
int spawn_write_key(char *path, size_t len, unsigned char raw[32]);
int spawn_memd(struct memd_proc *m, const char *key_path, const char *cap, const char *slab);
int spawn_stop(struct memd_proc *m, int sig);
int spawn_log_has(const struct memd_proc *m, const char *s);
void spawn_kill_all(void);

static int run(const char *args, char *out, size_t len)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s/memx-memd %s 2>&1", MEMX_BUILDDIR, args);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, len - 1, f);
    out[n] = 0;
    int st = pclose(f);
    return WEXITSTATUS(st);
}

static void test_cli(void)
{
    char out[4096];
    CU_ASSERT_EQUAL(run("--help", out, sizeof(out)), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "--capacity"));
    CU_ASSERT_EQUAL(run("--capacity 4Q --key-file /dev/null", out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "capacity"));
    CU_ASSERT_EQUAL(run("--listen nohostport", out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "listen"));
    CU_ASSERT_EQUAL(run("--key-file /nonexistent/key", out, sizeof(out)), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "key_file"));
    CU_ASSERT_EQUAL(run("--bogus", out, sizeof(out)), 2);
}

static void test_start_stop(void)
{
    char key[64];
    unsigned char raw[32];
    CU_ASSERT_EQUAL_FATAL(spawn_write_key(key, sizeof(key), raw), 0);
    struct memd_proc m;
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "4M", "1M"), 0);
    CU_ASSERT_TRUE(spawn_log_has(&m, "serving 4M in 4 slabs of 1M over tcp;ofi_rxm"));
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGTERM), 0);
    CU_ASSERT_TRUE(spawn_log_has(&m, "stopped"));
    CU_ASSERT_EQUAL_FATAL(spawn_memd(&m, key, "4M", "1M"), 0);
    CU_ASSERT_EQUAL(spawn_stop(&m, SIGINT), 0);
    unlink(key);
    spawn_kill_all();
}

static const struct cu_test tests[] = {
    { "command line errors", test_cli },
    { "start, SIGTERM/SIGINT exit 0", test_start_stop },
    { NULL, NULL },
};
/* Runs even when a fatal assert ended a test early: no server outlives the suite. */
static int suite_clean(void)
{
    spawn_kill_all();
    return 0;
}

static const struct cu_suite suites[] = { { "memd", NULL, suite_clean, tests }, { NULL, NULL, NULL, NULL } };
CU_MAIN(suites)
