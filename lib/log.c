#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "memx";
static enum mx_log_level log_lvl = MX_LOG_INFO;
static FILE *log_file;
static FILE *journal_checked;  /* the stream to_journal last judged (reset by mx_log_set_file) */

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void mx_log_init(const char *ident, enum mx_log_level level)
{
    log_ident = ident;
    log_lvl = level;
}

void mx_log_set_file(FILE *f)
{
    log_file = f;
    journal_checked = NULL;
}
enum mx_log_level mx_log_level(void) { return log_lvl; }
void mx_log_set_level(enum mx_log_level level) { log_lvl = level; }

int mx_log_parse_level(const char *s)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

/* Whether f is the journal's stream (systemd sets JOURNAL_STREAM to its
 * device:inode): then each line starts with its syslog priority, <3> to
 * <7>, which journald files it under (journalctl -p warning), and leaves the
 * time and pid to the journal. */
static bool to_journal(FILE *f)
{
    static bool yes;
    FILE *checked = journal_checked;
    journal_checked = f;
    if (f == checked)
        return yes;
    yes = false;
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(fileno(f), &st) == 0)
        yes = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    return yes;
}

void mx_log(enum mx_log_level lvl, const char *fmt, ...)
{
    if (lvl > log_lvl)
        return;
    FILE *f = log_file ? log_file : stderr;
    if (to_journal(f)) {
        static const int prio[] = { 3, 4, 6, 7 };
        char line[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        fprintf(f, "<%d>%s: %s\n", prio[lvl], level_names[lvl], line);
        fflush(f);
        return;
    }
    struct timeval tv;
    struct tm tm;
    char ts[32], line[1024];
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One fprintf per record so concurrent writers to a shared log do not interleave lines. */
    fprintf(f, "%s.%03ld %s[%d] %s: %s\n", ts, (long)(tv.tv_usec / 1000), log_ident, (int)getpid(),
            level_names[lvl], line);
    fflush(f);
}

bool mx_ratelimit_ok(struct mx_ratelimit *rl, unsigned interval_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (now < rl->next_ms) {
        rl->suppressed++;
        return false;
    }
    rl->next_ms = now + interval_ms;
    rl->last_suppressed = rl->suppressed;
    rl->suppressed = 0;
    return true;
}
