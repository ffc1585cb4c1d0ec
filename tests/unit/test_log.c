/* test_log.c — the log line: on a plain stream "HH:MM:SS.mmm ident[pid]
 * level: text"; on the journal's stream (JOURNAL_STREAM names its
 * device:inode, as systemd sets it) "<N>level: text" with the syslog
 * priority journald files it under; below the level, nothing. */
#include "cu_main.h"
#include "log.h"

#include <sys/stat.h>
#include <unistd.h>

static char *capture(FILE *f)
{
    static char buf[4096];
    fflush(f);
    long n = ftell(f);
    rewind(f);
    size_t got = fread(buf, 1, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, f);
    buf[got] = '\0';
    return buf;
}

static void test_plain_and_journal(void)
{
    FILE *f = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    unsetenv("JOURNAL_STREAM");
    mx_log_init("memx-test", MX_LOG_INFO);
    mx_log_set_file(f);
    mx_log(MX_LOG_WARN, "volume %s: slow", "v1");
    mx_log(MX_LOG_DEBUG, "hidden");
    char *out = capture(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "memx-test["));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "] warn: volume v1: slow\n"));
    CU_ASSERT_PTR_NULL(strstr(out, "hidden"));
    fclose(f);

    FILE *j = tmpfile();
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(fstat(fileno(j), &st), 0);
    char js[64];
    snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    mx_log_set_file(j);
    mx_log(MX_LOG_ERR, "memd %s: down", "10.0.0.1:7480");
    mx_log(MX_LOG_WARN, "w");
    mx_log(MX_LOG_INFO, "i");
    mx_log_set_level(MX_LOG_DEBUG);
    mx_log(MX_LOG_DEBUG, "d");
    out = capture(j);
    CU_ASSERT_STRING_EQUAL(out, "<3>error: memd 10.0.0.1:7480: down\n<4>warn: w\n<6>info: i\n<7>debug: d\n");
    mx_log_set_file(NULL);
    unsetenv("JOURNAL_STREAM");
    fclose(j);
}

static const struct cu_test tests[] = {
    { "plain_and_journal", test_plain_and_journal },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "log", NULL, NULL, tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
