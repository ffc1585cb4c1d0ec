#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "memx";
static enum mx_log_level log_lvl = MX_LOG_INFO;
static FILE *log_file;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void mx_log_init(const char *ident, enum mx_log_level level)
{
    log_ident = ident;
    log_lvl = level;
}

void mx_log_set_file(FILE *f) { log_file = f; }
enum mx_log_level mx_log_level(void) { return log_lvl; }
void mx_log_set_level(enum mx_log_level level) { log_lvl = level; }

int mx_log_parse_level(const char *s)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

void mx_log(enum mx_log_level lvl, const char *fmt, ...)
{
    if (lvl > log_lvl)
        return;
    FILE *f = log_file ? log_file : stderr;
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
