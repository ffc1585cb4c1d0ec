/* fabric.c — the transport of fabric.h over libfabric, set-up side: provider
 * and endpoint, the one registered arena every buffer the provider touches
 * lives in, peers in the address vector, memory registrations for remote
 * reads.  The data path (ops, backlog, completions, progress) is
 * fabric_ops.c; the state they share is fabric_impl.h.
 */
#include "fabric_impl.h"
#include "config.h"
#include "evloop.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
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

/* ofi_rxm sizes the queues of each connection it makes far beyond what MemX
 * keeps in flight: a backend held 88 MiB of RSS per memory server (714 MiB
 * with 8 servers).  A backend keeps at most SRV_MAX_INFLIGHT (64) messages
 * and reads on the wire per server, so 128 loses nothing: 36 MiB per server
 * (302 MiB with 8).  An operator's own setting wins. */
static void rxm_defaults(void)
{
    setenv("FI_OFI_RXM_MSG_TX_SIZE", "128", 0);
    setenv("FI_OFI_RXM_MSG_RX_SIZE", "128", 0);
}

struct fab *fab_open(struct evloop *el, const struct fab_opts *o, char *err, size_t errlen)
{
    char host[128], port[16];
    rxm_defaults();
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
        if ((rc = fab_post_recv(f, &f->recvs[i]))) {
            snprintf(err, errlen, "%s: cannot post receives: %s", o->name, fi_strerror(-rc));
            goto fail;
        }
    }
    if (evloop_add_fd(el, f->wait_fd, EV_READ, fab_on_wait_fd, f) ||
        evloop_add_prepare(el, fab_prepare, f)) {
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

/* What closed endpoints carried (fab_get_closed_traffic): a daemon reconnects
 * by closing an endpoint and opening another, and its counts must survive
 * that.  Endpoints of one process may live on several threads (tests). */
static struct fab_traffic closed_traffic;
static pthread_mutex_t closed_lock = PTHREAD_MUTEX_INITIALIZER;

void fab_get_closed_traffic(struct fab_traffic *out)
{
    pthread_mutex_lock(&closed_lock);
    *out = closed_traffic;
    pthread_mutex_unlock(&closed_lock);
}

void fab_close(struct fab *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&closed_lock);
    fab_traffic_add(&closed_traffic, &f->traffic);
    pthread_mutex_unlock(&closed_lock);
    if (f->sleeps)
        mx_info("%s: slept %lu times with replies outstanding; the wait fd missed %lu wake-ups",
                f->name, f->sleeps, f->missed);
    if (f->hooked) {
        evloop_del_fd(f->el, f->wait_fd);
        evloop_del_prepare(f->el, fab_prepare, f);
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
        if (!fab_is_arena_op(f, op)) {
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
