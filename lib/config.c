#include "config.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum kind { K_STR, K_INT, K_SIZE, K_BOOL, K_LEVEL, K_SERVERS };

struct key {
    const char *section, *name;
    enum kind kind;
    size_t off;
    size_t len;        /* K_STR: buffer size */
    long min, max;     /* K_INT bounds */
    const char *def;
};

#define F(field) offsetof(struct memx_config, field), sizeof(((struct memx_config *)0)->field)

static const struct key keys[] = {
    { "cluster", "key_file", K_STR, F(key_file), 0, 0, "/etc/memx/cluster.key" },
    { "cluster", "provider", K_STR, F(provider), 0, 0, "tcp;ofi_rxm" },
    { "cluster", "servers", K_SERVERS, F(servers), 0, 0, "" },
    { "cluster", "replicas", K_INT, F(replicas), 1, 3, "2" },
    { "cluster", "slab_size", K_SIZE, F(slab_size), 0, 0, "8M" },
    { "cluster", "nearfull", K_INT, F(nearfull), 50, 99, "85" },
    { "cluster", "etcd", K_STR, F(etcd), 0, 0, "" },
    { "cluster", "etcd_prefix", K_STR, F(etcd_prefix), 0, 0, "/memx/default" },
    { "cluster", "etcd_cacert", K_STR, F(etcd_cacert), 0, 0, "" },
    { "cluster", "etcd_cert", K_STR, F(etcd_cert), 0, 0, "" },
    { "cluster", "etcd_key", K_STR, F(etcd_key), 0, 0, "" },
    { "cluster", "etcd_lease_ttl", K_INT, F(etcd_lease_ttl), 5, 120, "10" },
    { "backend", "platform", K_STR, F(platform), 0, 0, "real" },
    { "backend", "device_type", K_STR, F(device_type), 0, 0, "vbd" },
    { "backend", "control_socket", K_STR, F(control_socket), 0, 0, "/run/memx/backd.sock" },
    { "backend", "control_socket_ro", K_STR, F(control_socket_ro), 0, 0, "" },
    { "backend", "node_id", K_STR, F(node_id), 0, 0, "" },
    { "backend", "max_ring_page_order", K_INT, F(max_ring_page_order), 0, 4, "4" },
    { "backend", "max_queues", K_INT, F(max_queues), 1, 16, "4" },
    { "backend", "max_indirect_segments", K_INT, F(max_indirect_segments), 0, 512, "256" },
    { "backend", "ring_poll_us", K_INT, F(ring_poll_us), 0, 1000, "50" },
    { "backend", "device_buffer_max", K_SIZE, F(device_buffer_max), 0, 0, "64M" },
    { "backend", "state_dir", K_STR, F(state_dir), 0, 0, "" },
    { "backend", "gather_reads", K_BOOL, F(gather_reads), 0, 0, "yes" },
    { "backend", "dedup", K_BOOL, F(dedup), 0, 0, "yes" },
    { "backend", "io_hold_s", K_INT, F(io_hold_s), 0, 3600, "60" },
    { "backend", "log_level", K_LEVEL, F(backend_log_level), 0, 0, "info" },
    { "backend", "metrics_listen", K_STR, F(backend_metrics), 0, 0, "" },
    { "memserver", "listen", K_STR, F(listen), 0, 0, "0.0.0.0:7480" },
    { "memserver", "capacity", K_SIZE, F(capacity), 0, 0, "1G" },
    { "memserver", "advertise", K_STR, F(advertise), 0, 0, "" },
    { "memserver", "log_level", K_LEVEL, F(memserver_log_level), 0, 0, "info" },
    { "memserver", "metrics_listen", K_STR, F(memserver_metrics), 0, 0, "" },
    { "sim", "dir", K_STR, F(sim_dir), 0, 0, "/run/memx/sim" },
    { "sim", "domid", K_INT, F(sim_domid), 0, 32767, "0" },
};

int memx_parse_size(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    unsigned shift = 0;
    switch (toupper((unsigned char)*end)) {
    case '\0': break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: return -1;
    }
    if (shift && (*end == 'i' || *end == 'I'))
        end++;
    if (shift && (*end == 'b' || *end == 'B'))
        end++;
    if (*end != '\0' || (shift && v > (UINT64_MAX >> shift)))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

char *memx_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char units[] = "KMGT";
    int u = -1;
    uint64_t v = bytes;
    while (v && (v & 1023) == 0 && u < 3) {
        v >>= 10;
        u++;
    }
    if (u < 0)
        snprintf(buf, len, "%" PRIu64, bytes);
    else
        snprintf(buf, len, "%" PRIu64 "%c", v, units[u]);
    return buf;
}

int memx_split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        h = s + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        hl = (size_t)(colon - s);
    }
    const char *p = colon + 1;
    char *end;
    long pn = strtol(p, &end, 10);
    if (hl == 0 || hl >= hostlen || *p == '\0' || *end != '\0' || pn <= 0 || pn > 65535 ||
        strlen(p) >= portlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, p);
    return 0;
}

static int set_key(struct memx_config *c, const struct key *k, const char *v, char *err, size_t errlen)
{
    char *base = (char *)c + k->off;
    switch (k->kind) {
    case K_STR:
        if (strlen(v) >= k->len) {
            snprintf(err, errlen, "'%s' is longer than %zu characters", v, k->len - 1);
            return -1;
        }
        strcpy(base, v);
        if (!strcmp(k->name, "node_id") && strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                   "0123456789@._:-") != strlen(v)) {
            snprintf(err, errlen, "'%s': use letters, digits and @._:- only", v);
            return -1;
        }
        if (!strcmp(k->name, "platform") && strcmp(v, "real") && strcmp(v, "sim")) {
            snprintf(err, errlen, "'%s': must be 'real' or 'sim'", v);
            return -1;
        }
        if (!strcmp(k->name, "device_type") && strcmp(v, "vbd") && strcmp(v, "vbd3")) {
            snprintf(err, errlen, "'%s': must be 'vbd' or 'vbd3'", v);
            return -1;
        }
        if (!strcmp(k->name, "listen")) {
            char h[128], p[16];
            if (memx_split_hostport(v, h, sizeof(h), p, sizeof(p))) {
                snprintf(err, errlen, "'%s': not host:port", v);
                return -1;
            }
        }
        return 0;
    case K_INT: {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (errno || end == v || *end != '\0' || n < k->min || n > k->max) {
            snprintf(err, errlen, "'%s': must be an integer from %ld to %ld", v, k->min, k->max);
            return -1;
        }
        *(int *)base = (int)n;
        return 0;
    }
    case K_SIZE: {
        uint64_t n;
        if (memx_parse_size(v, &n)) {
            snprintf(err, errlen, "'%s': not a size (use e.g. 512M, 4G)", v);
            return -1;
        }
        if (!strcmp(k->name, "slab_size") && (n < 65536 || n % 4096)) {
            snprintf(err, errlen, "'%s': must be at least 64K and a multiple of 4K", v);
            return -1;
        }
        if (!strcmp(k->name, "capacity") && (n == 0 || n % 4096)) {
            snprintf(err, errlen, "'%s': must be non-zero and a multiple of 4K", v);
            return -1;
        }
        *(uint64_t *)base = n;
        return 0;
    }
    case K_BOOL:
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on") || !strcmp(v, "1"))
            *(bool *)base = true;
        else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcasecmp(v, "off") || !strcmp(v, "0"))
            *(bool *)base = false;
        else {
            snprintf(err, errlen, "'%s': must be yes or no", v);
            return -1;
        }
        return 0;
    case K_LEVEL: {
        int l = mx_log_parse_level(v);
        if (l < 0) {
            snprintf(err, errlen, "'%s': must be error, warn, info or debug", v);
            return -1;
        }
        *(int *)base = l;
        return 0;
    }
    case K_SERVERS: {
        c->nservers = 0;
        char buf[MEMX_MAX_SERVERS * 130];
        if (strlen(v) >= sizeof(buf)) {
            snprintf(err, errlen, "list too long");
            return -1;
        }
        strcpy(buf, v);
        char *save = NULL;
        for (char *tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
            char h[128], p[16];
            if (c->nservers == MEMX_MAX_SERVERS) {
                snprintf(err, errlen, "more than %d servers", MEMX_MAX_SERVERS);
                return -1;
            }
            if (memx_split_hostport(tok, h, sizeof(h), p, sizeof(p)) || strlen(tok) >= sizeof(c->servers[0])) {
                snprintf(err, errlen, "'%s': not host:port", tok);
                return -1;
            }
            strcpy(c->servers[c->nservers++], tok);
        }
        return 0;
    }
    }
    return -1;
}

static const struct key *find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (!strcmp(keys[i].section, section) && !strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

void memx_config_defaults(struct memx_config *c)
{
    char err[256];
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        set_key(c, &keys[i], keys[i].def, err, sizeof(err));
}

int memx_config_set(struct memx_config *c, const char *section, const char *name, const char *value,
                    char *err, size_t errlen)
{
    const struct key *k = find_key(section, name);
    char why[256];
    if (!k) {
        snprintf(err, errlen, "[%s] %s: unknown key", section, name);
        return -1;
    }
    if (set_key(c, k, value, why, sizeof(why))) {
        snprintf(err, errlen, "[%s] %s = %s", section, name, why);
        return -1;
    }
    return 0;
}

struct load_ctx {
    struct memx_config *c;
    const char *path;
    char *err;
    size_t errlen;
    int failed;
};

static int ini_cb(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *lc = user;
    char msg[300];
    if (lc->failed)
        return 0;
    if (memx_config_set(lc->c, section, name, value, msg, sizeof(msg))) {
        snprintf(lc->err, lc->errlen, "%s: %s", lc->path, msg);
        lc->failed = 1;
        return 0;
    }
    return 1;
}

int memx_config_load(struct memx_config *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open config: %s", path, strerror(errno));
        return -1;
    }
    struct load_ctx lc = { c, path, err, errlen, 0 };
    int rc = ini_parse_file(f, ini_cb, &lc);
    fclose(f);
    if (lc.failed)
        return -1;
    if (rc > 0) {
        snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", path, rc);
        return -1;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: cannot read config", path);
        return -1;
    }
    return 0;
}

int memx_config_load_key(const struct memx_config *c, uint8_t key[MEMX_KEY_BYTES], char *err, size_t errlen)
{
    FILE *f = fopen(c->key_file, "r");
    if (!f) {
        snprintf(err, errlen, "[cluster] key_file = %s: cannot open: %s (create one with 'memxctl keygen %s')",
                 c->key_file, strerror(errno), c->key_file);
        return -1;
    }
    char hex[2 * MEMX_KEY_BYTES + 2] = { 0 };
    size_t n = fread(hex, 1, sizeof(hex) - 1, f);
    fclose(f);
    while (n && isspace((unsigned char)hex[n - 1]))
        hex[--n] = '\0';
    if (n != 2 * MEMX_KEY_BYTES) {
        snprintf(err, errlen, "[cluster] key_file = %s: must hold %d hex characters", c->key_file,
                 2 * MEMX_KEY_BYTES);
        return -1;
    }
    for (int i = 0; i < MEMX_KEY_BYTES; i++) {
        unsigned b;
        if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &b) != 1) {
            snprintf(err, errlen, "[cluster] key_file = %s: not hex", c->key_file);
            return -1;
        }
        key[i] = (uint8_t)b;
    }
    return 0;
}

void memx_config_diff(const struct memx_config *a, const struct memx_config *b,
                      void (*cb)(void *arg, const char *section, const char *key), void *arg)
{
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct key *k = &keys[i];
        bool same;
        if (k->kind == K_SERVERS) {
            same = a->nservers == b->nservers;
            for (int s = 0; same && s < a->nservers; s++)
                same = strcmp(a->servers[s], b->servers[s]) == 0;
        } else if (k->kind == K_STR) {
            same = strcmp((const char *)a + k->off, (const char *)b + k->off) == 0;
        } else {
            same = memcmp((const char *)a + k->off, (const char *)b + k->off, k->len) == 0;
        }
        if (!same)
            cb(arg, k->section, k->name);
    }
}

int memx_config_setup(struct memx_config *c, const char *prog, const char *path,
                      const struct memx_cli_override *ov, size_t n)
{
    char err[512], defconf[300];
    memx_config_defaults(c);
#ifdef MEMX_SYSCONFDIR
    snprintf(defconf, sizeof(defconf), "%s/memx/memx.conf", MEMX_SYSCONFDIR);
    if (!path && access(defconf, R_OK) == 0)
        path = defconf;
#else
    (void)defconf;
#endif
    if (path && memx_config_load(c, path, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (ov[i].value && memx_config_set(c, ov[i].section, ov[i].key, ov[i].value, err, sizeof(err))) {
            fprintf(stderr, "%s: %s %s: %s\n", prog, ov[i].option, ov[i].value, err);
            return -1;
        }
    }
    return 0;
}
