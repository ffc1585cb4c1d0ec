/* log.h — one-line log records for every MemX process.
 *
 * Records go to stderr (or a file) as "<ident>[pid] LEVEL message".  Callers
 * name the object a record concerns in the message itself, e.g.
 * "vbd 3/51728: ..." or "memd 10.0.0.2:7480: ...", so an operator can grep.
 */
#ifndef MEMX_LOG_H
#define MEMX_LOG_H

#include <stdio.h>

enum mx_log_level { MX_LOG_ERR = 0, MX_LOG_WARN, MX_LOG_INFO, MX_LOG_DEBUG };

void mx_log_init(const char *ident, enum mx_log_level level);
void mx_log_set_file(FILE *f);               /* default stderr; not closed */
int  mx_log_parse_level(const char *s);      /* "error".."debug"; -1 if unknown */
enum mx_log_level mx_log_level(void);

void mx_log(enum mx_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define mx_err(...)   mx_log(MX_LOG_ERR, __VA_ARGS__)
#define mx_warn(...)  mx_log(MX_LOG_WARN, __VA_ARGS__)
#define mx_info(...)  mx_log(MX_LOG_INFO, __VA_ARGS__)
#define mx_debug(...) do { if (mx_log_level() >= MX_LOG_DEBUG) mx_log(MX_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
