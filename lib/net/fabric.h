/* fabric.h — one small transport over libfabric RDM endpoints (FI_MSG + FI_RMA).
 *
 * Both daemons use the same calls whatever the provider: "tcp;ofi_rxm" here and
 * in tests, "verbs;ofi_rxm" on RDMA NICs.  The differences between providers
 * are absorbed in fabric.c / fabric_ops.c by honouring the domain's mr_mode:
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

/* A peer in the endpoint's address vector.  Opaque above the transport: nothing
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
    /* Tunables: 0 takes the default. */
    unsigned post_timeout_ms;   /* an op the provider will not take for this long completes with
                                 * -EHOSTUNREACH (FAB_POST_TIMEOUT_MS): longer than the callers'
                                 * own liveness timeouts, since rxm also stalls live busy peers */
    unsigned spin_us;           /* with replies outstanding, keep polling this long after the last
                                 * post or completion before sleeping (FAB_SPIN_US; the environment's
                                 * MEMX_FAB_SPIN_US, benchmarks' knob, overrides, 0 included) */
    unsigned safety_us;         /* ... and sleep at most this long, in case the wait fd misses a
                                 * wake-up (FAB_SAFETY_US; MEMX_FAB_SAFETY_US overrides) */
};
#define FAB_POST_TIMEOUT_MS 10000u
#define FAB_SPIN_US         20u
#define FAB_SAFETY_US       1000u

/* The calls.  Single-threaded: every call and every callback runs on the
 * evloop's thread.  "async" calls return 0 once the operation is queued, and
 * then call cb (when not NULL) exactly once with its status; a nonzero return
 * means cb is never called.  Registered buffers are fixed per endpoint (256
 * of FAB_MSG_MAX, 32 of FAB_BIG_MAX, 64 posted receives); beyond them an op
 * waits, in order, in a heap-held backlog.
 *
 * Callbacks may run inside a send or read call: queueing an op also posts the
 * backlog, and an op the provider refuses outright, or one past its post
 * timeout (possibly another caller's), completes right there.  A caller must
 * be in a consistent state before it calls fab_send / fab_sendv / fab_read /
 * fab_readv. */

/* sync.  Opens fabric, domain, endpoint, AV, CQ; hooks them onto el.  NULL, one-line message in err. */
struct fab *fab_open(struct evloop *el, const struct fab_opts *o, char *err, size_t errlen);
/* sync.  Unhooks and frees; ops still outstanding are dropped, their callbacks never run.  NULL ok. */
void fab_close(struct fab *f);

/* sync, cannot fail.  The caller awaits n more (negative: fewer) replies: keep progressing (polling). */
void fab_expect(struct fab *f, int n);
/* sync.  The provider the endpoint really uses (fi_info->fabric_attr->prov_name). */
const char *fab_provider(const struct fab *f);

/* sync (resolves, may block on DNS).  Adds "host:port" to the AV.  0, or -1 with a message in err. */
int  fab_peer_add(struct fab *f, const char *hostport, fab_addr_t *out, char *err, size_t errlen);
/* sync.  Adds a peer by the raw endpoint name it sent (fab_local_name): how a server learns to
 * answer a client the provider reports as FAB_ADDR_NONE.  0 or -EINVAL. */
int  fab_peer_add_raw(struct fab *f, const void *name, size_t len, fab_addr_t *out);
/* sync, cannot fail.  Forgets a peer; its address must not be used again. */
void fab_peer_remove(struct fab *f, fab_addr_t a);
/* sync.  Our endpoint's name; *len in: buffer size, out: name length.  0 or -errno. */
int  fab_local_name(struct fab *f, void *buf, size_t *len);
/* sync, cannot fail.  A printable form of a peer's address ("unknown peer" if none); returns buf. */
const char *fab_peer_str(struct fab *f, fab_addr_t a, char *buf, size_t len);

/* async.  Sends hdr then data (either may be empty), copied before return: the caller's buffers
 * are free at once.  Total <= FAB_BIG_MAX and <= what the peer accepts (FAB_MSG_MAX unless it
 * opened with big_recv).  cb gets the local completion: 0, -EHOSTUNREACH (not taken within the
 * post timeout: rxm retries a dead peer forever) or another -errno.  Returns 0, -EMSGSIZE, -ENOMEM. */
int fab_send(struct fab *f, fab_addr_t dest, const void *hdr, size_t hlen, const void *data,
             size_t dlen, fab_done_fn cb, void *arg, uint64_t tag);
/* async.  fab_send of the bytes of iov[0..n) one after another (a run's pages live in separate
 * buffers; they are copied once, into a registered buffer).  Same returns. */
int fab_sendv(struct fab *f, fab_addr_t dest, const struct iovec *iov, int n, fab_done_fn cb, void *arg,
              uint64_t tag);

/* async.  One-sided read of len bytes (<= FAB_BIG_MAX) at raddr under key from src; cb gets the
 * bytes (valid during the call only) or -errno as fab_send's.  Returns 0, -EMSGSIZE, -ENOMEM. */
int fab_read(struct fab *f, fab_addr_t src, size_t len, uint64_t raddr, uint64_t key,
             fab_done_fn cb, void *arg, uint64_t tag);

/* One remote piece of a gathered read. */
struct fab_rma { uint64_t addr, key; size_t len; };
#define FAB_RMA_MAX 16
/* sync.  How many pieces one fab_readv may gather (the provider's rma_iov_limit, 1..FAB_RMA_MAX):
 * 4 with tcp;ofi_rxm. */
int fab_rma_limit(const struct fab *f);
/* async.  One-sided read of n pieces (1..fab_rma_limit) from src, landing one after another in the
 * buffer cb gets; total <= FAB_BIG_MAX.  As fab_read, and -EINVAL for a bad n. */
int fab_readv(struct fab *f, fab_addr_t src, const struct fab_rma *rma, int n, fab_done_fn cb, void *arg,
              uint64_t tag);

/* sync.  Registers buf for remote reads by peers.  *raddr is what a peer passes to fab_read for
 * the first byte (the virtual address or 0, per FI_MR_VIRT_ADDR); *key is unguessable unless the
 * provider picks keys itself.  0, or -1 with a message in err. */
int  fab_mr_reg(struct fab *f, void *buf, size_t len, struct fab_mr **mr, uint64_t *raddr,
                uint64_t *key, char *err, size_t errlen);
/* sync.  Unregisters (peers' later reads of it fail); NULL ok. */
void fab_mr_close(struct fab_mr *mr);

/* What an endpoint has carried since it opened: the cost of the callers'
 * requests in messages, bytes and RMA operations (memxctl stats shows them
 * per guest request).  A send or read counts when the provider takes it (an
 * op still in the backlog has cost nothing yet), a message when it arrives.
 * Bulk messages are those of FAB_BULK_MIN bytes or more: the transport does
 * not read what it carries, but only a message with a page in it is that
 * large, so they tell page traffic from headers, records and control. */
#define FAB_BULK_MIN 4096u
struct fab_traffic {
    uint64_t sent, sent_bytes;              /* messages sent */
    uint64_t sent_bulk, sent_bulk_bytes;    /* ... of which FAB_BULK_MIN bytes or more */
    uint64_t recvd, recvd_bytes;            /* messages received */
    uint64_t rma_reads, rma_pieces, rma_bytes;  /* one-sided reads: a gathered read counts once,
                                                 * its remote pieces each */
};
/* sync, cannot fail.  The endpoint's counts (zeros for NULL). */
void fab_get_traffic(const struct fab *f, struct fab_traffic *out);
/* sync, cannot fail.  What every endpoint this process has closed carried, summed: with
 * fab_get_traffic of the open ones, the process's traffic across reconnects.  Thread-safe. */
void fab_get_closed_traffic(struct fab_traffic *out);
/* sync, cannot fail.  *sum += *t, field by field. */
void fab_traffic_add(struct fab_traffic *sum, const struct fab_traffic *t);

/* sync.  A transport status (-errno, or a negated provider error) as text. */
const char *fab_strerror(int status);

#endif
