/* fabric_ops.c — the transport's data path (fabric.h, fabric_impl.h): an
 * op takes one of the arena's registered buffers or waits, in order, in the
 * backlog (a send keeps its bytes in a heap copy meanwhile); completions are
 * read from the CQ and handed to the callers; a prepare hook on the evloop
 * keeps polling while replies are outstanding, since the wait fd does not
 * reliably fire for them (fabric.h).
 *
 * Tunables (struct fab_opts).  How long an operation may wait for the
 * provider to take it (post_timeout_ms): rxm answers EAGAIN, forever and
 * without an error, while it tries to reconnect to a peer that is gone (a
 * killed server refuses the connection), so the backlog needs a bound.  It is
 * not a liveness test: rxm also refuses posts to a live but busy peer for
 * seconds (seen under load on 2 cores), so it is longer than the callers' own
 * timeouts, which decide whether a peer is dead.  While replies are
 * outstanding, how long to keep polling after the last completion or post
 * before sleeping on the wait fd (spin_us: a reply already on its way is
 * cheaper to catch polling than through a wake-up), and the longest such a
 * sleep lasts in case the wait fd misses one (safety_us).
 */
#include "fabric_impl.h"
#include "evloop.h"
#include "log.h"

#include <errno.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fab_expect(struct fab *f, int n) { f->expected += n; }

const char *fab_provider(const struct fab *f) { return f->info->fabric_attr->prov_name; }

int fab_post_recv(struct fab *f, struct fab_op *op)
{
    ssize_t rc = fi_recv(f->ep, op->buf, f->recv_size, f->arena_desc, FI_ADDR_UNSPEC, &op->ctx);
    return rc ? fi_to_errno(rc) : 0;
}

static void count_post(struct fab_traffic *t, const struct fab_op *op)
{
    if (op->kind == OP_SEND) {
        t->sent++;
        t->sent_bytes += op->len;
        if (op->len >= FAB_BULK_MIN) {
            t->sent_bulk++;
            t->sent_bulk_bytes += op->len;
        }
    } else {
        t->rma_reads++;
        t->rma_pieces += op->nrma > 1 ? (uint64_t)op->nrma : 1;
        t->rma_bytes += op->len;
    }
}

void fab_get_traffic(const struct fab *f, struct fab_traffic *out)
{
    *out = f ? f->traffic : (struct fab_traffic){ 0 };
}

void fab_traffic_add(struct fab_traffic *sum, const struct fab_traffic *t)
{
    sum->sent += t->sent;
    sum->sent_bytes += t->sent_bytes;
    sum->sent_bulk += t->sent_bulk;
    sum->sent_bulk_bytes += t->sent_bulk_bytes;
    sum->recvd += t->recvd;
    sum->recvd_bytes += t->recvd_bytes;
    sum->rma_reads += t->rma_reads;
    sum->rma_pieces += t->rma_pieces;
    sum->rma_bytes += t->rma_bytes;
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
        count_post(&f->traffic, op);
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

bool fab_is_arena_op(struct fab *f, struct fab_op *op)
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
    if (!fab_is_arena_op(f, op)) {
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
        if (!fab_is_arena_op(f, op) && *fl) {
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
        if (fab_is_arena_op(f, op))
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
    f->traffic.recvd++;
    f->traffic.recvd_bytes += len;
    if (f->on_recv)
        f->on_recv(f->arg, src, op->buf, len);
    int rc = fab_post_recv(f, op);
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
                int rc = fab_post_recv(f, op);
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

void fab_on_wait_fd(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct fab *f = arg;
    f->woken = true;
    poll_cq(f);
}

/* Before the loop sleeps: progress once more, then ask the provider whether
 * sleeping on the wait fd is safe.  Nonzero tells the loop to poll again. */
int fab_prepare(struct evloop *el, void *arg)
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
