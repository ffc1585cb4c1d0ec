/* memxctl: the operator's view of memx-backd through its control socket
 * (backend/ctl.h: one JSON request line, one JSON reply line), and cluster
 * key generation. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/memx/backd.sock"
#define REPLY_MAX (16u << 20)
#define DELETE_WAIT_S 60            /* memx-backd answers a delete within 50 s */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: memxctl [--socket PATH] [--json] COMMAND\n"
            "Inspect and manage a running memx-backd.\n"
            "\n"
            "Commands:\n"
            "  status               version, platform, uptime, devices, live memory servers, etcd\n"
            "  volumes              every volume: size, owner, logical/stored/zero/duplicate pages\n"
            "  stats                per-volume and total pages, requests, errors, latency p50/p99;\n"
            "                       backend latency by stage (ring pickup, grant copy, volume, pool,\n"
            "                       transport, memory server, response); transport messages, bytes\n"
            "                       and RMA reads per guest write and per read\n"
            "  devices              the blkif devices being served and what they negotiated\n"
            "  pool                 memory servers: address, provider, state, capacity, used\n"
            "  pool drain SERVER    move SERVER's (host:port) replicas away; stop it once \"drained\"\n"
            "  pool undrain SERVER  cancel a drain\n"
            "  volume list [--all]  volumes and who uses them, orphans marked (no device, no live\n"
            "                       claim); --all: every volume etcd knows, not only those loaded here\n"
            "  volume delete NAME   free every page and record of a volume no device uses: one loaded\n"
            "                       here and detached, or (etcd) an orphan, claimed first: refused,\n"
            "                       naming the owner, when another backend holds it\n"
            "  upgrade [--binary PATH] [--wait SECONDS]\n"
            "                       hand memx-backd over to a new binary without the guests noticing:\n"
            "                       it stops reading the rings, lets in-flight I/O complete (10 s at\n"
            "                       most; the rest is replayed) and execs PATH (default: the path it\n"
            "                       was started from, e.g. after a package upgrade) with the same\n"
            "                       arguments and pid; waits (--wait, default 120 s) until the new process\n"
            "                       serves every device again and prints the guests' I/O pause.\n"
            "                       Exits 1 if the exec failed (the old process serves on).\n"
            "  health               named conditions (server_down, no_server, degraded, pages_lost,\n"
            "                       near_full, pool_full, quota_near_full, quota_full, fenced_volume,\n"
            "                       volume_failed, bad_requests) in a\n"
            "                       Nagios-style line; exit 0 ok, 1 degraded, 2 failed, 3 unknown\n"
            "                       (memx-backd not answering)\n"
            "  log-level LEVEL      error, warn, info or debug, at once (until a restart or reload)\n"
            "  reload               re-read memx.conf (as SIGHUP): what was applied, what needs a restart\n"
            "  keygen FILE          write a new cluster key (32 random bytes as 64 hex chars, mode 0600)\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH    memx-backd's control socket (default " DEFAULT_SOCKET ")\n"
            "  -j, --json           print the daemon's JSON reply instead of a table\n"
            "  -h, --help           show this help\n"
            "  -V, --version        print the version and exit\n");
}

static __attribute__((format(printf, 1, 2), noreturn)) void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("memxctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- keygen --------------------------------------------------------------- */

static int keygen(const char *path)
{
    uint8_t key[MEMX_KEY_BYTES];
    for (size_t got = 0; got < sizeof(key);) {
        ssize_t n = getrandom(key + got, sizeof(key) - got, 0);
        if (n < 0 && errno != EINTR)
            die("getrandom: %s", strerror(errno));
        if (n > 0)
            got += (size_t)n;
    }
    char hex[2 * MEMX_KEY_BYTES + 2];
    for (size_t i = 0; i < sizeof(key); i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    hex[2 * MEMX_KEY_BYTES] = '\n';
    hex[2 * MEMX_KEY_BYTES + 1] = '\0';
    explicit_bzero(key, sizeof(key));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        die("%s exists: refusing to overwrite a cluster key (remove it first if you mean it)", path);
    if (fd < 0)
        die("cannot create %s: %s", path, strerror(errno));
    ssize_t n = write(fd, hex, strlen(hex));
    explicit_bzero(hex, sizeof(hex));
    if (n != (ssize_t)(2 * MEMX_KEY_BYTES + 1) || fsync(fd) < 0 || close(fd) < 0) {
        int e = errno;
        unlink(path);
        die("cannot write %s: %s", path, strerror(e));
    }
    printf("memxctl: wrote a new cluster key to %s (copy it to every MemX host)\n", path);
    return 0;
}

/* ---- talking to the daemon -------------------------------------------------- */

/* One request and its reply; NULL with err on any failure to get one (no
 * daemon, the connection closed, no reply within timeout_s, unreadable). */
static json_object *try_request(const char *sock, json_object *req, int timeout_s, char *err, size_t errlen)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock) >= sizeof(sa.sun_path))
        die("socket path %s is too long", sock);
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "cannot connect to %s: %s (is memx-backd running?)", sock, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct timeval tv = { .tv_sec = timeout_s };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    const char *line = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    size_t len = strlen(line);
    char *out = malloc(len + 1);
    if (!out)
        die("out of memory");
    memcpy(out, line, len);
    out[len] = '\n';
    for (size_t off = 0; off <= len;) {
        ssize_t n = send(fd, out + off, len + 1 - off, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "%s: send: %s", sock, strerror(errno));
            free(out);
            close(fd);
            return NULL;
        }
        if (n > 0)
            off += (size_t)n;
    }
    free(out);

    size_t cap = 65536, got = 0;
    char *buf = malloc(cap);
    err[0] = '\0';
    for (;;) {
        if (!buf)
            die("out of memory");
        if (got == cap) {
            if (cap >= REPLY_MAX)
                die("%s: reply longer than %u bytes", sock, REPLY_MAX);
            cap *= 2;
            buf = realloc(buf, cap);
            continue;
        }
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            snprintf(err, errlen, "%s: no reply within %ld s", sock, (long)tv.tv_sec);
        else if (n < 0)
            snprintf(err, errlen, "%s: read: %s", sock, strerror(errno));
        else if (n == 0)
            snprintf(err, errlen, "%s: memx-backd closed the connection without replying", sock);
        if (err[0]) {
            free(buf);
            close(fd);
            return NULL;
        }
        char *nl = memchr(buf + got, '\n', (size_t)n);
        got += (size_t)n;
        if (nl) {
            *nl = '\0';
            break;
        }
    }
    close(fd);
    json_object *reply = json_tokener_parse(buf);
    free(buf);
    if (!reply || !json_object_is_type(reply, json_type_object)) {
        json_object_put(reply);
        snprintf(err, errlen, "%s: unreadable reply from memx-backd", sock);
        return NULL;
    }
    return reply;
}

static json_object *request(const char *sock, json_object *req, int timeout_s)
{
    char err[512];
    json_object *reply = try_request(sock, req, timeout_s, err, sizeof(err));
    if (!reply)
        die("%s", err);
    json_object *e;
    if (json_object_object_get_ex(reply, "error", &e))
        die("%s", json_object_get_string(e));
    return reply;
}

/* Nagios-style: one line, exit 0 ok, 1 degraded (WARNING), 2 failed
 * (CRITICAL), 3 when the backend cannot be asked (UNKNOWN). */
static int health(const char *sock, bool json)
{
    char err[512];
    json_object *req = json_object_new_object();
    json_object_object_add(req, "cmd", json_object_new_string("health"));
    json_object *r = try_request(sock, req, 10, err, sizeof(err));
    json_object_put(req);
    json_object *jc, *conds, *e;
    if (!r || json_object_object_get_ex(r, "error", &e) || !json_object_object_get_ex(r, "code", &jc) ||
        !json_object_object_get_ex(r, "conditions", &conds) || !json_object_is_type(conds, json_type_array)) {
        printf("MEMX UNKNOWN - %s\n", r ? (json_object_object_get_ex(r, "error", &e) ? json_object_get_string(e)
                                                                                       : "malformed reply") : err);
        json_object_put(r);
        return 3;
    }
    int code = json_object_get_int(jc);
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
    } else {
        static const char *const word[] = { "OK", "WARNING", "CRITICAL" };
        printf("MEMX %s - ", word[code >= 0 && code <= 2 ? code : 2]);
        size_t n = json_object_array_length(conds);
        if (!n)
            printf("every memory server up, every slab at full redundancy, no volume fenced");
        for (size_t i = 0; i < n; i++) {
            json_object *c = json_object_array_get_idx(conds, i), *v;
            printf("%s%s: %s", i ? "; " : "", json_object_object_get_ex(c, "name", &v) ? json_object_get_string(v) : "?",
                   json_object_object_get_ex(c, "detail", &v) ? json_object_get_string(v) : "");
        }
        printf("\n");
    }
    json_object_put(r);
    return code >= 0 && code <= 2 ? code : 2;
}

/* ---- human output ---------------------------------------------------------- */

static const char *s_of(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "-";
}

static uint64_t u_of(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_uint64(v) : 0;
}

static json_object *arr_of(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_array))
        die("reply has no '%s' list (is memxctl older than memx-backd?)", k);
    return v;
}

/* A table whose columns are as wide as their widest cell; numbers right-aligned. */
#define TCOLS 16
struct table {
    int ncols;
    const char *align;      /* 'l' or 'r' per column */
    char *(*cell)[TCOLS];
    int nrows, cap;
};

static void t_row(struct table *t, ...)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 16;
        t->cell = realloc(t->cell, (size_t)t->cap * sizeof(*t->cell));
        if (!t->cell)
            die("out of memory");
    }
    va_list ap;
    va_start(ap, t);
    for (int c = 0; c < t->ncols; c++) {
        const char *s = va_arg(ap, const char *);
        t->cell[t->nrows][c] = strdup(s ? s : "");
    }
    va_end(ap);
    t->nrows++;
}

static void t_print(struct table *t)
{
    int w[TCOLS] = { 0 };
    for (int r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            if ((int)strlen(t->cell[r][c]) > w[c])
                w[c] = (int)strlen(t->cell[r][c]);
    for (int r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            bool last = c == t->ncols - 1;
            if (t->align[c] == 'r')
                printf("%*s%s", w[c], t->cell[r][c], last ? "" : "  ");
            else
                printf("%-*s%s", last ? 0 : w[c], t->cell[r][c], last ? "" : "  ");
            free(t->cell[r][c]);
        }
        putchar('\n');
    }
    free(t->cell);
}

/* Small helpers that format into rotating static buffers, for t_row arguments. */
static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
    static char bufs[32][64];
    static int i;
    char *b = bufs[i++ % 32];
    va_list ap;
    va_start(ap, f);
    vsnprintf(b, 64, f, ap);
    va_end(ap);
    return b;
}

static const char *num(json_object *o, const char *k) { return fmt("%llu", (unsigned long long)u_of(o, k)); }

static const char *size_of(json_object *o, const char *k)
{
    char b[32];
    return fmt("%s", memx_format_size(u_of(o, k), b, sizeof(b)));
}

static void show_status(json_object *r)
{
    uint64_t up = u_of(r, "uptime_s");
    printf("version      %s\n", s_of(r, "version"));
    printf("platform     %s\n", s_of(r, "platform"));
    printf("device type  %s\n", s_of(r, "device_type"));
    printf("provider     %s\n", s_of(r, "provider"));
    printf("uptime       %llud %02lluh %02llum %02llus\n", (unsigned long long)(up / 86400),
           (unsigned long long)(up / 3600 % 24), (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60));
    json_object *h;
    if (json_object_object_get_ex(r, "pid", &h))
        printf("process      pid %s, %s\n", num(r, "pid"), s_of(r, "binary"));
    if (json_object_object_get_ex(r, "handover", &h)) {
        const char *st = s_of(h, "state");
        if (!strcmp(st, "done"))
            printf("hand-over    done: %s of %s device(s) resumed, guest I/O paused %s ms (drain %s ms)\n",
                   num(h, "resumed"), num(h, "devices"), num(h, "pause_ms"), num(h, "drain_ms"));
        else if (!strcmp(st, "failed"))
            printf("hand-over    failed: %s (serving on)\n", s_of(h, "error"));
        else
            printf("hand-over    %s: %s of %s device(s) resumed\n", st, num(h, "resumed"), num(h, "devices"));
    }
    printf("devices      %s\n", num(r, "devices"));
    printf("volumes      %s\n", num(r, "volumes"));
    printf("servers      %s of %s live\n", num(r, "servers_live"), num(r, "servers_total"));
    printf("etcd         %s\n", s_of(r, "etcd"));
    if (*s_of(r, "membership"))
        printf("membership   %s\n", s_of(r, "membership"));
    json_object *t, *d;
    if (json_object_object_get_ex(r, "etcd_traffic", &t))
        printf("etcd traffic %s requests (%s failed), %s bytes out, %s in; %s keepalives, %s watch events, %s freshness checks\n",
               num(t, "requests"), num(t, "failures"), num(t, "bytes_out"), num(t, "bytes_in"), num(t, "keepalives"),
               num(t, "watch_events"), num(t, "checks"));
    if (json_object_object_get_ex(r, "slab_directory", &d))
        printf("slab dir     %s writes (%s failed), %s reads; %s slabs looked up, %s known\n", num(d, "writes"),
               num(d, "failures"), num(d, "reads"), num(d, "lookups"), num(d, "hits"));
}

static void show_volumes(json_object *r)
{
    json_object *a = arr_of(r, "volumes");
    static struct table t = { .ncols = 9, .align = "lrllrrrrl" };
    t_row(&t, "NAME", "SIZE", "OWNER", "STATE", "LOGICAL", "STORED", "ZERO", "DUP", "DEDUP");
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *v = json_object_array_get_idx(a, i);
        const char *owner = s_of(v, "owner");
        t_row(&t, s_of(v, "name"), size_of(v, "size"), owner[0] ? owner : "(detached)", s_of(v, "state"),
              num(v, "logical_pages"),
              num(v, "stored_pages"), num(v, "zero_pages"), num(v, "dup_pages"),
              json_object_get_boolean(json_object_object_get(v, "dedup")) ? "on" : "off");
    }
    t_print(&t);
    if (!json_object_array_length(a))
        printf("(no volumes)\n");
}

/* volume list [--all]: who uses each volume, and which nobody does (orphans: volume delete NAME). */
static void show_volume_list(json_object *r)
{
    json_object *a = arr_of(r, "volumes");
    static struct table t = { .ncols = 7, .align = "lrrllll" };
    t_row(&t, "NAME", "SIZE", "EPOCH", "OWNER", "DEVICE", "STATE", "ORPHAN");
    size_t orphans = 0;
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *v = json_object_array_get_idx(a, i), *e;
        const char *owner = s_of(v, "owner"), *dev = s_of(v, "device"), *st = s_of(v, "state");
        bool here = json_object_get_boolean(json_object_object_get(v, "owner_here"));
        bool orphan = json_object_get_boolean(json_object_object_get(v, "orphan"));
        orphans += orphan;
        t_row(&t, s_of(v, "name"), size_of(v, "size"), num(v, "epoch"),
              here ? "(this backend)" : owner[0] ? owner : "-", dev[0] ? dev : "-", st[0] ? st : "-",
              json_object_object_get_ex(v, "error", &e) ? fmt("? %.58s", json_object_get_string(e))
                                                        : orphan ? "yes" : "no");
    }
    t_print(&t);
    if (!json_object_array_length(a))
        printf("(no volumes)\n");
    else
        printf("%zu orphan(s): no device uses them and no other backend holds them (memxctl volume delete NAME)\n",
               orphans);
}

static void stats_row(struct table *t, const char *name, json_object *v)
{
    t_row(t, name, num(v, "logical_pages"), num(v, "stored_pages"), num(v, "zero_pages"), num(v, "dup_pages"),
          num(v, "requests"), num(v, "errors"), s_of(v, "read_p50_us"), s_of(v, "read_p99_us"),
          s_of(v, "write_p50_us"), s_of(v, "write_p99_us"));
}

/* Backend latency by stage over every device.  The volume stage includes
 * the pool's (indented below it); a pool request includes its replicas'
 * transport and server time. */
static void show_stages(json_object *r)
{
    static const char *const label[][2] = {
        { "ring_pickup", "ring pickup" }, { "grant_copy", "grant copy" },
        { "volume", "volume (incl. the pool below)" },
        { "pool_read", "  pool read request" }, { "pool_write", "  pool write request (all replicas)" },
        { "transport_read", "    transport: RMA read" },
        { "transport_write", "    transport: write + reply, less server" },
        { "server_write", "    memory server: write" }, { "response", "response" } };
    json_object *a;
    if (!json_object_object_get_ex(r, "stages", &a) || !json_object_is_type(a, json_type_array))
        return;
    static struct table t = { .ncols = 5, .align = "lrrrr" };
    t_row(&t, "STAGE", "COUNT", "p50us", "p99us", "MEANus");
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *v = json_object_array_get_idx(a, i);
        const char *name = s_of(v, "stage");
        for (size_t k = 0; k < sizeof(label) / sizeof(label[0]); k++)
            if (!strcmp(name, label[k][0]))
                name = label[k][1];
        t_row(&t, name, num(v, "count"), s_of(v, "p50_us"), s_of(v, "p99_us"), s_of(v, "mean_us"));
    }
    printf("\nbackend stages (all devices):\n");
    t_print(&t);
}

static double d_of(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : 0.0;
}

/* What a guest request costs on the wire (ctl.c traffic_object): a write
 * should be one page message per replica and its answer, a read one RMA
 * read; more messages per write is a second round trip or a message per
 * server. */
static void show_traffic(json_object *r)
{
    json_object *t, *w, *rd;
    if (!json_object_object_get_ex(r, "traffic", &t) || !json_object_object_get_ex(t, "per_write", &w) ||
        !json_object_object_get_ex(t, "per_read", &rd))
        return;
    printf("\ntransport to the memory servers (since start; %llu writes, %llu reads):\n",
           (unsigned long long)u_of(t, "writes"), (unsigned long long)u_of(t, "reads"));
    printf("  per write: %s messages sent (%s with pages, %s other) and %s received; "
           "%.1f KiB sent (%.1f KiB in page messages), %.1f KiB received\n",
           s_of(w, "msgs_sent"), s_of(w, "page_msgs"), s_of(w, "other_msgs"), s_of(w, "msgs_recvd"),
           d_of(w, "bytes_sent") / 1024, d_of(w, "page_bytes") / 1024,
           (d_of(w, "bytes") - d_of(w, "bytes_sent")) / 1024);
    printf("  per read:  %s RMA reads (%s pieces), %.1f KiB\n", s_of(rd, "rma_reads"), s_of(rd, "rma_pieces"),
           d_of(rd, "bytes") / 1024);
}

static void show_stats(json_object *r)
{
    json_object *a = arr_of(r, "volumes"), *tot;
    static struct table t = { .ncols = 11, .align = "lrrrrrrrrrr" };
    t_row(&t, "VOLUME", "LOGICAL", "STORED", "ZERO", "DUP", "REQUESTS", "ERRORS", "READ p50us", "p99us",
          "WRITE p50us", "p99us");
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *v = json_object_array_get_idx(a, i);
        stats_row(&t, s_of(v, "name"), v);
    }
    if (!json_object_object_get_ex(r, "totals", &tot))
        die("reply has no totals");
    stats_row(&t, "(total)", tot);
    t_print(&t);
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *v = json_object_array_get_idx(a, i);
        uint64_t q = u_of(v, "quota_pages"), used = u_of(v, "quota_used_pages");
        if (q)
            printf("quota: volume %s holds %llu of %llu pages (%llu%%); %llu write(s) refused (ENOSPC)\n",
                   s_of(v, "name"), (unsigned long long)used, (unsigned long long)q,
                   (unsigned long long)(used * 100 / q), (unsigned long long)u_of(v, "quota_refused"));
    }
    uint64_t logical = u_of(tot, "logical_pages"), zero = u_of(tot, "zero_pages"), dup = u_of(tot, "dup_pages");
    if (logical)
        printf("pages: %llu logical, %llu stored; savings: zero pages %.1f%%, duplicates %.1f%%\n",
               (unsigned long long)logical, (unsigned long long)u_of(tot, "stored_pages"),
               100.0 * (double)zero / (double)logical, 100.0 * (double)dup / (double)logical);
    json_object *dd;
    if (json_object_object_get_ex(r, "dedup", &dd))
        printf("dedup: %s; %s hits (%s after their own write), %s hash collisions, %s compares read back, "
               "%s pages indexed, %s cached\n",
               json_object_get_boolean(json_object_object_get(dd, "enabled")) ? "on" : "off", num(dd, "hits"),
               num(dd, "late_hits"), num(dd, "collisions"), num(dd, "compare_reads"), num(dd, "index_pages"),
               num(dd, "cached_pages"));
    show_stages(r);
    show_traffic(r);
}

static void show_devices(json_object *r)
{
    json_object *a = arr_of(r, "devices");
    static struct table t = { .ncols = 11, .align = "rrllllrrrrr" };
    t_row(&t, "DOMID", "DEVID", "STATE", "VOLUME", "PROTOCOL", "FEATURES", "QUEUES", "RING", "REQUESTS", "ERRORS",
          "BAD");
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *d = json_object_array_get_idx(a, i), *f;
        char feat[64] = "";
        const char *names[] = { "indirect", "flush", "discard" };
        for (int k = 0; k < 3; k++)
            if (json_object_object_get_ex(d, names[k], &f) && json_object_get_boolean(f))
                snprintf(feat + strlen(feat), sizeof(feat) - strlen(feat), "%s%s", feat[0] ? "," : "", names[k]);
        const char *vol = s_of(d, "volume");
        const char *proto = s_of(d, "protocol");
        t_row(&t, num(d, "domid"), num(d, "devid"), s_of(d, "state"), vol[0] ? vol : "-", proto[0] ? proto : "-",
              feat[0] ? feat : "-", num(d, "queues"), num(d, "ring_pages"), num(d, "requests"), num(d, "errors"),
              num(d, "bad_requests"));
    }
    t_print(&t);
    if (!json_object_array_length(a))
        printf("(no devices)\n");
}

static void show_log_level(json_object *r)
{
    printf("log level %s (was %s)\n", s_of(r, "level"), s_of(r, "was"));
}

static void show_list(json_object *r, const char *k, const char *title)
{
    json_object *a = arr_of(r, k);
    size_t n = json_object_array_length(a);
    printf("%s:%s", title, n ? "" : " none");
    for (size_t i = 0; i < n; i++)
        printf("%s %s", i ? "," : "", json_object_get_string(json_object_array_get_idx(a, i)));
    printf("\n");
}

static void show_reload(json_object *r)
{
    show_list(r, "applied", "applied");
    show_list(r, "restart", "changed, needs a restart (or memxctl upgrade)");
}

static void show_pool(json_object *r)
{
    json_object *a = arr_of(r, "servers");
    static struct table t = { .ncols = 6, .align = "lllrrr" };
    t_row(&t, "SERVER", "PROVIDER", "STATE", "CAPACITY", "USED", "REPLICAS");
    for (size_t i = 0; i < json_object_array_length(a); i++) {
        json_object *s = json_object_array_get_idx(a, i);
        t_row(&t, s_of(s, "addr"), s_of(s, "provider"), s_of(s, "state"), size_of(s, "capacity"),
              size_of(s, "used"), num(s, "replicas"));
    }
    t_print(&t);
    json_object *rb;
    bool rebuilding = json_object_object_get_ex(r, "rebuilding", &rb) && json_object_get_boolean(rb);
    printf("pool %s: %s slabs below the replication factor (%s with no copy), %s pages re-replicated%s\n",
           s_of(r, "state"), num(r, "degraded_slabs"), num(r, "lost_slabs"), num(r, "rereplicated_pages"),
           rebuilding ? ", re-replicating now" : "");
    printf("pages stored %s, slabs %s, writes %s (%s with their record on fewer than R servers: published to every "
           "server), reads %s, errors %s\n", num(r, "pages_stored"), num(r, "slabs"), num(r, "writes"),
           num(r, "writes_few"), num(r, "reads"), num(r, "errors"));
}

/* ---- upgrade --------------------------------------------------------------- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#define UPGRADE_REPLY_S 40      /* the daemon answers once drained: 10 s at most, plus slack */
/* For the new process to serve every device again (--wait): its start-up reconnects
 * the memory servers and reloads every volume, seconds on a busy host. */
#define UPGRADE_WAIT_S 120

/* Asks for the hand-over, then polls status until the process answering
 * is the successor of this very hand-over (its "handover" id) and says
 * every device serves again, or the old one says the exec failed. */
static int upgrade(const char *sock, const char *binary, unsigned wait_s, bool json)
{
    char path[4096], err[512];
    if (binary && binary[0] != '/') {
        char cwd[2048];
        if (!getcwd(cwd, sizeof(cwd)) || (size_t)snprintf(path, sizeof(path), "%s/%s", cwd, binary) >= sizeof(path))
            die("cannot make %s an absolute path", binary);
        binary = path;
    }
    json_object *req = json_object_new_object();
    json_object_object_add(req, "cmd", json_object_new_string("upgrade"));
    if (binary)
        json_object_object_add(req, "binary", json_object_new_string(binary));
    uint64_t t0 = now_ms();
    json_object *r = try_request(sock, req, UPGRADE_REPLY_S, err, sizeof(err));
    json_object_put(req);
    if (!r)
        die("upgrade: %s", err);
    json_object *e, *h;
    if (json_object_object_get_ex(r, "error", &e))
        die("upgrade refused: %s (memx-backd serves on, unchanged)", json_object_get_string(e));
    uint64_t id = u_of(r, "handover"), pid = u_of(r, "pid");
    if (!json && u_of(r, "in_flight"))
        printf("memx-backd pid %llu: %s device(s): drain stopped after %s ms with %s request(s) in flight (the new "
               "process replays them); exec %s\n", (unsigned long long)pid, num(r, "devices"), num(r, "drain_ms"),
               num(r, "in_flight"), s_of(r, "binary"));
    else if (!json)
        printf("memx-backd pid %llu: %s device(s) drained in %s ms; exec %s\n", (unsigned long long)pid,
               num(r, "devices"), num(r, "drain_ms"), s_of(r, "binary"));
    json_object_put(r);
    json_object *sreq = json_object_new_object();
    json_object_object_add(sreq, "cmd", json_object_new_string("status"));
    const char *last = "no answer";
    while (now_ms() - t0 < (uint64_t)wait_s * 1000) {
        json_object *st = try_request(sock, sreq, 2, err, sizeof(err));
        if (!st || json_object_object_get_ex(st, "error", &e) || !json_object_object_get_ex(st, "handover", &h) ||
            u_of(h, "id") != id) {
            json_object_put(st);
            usleep(5000);       /* exec'ing, or starting: not listening yet */
            continue;
        }
        last = s_of(h, "state");
        if (u_of(st, "pid") != pid)
            fprintf(stderr, "memxctl: warning: pid %llu answers, not %llu: restarted by a supervisor?\n",
                    (unsigned long long)u_of(st, "pid"), (unsigned long long)pid);
        int rc = -1;
        if (!strcmp(last, "failed")) {
            fprintf(stderr, "memxctl: upgrade failed: %s; the old memx-backd serves on\n", s_of(h, "error"));
            rc = 1;
        } else if (!strcmp(last, "done") || !strcmp(last, "incomplete")) {
            rc = strcmp(last, "done") ? 1 : 0;
            if (json)
                printf("%s\n", json_object_to_json_string_ext(h, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
            else if (!rc)
                printf("memx-backd pid %llu: version %s serves %s device(s) again; hand-over took %llu ms "
                       "(guest I/O paused %s ms: drain %s ms, exec and resume %llu ms)\n",
                       (unsigned long long)u_of(st, "pid"), s_of(st, "version"), num(h, "resumed"),
                       (unsigned long long)u_of(h, "pause_ms"), num(h, "pause_ms"), num(h, "drain_ms"),
                       (unsigned long long)(u_of(h, "pause_ms") - u_of(h, "drain_ms")));
            if (rc)
                fprintf(stderr, "memxctl: upgrade incomplete: the new process serves %s of %s device(s)\n",
                        num(h, "resumed"), num(h, "devices"));
        }
        json_object_put(st);
        if (rc >= 0) {
            json_object_put(sreq);
            return rc;
        }
        usleep(5000);
    }
    json_object_put(sreq);
    die("upgrade: the new memx-backd did not report serving within %u s (last: %s%s%s)", wait_s,
        last, err[0] ? "; " : "", err);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *sock = DEFAULT_SOCKET;
    bool json = false;
    int c;
    while ((c = getopt_long(argc, argv, "+s:jhV", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock = optarg; break;
        case 'j': json = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("memxctl %s\n", PACKAGE_VERSION); return 0;
        default:
            fprintf(stderr, "memxctl: see --help\n");
            return 2;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    if (nargs < 1) {
        fprintf(stderr, "memxctl: no command given (status, volumes, stats, devices, pool, volume list, volume delete NAME, "
                        "upgrade, keygen FILE; see --help)\n");
        return 2;
    }
    const char *cmd = args[0];
    if (strcmp(cmd, "keygen") == 0) {
        if (nargs != 2) {
            fprintf(stderr, "memxctl: usage: memxctl keygen FILE\n");
            return 2;
        }
        return keygen(args[1]);
    }
    if (strcmp(cmd, "upgrade") == 0) {
        const char *binary = NULL;
        unsigned wait_s = UPGRADE_WAIT_S;
        for (int i = 1; i < nargs; i++) {
            char *end;
            if (!strcmp(args[i], "--binary") && i + 1 < nargs)
                binary = args[++i];
            else if (!strcmp(args[i], "--wait") && i + 1 < nargs &&
                     (wait_s = (unsigned)strtoul(args[i + 1], &end, 10)) >= 1 && wait_s <= 3600 && !*end && ++i)
                continue;
            else if (!strncmp(args[i], "--binary=", 9) && args[i][9])
                binary = args[i] + 9;
            else {
                fprintf(stderr, "memxctl: usage: memxctl upgrade [--binary PATH] [--wait SECONDS (1-3600)]\n");
                return 2;
            }
        }
        return upgrade(sock, binary, wait_s, json);
    }

    if (strcmp(cmd, "health") == 0) {
        if (nargs != 1) {
            fprintf(stderr, "memxctl: health takes no arguments\n");
            return 2;
        }
        return health(sock, json);
    }

    void (*show)(json_object *) = NULL;
    int timeout_s = 10;
    json_object *req = json_object_new_object();
    if (strcmp(cmd, "pool") == 0 && nargs > 1) {
        if (nargs != 3 || (strcmp(args[1], "drain") && strcmp(args[1], "undrain"))) {
            fprintf(stderr, "memxctl: usage: memxctl pool [drain|undrain SERVER]\n");
            return 2;
        }
        json_object_object_add(req, "cmd", json_object_new_string("pool-drain"));
        json_object_object_add(req, "server", json_object_new_string(args[2]));
        if (strcmp(args[1], "undrain") == 0)
            json_object_object_add(req, "undo", json_object_new_boolean(1));
        show = show_pool;
    } else if (strcmp(cmd, "log-level") == 0) {
        if (nargs != 2) {
            fprintf(stderr, "memxctl: usage: memxctl log-level error|warn|info|debug\n");
            return 2;
        }
        json_object_object_add(req, "cmd", json_object_new_string("log-level"));
        json_object_object_add(req, "level", json_object_new_string(args[1]));
        show = show_log_level;
    } else if (strcmp(cmd, "reload") == 0) {
        if (nargs != 1) {
            fprintf(stderr, "memxctl: reload takes no arguments\n");
            return 2;
        }
        json_object_object_add(req, "cmd", json_object_new_string("reload"));
        show = show_reload;
    } else if (strcmp(cmd, "volume") == 0) {
        bool list = nargs >= 2 && strcmp(args[1], "list") == 0;
        bool all = list && nargs == 3 && strcmp(args[2], "--all") == 0;
        if (list ? !(nargs == 2 || all) : (nargs != 3 || strcmp(args[1], "delete") != 0)) {
            fprintf(stderr, "memxctl: usage: memxctl volume list [--all] | volume delete NAME\n");
            return 2;
        }
        if (list) {
            json_object_object_add(req, "cmd", json_object_new_string("volume-list"));
            if (all)
                json_object_object_add(req, "all", json_object_new_boolean(1));
            show = show_volume_list;
        } else {
            json_object_object_add(req, "cmd", json_object_new_string("volume-delete"));
            json_object_object_add(req, "name", json_object_new_string(args[2]));
            timeout_s = DELETE_WAIT_S;      /* an orphan is loaded from the pool first */
        }
    } else {
        static const struct { const char *name; void (*show)(json_object *); } cmds[] = {
            { "status", show_status }, { "volumes", show_volumes }, { "stats", show_stats },
            { "devices", show_devices }, { "pool", show_pool },
        };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
            if (strcmp(cmd, cmds[i].name) == 0)
                show = cmds[i].show;
        if (!show) {
            fprintf(stderr, "memxctl: unknown command '%s' (see --help)\n", cmd);
            return 2;
        }
        if (nargs != 1) {
            fprintf(stderr, "memxctl: %s takes no arguments\n", cmd);
            return 2;
        }
        json_object_object_add(req, "cmd", json_object_new_string(cmd));
    }

    json_object *reply = request(sock, req, timeout_s);
    json_object_put(req);
    if (json)
        printf("%s\n", json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
    else if (show)
        show(reply);
    else
        printf("volume %s deleted (%llu page(s) freed)\n", args[2], (unsigned long long)u_of(reply, "pages"));
    json_object_put(reply);
    return 0;
}
