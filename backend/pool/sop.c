/* sop.c — server ops: their free list, their encoding on the wire (proto.h
 * and fabric.h only), and what a reply, a read's bytes or a failure means for
 * each kind of op.  srvconn.c moves ops between slots and the transport and
 * matches replies by request id; everything that decides what a completion
 * does to the pool's state is routed from here to pwrite.c, pread.c and
 * rebuild.c.
 *
 * The reply side (sop_reply, sop_read_done, sop_fail) never touches the
 * transport, so tests/unit/fake_srvconn.c drives the pool through it with
 * replies it makes up.
 */
#include "pool_int.h"
#include "auth.h"
#include "fabric.h"
#include "log.h"
#include "proto.h"
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(PROTO_WRITE_MAX <= FAB_BIG_MAX, "a run's PAGE_WRITE must fit the fabric's big buffers");
_Static_assert(PROTO_MSG_MAX <= FAB_MSG_MAX, "every answer (META_LIST_R the largest) fits a client's receive buffer");
_Static_assert(POOL_RUN_MAX == PROTO_RUN_MAX, "a read run and a write run are the same size");

struct sop *sop_new(struct pool *p, enum sop_kind kind)
{
    struct sop *o = STAILQ_FIRST(&p->free_sops);
    if (o)
        STAILQ_REMOVE_HEAD(&p->free_sops, link);
    else if (!(o = malloc(sizeof(*o))))
        return NULL;
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    return o;
}

void sop_free(struct pool *p, struct sop *o)
{
    STAILQ_INSERT_HEAD(&p->free_sops, o, link);
}

/* The one place a message to a server is sealed (auth.h): every op goes
 * out through here with the session's key and next sequence number, so a
 * server can tell it from a forged, tampered or replayed one.  iov[0] starts
 * with the encoded header.  RMA reads carry no message and need none. */
static int seal_send(struct server *s, struct iovec *iov, int n, fab_done_fn sent, uint64_t req_id)
{
    auth_seal(&s->ak.tx, iov, n);
    return fab_sendv(s->fab, s->fa, iov, n, sent, s, req_id);
}

static int send_msg(struct server *s, struct proto_msg *m, const void *page, fab_done_fn sent)
{
    uint8_t buf[PROTO_MSG_MAX];
    struct iovec iov[2] = { { buf, proto_encode(m, buf, sizeof(buf)) }, { (void *)page, PROTO_PAGE_SIZE } };
    return seal_send(s, iov, page ? 2 : 1, sent, m->req_id);
}

int sop_post(struct server *s, struct sop *o, fab_done_fn sent, fab_done_fn read_done, const char **why)
{
    struct pool *p = s->p;
    /* Slab-less ops (ALLOC, STATS) may run before the slab table exists. */
    struct pslab *ps = p->slabs ? &p->slabs[o->slab] : NULL;
    struct proto_msg m = { .req_id = o->req_id };
    int rc = 0;
    *why = "out of send buffers";
    switch (o->kind) {
    case SOP_ALLOC:
        m.type = PROTO_SLAB_ALLOC;
        m.u.slab_alloc.uid = ps->uid;
        rc = send_msg(s, &m, NULL, sent);
        break;
    case SOP_FREE:
        m.type = PROTO_SLAB_FREE;
        m.u.slab_free.slab = o->srv_slab;
        m.u.slab_free.flags = o->flags;
        rc = send_msg(s, &m, NULL, sent);
        break;
    case SOP_WRITE: {
        m.type = PROTO_PAGE_WRITE;
        m.u.page.slab = ps->rep[o->rep].id;
        m.u.page.page = o->page;
        m.u.page.vid = o->req->vid;
        m.u.page.epoch = o->req->epoch;
        m.u.page.npages = o->npages;
        for (unsigned i = 0; i < o->npages; i++) {
            const struct req *r = o->run[i];
            m.u.page.slots[i] = (uint32_t)r->page;
            if (r->has_rec) {
                m.u.page.recs[i].lpn = r->rec.lpn;
                m.u.page.recs[i].seq = r->rec.seq;
                memcpy(m.u.page.recs[i].hash, r->rec.hash, 16);
            }
        }
        uint8_t hdr[PROTO_MSG_MAX];
        struct iovec iov[1 + PROTO_RUN_MAX] = { { hdr, proto_encode(&m, hdr, sizeof(hdr)) } };
        for (unsigned i = 0; i < o->npages; i++)
            iov[1 + i] = (struct iovec){ (void *)o->run[i]->data, PROTO_PAGE_SIZE };
        rc = seal_send(s, iov, 1 + (int)o->npages, sent, m.req_id);
        break;
    }
    case SOP_CTL:
        /* Encoded when asked (its records may be gone by now); only the id is new. */
        proto_set_req_id(o->buf, o->blen, o->req_id);
        rc = seal_send(s, &(struct iovec){ o->buf, o->blen }, 1, sent, o->req_id);
        break;
    case SOP_STATS:
        m.type = PROTO_STATS;
        rc = send_msg(s, &m, NULL, sent);
        break;
    case SOP_CWRITE:
        m.type = PROTO_PAGE_WRITE;
        m.u.page.slab = o->srv_slab;
        m.u.page.page = o->page;
        rc = send_msg(s, &m, o->buf, sent);
        break;
    case SOP_READV: {
        struct fab_rma rma[FAB_RMA_MAX];
        for (unsigned i = 0; i < o->nmem; i++) {
            const struct sop *mo = o->mem[i];
            const struct replica *rp = &p->slabs[mo->slab].rep[mo->rep];
            rma[i] = (struct fab_rma){ rp->raddr + (uint64_t)mo->page * POOL_PAGE_SIZE, rp->rkey,
                                       (size_t)mo->req->npages * POOL_PAGE_SIZE };
        }
        *why = "out of read buffers";
        if (!(rc = fab_readv(s->fab, s->fa, rma, (int)o->nmem, read_done, s, o->req_id)))
            p->st.xport_reads++;
        break;
    }
    case SOP_CREAD:
    case SOP_READ: {
        const struct replica *rp = &ps->rep[o->rep];
        size_t len = (size_t)(o->kind == SOP_READ ? o->req->npages : 1) * POOL_PAGE_SIZE;
        *why = "out of read buffers";
        rc = fab_read(s->fab, s->fa, len, rp->raddr + (uint64_t)o->page * POOL_PAGE_SIZE, rp->rkey, read_done,
                      s, o->req_id);
        if (!rc && o->kind == SOP_READ)
            p->st.xport_reads++;
        break;
    }
    }
    return rc ? -1 : 0;
}

/* The transport's reason goes into the one line that says the server is down. */
static void read_down(struct server *s, int status)
{
    char why[96];
    snprintf(why, sizeof(why), "RMA read failed: %s", status ? fab_strerror(-status) : "short read");
    srv_down(s, why);
}

void sop_read_done(struct server *s, struct sop *o, int status, const void *data, size_t len)
{
    struct pool *p = s->p;
    if (o->kind == SOP_READV) {
        size_t want = 0;
        for (unsigned i = 0; i < o->nmem; i++)
            want += (size_t)o->mem[i]->req->npages * POOL_PAGE_SIZE;
        bool ok = !status && len == want;
        size_t off = 0;
        for (unsigned i = 0; i < o->nmem; i++) {
            struct sop *m = o->mem[i];
            size_t ml = (size_t)m->req->npages * POOL_PAGE_SIZE;
            m->t_ns = o->t_ns;
            if (ok) {
                read_landed(p, m, (const uint8_t *)data + off);
            } else {
                read_failed(p, m, status ? fab_strerror(-status) : "short read", false);
                sop_free(p, m);
            }
            off += ml;
        }
        sop_free(p, o);
        if (!ok)
            read_down(s, status);
        return;
    }
    if (o->kind == SOP_CREAD) {
        int st = status ? status : len != POOL_PAGE_SIZE ? -EIO : 0;
        rb_read_done(p, o, st, data);
        sop_free(p, o);
        if (st)
            read_down(s, status);
        return;
    }
    if (status || len != (size_t)o->req->npages * POOL_PAGE_SIZE) {
        read_failed(p, o, status ? fab_strerror(-status) : "short read", false);
        sop_free(p, o);
        read_down(s, status);
        return;
    }
    read_landed(p, o, data);
}

void sop_reply(struct server *s, struct sop *o, const struct proto_msg *m)
{
    struct pool *p = s->p;
    s->late = false;            /* it answers again */
    if (o->kind == SOP_CTL && m->type == o->buf[5] + 1) {
        free(o->buf);
        o->buf = NULL;
        o->ccb(o->carg, s->idx, m);
    } else if (m->type == PROTO_SLAB_ALLOC_R && o->kind == SOP_ALLOC && o->rebuild)
        rb_alloc_done(p, s, o, m);
    else if (m->type == PROTO_SLAB_ALLOC_R && o->kind == SOP_ALLOC)
        alloc_done(p, s, o, m);
    else if (m->type == PROTO_PAGE_WRITE_R && o->kind == SOP_WRITE) {
        if (!m->status) {
            uint64_t rtt = evloop_now_ns() - o->t_ns, srv = m->u.page.server_ns;
            histo_record(&p->t[POOL_T_XPORT_WRITE], rtt > srv ? rtt - srv : 0);
            histo_record(&p->t[POOL_T_SERVER], srv);
        }
        write_replica_done(p, o, m->status ? -(int)m->status : 0);
    } else if (m->type == PROTO_PAGE_WRITE_R && o->kind == SOP_CWRITE) {
        rb_copy_done(p, o, m->status ? -(int)m->status : 0);
        free(o->buf);
        o->buf = NULL;
    } else if (m->type == PROTO_STATS_R && o->kind == SOP_STATS) {
        s->hb_inflight = false;
        s->capacity = m->u.stats_r.capacity;
        s->used = m->u.stats_r.used;
        if (s->full && srv_free(s) >= p->slab_size)
            s->full = false;
    } else if (m->type == PROTO_SLAB_FREE_R && o->kind == SOP_FREE) {
        if (m->status == EBUSY)
            srv_info(s, "slab %u kept: a volume (maybe attached elsewhere) still uses it", m->u.slab_free.slab);
        else if (m->status == EPERM && (o->flags & PROTO_FREE_FORCE))
            srv_debug(s, "slab %u is not ours to free", m->u.slab_free.slab);
        else if (m->status)
            srv_warn(s, "slab free failed: %s", strerror(m->status));
    } else {
        srv_warn(s, "%s does not answer the request it names", proto_type_name(m->type));
        if (o->kind == SOP_CTL) {
            free(o->buf);
            o->ccb(o->carg, s->idx, NULL);
        }
        sop_free(p, o);
        srv_down(s, "protocol error");
        return;
    }
    sop_free(p, o);
}

void sop_fail(struct server *s, struct sop *o)
{
    struct pool *p = s->p;
    switch (o->kind) {
    case SOP_WRITE: write_replica_done(p, o, -ENOTCONN); break;     /* it may or may not have landed */
    case SOP_READ: read_failed(p, o, "server down", true); break;
    case SOP_READV:
        for (unsigned i = 0; i < o->nmem; i++) {
            read_failed(p, o->mem[i], "server down", true);
            sop_free(p, o->mem[i]);
        }
        break;
    case SOP_ALLOC:
        if (o->rebuild)
            rb_alloc_done(p, s, o, NULL);
        else
            alloc_done(p, s, o, NULL);
        break;
    case SOP_FREE: break;
    case SOP_STATS: s->hb_inflight = false; break;
    case SOP_CREAD: rb_read_done(p, o, -EIO, NULL); break;
    case SOP_CWRITE: rb_copy_done(p, o, -EIO); break;
    case SOP_CTL:
        if (o == p->ctl_posting) {      /* failed inside pool_ctl's submit: it says -1 instead */
            p->ctl_posting = NULL;
            p->ctl_post_failed = true;
        } else {
            o->ccb(o->carg, s->idx, NULL);
        }
        break;
    }
    free(o->buf);
    o->buf = NULL;
    sop_free(p, o);
}
