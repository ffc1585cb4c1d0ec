/* test_ctl.c — the control socket over fake volumes, a fake pool and a canned device list. */
#include "blkback.h"
#include "ctl.h"
#include "cu_main.h"
#include "evloop.h"
#include "fake_pool.h"
#include "volumes.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The control socket reads devices through blkback_list(); this test has no Xen side. */
int blkback_list(struct blkback *bb, struct blkback_dev_info *out, int max)
{
    static const struct blkback_dev_info devs[] = {
        { .domid = 3, .devid = 51728, .state = "Connected", .volume = "vm1-swap", .protocol = "x86_64-abi",
          .nr_queues = 2, .ring_pages = 16, .indirect = true, .flush = true, .discard = true, .requests = 42 },
        { .domid = 4, .devid = 51744, .state = "InitWait", .protocol = "native", .nr_queues = 1, .ring_pages = 1 },
    };
    for (int i = 0; i < 2 && i < max; i++)
        out[i] = devs[i];
    return 2;
}

static struct evloop *el;
static struct pool *pool;
static struct volumes *vs;
static struct ctl *ctl;
static char dir[64], sock[128];

static void on_done(void *arg, int status) { *(int *)arg = status + 1; }

static void setup(void)
{
    el = evloop_new();
    pool = fake_pool_new(el);
    fake_pool_add_server(pool, "127.0.0.1:7480", "tcp;ofi_rxm", "up", 1ull << 30, 8192);
    fake_pool_add_server(pool, "127.0.0.1:7481", "tcp;ofi_rxm", "down", 1ull << 30, 0);
    vs = volumes_new(pool, true);
    char err[200];
    struct volume *a = volume_attach(vs, "vm1-swap", 1ull << 20, "vbd 3/51728", err, sizeof(err));
    struct volume *b = volume_attach(vs, "spare", 1ull << 20, "", err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    static uint8_t buf[3 * 4096];
    memset(buf, 0, sizeof(buf));
    memset(buf + 4096, 0x5a, 8192);     /* one zero page, two stored */
    int done = 0;
    volume_write(a, 0, 24, buf, on_done, &done);
    for (int i = 0; i < 100 && !done; i++)
        evloop_run_once(el, 10);
    CU_ASSERT_EQUAL(done, 1);

    strcpy(dir, "/tmp/memx-test-ctl-XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/run/memx/backd.sock", dir);
    struct ctl_ctx ctx = { .vols = vs, .pool = pool, .bb = (struct blkback *)1, .platform = "sim",
                           .device_type = "vbd", .provider = "tcp;ofi_rxm" };
    ctl = ctl_new(el, sock, &ctx, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctl);
}

static void teardown(void)
{
    ctl_free(ctl);
    CU_ASSERT_EQUAL(access(sock, F_OK), -1);    /* removed on exit */
    volumes_free(vs);
    pool_free(pool);
    evloop_free(el);
    char p[160];
    snprintf(p, sizeof(p), "%s/run/memx", dir);
    rmdir(p);
    snprintf(p, sizeof(p), "%s/run", dir);
    rmdir(p);
    rmdir(dir);
}

static json_object *ask(const char *line)
{
    char *s = ctl_handle(ctl, line, strlen(line));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_PTR_NULL(strchr(s, '\n'));
    json_object *o = json_tokener_parse(s);
    free(s);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    return o;
}

static const char *get_str(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static int64_t get_int(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

static json_object *get(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

static void expect_error(const char *line, const char *needle)
{
    json_object *o = ask(line);
    const char *e = get_str(o, "error");
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e && needle)
        CU_ASSERT_PTR_NOT_NULL(strstr(e, needle));
    json_object_put(o);
}

static void test_commands(void)
{
    setup();
    json_object *o = ask("{\"cmd\":\"status\"}");
    CU_ASSERT_STRING_EQUAL(get_str(o, "version"), PACKAGE_VERSION);
    CU_ASSERT_STRING_EQUAL(get_str(o, "platform"), "sim");
    CU_ASSERT_STRING_EQUAL(get_str(o, "device_type"), "vbd");
    CU_ASSERT_EQUAL(get_int(o, "devices"), 2);
    CU_ASSERT_EQUAL(get_int(o, "servers_live"), 1);
    CU_ASSERT_EQUAL(get_int(o, "servers_total"), 2);
    CU_ASSERT(get_int(o, "uptime_s") >= 0);
    json_object_put(o);

    o = ask("{\"cmd\":\"volumes\"}");
    json_object *arr = get(o, "volumes");
    CU_ASSERT_EQUAL_FATAL(json_object_array_length(arr), 2);
    json_object *v0 = json_object_array_get_idx(arr, 0);
    CU_ASSERT_STRING_EQUAL(get_str(v0, "name"), "vm1-swap");
    CU_ASSERT_STRING_EQUAL(get_str(v0, "owner"), "vbd 3/51728");
    CU_ASSERT_EQUAL(get_int(v0, "size"), 1 << 20);
    CU_ASSERT_EQUAL(get_int(v0, "logical_pages"), 3);
    CU_ASSERT_EQUAL(get_int(v0, "stored_pages"), 1);     /* the two 0x5a pages are one, shared */
    CU_ASSERT_EQUAL(get_int(v0, "zero_pages"), 1);
    CU_ASSERT_EQUAL(get_int(v0, "dup_pages"), 1);
    json_object_put(o);

    o = ask("{\"cmd\":\"stats\"}");
    json_object *tot = get(o, "totals");
    CU_ASSERT_EQUAL(get_int(tot, "stored_pages"), 1);
    CU_ASSERT_EQUAL(get_int(tot, "dup_pages"), 1);
    json_object *dd = get(o, "dedup");
    CU_ASSERT_TRUE(json_object_get_boolean(get(dd, "enabled")));
    CU_ASSERT_EQUAL(get_int(dd, "hits"), 1);
    CU_ASSERT_EQUAL(get_int(dd, "index_pages"), 1);
    CU_ASSERT_EQUAL(get_int(tot, "requests"), 1);
    CU_ASSERT_EQUAL(get_int(tot, "errors"), 0);
    CU_ASSERT_PTR_NOT_NULL(get(tot, "write_p99_us"));
    CU_ASSERT(json_object_get_double(get(tot, "write_p50_us")) > 0);
    CU_ASSERT_EQUAL(json_object_array_length(get(o, "volumes")), 2);
    json_object_put(o);

    o = ask("{\"cmd\":\"devices\"}");
    arr = get(o, "devices");
    CU_ASSERT_EQUAL_FATAL(json_object_array_length(arr), 2);
    CU_ASSERT_EQUAL(get_int(json_object_array_get_idx(arr, 0), "devid"), 51728);
    CU_ASSERT_STRING_EQUAL(get_str(json_object_array_get_idx(arr, 1), "state"), "InitWait");
    json_object_put(o);

    o = ask("{\"cmd\":\"pool\"}");
    arr = get(o, "servers");
    CU_ASSERT_EQUAL_FATAL(json_object_array_length(arr), 2);
    CU_ASSERT_STRING_EQUAL(get_str(json_object_array_get_idx(arr, 0), "addr"), "127.0.0.1:7480");
    CU_ASSERT_STRING_EQUAL(get_str(json_object_array_get_idx(arr, 1), "state"), "down");
    CU_ASSERT_EQUAL(get_int(json_object_array_get_idx(arr, 0), "used"), 8192);
    json_object_put(o);

    expect_error("{\"cmd\":\"volume-delete\",\"name\":\"vm1-swap\"}", "attached");
    expect_error("{\"cmd\":\"volume-delete\",\"name\":\"nope\"}", "no volume");
    expect_error("{\"cmd\":\"volume-delete\"}", "name");
    o = ask("{\"cmd\":\"volume-delete\",\"name\":\"spare\"}");
    CU_ASSERT_PTR_NULL(get_str(o, "error"));
    CU_ASSERT_TRUE(json_object_get_boolean(get(o, "ok")));
    json_object_put(o);
    CU_ASSERT_PTR_NULL(volumes_find(vs, "spare"));
    teardown();
}

static void test_bad_requests(void)
{
    setup();
    expect_error("{", "malformed");
    expect_error("[]", "cmd");
    expect_error("{\"cmd\":5}", "cmd");
    expect_error("{\"command\":\"status\"}", "cmd");
    expect_error("status", "malformed");
    expect_error("{\"cmd\":\"status\"} trailing", "malformed");
    expect_error("\"cmd\"", "cmd");
    expect_error("{\"cmd\":\"reboot\"}", "unknown command 'reboot'");
    /* Embedded NUL bytes are not a way around the parser. */
    char *s = ctl_handle(ctl, "{\"cmd\":\"status\"}\0x", 18);
    CU_ASSERT_PTR_NOT_NULL(strstr(s, "error"));
    free(s);
    teardown();
}

/* A reply is JSON text, so UTF-8 (RFC 8259), even when it echoes a request's bytes: cut at
 * 64 bytes inside a character, or bytes that were never UTF-8 (json-c accepts them).  Found
 * by fuzz_ctl. */
static void expect_utf8_reply(const char *line)
{
    char *s = ctl_handle(ctl, line, strlen(line));
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, s, (int)strlen(s));
    CU_ASSERT_PTR_NOT_NULL(o);
    if (!o)
        fprintf(stderr, "not UTF-8 JSON: %s\n", s);
    CU_ASSERT_PTR_NOT_NULL(o ? get_str(o, "error") : NULL);
    json_object_put(o);
    json_tokener_free(tok);
    free(s);
}

static void test_utf8_replies(void)
{
    setup();
    char line[512], name[300];
    memset(name, 'a', 63);
    strcpy(name + 63, "\xc3\xa9");                  /* an e-acute across the 64-byte cut */
    snprintf(line, sizeof(line), "{\"cmd\":\"%s\"}", name);
    expect_utf8_reply(line);
    snprintf(line, sizeof(line), "{\"cmd\":\"volume-delete\",\"name\":\"%s\"}", name);
    expect_utf8_reply(line);
    expect_utf8_reply("{\"cmd\":\"\xff\xfe\"}");          /* not UTF-8 at all */
    expect_utf8_reply("{\"cmd\":\"volume-delete\",\"name\":\"\xc3\"}");
    for (int i = 0; i < 140; i++)
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    name[280] = '\0';
    snprintf(line, sizeof(line), "{\"cmd\":\"pool-drain\",\"server\":\"%s\"}", name);
    expect_utf8_reply(line);
    teardown();
}

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    CU_ASSERT_FATAL(strlen(path) < sizeof(sa.sun_path));
    memcpy(sa.sun_path, path, strlen(path) + 1);
    CU_ASSERT_EQUAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static int connect_client(void) { return connect_to(sock); }

/* Sends data, runs the loop until n reply lines arrived; returns them (malloc'd). */
static char *exchange(int fd, const char *data, size_t len, int nlines)
{
    size_t off = 0, got = 0, cap = 1 << 16;
    char *out = calloc(1, cap);
    for (int i = 0; i < 2000; i++) {
        if (off < len) {
            ssize_t n = write(fd, data + off, len - off);
            if (n > 0)
                off += (size_t)n;
        }
        evloop_run_once(el, 5);
        ssize_t n = read(fd, out + got, cap - 1 - got);
        if (n > 0)
            got += (size_t)n;
        int lines = 0;
        for (size_t j = 0; j < got; j++)
            lines += out[j] == '\n';
        if (off == len && lines >= nlines)
            break;
    }
    out[got] = '\0';
    return out;
}

/* The read-only socket: anyone may connect (0666); reports are answered,
 * every command that changes something is refused, naming the full socket. */
static void test_ro_socket(void)
{
    setup();
    char ro[160], err[200];
    snprintf(ro, sizeof(ro), "%s.ro", sock);
    CU_ASSERT_EQUAL_FATAL(ctl_listen_ro(ctl, ro, err, sizeof(err)), 0);
    struct stat sb;
    CU_ASSERT_EQUAL(stat(ro, &sb), 0);
    CU_ASSERT_TRUE(S_ISSOCK(sb.st_mode));
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0666);
    CU_ASSERT_EQUAL(stat(sock, &sb), 0);
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);     /* the full one stays root's */

    int fd = connect_to(ro);
    const char reads[] = "{\"cmd\":\"status\"}\n{\"cmd\":\"health\"}\n{\"cmd\":\"stats\"}\n{\"cmd\":\"volumes\"}\n"
                         "{\"cmd\":\"devices\"}\n{\"cmd\":\"pool\"}\n";
    char *r = exchange(fd, reads, strlen(reads), 6);
    CU_ASSERT_PTR_NULL(strstr(r, "\"error\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "\"version\""));
    free(r);
    static const char *const changes[] = {
        "{\"cmd\":\"log-level\",\"level\":\"debug\"}\n", "{\"cmd\":\"reload\"}\n",
        "{\"cmd\":\"pool-drain\",\"server\":\"127.0.0.1:1\"}\n", "{\"cmd\":\"upgrade\"}\n",
        "{\"cmd\":\"volume-delete\",\"name\":\"vm1-swap\"}\n",
    };
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        r = exchange(fd, changes[i], strlen(changes[i]), 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(r, "refused on the read-only socket"));
        CU_ASSERT_PTR_NOT_NULL(strstr(r, "backd.sock, as root"));  /* the full socket named (json-c escapes its slashes) */
        free(r);
    }
    close(fd);
    CU_ASSERT_PTR_NOT_NULL(volumes_find(vs, "vm1-swap"));     /* nothing was deleted */
    /* The full socket still takes them. */
    fd = connect_client();
    r = exchange(fd, changes[0], strlen(changes[0]), 1);
    CU_ASSERT_PTR_NULL(strstr(r, "read-only"));
    free(r);
    close(fd);
    evloop_run_once(el, 5);
    teardown();
    CU_ASSERT_NOT_EQUAL(stat(ro, &sb), 0);      /* removed with the daemon */
}

static void test_socket(void)
{
    setup();
    struct stat sb;
    CU_ASSERT_EQUAL(stat(sock, &sb), 0);
    CU_ASSERT_TRUE(S_ISSOCK(sb.st_mode));
    CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);

    int fd = connect_client();
    const char req[] = "{\"cmd\":\"status\"}\n\n{bad\n{\"cmd\":\"volumes\"}\r\n";
    char *r = exchange(fd, req, strlen(req), 3);
    char *l1 = r, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    CU_ASSERT_PTR_NOT_NULL(strstr(l1, "\"version\""));
    CU_ASSERT(strncmp(l2, "{\"error\"", 8) == 0);
    CU_ASSERT(strncmp(l3, "{\"volumes\"", 10) == 0);
    free(r);

    /* A line far over the limit: one error, then the connection still works. */
    size_t big = 3 * CTL_LINE_MAX + 100;
    char *line = malloc(big + 32);
    memset(line, 'a', big);
    strcpy(line + big, "\n{\"cmd\":\"pool\"}\n");
    r = exchange(fd, line, strlen(line), 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "too long"));
    l2 = strchr(r, '\n');
    CU_ASSERT_PTR_NOT_NULL_FATAL(l2);
    CU_ASSERT(strncmp(l2 + 1, "{\"servers\"", 10) == 0);
    free(r);
    free(line);

    /* A request split across writes. */
    r = exchange(fd, "{\"cmd\":", 7, 0);
    free(r);
    r = exchange(fd, "\"devices\"}\n", 11, 1);
    CU_ASSERT(strncmp(r, "{\"devices\"", 10) == 0);
    free(r);
    close(fd);
    evloop_run_once(el, 5);

    /* A second daemon on the same socket is refused; a stale file is replaced. */
    char err[200];
    struct ctl_ctx ctx = { .vols = vs, .pool = pool, .platform = "sim", .device_type = "vbd" };
    CU_ASSERT_PTR_NULL(ctl_new(el, sock, &ctx, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use"));
    teardown();

    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/memx-test-ctl-stale-%d.sock", (int)getpid());
    unlink(sa.sun_path);
    CU_ASSERT_EQUAL(bind(stale, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(stale);                                   /* the file stays, nobody listens */
    el = evloop_new();
    pool = fake_pool_new(el);
    vs = volumes_new(pool, false);
    ctx = (struct ctl_ctx){ .vols = vs, .pool = pool, .platform = "sim", .device_type = "vbd" };
    struct ctl *c2 = ctl_new(el, sa.sun_path, &ctx, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL(c2);
    /* No blkback: no devices. */
    if (c2) {
        char *s = ctl_handle(c2, "{\"cmd\":\"devices\"}", 17);
        CU_ASSERT_STRING_EQUAL(s, "{\"devices\":[]}");
        free(s);
    }
    ctl_free(c2);
    CU_ASSERT_PTR_NULL(ctl_new(el, "/proc/no/such/dir/x.sock", &ctx, err, sizeof(err)));
    CU_ASSERT(strlen(err) > 0);
    volumes_free(vs);
    pool_free(pool);
    evloop_free(el);
}

static double get_dbl(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_double(v) : -1.0;
}

static void run_io(bool write, uint64_t sector, uint32_t nsect)
{
    static uint8_t buf[16 * 4096];
    memset(buf, write ? 0x33 + (int)sector : 0, nsect * 512u);
    int done = 0;
    struct volume *v = volumes_find(vs, "vm1-swap");
    if (write)
        volume_write(v, sector, nsect, buf, on_done, &done);
    else
        volume_read(v, sector, nsect, buf, on_done, &done);
    for (int i = 0; i < 100 && !done; i++)
        evloop_run_once(el, 10);
    CU_ASSERT_EQUAL(done, 1);
}

/* stats' traffic: the pool's transport counts, and the same divided by the
 * guest's write and read requests (not pages: a 3-page write is one). */
static void test_traffic(void)
{
    setup();                                    /* one write request */
    struct pool_traffic t = { .msgs_sent = 10, .bytes_sent = 8 * 4200 + 2 * 100, .page_msgs = 8,
                              .page_bytes = 8 * 4200, .msgs_recvd = 9, .bytes_recvd = 9 * 64,
                              .rma_reads = 3, .rma_pieces = 5, .rma_bytes = 5 * 4096 };
    fake_pool_set_traffic(pool, &t);
    /* No read yet: nothing to divide by, and 0 rather than a NaN JSON cannot carry. */
    json_object *o = ask("{\"cmd\":\"stats\"}");
    json_object *tr = get(o, "traffic");
    CU_ASSERT_PTR_NOT_NULL_FATAL(tr);
    CU_ASSERT_EQUAL(get_int(tr, "writes"), 1);
    CU_ASSERT_EQUAL(get_int(tr, "reads"), 0);
    CU_ASSERT_EQUAL(get_int(tr, "rma_pieces"), 5);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(get(tr, "per_read"), "rma_reads"), 0.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(get(tr, "per_write"), "msgs_sent"), 10.0, 1e-9);
    json_object_put(o);

    run_io(true, 8, 8);                         /* a 1-page write */
    run_io(true, 64, 32);                       /* a 4-page write */
    run_io(true, 128, 8);
    run_io(false, 0, 24);                       /* a 3-page read */
    run_io(false, 64, 8);
    o = ask("{\"cmd\":\"stats\"}");
    tr = get(o, "traffic");
    json_object *w = get(tr, "per_write"), *r = get(tr, "per_read");
    CU_ASSERT_EQUAL(get_int(tr, "writes"), 4);
    CU_ASSERT_EQUAL(get_int(tr, "reads"), 2);
    CU_ASSERT_EQUAL(get_int(tr, "msgs_sent"), 10);
    CU_ASSERT_EQUAL(get_int(tr, "page_bytes"), 8 * 4200);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(w, "msgs_sent"), 2.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(w, "page_msgs"), 2.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(w, "other_msgs"), 0.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(w, "msgs_recvd"), 2.25, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(w, "msgs"), 4.75, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(w, "bytes_sent"), (8 * 4200 + 200) / 4.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(w, "other_bytes"), 50.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(w, "bytes"), (8 * 4200 + 200 + 9 * 64) / 4.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(r, "rma_reads"), 1.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(r, "rma_pieces"), 2.5, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(get_dbl(r, "bytes"), 5 * 4096 / 2.0, 1e-9);
    /* Two decimals in the text (memxctl prints it as it comes). */
    char *text = ctl_handle(ctl, "{\"cmd\":\"stats\"}", 15);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"msgs_recvd\":2.25"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"rma_reads\":1.50"));
    free(text);
    json_object_put(o);
    teardown();
}

/* Whether health's conditions include name; its detail in *detail. */
static bool has_cond(json_object *h, const char *name, const char **detail)
{
    json_object *a = get(h, "conditions");
    for (size_t i = 0; a && i < json_object_array_length(a); i++) {
        json_object *c = json_object_array_get_idx(a, i);
        if (!strcmp(get_str(c, "name"), name)) {
            if (detail)
                *detail = get_str(c, "detail");
            return true;
        }
    }
    return false;
}

static int write_pages(struct volume *v, uint64_t first, unsigned n, uint8_t seed)
{
    static uint8_t buf[4096];
    int rc = 0;
    for (unsigned i = 0; i < n && !rc; i++) {
        memset(buf, seed + i + 1, sizeof(buf));
        int done = 0;
        volume_write(v, (first + i) * 8, 8, buf, on_done, &done);
        for (int k = 0; k < 100 && !done; k++)
            evloop_run_once(el, 10);
        rc = done - 1;
    }
    return rc;
}

/* Capacity in health and stats: a volume's quota near full and full, the
 * pool refusing writes for lack of room (pool_full), each named. */
static void test_capacity(void)
{
    setup();
    struct volume *sp = volumes_find(vs, "spare");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
    volume_set_quota(sp, 10 * 4096);
    json_object *h = ask("{\"cmd\":\"health\"}");
    CU_ASSERT_FALSE(has_cond(h, "quota_near_full", NULL));
    CU_ASSERT_FALSE(has_cond(h, "quota_full", NULL));
    CU_ASSERT_FALSE(has_cond(h, "pool_full", NULL));
    json_object_put(h);
    CU_ASSERT_EQUAL(write_pages(sp, 0, 9, 1), 0);
    const char *d = NULL;
    h = ask("{\"cmd\":\"health\"}");
    CU_ASSERT_TRUE(has_cond(h, "quota_near_full", &d));
    CU_ASSERT(d && strstr(d, "volume spare holds 9 of its quota of 10 pages (90%"));
    CU_ASSERT_FALSE(has_cond(h, "quota_full", NULL));
    CU_ASSERT_EQUAL(get_int(h, "code"), 1);
    json_object_put(h);
    CU_ASSERT_EQUAL(write_pages(sp, 9, 1, 1), 0);
    CU_ASSERT_EQUAL(write_pages(sp, 10, 1, 1), -ENOSPC);
    h = ask("{\"cmd\":\"health\"}");
    CU_ASSERT_TRUE(has_cond(h, "quota_full", &d));
    CU_ASSERT(d && strstr(d, "volume spare holds 10 of its quota of 10 pages"));
    CU_ASSERT(d && strstr(d, "1 refused"));
    CU_ASSERT_FALSE(has_cond(h, "quota_near_full", NULL));
    json_object_put(h);
    /* stats: the quota, what it counts, what it refused. */
    json_object *st = ask("{\"cmd\":\"stats\"}"), *arr = get(st, "volumes");
    bool seen = false;
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *o = json_object_array_get_idx(arr, i);
        if (strcmp(get_str(o, "name"), "spare"))
            continue;
        seen = true;
        CU_ASSERT_EQUAL(get_int(o, "quota_pages"), 10);
        CU_ASSERT_EQUAL(get_int(o, "quota_used_pages"), 10);
        CU_ASSERT_EQUAL(get_int(o, "quota_refused"), 1);
    }
    CU_ASSERT_TRUE(seen);
    CU_ASSERT_EQUAL(get_int(get(st, "totals"), "quota_refused"), 1);
    json_object_put(st);
    /* The pool has no room left: writes fail, and health says so. */
    struct volume *vm = volumes_find(vs, "vm1-swap");
    fake_pool_set_capacity(pool, 1);      /* fewer than it holds already */
    CU_ASSERT_EQUAL(write_pages(vm, 20, 1, 100), -ENOSPC);   /* bytes no page has: no sharing */
    h = ask("{\"cmd\":\"health\"}");
    CU_ASSERT_TRUE(has_cond(h, "pool_full", &d));
    CU_ASSERT(d && strstr(d, "1 page write(s) failed with ENOSPC"));
    CU_ASSERT_EQUAL(get_int(h, "code"), 2);
    CU_ASSERT_STRING_EQUAL(get_str(h, "status"), "failed");
    json_object_put(h);
    teardown();
}

/* A catalog (catalog.h) played by the test: the list is answered when the
 * test says, the delete at once. */
static struct { void (*reply)(void *, json_object *); void *rarg; int lists; char deleted[64]; } fcat;
static void fake_list(void *arg, void (*reply)(void *, json_object *), void *rarg)
{
    (void)arg;
    fcat.reply = reply;
    fcat.rarg = rarg;
    fcat.lists++;
}
static void fake_delete(void *arg, const char *name, void (*reply)(void *, json_object *), void *rarg)
{
    (void)arg;
    snprintf(fcat.deleted, sizeof(fcat.deleted), "%s", name);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "error", json_object_new_string("in use by backd@other"));
    reply(rarg, r);
    json_object_put(r);
}
static void fake_answer(const char *name)
{
    json_object *r = json_object_new_object(), *a = json_object_new_array(), *e = json_object_new_object();
    json_object_object_add(e, "name", json_object_new_string(name));
    json_object_array_add(a, e);
    json_object_object_add(r, "volumes", a);
    void (*reply)(void *, json_object *) = fcat.reply;
    fcat.reply = NULL;
    reply(fcat.rarg, r);
    json_object_put(r);
}

/* volume-list (orphans: no device uses them), --all and deletes of volumes
 * not loaded here: refused without etcd, handed to the catalog with it,
 * answered later to the client that asked (or dropped once it left). */
static void test_volume_list(void)
{
    setup();
    json_object *o = ask("{\"cmd\":\"volume-list\"}"), *a = get(o, "volumes");
    CU_ASSERT_EQUAL_FATAL(json_object_array_length(a), 2);
    for (size_t i = 0; i < 2; i++) {
        json_object *e = json_object_array_get_idx(a, i);
        bool spare = !strcmp(get_str(e, "name"), "spare");
        CU_ASSERT_EQUAL(json_object_get_boolean(get(e, "orphan")), spare);
        CU_ASSERT_STRING_EQUAL(get_str(e, "device"), spare ? "" : "vbd 3/51728");
        CU_ASSERT_TRUE(json_object_get_boolean(get(e, "loaded")));
    }
    json_object_put(o);
    expect_error("{\"cmd\":\"volume-list\",\"all\":true}", "--all needs etcd");
    expect_error("{\"cmd\":\"volume-delete\",\"name\":\"elsewhere\"}", "without etcd");

    /* With a catalog. */
    ctl_free(ctl);
    char err[200];
    struct ctl_ctx ctx = { .vols = vs, .pool = pool, .bb = (struct blkback *)1, .platform = "sim",
                           .device_type = "vbd", .provider = "tcp;ofi_rxm", .volume_list_all = fake_list,
                           .volume_delete_far = fake_delete };
    ctl = ctl_new(el, sock, &ctx, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctl);
    memset(&fcat, 0, sizeof(fcat));
    int fd = connect_client();
    const char req[] = "{\"cmd\":\"volume-list\",\"all\":true}\n";
    char *r = exchange(fd, req, strlen(req), 0);
    for (int i = 0; i < 20 && !fcat.lists; i++)
        evloop_run_once(el, 5);
    CU_ASSERT_STRING_EQUAL(r, "");                  /* not answered yet */
    free(r);
    CU_ASSERT_EQUAL(fcat.lists, 1);
    /* The connection serves other requests meanwhile. */
    r = exchange(fd, "{\"cmd\":\"pool\"}\n", 15, 1);
    CU_ASSERT(strncmp(r, "{\"servers\"", 10) == 0);
    free(r);
    fake_answer("far-away");
    r = exchange(fd, "", 0, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "\"far-away\""));
    free(r);
    /* A delete of a volume not loaded here goes to the catalog; one loaded here does not. */
    const char del[] = "{\"cmd\":\"volume-delete\",\"name\":\"far-away\"}\n";
    r = exchange(fd, del, strlen(del), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "in use by backd@other"));
    CU_ASSERT_STRING_EQUAL(fcat.deleted, "far-away");
    free(r);
    memset(&fcat, 0, sizeof(fcat));
    const char del2[] = "{\"cmd\":\"volume-delete\",\"name\":\"vm1-swap\"}\n";
    r = exchange(fd, del2, strlen(del2), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "attached"));
    CU_ASSERT_STRING_EQUAL(fcat.deleted, "");
    free(r);
    /* A name that is no volume name is not sent anywhere. */
    const char del3[] = "{\"cmd\":\"volume-delete\",\"name\":\"a/b\"}\n";
    r = exchange(fd, del3, strlen(del3), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(r, "no volume"));
    CU_ASSERT_STRING_EQUAL(fcat.deleted, "");
    free(r);
    /* The client leaves before its answer: dropped, nothing breaks. */
    r = exchange(fd, req, strlen(req), 0);
    free(r);
    for (int i = 0; i < 20 && !fcat.lists; i++)
        evloop_run_once(el, 5);
    CU_ASSERT_EQUAL(fcat.lists, 1);
    close(fd);
    for (int i = 0; i < 5; i++)
        evloop_run_once(el, 2);
    fake_answer("nobody-hears");
    /* One still owed when the socket closes is freed with it. */
    char *s = ctl_handle(ctl, "{\"cmd\":\"volume-list\",\"all\":true}", 32);
    CU_ASSERT_PTR_NULL(s);
    CU_ASSERT_EQUAL(fcat.lists, 2);
    teardown();
}

static const struct cu_test ctl_tests[] = {
    { "volume_list", test_volume_list },
    { "capacity", test_capacity },
    { "commands", test_commands },
    { "bad_requests", test_bad_requests },
    { "utf8_replies", test_utf8_replies },
    { "socket", test_socket },
    { "ro_socket", test_ro_socket },
    { "traffic", test_traffic },
    { NULL, NULL },
};

static const struct cu_suite suites[] = {
    { "ctl", NULL, NULL, ctl_tests },
    { NULL, NULL, NULL, NULL },
};

CU_MAIN(suites)
