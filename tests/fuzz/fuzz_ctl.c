/* fuzz_ctl.c — libFuzzer target for memx-backd's control socket (backend/ctl.c): what any
 * local client of the socket controls, the request byte stream.
 *
 * ctl.c is included (with ctl_socket.c, its connections, ctl_stats.c, its stats reply, and ctl_admin.c), so its line framing (on_client), JSON
 * parsing and dispatch (ctl_handle)
 * and every command run in-process, over a socketpair and the daemon's event loop, on the real
 * volume layer over the fake pool (tests/unit/fake_pool.c), as tests/unit/test_ctl.c does: two
 * volumes (one attached, one spare, pages written), two memory servers, a canned device list.
 * Besides ASan/UBSan/leaks, the target traps when the replies are not exactly one (strict, UTF-8) JSON object
 * per line for each request line the socket must answer (ctl.h: every non-empty line, bad JSON
 * or not, and one "too long" answer per line over CTL_LINE_MAX), or the client is dropped.
 *
 * Input: byte 0 sets how the rest is written to the socket (0: at once; n: n * 7 bytes per
 * write, so lines arrive split anywhere); the rest is the stream (newline-separated requests).
 *
 * Build and run: tests/fuzz/run.sh BUILD (tests/fuzz/Makefile.inc).  FUZZ_CTL_TRACE=1 prints the
 * replies.
 */
#include "ctl.c"
#include "ctl_socket.c"
#include "ctl_stats.c"
#include "ctl_admin.c"

#include "dedup.h"
#include "fake_pool.h"
#include "volume.h"

#include <sys/ioctl.h>

#define CHECK(c) do { if (!(c)) {                                                    \
        fprintf(stderr, "CHECK %s line %d errno %d\n", #c, __LINE__, errno);             \
        __builtin_trap(); } } while (0)

/* The control socket lists devices through blkback_list(); there is no Xen side here. */
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
static bool trace;              /* FUZZ_CTL_TRACE=1: print every reply */

static void on_done(void *arg, int status) { *(int *)arg = status + 1; }

/* Replies received so far, split into lines and checked. */
static char rbuf[1 << 20];
static size_t rlen;
static unsigned replies;

static void read_replies(int fd)
{
    for (;;) {
        ssize_t n = read(fd, rbuf + rlen, sizeof(rbuf) - 1 - rlen);
        if (n < 0) {
            CHECK(errno == EAGAIN || errno == EINTR);
            return;
        }
        CHECK(n > 0);               /* the daemon never hangs up on a client that reads */
        rlen += (size_t)n;
        char *start = rbuf, *nl;
        while ((nl = memchr(start, '\n', rlen - (size_t)(start - rbuf)))) {
            *nl = '\0';
            CHECK(strlen(start) == (size_t)(nl - start));     /* no NUL inside a reply */
            /* JSON text is UTF-8 (RFC 8259): a client in any language must be able to read it. */
            json_tokener *tok = json_tokener_new();
            CHECK(tok);
            json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
            json_object *o = json_tokener_parse_ex(tok, start, (int)(nl - start));
            if (trace)
                fprintf(stderr, "reply: %s\n", start);
            CHECK(o && json_object_is_type(o, json_type_object));
            CHECK(json_tokener_get_parse_end(tok) == (size_t)(nl - start));
            json_object_put(o);
            json_tokener_free(tok);
            replies++;
            start = nl + 1;
        }
        rlen -= (size_t)(start - rbuf);
        memmove(rbuf, start, rlen);
        CHECK(rlen < sizeof(rbuf) - 1);
    }
}

/* How many replies the socket owes for the stream so far (ctl.h's framing rules). */
struct framer { size_t linelen; uint8_t first; unsigned owed; };

static void frame(struct framer *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n') {
            /* An empty line or a lone "\r" gets nothing; an over-long one was answered already. */
            if (f->linelen > 0 && f->linelen < CTL_LINE_MAX && !(f->linelen == 1 && f->first == '\r'))
                f->owed++;
            f->linelen = 0;
            continue;
        }
        if (f->linelen == 0)
            f->first = p[i];
        if (++f->linelen == CTL_LINE_MAX)
            f->owed++;              /* a full buffer without a newline: one "too long" */
    }
}

static void settle(struct ctl *c, int fd)
{
    for (int i = 0; i < 10000; i++) {
        evloop_run_once(el, 0);
        read_replies(fd);
        int q = 0;
        if ((!c->clients || (ioctl(c->clients->fd, FIONREAD, &q) == 0 && q == 0)) &&
            (!c->clients || c->clients->outlen == 0))
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!el) {
        mx_log_init("fuzz_ctl", MX_LOG_ERR);
        mx_log_set_file(fopen("/dev/null", "w"));
        el = evloop_new();
        CHECK(el);
        dedup_test_hooks(NULL, 16);     /* a small byte cache: a new one per input */
        trace = getenv("FUZZ_CTL_TRACE") != NULL;
    }
    if (size < 1)
        return 0;
    size_t chunk = data[0] ? (size_t)data[0] * 7 : size;
    data++;
    size--;

    struct pool *pool = fake_pool_new(el);
    CHECK(pool);
    fake_pool_add_server(pool, "127.0.0.1:7480", "tcp;ofi_rxm", "up", 1ull << 30, 8192);
    fake_pool_add_server(pool, "127.0.0.1:7481", "tcp;ofi_rxm", "down", 1ull << 30, 0);
    struct volumes *vs = volumes_new(pool, true);
    CHECK(vs);
    char err[200];
    struct volume *a = volume_attach(vs, "vm1-swap", 1ull << 20, "vbd 3/51728", err, sizeof(err));
    CHECK(a && volume_attach(vs, "spare", 1ull << 20, "", err, sizeof(err)));
    static uint8_t buf[3 * 4096];
    memset(buf + 4096, 0x5a, 8192);     /* one zero page, two stored (one de-duplicated) */
    int done = 0;
    volume_write(a, 0, 24, buf, on_done, &done);
    for (int i = 0; i < 1000 && !done; i++)
        evloop_run_once(el, 0);
    CHECK(done == 1);

    /* The control socket without its listener: one client, as on_accept() takes it. */
    struct ctl *c = calloc(1, sizeof(*c));
    CHECK(c);
    c->el = el;
    c->ctx = (struct ctl_ctx){ .vols = vs, .pool = pool, .bb = (struct blkback *)1, .platform = "sim",
                               .device_type = "vbd", .provider = "tcp;ofi_rxm" };
    c->start_ms = evloop_now_ms();
    c->main.fd = c->ro.fd = -1;   /* no listening socket: the client below is handed a socketpair */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    struct client *cl = calloc(1, sizeof(*cl));
    CHECK(cl);
    cl->ctl = c;
    cl->fd = sv[0];
    CHECK(evloop_add_fd(el, sv[0], EV_READ, on_client, cl) == 0);
    c->clients = cl;

    rlen = 0;
    replies = 0;
    struct framer f = { 0 };
    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = write(sv[1], data + off, n);
        if (w < 0) {
            CHECK(errno == EAGAIN);
            w = 0;
        }
        frame(&f, data + off, (size_t)w);
        off += (size_t)w;
        settle(c, sv[1]);
        CHECK(c->clients == cl);
    }
    settle(c, sv[1]);
    CHECK(c->clients == cl);
    CHECK(replies == f.owed);
    CHECK(rlen == 0);

    client_close(cl);
    close(sv[1]);
    free(c);
    for (int i = 0; i < 8; i++)
        evloop_run_once(el, 0);         /* metadata ops a command started */
    CHECK(fake_pool_violations(pool) == 0);
    volumes_free(vs);
    pool_free(pool);
    return 0;
}
