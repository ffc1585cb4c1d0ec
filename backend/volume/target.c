/* target.c — parsing "memx:<volume>:<size>[:opts]"; see target.h. */
#include "target.h"

#include "config.h"

#include <stdio.h>
#include <string.h>

/* One option after the size: dedup=yes|no, quota=<size> (checked against
 * the volume's size once every option is read). */
static int parse_option(const char *target, const char *o, size_t len, struct volume_opts *opts,
                        char *err, size_t errlen)
{
    static const char dkey[] = "dedup=", qkey[] = "quota=";
    size_t kl = sizeof(dkey) - 1, ql = sizeof(qkey) - 1;
    if (len > kl && strncmp(o, dkey, kl) == 0) {
        if (len - kl == 3 && strncmp(o + kl, "yes", 3) == 0) {
            opts->dedup = true;
            return 0;
        }
        if (len - kl == 2 && strncmp(o + kl, "no", 2) == 0) {
            opts->dedup = false;
            return 0;
        }
    }
    if (len >= ql && strncmp(o, qkey, ql) == 0) {
        char qbuf[32];
        size_t vl = len - ql;
        uint64_t q;
        if (vl == 0 || vl >= sizeof(qbuf)) {
            snprintf(err, errlen, "target '%s': quota '%.*s' is not a size (use e.g. quota=2G)", target,
                     (int)vl, o + ql);
            return -1;
        }
        memcpy(qbuf, o + ql, vl);
        qbuf[vl] = '\0';
        if (memx_parse_size(qbuf, &q) < 0) {
            snprintf(err, errlen, "target '%s': quota '%s' is not a size (use e.g. quota=2G)", target, qbuf);
            return -1;
        }
        if (q == 0 || q % VOLUME_PAGE_SIZE) {
            snprintf(err, errlen, "target '%s': quota must be a non-zero multiple of 4K", target);
            return -1;
        }
        opts->quota_bytes = q;
        return 0;
    }
    snprintf(err, errlen, "target '%s': unknown option '%.*s' (known: dedup=yes, dedup=no, quota=SIZE)", target,
             (int)len, o);
    return -1;
}

int volume_parse_target_opts(const char *target, char *name, size_t namelen, uint64_t *size,
                             struct volume_opts *opts, char *err, size_t errlen)
{
    static const char prefix[] = "memx:";
    if (strncmp(target, prefix, sizeof(prefix) - 1) != 0) {
        snprintf(err, errlen, "target '%s': expected memx:<volume>:<size>", target);
        return -1;
    }
    const char *n = target + sizeof(prefix) - 1;
    const char *colon = strchr(n, ':');
    if (!colon) {
        snprintf(err, errlen, "target '%s': missing size (expected memx:<volume>:<size>)", target);
        return -1;
    }
    size_t len = (size_t)(colon - n);
    bool ok = len >= 1 && len < VOLUME_NAME_MAX && len < namelen;
    for (size_t i = 0; ok && i < len; i++) {
        char c = n[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    }
    if (!ok) {
        snprintf(err, errlen, "target '%s': volume name must be 1..%d characters of [A-Za-z0-9._-]",
                 target, VOLUME_NAME_MAX - 1);
        return -1;
    }
    const char *s = colon + 1, *send = strchr(s, ':');
    size_t slen = send ? (size_t)(send - s) : strlen(s);
    char sbuf[32] = "";
    if (slen < sizeof(sbuf)) {
        memcpy(sbuf, s, slen);
        sbuf[slen] = '\0';
    }
    uint64_t sz;
    if (slen >= sizeof(sbuf) || memx_parse_size(sbuf, &sz) < 0) {
        snprintf(err, errlen, "target '%s': '%.*s' is not a size (use e.g. 512M, 2G)", target, (int)slen, s);
        return -1;
    }
    if (sz == 0 || sz % VOLUME_PAGE_SIZE) {
        snprintf(err, errlen, "target '%s': size must be a non-zero multiple of 4K", target);
        return -1;
    }
    struct volume_opts o = { .dedup = true };
    for (const char *p = send; p; p = strchr(p + 1, ':')) {
        const char *e = strchr(p + 1, ':');
        size_t olen = e ? (size_t)(e - p - 1) : strlen(p + 1);
        if (parse_option(target, p + 1, olen, &o, err, errlen) < 0)
            return -1;
    }
    if (o.quota_bytes > sz) {
        snprintf(err, errlen, "target '%s': quota is larger than the volume (a quota holds at most its size)",
                 target);
        return -1;
    }
    memcpy(name, n, len);
    name[len] = '\0';
    *size = sz;
    if (opts)
        *opts = o;
    return 0;
}

int volume_parse_target(const char *target, char *name, size_t namelen, uint64_t *size,
                        char *err, size_t errlen)
{
    return volume_parse_target_opts(target, name, namelen, size, NULL, err, errlen);
}
