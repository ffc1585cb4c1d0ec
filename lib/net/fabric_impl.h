/* fabric_impl.h — internal to the transport (fabric.c, fabric_ops.c): the
 * endpoint's state and its operations, and the four calls the two halves
 * share.  fabric.c sets an endpoint up and tears it down (provider, domain,
 * AV, the one registered arena, peers, memory registrations); fabric_ops.c is
 * the data path (ops, the backlog, the completion queue, progress on the
 * evloop).  Only these files include <rdma/...> or call fi_*.
 */
#ifndef MEMX_FABRIC_IMPL_H
#define MEMX_FABRIC_IMPL_H

#include "fabric.h"

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_rma.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evloop;

#define NBUFS  256      /* registered send / read-bounce buffers */
#define NBIG   32       /* registered buffers for reads and sends over FAB_MSG_MAX */
#define NRECV  64       /* receives kept posted */

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
    struct fab_traffic traffic;  /* fab_get_traffic; folded into the process's closed total by fab_close */
};

static inline int fi_to_errno(ssize_t rc) { return rc < 0 ? (int)rc : -(int)rc; }

/* Posts one of the endpoint's receive buffers.  0 or -errno. */
int  fab_post_recv(struct fab *f, struct fab_op *op);
/* op is one of the arena's buffers (else a heap-held backlog op). */
bool fab_is_arena_op(struct fab *f, struct fab_op *op);
/* The evloop hooks fab_open installs: the CQ's wait fd fired; the loop is about to sleep. */
void fab_on_wait_fd(struct evloop *el, int fd, unsigned events, void *arg);
int  fab_prepare(struct evloop *el, void *arg);

#endif
