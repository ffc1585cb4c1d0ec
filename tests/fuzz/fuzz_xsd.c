/* fuzz_xsd.c — libFuzzer target for the sim XenStore daemon (tools/sim/memx-simxsd.c): what
 * any XenStore client controls, the xs_wire byte stream.
 *
 * The daemon's own file is included (its main() renamed), so the real framing (conn_read),
 * dispatch (handle), tree, watches and transactions run in-process over socketpairs, on the
 * daemon's event loop; up to four clients talk to it at once, so watches fire across clients
 * and transactions conflict.  Besides ASan/UBSan/leaks, the target traps when:
 *  - a message to a client is longer than XENSTORE_PAYLOAD_MAX, malformed (an error that is
 *    not a nul-terminated name, a watch event that is not two nul-terminated strings), or
 *    answers no request;
 *  - a complete request gets no reply, a reply with another req_id or type, or the client is
 *    dropped without a cause (a header over XENSTORE_PAYLOAD_MAX is the only one here: the
 *    target reads every reply at once, so no client is "not reading");
 *  - the store's node count (MAX_NODES is enforced on it) differs from the nodes it holds.
 *
 * Input: chunks, each  [op] then
 *   op bit 3 clear: [len:16 LE][len raw bytes]          sent as they are (any framing at all)
 *   op bit 3 set:   [type][tx_id][len:16 LE][len bytes] one message with a correct header
 * op bits 0-1 pick the client (one is connected on first use, again after it was dropped);
 * op bit 2: the client hangs up after this chunk (mid-message, mid-transaction, with watches).
 * A short last chunk takes what is left.
 *
 * Build and run: tests/fuzz/run.sh BUILD (tests/fuzz/Makefile.inc).  FUZZ_XSD_TRACE=1 prints what
 * the clients receive (to check a seed does what it says).
 */
#define main simxsd_main
#include "memx-simxsd.c"
#undef main

#include <sys/ioctl.h>

#define NCLIENT 4
#define CHECK(c) do { if (!(c)) {                                                    \
        fprintf(stderr, "CHECK %s line %d errno %d\n", #c, __LINE__, errno);             \
        __builtin_trap(); } } while (0)

struct expect { uint32_t type, req_id; };

struct client {
    struct conn *c;             /* the daemon's side; NULL when not connected */
    int fd;                     /* our side */
    /* What we sent, framed as the daemon must frame it. */
    struct xsd_sockmsg hdr;
    size_t hdr_got, body_got;
    bool must_drop;             /* sent a header over the limit */
    struct expect exp[8192];
    size_t nexp, exp_head;
    /* What we received. */
    uint8_t in[2 * (sizeof(struct xsd_sockmsg) + XENSTORE_PAYLOAD_MAX)];
    size_t in_len;
};

static struct client cl[NCLIENT];
static bool trace;              /* FUZZ_XSD_TRACE=1: print every message the clients get */

static bool conn_alive(const struct conn *c)
{
    for (const struct conn *x = S.conns; x; x = x->next)
        if (x == c)
            return true;
    return false;
}

static void client_open(struct client *k)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
    struct conn *c = calloc(1, sizeof(*c));
    CHECK(c);
    c->fd = sv[0];
    CHECK(evloop_add_fd(S.el, sv[0], EV_READ, conn_cb, c) == 0);
    c->next = S.conns;          /* as listen_cb links a new client */
    if (S.conns)
        S.conns->prev = c;
    S.conns = c;
    memset(k, 0, offsetof(struct client, exp));
    k->nexp = k->exp_head = k->in_len = 0;
    k->c = c;
    k->fd = sv[1];
}

/* Frames what the client sends, as a correct daemon must: each complete request expects one reply. */
static void track_sent(struct client *k, const uint8_t *p, size_t n)
{
    while (n && !k->must_drop) {
        if (k->hdr_got < sizeof(k->hdr)) {
            size_t t = sizeof(k->hdr) - k->hdr_got;
            t = t < n ? t : n;
            memcpy((uint8_t *)&k->hdr + k->hdr_got, p, t);
            k->hdr_got += t;
            p += t;
            n -= t;
            if (k->hdr_got < sizeof(k->hdr))
                return;
            if (k->hdr.len > XENSTORE_PAYLOAD_MAX) {
                k->must_drop = true;
                return;
            }
            k->body_got = 0;
        } else {
            size_t t = k->hdr.len - k->body_got;
            t = t < n ? t : n;
            k->body_got += t;
            p += t;
            n -= t;
        }
        if (k->body_got == k->hdr.len) {
            CHECK(k->nexp < sizeof(k->exp) / sizeof(k->exp[0]));
            k->exp[k->nexp++] = (struct expect){ k->hdr.type, k->hdr.req_id };
            k->hdr_got = 0;
        }
    }
}

static bool strings_ok(const uint8_t *p, size_t len, unsigned want)
{
    unsigned n = 0;
    size_t off = 0;
    while (off < len) {
        const uint8_t *z = memchr(p + off, '\0', len - off);
        if (!z)
            return false;
        off = (size_t)(z - p) + 1;
        n++;
    }
    return n == want;
}

/* Reads and checks whatever the daemon sent this client. */
static void drain(struct client *k)
{
    if (!k->c)
        return;
    for (;;) {
        ssize_t n = read(k->fd, k->in + k->in_len, sizeof(k->in) - k->in_len);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            /* The daemon hung up (ECONNRESET when it left bytes of ours unread): only a
             * client that sent an oversized header is dropped. */
            CHECK(n == 0 || errno == ECONNRESET);
            CHECK(!conn_alive(k->c));
            CHECK(k->must_drop);
            close(k->fd);
            k->c = NULL;
            return;
        }
        k->in_len += (size_t)n;
        size_t off = 0;
        for (;;) {
            struct xsd_sockmsg h;
            if (k->in_len - off < sizeof(h))
                break;
            memcpy(&h, k->in + off, sizeof(h));
            CHECK(h.len <= XENSTORE_PAYLOAD_MAX);
            if (k->in_len - off < sizeof(h) + h.len)
                break;
            const uint8_t *body = k->in + off + sizeof(h);
            if (trace)
                fprintf(stderr, "client %d <- type %u req %u tx %u: %.*s\n", (int)(k - cl), h.type, h.req_id,
                        h.tx_id, (int)h.len, (const char *)body);
            if (h.type == XS_WATCH_EVENT) {
                /* Never a reply: a request of that type gets XS_ERROR. */
                CHECK(h.req_id == 0 && h.tx_id == 0 && strings_ok(body, h.len, 2));
            } else {
                CHECK(k->exp_head < k->nexp);
                struct expect e = k->exp[k->exp_head++];
                CHECK(h.req_id == e.req_id);
                CHECK(h.type == e.type || h.type == XS_ERROR);
                if (h.type == XS_ERROR)
                    CHECK(strings_ok(body, h.len, 1));
            }
            off += sizeof(h) + h.len;
        }
        memmove(k->in, k->in + off, k->in_len - off);
        k->in_len -= off;
    }
}

static bool busy(void)
{
    for (struct conn *c = S.conns; c; c = c->next) {
        int q = 0;
        if (c->out_len || (ioctl(c->fd, FIONREAD, &q) == 0 && q > 0))
            return true;
    }
    return false;
}

/* Runs the daemon until it has read everything and we have read all it wrote. */
static void settle(void)
{
    for (int i = 0; i < 100000; i++) {
        evloop_run_once(S.el, 0);
        for (int j = 0; j < NCLIENT; j++)
            drain(&cl[j]);
        if (!busy())
            break;
    }
    CHECK(!busy());
}

static void send_bytes(struct client *k, const uint8_t *p, size_t n)
{
    track_sent(k, p, n);
    while (n && k->c) {
        ssize_t w = send(k->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else {
            CHECK(errno == EAGAIN || errno == EPIPE || errno == ECONNRESET);
            if (errno != EAGAIN)
                return;
        }
        settle();
    }
    settle();
}

static unsigned tree_count(const struct node *n)
{
    return n ? subtree_size(n) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!S.el) {
        mx_log_init("fuzz_xsd", MX_LOG_ERR);
        mx_log_set_file(fopen("/dev/null", "w"));
        S.el = evloop_new();
        CHECK(S.el);
        trace = getenv("FUZZ_XSD_TRACE") != NULL;
    }
    S.nnodes = 0;
    S.commits = S.gen = 0;
    CHECK(seed_tree() == 0);

    static uint8_t frame[sizeof(struct xsd_sockmsg) + 65535];
    uint32_t req_id = 0;
    size_t i = 0;
    while (i < size) {
        uint8_t op = data[i++];
        struct client *k = &cl[op & 3];
        if (!k->c)
            client_open(k);
        if (op & 8) {
            struct xsd_sockmsg h = { 0 };
            uint8_t hb[4] = { 0 };
            size_t t = size - i < 4 ? size - i : 4;
            memcpy(hb, data + i, t);
            i += t;
            h.type = hb[0];
            h.tx_id = hb[1];
            h.req_id = ++req_id;
            size_t len = (size_t)hb[2] | (size_t)hb[3] << 8;
            len = len < size - i ? len : size - i;
            h.len = (uint32_t)len;
            memcpy(frame, &h, sizeof(h));
            memcpy(frame + sizeof(h), data + i, len);
            i += len;
            send_bytes(k, frame, sizeof(h) + len);
        } else {
            size_t len = 0;
            if (size - i >= 2)
                len = (size_t)data[i] | (size_t)data[i + 1] << 8;
            i += size - i < 2 ? size - i : 2;
            len = len < size - i ? len : size - i;
            send_bytes(k, data + i, len);
            i += len;
        }
        if ((op & 4) && k->c) {
            struct conn *c = k->c;
            k->c = NULL;
            close(k->fd);
            settle();
            CHECK(!conn_alive(c));       /* the daemon saw the hang-up and let go */
        }
    }
    settle();

    /* Every complete request was answered; the node count matches the trees. */
    unsigned held = tree_count(S.root);
    for (struct conn *c = S.conns; c; c = c->next)
        for (struct txn *t = c->txns; t; t = t->next)
            held += tree_count(t->root);
    CHECK(held == S.nnodes);
    for (int j = 0; j < NCLIENT; j++) {
        struct client *k = &cl[j];
        if (!k->c)
            continue;
        CHECK(k->must_drop || k->exp_head == k->nexp);
        close(k->fd);
        conn_close(k->c);
        k->c = NULL;
    }
    CHECK(S.conns == NULL);
    node_free(S.root);
    S.root = NULL;
    CHECK(S.nnodes == 0);
    return 0;
}
