/* fabric.h — one small transport over libfabric RDM endpoints (FI_MSG + FI_RMA).
 *
 * Both daemons use the same calls whatever the provider: "tcp;ofi_rxm" here and
 * in tests, "verbs;ofi_rxm" on RDMA NICs.  The differences between providers
 * are absorbed in fabric.c by honouring the domain's mr_mode:
 *   FI_MR_LOCAL      every local buffer handed to the provider is one of ours,
 *                    registered, with its descriptor (sends and read bounces);
 *   FI_MR_VIRT_ADDR  remote RMA addresses are virtual, else offsets into the MR;
 *   FI_MR_PROV_KEY   the provider picks MR keys, else we request random ones;
 *   FI_MR_ENDPOINT   MRs are bound to the endpoint before use.
 *
 * Progress is manual and runs on the caller's evloop: the CQ's wait fd is an
 * evloop fd, and a prepare hook calls fi_trywait() so the loop never sleeps
 * while the provider still has work.  No thread is started.  Measured on
 * libfabric 1.17 tcp;ofi_rxm: the wait fd does not reliably fire when a reply
 * arrives (an idle loop woke only on its next timer, ~100 ms per op), so while
 * operations are outstanding — our own posted ops, or replies the caller says
 * it awaits (fab_expect) — the hook keeps the loop polling.  An idle daemon
 * still sleeps on the wait fd, which does fire for new incoming traffic.
 *
 * Every outgoing message is copied into a registered buffer owned by the
 * fabric (4 KiB pages cost ~100 ns to copy), so callers never register memory
 * for the data path and may free their buffers as soon as the call returns.
 * RMA reads land in a registered bounce buffer that the completion hands to
 * the caller, so a caller that has given up on a read is never written to.
 */
#ifndef MEMX_FABRIC_H
#define MEMX_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>


struct evloop;
struct fab;
struct fab_mr;

/* A peer in the endpoint's address vector.  Opaque above fabric.c: nothing
 * but this file's calls may interpret it. */
typedef uint64_t fab_addr_t;
/* A message from a peer the provider could not name (a client not yet in our
 * address vector: see fab_peer_add_raw). */
#define FAB_ADDR_NONE UINT64_MAX

#define FAB_MSG_MAX 8192u          /* largest message an endpoint accepts, unless big_recv */
/* Largest one-sided read (a run of 16 pages), largest message sent, and what
 * an endpoint opened with big_recv accepts (a 16-page write and its header). */
#define FAB_BIG_MAX (65536u + 4096u)

/* A message arrived from src; buf is valid only during the call. */
typedef void (*fab_recv_fn)(void *arg, fab_addr_t src, const void *buf, size_t len);
/* An operation finished.  status 0 or -errno; for reads, data/len is the bytes read
 * (valid only during the call), NULL for sends. */
typedef void (*fab_done_fn)(void *arg, uint64_t tag, int status, const void *data, size_t len);

struct fab_opts {
    const char *provider;   /* "tcp;ofi_rxm", "verbs;ofi_rxm", ... ([cluster] provider) */
    const char *listen;     /* "host:port" to serve on, or NULL for a client endpoint */
    const char *peer;       /* client: "host:port" it talks to; the source address is the
                             * one routing picks for it (a host with several networks
                             * must not advertise an address the peer cannot reach) */
    const char *name;       /* who we are in log lines, e.g. "memd 0.0.0.0:7480" */
    fab_recv_fn on_recv;
    void *arg;
    bool big_recv;          /* accept messages up to FAB_BIG_MAX (a memory server) */
};

/* Opens fabric, domain, endpoint, AV and CQ and hooks them onto el.  NULL with a
 * one-line message in err. */
struct fab *fab_open(struct evloop *el, const struct fab_opts *o, char *err, size_t errlen);
void fab_close(struct fab *f);

/* The caller awaits n more (or, negative, fewer) replies: keep progressing. */
void fab_expect(struct fab *f, int n);

/* The provider the endpoint really uses (fi_info->fabric_attr->prov_name). */
const char *fab_provider(const struct fab *f);

/* Resolves "host:port" and adds it to the address vector. */
int  fab_peer_add(struct fab *f, const char *hostport, fab_addr_t *out, char *err, size_t errlen);
/* Adds a peer by the raw endpoint name it sent us (see fab_local_name): how a
 * server learns to answer a client the provider reports as FI_ADDR_NOTAVAIL. */
int  fab_peer_add_raw(struct fab *f, const void *name, size_t len, fab_addr_t *out);
void fab_peer_remove(struct fab *f, fab_addr_t a);
/* Our endpoint's name (fi_getname); *len in: buffer size, out: name length. */
int  fab_local_name(struct fab *f, void *buf, size_t *len);
/* A printable form of a peer's address, for logs. */
const char *fab_peer_str(struct fab *f, fab_addr_t a, char *buf, size_t len);

/* Sends hdr followed by data (either may be empty); total <= FAB_BIG_MAX, and
 * no more than the peer accepts (FAB_MSG_MAX unless it opened with big_recv).
 * cb (may be NULL) reports the local completion.  0, or -EMSGSIZE / -ENOMEM.
 * An operation (send or read) the provider will not take for 10 s — rxm keeps
 * saying "try again" while it cannot reconnect to a dead peer — completes with
 * -EHOSTUNREACH. */
int fab_send(struct fab *f, fab_addr_t dest, const void *hdr, size_t hlen, const void *data,
             size_t dlen, fab_done_fn cb, void *arg, uint64_t tag);
/* The same, for the bytes of iov[0..n) one after another (the pages of a run
 * live in separate buffers; they are copied once, into a registered buffer). */
int fab_sendv(struct fab *f, fab_addr_t dest, const struct iovec *iov, int n, fab_done_fn cb, void *arg,
              uint64_t tag);

/* One-sided read of len bytes (<= FAB_BIG_MAX) at raddr under key from src. */
int fab_read(struct fab *f, fab_addr_t src, size_t len, uint64_t raddr, uint64_t key,
             fab_done_fn cb, void *arg, uint64_t tag);

/* One remote piece of a gathered read. */
struct fab_rma { uint64_t addr, key; size_t len; };
#define FAB_RMA_MAX 16
/* How many pieces one fab_readv may gather (the provider's rma_iov_limit,
 * at most FAB_RMA_MAX): 4 with tcp;ofi_rxm. */
int fab_rma_limit(const struct fab *f);
/* One-sided read of n pieces (1..fab_rma_limit) from src, landing one after
 * another in the buffer the callback gets; total <= FAB_BIG_MAX. */
int fab_readv(struct fab *f, fab_addr_t src, const struct fab_rma *rma, int n, fab_done_fn cb, void *arg,
              uint64_t tag);

/* Registers buf for remote reads by peers.  *raddr is what a peer passes to
 * fab_read for the first byte (the virtual address or 0, per FI_MR_VIRT_ADDR);
 * *key is unguessable unless the provider picks keys itself. */
int  fab_mr_reg(struct fab *f, void *buf, size_t len, struct fab_mr **mr, uint64_t *raddr,
                uint64_t *key, char *err, size_t errlen);
void fab_mr_close(struct fab_mr *mr);

/* A transport status (-errno, or a negated provider error) as text. */
const char *fab_strerror(int status);

#endif
