/* log.h — one-line log records for every MemX process.
 *
 * Records go to stderr (or a file) as
 *     HH:MM:SS.mmm <ident>[<pid>] <level>: <message>
 * with level one of error, warn, info, debug.  Callers name the object a
 * record concerns at the start of the message, e.g. "vbd 3/51728: ..." or
 * "memd 10.0.0.2:7480: ...", so an operator can grep.  Anything a peer or a
 * guest can make happen over and over is logged through mx_ratelimit.
 */
#ifndef MEMX_LOG_H
#define MEMX_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum mx_log_level { MX_LOG_ERR = 0, MX_LOG_WARN, MX_LOG_INFO, MX_LOG_DEBUG };

void mx_log_init(const char *ident, enum mx_log_level level);
void mx_log_set_file(FILE *f);               /* default stderr; not closed */
int  mx_log_parse_level(const char *s);      /* "error".."debug"; -1 if unknown */
enum mx_log_level mx_log_level(void);
/* At run time (memxctl log-level, a reload). */
void mx_log_set_level(enum mx_log_level level);

void mx_log(enum mx_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One per repeated message: mx_ratelimit_ok() says whether to log now (at
 * most once per interval_ms); the next allowed record should say how many
 * were suppressed (rl->suppressed, reset by the call that allows). */
struct mx_ratelimit { uint64_t next_ms; unsigned suppressed, last_suppressed; };
bool mx_ratelimit_ok(struct mx_ratelimit *rl, unsigned interval_ms);

#define mx_err(...)   mx_log(MX_LOG_ERR, __VA_ARGS__)
#define mx_warn(...)  mx_log(MX_LOG_WARN, __VA_ARGS__)
#define mx_info(...)  mx_log(MX_LOG_INFO, __VA_ARGS__)
#define mx_debug(...) do { if (mx_log_level() >= MX_LOG_DEBUG) mx_log(MX_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
