/* fabric.c — the transport of fabric.h over libfabric: the only file that
 * includes <rdma/...> or calls fi_*.  One registered arena per endpoint holds
 * every buffer the provider touches; ops without a free buffer (or refused
 * with EAGAIN) wait in one FIFO backlog; progress is driven from the evloop
 * (wait fd + prepare hook). */
#include "fabric.h"
#include "config.h"
#include "evloop.h"
#include "log.h"

#include <errno.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

_Static_assert(sizeof(fab_addr_t) == sizeof(fi_addr_t), "fab_addr_t carries an fi_addr_t");
_Static_assert(FAB_ADDR_NONE == FI_ADDR_NOTAVAIL, "an unnamed sender is FI_ADDR_NOTAVAIL");

const char *fab_strerror(int status) { return fi_strerror(status < 0 ? -status : status); }

#define NBUFS  256      /* registered send / read-bounce buffers */
#define NBIG   32       /* registered buffers for reads and sends over FAB_MSG_MAX */
#define NRECV  64       /* receives kept posted */
/* How long an operation may wait for the provider to take it (fab_opts
 * post_timeout_ms, FAB_POST_TIMEOUT_MS).  rxm answers EAGAIN, forever and
 * without an error, while it tries to reconnect to a peer that is gone (a
 * killed server refuses the connection), so the backlog needs a bound.  It is
 * not a liveness test: rxm also refuses posts to a live but busy peer for
 * seconds (seen under load on 2 cores), so it is longer than the callers' own
 * timeouts, which decide whether a peer is dead.
 * While replies are outstanding, how long to keep polling after the last
 * completion or post before sleeping on the wait fd (spin_us: a reply that is
 * already on its way is cheaper to catch polling than through a wake-up), and
 * the longest such a sleep lasts in case the wait fd misses one (safety_us). */

enum op_kind { OP_SEND, OP_READ, OP_RECV };

/* One operation handed to the provider; fi_context2 must come first because
 * the CQ gives back its address as op_context. */
struct fab_op {
    struct fi_context2 ctx;
    enum op_kind kind;
    bool posted;                /* handed to the provider (else waiting in the backlog) */
    fab_addr_t peer;
    size_t len;
    uint64_t raddr, key, tag;
    int nrma;                   /* read: remote pieces in rma (0: one, raddr/key) */
    struct fi_rma_iov rma[FAB_RMA_MAX];
    uint64_t queued_ms;         /* when the caller handed it to us */
    fab_done_fn cb;
    void *arg;
    uint8_t *buf;               /* FAB_MSG_MAX (big: FAB_BIG_MAX; receive: recv_size) bytes of the arena */
    struct fab_op *next;
};

struct fab_mr {
    struct fid_mr *mr;
};

struct fab {
    struct evloop *el;
    char name[128];
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_ep *ep;
    struct fid_av *av;
    struct fid_cq *cq;
    int wait_fd;
    uint64_t mr_mode;
    fab_recv_fn on_recv;
    void *arg;

    uint8_t *arena;             /* NBUFS * FAB_MSG_MAX + NBIG * FAB_BIG_MAX + NRECV * recv_size, one registration */
    size_t recv_size;           /* FAB_MSG_MAX, or FAB_BIG_MAX with big_recv */
    size_t arena_len;
    struct fid_mr *arena_mr;
    void *arena_desc;
    struct fab_op ops[NBUFS], recvs[NRECV], bigs[NBIG];
    struct fab_op *free_ops, *free_bigs;
    /* Operations that could not be posted yet: no free buffer (their bytes sit
     * in a heap copy) or the provider said EAGAIN.  FIFO. */
    struct fab_op *backlog, *backlog_tail;
    bool hooked;
    int posted;                 /* ops the provider holds for us */
    int expected;               /* replies the caller awaits */
    uint64_t active_ns;         /* last post or completion */
    uint64_t spin_ns;
    unsigned safety_us;
    unsigned post_timeout_ms;
    bool asleep;                /* slept on the wait fd with work outstanding */
    bool woken;                 /* ... and the wait fd fired since */
    unsigned long sleeps, missed;
};

static int fi_to_errno(ssize_t rc) { return rc < 0 ? (int)rc : -(int)rc; }

void fab_expect(struct fab *f, int n) { f->expected += n; }

const char *fab_provider(const struct fab *f) { return f->info->fabric_attr->prov_name; }

static int post_recv(struct fab *f, struct fab_op *op)
{
    ssize_t rc = fi_recv(f->ep, op->buf, f->recv_size, f->arena_desc, FI_ADDR_UNSPEC, &op->ctx);
    return rc ? fi_to_errno(rc) : 0;
}

/* 0 if posted, -EAGAIN if the provider is busy, another -errno on failure. */
static int post(struct fab *f, struct fab_op *op)
{
    ssize_t rc;
    if (op->kind == OP_SEND) {
        rc = fi_send(f->ep, op->buf, op->len, f->arena_desc, op->peer, &op->ctx);
    } else if (op->nrma > 1) {
        struct iovec iov = { op->buf, op->len };
        void *desc = f->arena_desc;
        struct fi_msg_rma msg = { .msg_iov = &iov, .desc = &desc, .iov_count = 1, .addr = op->peer,
                                  .rma_iov = op->rma, .rma_iov_count = (size_t)op->nrma, .context = &op->ctx };
        rc = fi_readmsg(f->ep, &msg, 0);
    } else {
        rc = fi_read(f->ep, op->buf, op->len, f->arena_desc, op->peer, op->raddr, op->key, &op->ctx);
    }
    if (rc == 0) {
        op->posted = true;
        f->posted++;
    }
    return rc == -FI_EAGAIN ? -EAGAIN : fi_to_errno(rc);
}

static void backlog_push(struct fab *f, struct fab_op *op)
{
    op->next = NULL;
    if (f->backlog_tail)
        f->backlog_tail->next = op;
    else
        f->backlog = op;
    f->backlog_tail = op;
}

static bool is_big_op(struct fab *f, struct fab_op *op)
{
    return op >= f->bigs && op < f->bigs + NBIG;
}

static bool is_arena_op(struct fab *f, struct fab_op *op)
{
    return (op >= f->ops && op < f->ops + NBUFS) || is_big_op(f, op);
}

/* The free registered buffers an op of len bytes takes. */
static struct fab_op **free_list(struct fab *f, size_t len)
{
    return len > FAB_MSG_MAX ? &f->free_bigs : &f->free_ops;
}

static void complete(struct fab *f, struct fab_op *op, int status)
{
    if (op->cb)
        op->cb(op->arg, op->tag, status, op->kind == OP_READ && !status ? op->buf : NULL,
               op->kind == OP_READ && !status ? op->len : 0);
    if (op->posted)
        f->posted--;
    op->posted = false;
    if (!is_arena_op(f, op)) {
        free(op->buf);
        free(op);
        return;
    }
    struct fab_op **fl = is_big_op(f, op) ? &f->free_bigs : &f->free_ops;
    op->next = *fl;
    *fl = op;
}

/* Posts what waits in the backlog, oldest first.  An op the provider refuses
 * with EAGAIN (e.g. its peer's connection is stuck) stays queued without
 * holding up ops for other peers. */
static void drain_backlog(struct fab *f)
{
    struct fab_op *op = f->backlog, *keep = NULL, *keep_tail = NULL;
    uint64_t now = evloop_now_ms();
    f->backlog = f->backlog_tail = NULL;
    while (op) {
        struct fab_op *next = op->next;
        int rc = -EAGAIN;
        struct fab_op **fl = free_list(f, op->len);
        if (!is_arena_op(f, op) && *fl) {
            /* A heap-held op needs a registered buffer before the provider sees it. */
            struct fab_op *r = *fl;
            *fl = r->next;
            uint8_t *buf = r->buf;
            memcpy(r, op, sizeof(*r));
            r->buf = buf;
            if (op->kind == OP_SEND)
                memcpy(r->buf, op->buf, op->len);
            free(op->buf);
            free(op);
            op = r;
        }
        if (is_arena_op(f, op))
            rc = post(f, op);
        if (rc == -EAGAIN && now > op->queued_ms + f->post_timeout_ms) {
            char a[64];
            mx_debug("%s: %s to %s not accepted for %u ms: peer unreachable", f->name,
                     op->kind == OP_SEND ? "send" : "read", fab_peer_str(f, op->peer, a, sizeof(a)),
                     f->post_timeout_ms);
            complete(f, op, -EHOSTUNREACH);
        } else if (rc == -EAGAIN) {
            op->next = NULL;
            if (keep_tail)
                keep_tail->next = op;
            else
                keep = op;
            keep_tail = op;
        } else if (rc) {
            char a[64];
            mx_warn("%s: cannot post to %s: %s", f->name, fab_peer_str(f, op->peer, a, sizeof(a)),
                    fi_strerror(-rc));
            complete(f, op, rc);
        }
        op = next;
    }
    /* Callbacks above may have queued more behind us: keep the older ones first. */
    if (keep) {
        keep_tail->next = f->backlog;
        if (!f->backlog)
            f->backlog_tail = keep_tail;
        f->backlog = keep;
    }
}

/* A send of the bytes of iov[0..n), or a read of len bytes at raddr/key, or
 * (nrma > 1) gathered from the pieces rma[0..nrma). */
static int submit(struct fab *f, enum op_kind kind, fab_addr_t peer, const struct iovec *iov, int n,
                  size_t len, uint64_t raddr, uint64_t key, const struct fab_rma *rma, int nrma,
                  fab_done_fn cb, void *arg, uint64_t tag)
{
    if (kind == OP_SEND) {
        len = 0;
        for (int i = 0; i < n; i++)
            len += iov[i].iov_len;
    }
    if (len > FAB_BIG_MAX)
        return -EMSGSIZE;
    struct fab_op **fl = free_list(f, len);
    struct fab_op *op = *fl;
    if (op && !f->backlog) {
        *fl = op->next;
    } else {
        /* Waits in the backlog for a registered buffer; a send keeps its bytes here. */
        op = calloc(1, sizeof(*op));
        if (!op || (kind == OP_SEND && !(op->buf = malloc(len ? len : 1)))) {
            free(op);
            return -ENOMEM;
        }
    }
    op->kind = kind;
    op->peer = peer;
    op->len = len;
    op->raddr = raddr;
    op->key = key;
    op->nrma = nrma;
    for (int i = 0; i < nrma; i++)
        op->rma[i] = (struct fi_rma_iov){ .addr = rma[i].addr, .len = rma[i].len, .key = rma[i].key };
    op->cb = cb;
    op->arg = arg;
    op->tag = tag;
    op->queued_ms = evloop_now_ms();
    if (kind == OP_SEND) {
        size_t at = 0;
        for (int i = 0; i < n; i++) {
            if (iov[i].iov_len)
                memcpy(op->buf + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
    }
    backlog_push(f, op);
    drain_backlog(f);
    f->active_ns = evloop_now_ns();
    return 0;
}

int fab_send(struct fab *f, fab_addr_t dest, const void *hdr, size_t hlen, const void *data,
             size_t dlen, fab_done_fn cb, void *arg, uint64_t tag)
{
    struct iovec iov[2] = { { (void *)hdr, hlen }, { (void *)data, dlen } };
    return submit(f, OP_SEND, dest, iov, 2, 0, 0, 0, NULL, 0, cb, arg, tag);
}

int fab_sendv(struct fab *f, fab_addr_t dest, const struct iovec *iov, int n, fab_done_fn cb, void *arg,
              uint64_t tag)
{
    return submit(f, OP_SEND, dest, iov, n, 0, 0, 0, NULL, 0, cb, arg, tag);
}

int fab_read(struct fab *f, fab_addr_t src, size_t len, uint64_t raddr, uint64_t key,
             fab_done_fn cb, void *arg, uint64_t tag)
{
    return submit(f, OP_READ, src, NULL, 0, len, raddr, key, NULL, 0, cb, arg, tag);
}

int fab_rma_limit(const struct fab *f)
{
    size_t lim = f->info->tx_attr->rma_iov_limit;
    return lim < 1 ? 1 : lim > FAB_RMA_MAX ? FAB_RMA_MAX : (int)lim;
}

int fab_readv(struct fab *f, fab_addr_t src, const struct fab_rma *rma, int n, fab_done_fn cb, void *arg,
              uint64_t tag)
{
    if (n < 1 || n > fab_rma_limit(f))
        return -EINVAL;
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += rma[i].len;
    if (n == 1)
        return fab_read(f, src, len, rma[0].addr, rma[0].key, cb, arg, tag);
    return submit(f, OP_READ, src, NULL, 0, len, 0, 0, rma, n, cb, arg, tag);
}

static void handle_recv(struct fab *f, struct fab_op *op, size_t len, fab_addr_t src)
{
    if (f->on_recv)
        f->on_recv(f->arg, src, op->buf, len);
    int rc = post_recv(f, op);
    if (rc)
        mx_err("%s: cannot repost a receive: %s", f->name, fi_strerror(-rc));
}

/* Reads every completion there is; returns how many. */
static int poll_cq(struct fab *f)
{
    struct fi_cq_data_entry ce[16];
    fab_addr_t src[16];
    int total = 0;
    for (;;) {
        ssize_t n = fi_cq_readfrom(f->cq, ce, 16, src);
        if (n == -FI_EAGAIN)
            break;
        if (n == -FI_EAVAIL) {
            struct fi_cq_err_entry e = { 0 };
            if (fi_cq_readerr(f->cq, &e, 0) != 1)
                break;
            struct fab_op *op = e.op_context;
            total++;
            if (!op)
                continue;
            if (op->kind == OP_RECV) {
                /* A receive fails only when a message overruns it; the peer is broken. */
                mx_warn("%s: dropped a received message: %s", f->name, fi_strerror(e.err));
                int rc = post_recv(f, op);
                if (rc)
                    mx_err("%s: cannot repost a receive: %s", f->name, fi_strerror(-rc));
                continue;
            }
            char a[64];
            mx_debug("%s: %s to %s failed: %s", f->name, op->kind == OP_SEND ? "send" : "read",
                     fab_peer_str(f, op->peer, a, sizeof(a)), fi_strerror(e.err));
            complete(f, op, -(e.err ? e.err : EIO));
            continue;
        }
        if (n < 0) {
            mx_err("%s: completion queue: %s", f->name, fi_strerror((int)-n));
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            struct fab_op *op = ce[i].op_context;
            if (op->kind == OP_RECV)
                handle_recv(f, op, ce[i].len, src[i]);
            else
                complete(f, op, 0);
        }
        total += (int)n;
    }
    if (f->backlog)
        drain_backlog(f);
    return total;
}

static void on_wait_fd(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct fab *f = arg;
    f->woken = true;
    poll_cq(f);
}

/* Before the loop sleeps: progress once more, then ask the provider whether
 * sleeping on the wait fd is safe.  Nonzero tells the loop to poll again. */
static int prepare(struct evloop *el, void *arg)
{
    struct fab *f = arg;
    int got = poll_cq(f);
    if (f->asleep) {
        /* We slept with work outstanding: completions found without the fd having
         * fired mean the safety timeout, not the provider, woke us. */
        if (got && !f->woken)
            f->missed++;
        f->asleep = false;
    }
    uint64_t now = evloop_now_ns();
    if (got) {
        f->active_ns = now;
        return 1;
    }
    bool outstanding = f->posted > 0 || f->expected > 0;
    if (f->backlog || (outstanding && now - f->active_ns < f->spin_ns))
        return 1;
    struct fid *fids[1] = { &f->cq->fid };
    if (fi_trywait(f->fabric, fids, 1) != FI_SUCCESS)
        return 1;
    if (outstanding) {
        evloop_limit_wait_us(el, f->safety_us);
        f->asleep = true;
        f->woken = false;
        f->sleeps++;
    }
    return 0;
}

static int split(const char *hostport, char *host, size_t hl, char *port, size_t pl, char *err,
                 size_t errlen)
{
    if (memx_split_hostport(hostport, host, hl, port, pl)) {
        snprintf(err, errlen, "'%s': not host:port", hostport);
        return -1;
    }
    return 0;
}

static struct fi_info *make_hints(const char *provider)
{
    struct fi_info *h = fi_allocinfo();
    if (!h)
        return NULL;
    h->caps = FI_MSG | FI_RMA | FI_SOURCE;
    h->ep_attr->type = FI_EP_RDM;
    /* Everything we know how to honour; the provider clears what it does not need. */
    h->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY |
                              FI_MR_ENDPOINT;
    h->domain_attr->threading = FI_THREAD_DOMAIN;
    h->domain_attr->data_progress = FI_PROGRESS_MANUAL;
    h->mode = FI_CONTEXT | FI_CONTEXT2;
    h->fabric_attr->prov_name = strdup(provider);
    return h;
}

static int reg(struct fab *f, void *buf, size_t len, uint64_t access, struct fid_mr **mr,
               uint64_t *key, char *err, size_t errlen)
{
    uint64_t want = 0;
    if (!(f->mr_mode & FI_MR_PROV_KEY))
        randombytes_buf(&want, sizeof(want));
    /* Keys wider than the domain allows are trimmed; 0 stays meaningful only to us. */
    if (f->info->domain_attr->mr_key_size < 8)
        want &= (1ull << (8 * f->info->domain_attr->mr_key_size)) - 1;
    int rc = fi_mr_reg(f->domain, buf, len, access, 0, want, 0, mr, NULL);
    if (rc) {
        snprintf(err, errlen, "%s: memory registration of %zu bytes failed: %s", f->name, len,
                 fi_strerror(-rc));
        return -1;
    }
    if (f->mr_mode & FI_MR_ENDPOINT) {
        if ((rc = fi_mr_bind(*mr, &f->ep->fid, 0)) || (rc = fi_mr_enable(*mr))) {
            snprintf(err, errlen, "%s: binding memory to the endpoint failed: %s", f->name,
                     fi_strerror(-rc));
            fi_close(&(*mr)->fid);
            return -1;
        }
    }
    *key = fi_mr_key(*mr);
    return 0;
}

int fab_mr_reg(struct fab *f, void *buf, size_t len, struct fab_mr **out, uint64_t *raddr,
               uint64_t *key, char *err, size_t errlen)
{
    struct fab_mr *m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "%s: out of memory", f->name);
        return -1;
    }
    if (reg(f, buf, len, FI_REMOTE_READ, &m->mr, key, err, errlen)) {
        free(m);
        return -1;
    }
    *raddr = f->mr_mode & FI_MR_VIRT_ADDR ? (uint64_t)(uintptr_t)buf : 0;
    *out = m;
    return 0;
}

void fab_mr_close(struct fab_mr *m)
{
    if (!m)
        return;
    fi_close(&m->mr->fid);
    free(m);
}

struct fab *fab_open(struct evloop *el, const struct fab_opts *o, char *err, size_t errlen)
{
    char host[128], port[16];
    struct fab *f = calloc(1, sizeof(*f));
    struct fi_info *hints = make_hints(o->provider);
    int rc;
    if (!f || !hints) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    f->el = el;
    f->wait_fd = -1;
    f->spin_ns = (uint64_t)(o->spin_us ? o->spin_us : FAB_SPIN_US) * 1000;
    f->safety_us = o->safety_us ? o->safety_us : FAB_SAFETY_US;
    f->post_timeout_ms = o->post_timeout_ms ? o->post_timeout_ms : FAB_POST_TIMEOUT_MS;
    const char *e;
    if ((e = getenv("MEMX_FAB_SPIN_US")) && *e)
        f->spin_ns = strtoull(e, NULL, 10) * 1000;
    if ((e = getenv("MEMX_FAB_SAFETY_US")) && *e)
        f->safety_us = (unsigned)strtoul(e, NULL, 10);
    f->on_recv = o->on_recv;
    f->arg = o->arg;
    snprintf(f->name, sizeof(f->name), "%s", o->name);
    const char *hp = o->listen ? o->listen : o->peer;
    if (hp && split(hp, host, sizeof(host), port, sizeof(port), err, errlen))
        goto fail;
    rc = fi_getinfo(FI_VERSION(1, 17), hp ? host : NULL, hp ? port : NULL,
                    o->listen ? FI_SOURCE : 0, hints, &f->info);
    if (rc) {
        snprintf(err, errlen, "%s: libfabric provider '%s' with RDM endpoints and RMA is not available%s%s: %s",
                 o->name, o->provider, o->listen ? " on " : "", o->listen ? o->listen : "",
                 fi_strerror(-rc));
        goto fail;
    }
    f->mr_mode = f->info->domain_attr->mr_mode;
    if ((rc = fi_fabric(f->info->fabric_attr, &f->fabric, NULL)) ||
        (rc = fi_domain(f->fabric, f->info, &f->domain, NULL))) {
        snprintf(err, errlen, "%s: cannot open %s: %s", o->name, fab_provider(f), fi_strerror(-rc));
        goto fail;
    }
    struct fi_cq_attr cqa = { .format = FI_CQ_FORMAT_DATA, .wait_obj = FI_WAIT_FD, .size = 1024 };
    struct fi_av_attr ava = { .type = FI_AV_TABLE };
    if ((rc = fi_cq_open(f->domain, &cqa, &f->cq, NULL)) ||
        (rc = fi_av_open(f->domain, &ava, &f->av, NULL)) ||
        (rc = fi_endpoint(f->domain, f->info, &f->ep, NULL)) ||
        (rc = fi_ep_bind(f->ep, &f->av->fid, 0)) ||
        (rc = fi_ep_bind(f->ep, &f->cq->fid, FI_TRANSMIT | FI_RECV)) ||
        (rc = fi_enable(f->ep))) {
        snprintf(err, errlen, "%s: cannot set up a %s endpoint%s%s: %s", o->name, fab_provider(f),
                 o->listen ? " on " : "", o->listen ? o->listen : "", fi_strerror(-rc));
        goto fail;
    }
    if ((rc = fi_control(&f->cq->fid, FI_GETWAIT, &f->wait_fd))) {
        snprintf(err, errlen, "%s: %s gives no completion wait fd: %s", o->name, fab_provider(f),
                 fi_strerror(-rc));
        goto fail;
    }

    /* One registration covers every buffer the provider touches on our side. */
    f->recv_size = o->big_recv ? FAB_BIG_MAX : FAB_MSG_MAX;
    size_t small = (size_t)NBUFS * FAB_MSG_MAX, big = (size_t)NBIG * FAB_BIG_MAX;
    f->arena_len = small + big + (size_t)NRECV * f->recv_size;
    f->arena = mmap(NULL, f->arena_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (f->arena == MAP_FAILED) {
        f->arena = NULL;
        snprintf(err, errlen, "%s: cannot allocate buffers: %s", o->name, strerror(errno));
        goto fail;
    }
    if (f->mr_mode & FI_MR_LOCAL) {
        uint64_t key;
        if (reg(f, f->arena, f->arena_len, FI_SEND | FI_RECV | FI_READ, &f->arena_mr, &key, err,
                errlen))
            goto fail;
        f->arena_desc = fi_mr_desc(f->arena_mr);
    }
    for (int i = 0; i < NBUFS; i++) {
        f->ops[i].buf = f->arena + (size_t)i * FAB_MSG_MAX;
        f->ops[i].next = f->free_ops;
        f->free_ops = &f->ops[i];
    }
    for (int i = 0; i < NBIG; i++) {
        f->bigs[i].buf = f->arena + small + (size_t)i * FAB_BIG_MAX;
        f->bigs[i].next = f->free_bigs;
        f->free_bigs = &f->bigs[i];
    }
    for (int i = 0; i < NRECV; i++) {
        f->recvs[i].kind = OP_RECV;
        f->recvs[i].buf = f->arena + small + big + (size_t)i * f->recv_size;
        if ((rc = post_recv(f, &f->recvs[i]))) {
            snprintf(err, errlen, "%s: cannot post receives: %s", o->name, fi_strerror(-rc));
            goto fail;
        }
    }
    if (evloop_add_fd(el, f->wait_fd, EV_READ, on_wait_fd, f) ||
        evloop_add_prepare(el, prepare, f)) {
        snprintf(err, errlen, "%s: cannot watch the completion queue: %s", o->name, strerror(errno));
        evloop_del_fd(el, f->wait_fd);
        goto fail;
    }
    f->hooked = true;
    fi_freeinfo(hints);
    mx_info("%s: using libfabric provider %s (mr_mode 0x%llx)", f->name, fab_provider(f),
            (unsigned long long)f->mr_mode);
    return f;

fail:
    if (hints)
        fi_freeinfo(hints);
    fab_close(f);
    return NULL;
}

void fab_close(struct fab *f)
{
    if (!f)
        return;
    if (f->sleeps)
        mx_info("%s: slept %lu times with replies outstanding; the wait fd missed %lu wake-ups",
                f->name, f->sleeps, f->missed);
    if (f->hooked) {
        evloop_del_fd(f->el, f->wait_fd);
        evloop_del_prepare(f->el, prepare, f);
    }
    /* Closing the endpoint first discards everything still posted. */
    if (f->ep)
        fi_close(&f->ep->fid);
    if (f->arena_mr)
        fi_close(&f->arena_mr->fid);
    if (f->av)
        fi_close(&f->av->fid);
    if (f->cq)
        fi_close(&f->cq->fid);
    if (f->domain)
        fi_close(&f->domain->fid);
    if (f->fabric)
        fi_close(&f->fabric->fid);
    while (f->backlog) {
        struct fab_op *op = f->backlog;
        f->backlog = op->next;
        if (!is_arena_op(f, op)) {
            free(op->buf);
            free(op);
        }
    }
    if (f->arena)
        munmap(f->arena, f->arena_len);
    if (f->info)
        fi_freeinfo(f->info);
    free(f);
}

int fab_peer_add(struct fab *f, const char *hostport, fab_addr_t *out, char *err, size_t errlen)
{
    char host[128], port[16];
    if (split(hostport, host, sizeof(host), port, sizeof(port), err, errlen))
        return -1;
    /* Resolve through the provider so the address has the format its AV wants. */
    struct fi_info *hints = fi_dupinfo(f->info), *info = NULL;
    if (!hints) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(hints->src_addr);
    hints->src_addr = NULL;
    hints->src_addrlen = 0;
    free(hints->dest_addr);
    hints->dest_addr = NULL;
    hints->dest_addrlen = 0;
    int rc = fi_getinfo(FI_VERSION(1, 17), host, port, 0, hints, &info);
    fi_freeinfo(hints);
    if (rc || !info->dest_addr) {
        snprintf(err, errlen, "%s: cannot resolve %s: %s", f->name, hostport,
                 rc ? fi_strerror(-rc) : "no address");
        if (info)
            fi_freeinfo(info);
        return -1;
    }
    rc = fi_av_insert(f->av, info->dest_addr, 1, out, 0, NULL);
    fi_freeinfo(info);
    if (rc != 1) {
        snprintf(err, errlen, "%s: cannot add %s to the address vector", f->name, hostport);
        return -1;
    }
    return 0;
}

int fab_peer_add_raw(struct fab *f, const void *name, size_t len, fab_addr_t *out)
{
    if (len == 0)
        return -EINVAL;
    return fi_av_insert(f->av, name, 1, out, 0, NULL) == 1 ? 0 : -EINVAL;
}

int fab_local_name(struct fab *f, void *buf, size_t *len)
{
    int rc = fi_getname(&f->ep->fid, buf, len);
    return rc ? fi_to_errno(rc) : 0;
}

void fab_peer_remove(struct fab *f, fab_addr_t a)
{
    fi_av_remove(f->av, &a, 1, 0);
}

const char *fab_peer_str(struct fab *f, fab_addr_t a, char *buf, size_t len)
{
    uint8_t raw[128];
    size_t rl = sizeof(raw);
    if (a == FI_ADDR_NOTAVAIL || a == FI_ADDR_UNSPEC || fi_av_lookup(f->av, a, raw, &rl)) {
        snprintf(buf, len, "unknown peer");
        return buf;
    }
    size_t bl = len;
    fi_av_straddr(f->av, raw, buf, &bl);
    /* straddr writes "fi_sockaddr_in://127.0.0.1:7480"; keep the part people read. */
    char *p = strstr(buf, "://");
    if (p)
        memmove(buf, p + 3, strlen(p + 3) + 1);
    return buf;
}
