/* memx-netbench — the bare transport round trip under MemX, as the floor for
 * `make bench`.
 *
 * Two processes on this host, each with one fab endpoint (lib/net/fabric.h) on its
 * own evloop, exactly as memx-backd and memx-memd use them: a server child
 * registers a buffer for remote reads and answers 4 KiB page messages with a
 * small ack; the client measures
 *   read   fab_read of one page (how the pool reads a page),
 *   write  fab_send of a header + page, completed by the server's ack (how
 *          the pool writes a page and learns it is stored),
 * each at queue depth 1 (latency) and at a deeper queue (throughput).  No
 * authentication, no volume, no ring: what is left is the provider and our
 * progress loop.  One line per test:
 *   netbench read qd=1 ops=N p50_us=.. p99_us=.. iops=..
 */
#include "evloop.h"
#include "fabric.h"
#include "histo.h"
#include "log.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE        4096u
#define ARENA_PAGES 256u                /* the server's registered buffer */
#define MAX_QD      128u

enum { M_HELLO = 1, M_HELLO_OK, M_PAGE, M_ACK };

/* Both sides are this program on this host: plain structs on the wire. */
struct nb_msg {
    uint32_t type;
    uint32_t name_len;
    uint64_t id;
    uint64_t raddr, key;
    uint8_t name[128];                  /* M_HELLO: the client's endpoint name */
};

#define NB_HDR offsetof(struct nb_msg, name)

/* ---- server ---- */

struct server {
    struct fab *fab;
    uint64_t raddr, key;
};

static void srv_recv(void *arg, fab_addr_t src, const void *buf, size_t len)
{
    struct server *s = arg;
    struct nb_msg m;
    if (len < NB_HDR)
        return;
    memset(&m, 0, sizeof(m));
    memcpy(&m, buf, len < sizeof(m) ? len : sizeof(m));
    if (m.type == M_HELLO) {
        if (src == FAB_ADDR_NONE && (m.name_len > sizeof(m.name) ||
                                        fab_peer_add_raw(s->fab, m.name, m.name_len, &src))) {
            mx_err("netbench server: HELLO with an unusable address");
            return;
        }
        struct nb_msg r = { .type = M_HELLO_OK, .id = m.id, .raddr = s->raddr, .key = s->key };
        fab_send(s->fab, src, &r, NB_HDR, NULL, 0, NULL, NULL, 0);
    } else if (m.type == M_PAGE && src != FAB_ADDR_NONE) {
        struct nb_msg r = { .type = M_ACK, .id = m.id };
        fab_send(s->fab, src, &r, NB_HDR, NULL, 0, NULL, NULL, 0);
    }
}

static int run_server(const char *provider, const char *listen, bool spin)
{
    struct evloop *el = evloop_new();
    struct server s = { 0 };
    char err[256];
    struct fab_opts o = { .provider = provider, .listen = listen, .name = "netbench server",
                          .on_recv = srv_recv, .arg = &s };
    if (!el || !(s.fab = fab_open(el, &o, err, sizeof(err)))) {
        fprintf(stderr, "memx-netbench: server: %s\n", el ? err : "out of memory");
        return 1;
    }
    static uint8_t arena[ARENA_PAGES * PAGE] __attribute__((aligned(PAGE)));
    memset(arena, 0xa5, sizeof(arena));
    struct fab_mr *mr;
    if (fab_mr_reg(s.fab, arena, sizeof(arena), &mr, &s.raddr, &s.key, err, sizeof(err))) {
        fprintf(stderr, "memx-netbench: server: %s\n", err);
        return 1;
    }
    if (!spin) {
        evloop_run(el);
        return 0;
    }
    for (;;)
        evloop_run_once(el, 0);
}

/* ---- client ---- */

struct client {
    struct evloop *el;
    struct fab *fab;
    fab_addr_t srv;
    uint64_t raddr, key;
    bool hello_ok;
    /* the running test */
    bool write;
    unsigned qd, inflight;
    uint64_t next_page, done, target, deadline_ns;
    struct histo h;
    uint8_t page[PAGE];
};

static void issue(struct client *c);

/* started: the issue time, carried as the op's tag (reads) or id (writes). */
static void complete(struct client *c, uint64_t started)
{
    uint64_t now = evloop_now_ns();
    histo_record(&c->h, now - started);
    c->inflight--;
    c->done++;
    if (c->write)
        fab_expect(c->fab, -1);
    if (c->done + c->inflight < c->target && now < c->deadline_ns)
        issue(c);
}

static void on_read(void *arg, uint64_t tag, int status, const void *data, size_t len)
{
    struct client *c = arg;
    if (status) {
        fprintf(stderr, "memx-netbench: read failed: %s\n", strerror(-status));
        exit(1);
    }
    complete(c, tag);
}

static void cli_recv(void *arg, fab_addr_t src, const void *buf, size_t len)
{
    struct client *c = arg;
    struct nb_msg m;
    if (len < NB_HDR)
        return;
    memcpy(&m, buf, NB_HDR);
    if (m.type == M_HELLO_OK && !c->hello_ok) {
        c->raddr = m.raddr;
        c->key = m.key;
        c->hello_ok = true;
        fab_expect(c->fab, -1);
    } else if (m.type == M_ACK) {
        complete(c, m.id);
    }
}

static void issue(struct client *c)
{
    uint64_t id = evloop_now_ns();
    c->inflight++;
    int rc;
    if (c->write) {
        struct nb_msg m = { .type = M_PAGE, .id = id };
        fab_expect(c->fab, 1);
        rc = fab_send(c->fab, c->srv, &m, NB_HDR, c->page, PAGE, NULL, NULL, id);
    } else {
        rc = fab_read(c->fab, c->srv, PAGE, c->raddr + (c->next_page++ % ARENA_PAGES) * PAGE, c->key, on_read, c, id);
    }
    if (rc) {
        fprintf(stderr, "memx-netbench: cannot post: %s\n", strerror(-rc));
        exit(1);
    }
}

static void run_test(struct client *c, bool write, unsigned qd, uint64_t ops, double secs)
{
    c->write = write;
    c->qd = qd;
    c->inflight = 0;
    c->done = 0;
    c->target = ops;
    histo_reset(&c->h);
    uint64_t t0 = evloop_now_ns();
    c->deadline_ns = t0 + (uint64_t)(secs * 1e9);
    for (unsigned i = 0; i < qd && i < ops; i++)
        issue(c);
    while (c->inflight)
        evloop_run_once(c->el, 100);
    double el_s = (double)(evloop_now_ns() - t0) / 1e9;
    printf("netbench %s qd=%u ops=%" PRIu64 " p50_us=%.1f p99_us=%.1f iops=%.0f\n", write ? "write" : "read", qd,
           c->done, (double)histo_quantile(&c->h, 0.5) / 1000.0, (double)histo_quantile(&c->h, 0.99) / 1000.0,
           (double)c->done / el_s);
    fflush(stdout);
}

static void usage(FILE *o)
{
    fprintf(o,
        "usage: memx-netbench [--provider P] [--port N] [--ops N] [--seconds S] [--qd N] [--server-spin]\n"
        "  Measures the bare libfabric round trip MemX's pool rides on: 4 KiB RMA reads and\n"
        "  4 KiB sends answered by an ack, at queue depth 1 and --qd, between this process\n"
        "  and a server child on 127.0.0.1.\n"
        "  --provider P   libfabric provider (default tcp;ofi_rxm)\n"
        "  --port N       loopback port for the server child (default 7499)\n"
        "  --ops N        operations per test at most (default 20000)\n"
        "  --seconds S    time per test at most (default 2)\n"
        "  --qd N         the deep queue depth, 2..%u (default 32)\n"
        "  --server-spin  the server polls without sleeping (memx-memd sleeps in epoll when idle;\n"
        "                 the difference is the server's wake-up cost)\n", MAX_QD);
}

int main(int argc, char **argv)
{
    const char *provider = "tcp;ofi_rxm";
    unsigned port = 7499, qd = 32;
    uint64_t ops = 20000;
    double secs = 2;
    bool server_spin = false;
    static const struct option lo[] = {
        { "provider", required_argument, NULL, 'P' }, { "port", required_argument, NULL, 'p' },
        { "ops", required_argument, NULL, 'n' },      { "seconds", required_argument, NULL, 's' },
        { "qd", required_argument, NULL, 'q' },       { "help", no_argument, NULL, 'h' },
        { "server-spin", no_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'P': provider = optarg; break;
        case 'p':
            port = (unsigned)strtoul(optarg, &end, 10);
            if (*end || port == 0 || port > 65535) {
                fprintf(stderr, "memx-netbench: --port must be 1..65535, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'n':
            ops = strtoull(optarg, &end, 10);
            if (*end || ops == 0) {
                fprintf(stderr, "memx-netbench: --ops must be a positive number, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 's':
            secs = strtod(optarg, &end);
            if (*end || !(secs > 0)) {
                fprintf(stderr, "memx-netbench: --seconds must be positive, not '%s'\n", optarg);
                return 2;
            }
            break;
        case 'q':
            qd = (unsigned)strtoul(optarg, &end, 10);
            if (*end || qd < 2 || qd > MAX_QD) {
                fprintf(stderr, "memx-netbench: --qd must be 2..%u, not '%s'\n", MAX_QD, optarg);
                return 2;
            }
            break;
        case 'S': server_spin = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "memx-netbench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    mx_log_init("memx-netbench", MX_LOG_WARN);
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);

    pid_t child = fork();
    if (child < 0) {
        perror("memx-netbench: fork");
        return 1;
    }
    if (child == 0) {
        /* The server dies with us whatever happens to the client. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        _exit(run_server(provider, listen, server_spin));
    }

    int rc = 1;
    struct client cl = { 0 };
    char err[256];
    struct fab_opts o = { .provider = provider, .name = "netbench client", .on_recv = cli_recv, .arg = &cl };
    cl.el = evloop_new();
    if (!cl.el || !(cl.fab = fab_open(cl.el, &o, err, sizeof(err)))) {
        fprintf(stderr, "memx-netbench: client: %s\n", cl.el ? err : "out of memory");
        goto out;
    }
    memset(cl.page, 0x5a, sizeof(cl.page));
    /* The server child may not listen yet: retry the address and HELLO for 5 s. */
    struct nb_msg hello = { .type = M_HELLO };
    size_t nl = sizeof(hello.name);
    if (fab_local_name(cl.fab, hello.name, &nl)) {
        fprintf(stderr, "memx-netbench: client: cannot read our endpoint name\n");
        goto out;
    }
    hello.name_len = (uint32_t)nl;
    if (fab_peer_add(cl.fab, listen, &cl.srv, err, sizeof(err))) {
        fprintf(stderr, "memx-netbench: client: %s\n", err);
        goto out;
    }
    uint64_t give_up = evloop_now_ns() + 5000000000ull;
    while (!cl.hello_ok && evloop_now_ns() < give_up) {
        fab_expect(cl.fab, 1);
        fab_send(cl.fab, cl.srv, &hello, sizeof(hello), NULL, 0, NULL, NULL, 0);
        uint64_t retry = evloop_now_ns() + 200000000ull;
        while (!cl.hello_ok && evloop_now_ns() < retry)
            evloop_run_once(cl.el, 10);
        if (!cl.hello_ok)
            fab_expect(cl.fab, -1);
    }
    if (!cl.hello_ok) {
        fprintf(stderr, "memx-netbench: the server child on %s did not answer within 5 s\n", listen);
        goto out;
    }
    printf("netbench provider=%s page=%u server=%s\n", fab_provider(cl.fab), PAGE,
           server_spin ? "polling" : "sleeping");
    run_test(&cl, false, 1, ops, secs);
    run_test(&cl, false, qd, ops * 4, secs);
    run_test(&cl, true, 1, ops, secs);
    run_test(&cl, true, qd, ops * 4, secs);
    rc = 0;
out:
    kill(child, SIGTERM);
    waitpid(child, NULL, 0);
    if (cl.fab)
        fab_close(cl.fab);
    if (cl.el)
        evloop_free(cl.el);
    return rc;
}
