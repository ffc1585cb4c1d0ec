/* pool.c — the pool client.  See pool.h for the contract.
 *
 * Shape: one fabric endpoint per memory server, reopened on every connection
 * attempt.  rxm keeps per-endpoint state (connections, transmit credits, its
 * reconnect attempts) that a dead peer can wedge: with one shared endpoint a
 * killed server stalled reads to the survivors until they too timed out.  A
 * fresh endpoint per attempt also means nothing of an old session lingers.
 * A server is a
 * small state machine (connecting -> up -> down -> connecting ..., or refused)
 * driven by one periodic tick that also times out handshakes and stuck
 * operations.  Work for a server is a "server op" (sop); at most MAX_INFLIGHT
 * are on the wire per server, the rest wait in its FIFO.  A reply finds its
 * sop through the request id (slot index + sequence number), so a late reply
 * from an earlier connection can never complete a newer operation.
 *
 * A pool slab is R server slabs (replicas) of the same size; a page handle is
 * (slab index + 1) << 32 | page index, so per-page state is one bit.  When a
 * replica misses a write (its server failed, or refused), the whole replica is
 * marked stale and never read again: reads are only ever served from replicas
 * that have every acknowledged write.
 *
 * Every user callback goes through the done queue, drained from a zero-delay
 * timer, so none runs inside the call that started it.
 */
#include "pool.h"
#include "auth.h"
#include "evloop.h"
#include "fabric.h"
#include "log.h"
#include "proto.h"

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <sodium.h>

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Appends x to the singly linked FIFO head..tail (through ->next). */
#define LIST_APPEND(head, tail, x)                                                                  \
    do {                                                                                            \
        (x)->next = NULL;                                                                           \
        if (tail)                                                                                   \
            (tail)->next = (x);                                                                     \
        else                                                                                        \
            (head) = (x);                                                                           \
        (tail) = (x);                                                                               \
    } while (0)

#define MAX_INFLIGHT      64        /* messages + reads on the wire per server */
_Static_assert(PROTO_WRITE_MAX <= FAB_BIG_MAX, "a run's PAGE_WRITE must fit the fabric's big buffers");
_Static_assert(POOL_RUN_MAX == PROTO_RUN_MAX, "a read run and a write run are the same size");
#define MAX_REPLICAS      3
#define TICK_MS           100
#define HELLO_TIMEOUT_MS  2000
#define OP_TIMEOUT_MS     5000
#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    5000
#define REFUSED_RETRY_MS  30000
#define HS_SLOT           0xffu     /* low byte of the handshake request id */
#define RB_QD             16        /* page copies in flight while re-replicating */
/* rxm hides a dead peer: it answers a send with "try again" while it keeps
 * reconnecting, and only ops already on a connection that breaks fail.  So an
 * idle server is probed with a STATS round trip, and one that leaves it
 * unanswered that long is down (a live memd answers in microseconds). */
#define HEARTBEAT_MS      500
#define HB_TIMEOUT_MS     2000

enum srv_state { SRV_CONNECTING, SRV_UP, SRV_DOWN, SRV_REFUSED };
/* An up server being drained shows as "draining" until it holds no replica,
 * then "drained". */
static const char *const state_names[] = { "connecting", "up", "down", "refused" };

enum req_kind { R_WRITE, R_READ };

struct req {
    enum req_kind kind;
    int status;
    pool_page_t page;
    const void *data;           /* write source */
    void *out;                  /* read destination */
    pool_write_cb wcb;
    pool_io_cb rcb;
    void *arg;
    int pending, acked;         /* write: replicas outstanding / acknowledged */
    unsigned tried;             /* read: replicas tried, bit per replica */
    unsigned npages;            /* read: pages in the run (consecutive slots from page) */
    uint64_t vid, epoch;        /* write: the volume it is for (0: none) */
    bool fenced;                /* write: a server said another backend owns the volume */
    bool verify;                /* read: check each page's bytes against its hash */
    uint64_t t_ns;              /* issued */
    struct req *next;
    uint8_t hash[POOL_RUN_MAX][16];     /* last: req_new clears only what comes before */
};

/* SOP_CREAD / SOP_CWRITE: one page of a re-replication copy (read from a good
 * replica, written to the new one). */
/* SOP_READV: reads of one loop turn to one server, gathered into one RMA
 * read (its members are SOP_READs that never go on the wire themselves). */
enum sop_kind { SOP_ALLOC, SOP_FREE, SOP_WRITE, SOP_READ, SOP_READV, SOP_CREAD, SOP_CWRITE, SOP_STATS, SOP_CTL };

struct sop {
    enum sop_kind kind;
    uint64_t req_id;
    uint64_t started_ms;
    uint64_t t_ns;              /* on the wire */
    struct req *req;
    uint32_t slab;              /* pool slab index */
    int rep;                    /* replica index in that slab */
    uint32_t page;
    uint32_t srv_slab;          /* SOP_FREE, SOP_CWRITE: the server's slab id */
    bool rebuild;               /* SOP_ALLOC: for the re-replication target */
    uint64_t rgen;              /* re-replication ops: the rebuild they belong to */
    uint8_t *buf;               /* SOP_CWRITE: the page being copied; SOP_CTL: the message */
    uint32_t flags;             /* SOP_FREE: PROTO_FREE_* */
    unsigned npages;            /* SOP_WRITE: the requests it carries (pages of one slab) */
    struct req *run[PROTO_RUN_MAX];
    unsigned nmem;              /* SOP_READV: its reads */
    struct sop *mem[FAB_RMA_MAX];
    size_t blen;                /* SOP_CTL: encoded length of buf */
    pool_ctl_cb ccb;            /* SOP_CTL */
    void *carg;
    struct sop *next;
};

struct server {
    struct pool *p;
    int idx;
    char addr[128];
    char name[160];             /* "pool -> memd <addr>", the endpoint's name in logs */
    struct fab *fab;            /* NULL between a failure and the next attempt */
    fab_addr_t fa;
    bool have_fa, tried_once;
    enum srv_state state;
    uint64_t gen;               /* bumps on every connection attempt */
    uint64_t hs_started_ms, retry_at_ms;
    unsigned backoff_ms;
    uint8_t cnonce[PROTO_NONCE_BYTES], snonce[PROTO_NONCE_BYTES];
    char sid[PROTO_ID_MAX];
    uint64_t capacity, used;
    bool full;
    bool draining;              /* memxctl pool drain: no new slabs, replicas move away */
    bool hb_inflight;
    uint64_t hb_sent_ms;
    bool had_session;           /* welcomed once by this process: later HELLOs are not fresh */
    char last_sid[PROTO_ID_MAX];/* the server incarnation our replicas there belong to */
    /* Its slabs we stopped trusting while it was unreachable: freed when it
     * is back as the same incarnation (a restarted server lost them anyway). */
    uint32_t *orphans;
    size_t norphans, orphans_cap;
    uint32_t seq;
    struct sop *slots[MAX_INFLIGHT];
    int inflight;
    struct sop *q_head, *q_tail;
    struct sop *rg_head, *rg_tail;  /* reads of this loop turn, gathered at its end */
};

struct replica {
    int srv;
    uint32_t id;                /* the server's slab id */
    uint64_t raddr, rkey;
    uint64_t gen;               /* the server's session (srv.gen) it was allocated in */
    bool ok;                    /* has every acknowledged write */
};

struct pslab {
    bool used, ready;
    /* adopted: found through SLAB_FIND (a volume's records name it: written
     * by an earlier run of this backend or by another one).  Nothing new is
     * placed in it, and what is read from it is checked against the
     * record's hash, since a replica there may have missed writes. */
    bool adopted;
    uint64_t uid;               /* cluster-wide name, in every volume record that points here */
    int nrep, want;             /* replicas placed / being placed */
    int allocating;             /* SLAB_ALLOCs in flight */
    struct replica rep[MAX_REPLICAS];
    uint32_t nfree, hint;
    uint64_t *bits;             /* page in use */
    int wpending;               /* guest writes in flight into this slab */
};

/* Re-replication: one slab at a time gets a new replica.  Pages are written
 * once and never overwritten (the volume layer writes new pages), so while the
 * slab hands out no new pages and has no write in flight, its pages can be
 * copied from any good replica; the new replica joins the slab only when every
 * page is copied, so nothing reads it early. */
struct rebuild {
    bool active, aborting;
    uint64_t gen;               /* bumps per rebuild; stale copy completions are ignored */
    uint32_t slab;
    int slot;                   /* rep[] index the new replica takes */
    int target;                 /* server index */
    uint64_t target_gen;
    bool allocated;
    struct replica nr;          /* the new replica, once allocated */
    uint32_t next;              /* next page index to look at */
    int inflight;
    uint64_t started_ms, pages;
};

struct pool {
    struct evloop *el;
    char provider[64];
    uint8_t key[MEMX_KEY_BYTES];
    char id[PROTO_ID_MAX];
    int replicas;
    uint64_t slab_size;
    uint32_t pages_per_slab;
    struct server srv[MEMX_MAX_SERVERS];
    int nsrv;
    struct pslab *slabs;
    uint32_t nslabs;
    uint32_t alloc_hint;        /* the slab take_page looks at first */
    int building;               /* slab being allocated, -1 if none */
    struct req *wait_head, *wait_tail;  /* writes waiting for a slab */
    struct req *done_head, *done_tail;  /* completions to deliver */
    struct sop *free_sops;
    struct req *gather_head, *gather_tail;  /* writes of this loop turn, not yet placed */
    bool gather_reads;          /* [backend] gather_reads: see issue_read */
    long long gather_timer;
    struct req *free_reqs;      /* finished requests, for reuse: no allocation per page */
    long long tick;
    long long deliver_timer;    /* armed while done_head is non-empty */
    bool degraded_warned;
    bool degraded;              /* some slab has fewer than R good replicas (logged on change) */
    struct rebuild rb;
    uint64_t rerep_pages;       /* pages copied by re-replication, ever */
    struct pool_stats st;
    struct histo t[POOL_T_N];   /* pool_get_timing */
};

static void srv_down(struct server *s, const char *why);
static int deliver(struct evloop *el, long long id, void *arg);
static void kick_slab(struct pool *p);
static void start_write(struct pool *p, struct req *r);
static void issue_read(struct pool *p, struct req *r);
static void read_failed(struct pool *p, struct sop *o, const char *why, bool flushed);
static void turn_end_arm(struct pool *p);
static void on_recv(void *arg, fab_addr_t from, const void *buf, size_t len);
static void rb_step(struct pool *p);
static void rb_check_state(struct pool *p);
static void rb_copy_done(struct pool *p, struct sop *o, int status);
static void rb_read_done(struct pool *p, struct sop *o, int status, const void *data);
static void rb_alloc_done(struct pool *p, struct server *s, struct sop *o, const struct proto_msg *m);

/* ---- completions ---- */

static void finish(struct pool *p, struct req *r, int status)
{
    r->status = status;
    if (status)
        p->st.errors++;
    else
        histo_record(&p->t[r->kind == R_READ ? POOL_T_READ : POOL_T_WRITE], evloop_now_ns() - r->t_ns);
    LIST_APPEND(p->done_head, p->done_tail, r);
    if (!p->deliver_timer)
        p->deliver_timer = evloop_add_timer(p->el, 0, deliver, p);
}

/* A zero-delay timer, not a prepare hook: timers run after the loop's wait,
 * so evloop_run_once() returns right after the callbacks instead of sleeping
 * once more first. */
static int deliver(struct evloop *el, long long id, void *arg)
{
    struct pool *p = arg;
    p->deliver_timer = 0;
    /* Take the list first: callbacks may start I/O that finishes at once. */
    struct req *r = p->done_head;
    p->done_head = p->done_tail = NULL;
    while (r) {
        struct req *next = r->next;
        if (r->kind == R_WRITE)
            r->wcb(r->arg, r->status, r->status ? 0 : r->page);
        else
            r->rcb(r->arg, r->status);
        r->next = p->free_reqs;
        p->free_reqs = r;
        r = next;
    }
    return -1;
}

/* ---- pages ---- */

static pool_page_t make_page(uint32_t slab, uint32_t page)
{
    return ((uint64_t)(slab + 1) << 32) | page;
}

static bool split_page(const struct pool *p, pool_page_t pg, uint32_t *slab, uint32_t *page)
{
    uint64_t s = pg >> 32;
    if (s == 0 || s > p->nslabs || (uint32_t)pg >= p->pages_per_slab || !p->slabs[s - 1].used)
        return false;
    *slab = (uint32_t)(s - 1);
    *page = (uint32_t)pg;
    return true;
}

/* Starts where the last page came from: with thousands of slabs, most of
 * them full, a scan from the first would cost every write a pass over them. */
/* Marks a free slot of ps taken. */
static void slot_claim(struct pool *p, struct pslab *ps, uint32_t page)
{
    ps->bits[page / 64] |= 1ull << (page % 64);
    ps->nfree--;
    p->st.pages_stored++;
}

/* Takes the first free slot of ps from its hint word on; false if none. */
static bool slot_take_free(struct pool *p, struct pslab *ps, uint32_t *page)
{
    uint32_t words = p->pages_per_slab / 64;
    for (uint32_t n = 0, w = ps->hint; n < words; n++, w = (w + 1) % words) {
        if (ps->bits[w] == UINT64_MAX)
            continue;
        ps->hint = w;
        *page = w * 64 + (uint32_t)__builtin_ctzll(~ps->bits[w]);
        slot_claim(p, ps, *page);
        return true;
    }
    return false;
}

static bool take_page(struct pool *p, uint32_t *slab, uint32_t *page)
{
    for (uint32_t k = 0, i = p->alloc_hint; k < p->nslabs; k++, i = (i + 1) % p->nslabs) {
        struct pslab *ps = &p->slabs[i];
        if (!ps->used || !ps->ready || !ps->nfree || ps->adopted || (p->rb.active && p->rb.slab == i))
            continue;
        if (slot_take_free(p, ps, page)) {
            p->alloc_hint = i;
            *slab = i;
            return true;
        }
    }
    return false;
}

static void put_page(struct pool *p, uint32_t slab, uint32_t page)
{
    struct pslab *ps = &p->slabs[slab];
    ps->bits[page / 64] &= ~(1ull << (page % 64));
    ps->nfree++;
    p->st.pages_stored--;
}

/* ---- server ops ---- */

static struct sop *sop_new(struct pool *p, enum sop_kind kind)
{
    struct sop *o = p->free_sops;
    if (o)
        p->free_sops = o->next;
    else if (!(o = malloc(sizeof(*o))))
        return NULL;
    memset(o, 0, sizeof(*o));
    o->kind = kind;
    return o;
}

static void sop_free(struct pool *p, struct sop *o)
{
    o->next = p->free_sops;
    p->free_sops = o;
}

/* Whether a tag still names something this server is waiting for. */
static bool tag_current(const struct server *s, uint64_t tag)
{
    if ((tag & 0xff) == HS_SLOT)
        return tag == (s->gen << 8 | HS_SLOT) && s->state == SRV_CONNECTING;
    unsigned slot = tag & 0xff;
    return slot < MAX_INFLIGHT && s->slots[slot] && s->slots[slot]->req_id == tag;
}

static void on_sent(void *arg, uint64_t tag, int status, const void *data, size_t len)
{
    struct server *s = arg;
    if (status && tag_current(s, tag))
        srv_down(s, fab_strerror(-status));
}

static void send_msg(struct server *s, struct proto_msg *m, const void *page)
{
    uint8_t buf[PROTO_MSG_MAX];
    size_t len = proto_encode(m, buf, sizeof(buf));
    int rc = fab_send(s->fab, s->fa, buf, len, page, page ? PROTO_PAGE_SIZE : 0, on_sent, s, m->req_id);
    if (rc)
        srv_down(s, "out of send buffers");
}

static void on_read_done(void *arg, uint64_t tag, int status, const void *data, size_t len);

/* Puts o on the wire now (a free slot exists). */
static void sop_launch(struct server *s, struct sop *o)
{
    int slot = 0;
    while (s->slots[slot])
        slot++;
    s->slots[slot] = o;
    s->inflight++;
    fab_expect(s->fab, 1);
    o->req_id = (uint64_t)(++s->seq) << 8 | (uint64_t)slot;
    o->started_ms = evloop_now_ms();
    o->t_ns = evloop_now_ns();
    /* Slab-less ops (ALLOC, STATS) may run before the slab table exists. */
    struct pslab *ps = s->p->slabs ? &s->p->slabs[o->slab] : NULL;
    struct proto_msg m = { .req_id = o->req_id };
    switch (o->kind) {
    case SOP_ALLOC:
        m.type = PROTO_SLAB_ALLOC;
        m.u.slab_alloc.uid = ps->uid;
        send_msg(s, &m, NULL);
        break;
    case SOP_FREE:
        m.type = PROTO_SLAB_FREE;
        m.u.slab_free.slab = o->srv_slab;
        m.u.slab_free.flags = o->flags;
        send_msg(s, &m, NULL);
        break;
    case SOP_WRITE: {
        m.type = PROTO_PAGE_WRITE;
        m.u.page.slab = ps->rep[o->rep].id;
        m.u.page.page = o->page;
        m.u.page.vid = o->req->vid;
        m.u.page.epoch = o->req->epoch;
        m.u.page.npages = o->npages;
        for (unsigned i = 0; i < o->npages; i++)
            m.u.page.slots[i] = (uint32_t)o->run[i]->page;
        uint8_t hdr[PROTO_MSG_MAX];
        struct iovec iov[1 + PROTO_RUN_MAX] = { { hdr, proto_encode(&m, hdr, sizeof(hdr)) } };
        for (unsigned i = 0; i < o->npages; i++)
            iov[1 + i] = (struct iovec){ (void *)o->run[i]->data, PROTO_PAGE_SIZE };
        if (fab_sendv(s->fab, s->fa, iov, 1 + (int)o->npages, on_sent, s, m.req_id))
            srv_down(s, "out of send buffers");
        break;
    }
    case SOP_CTL:
        /* Encoded when asked (its records may be gone by now); only the id is new. */
        proto_set_req_id(o->buf, o->blen, o->req_id);
        if (fab_send(s->fab, s->fa, o->buf, o->blen, NULL, 0, on_sent, s, o->req_id))
            srv_down(s, "out of send buffers");
        break;
    case SOP_STATS:
        m.type = PROTO_STATS;
        send_msg(s, &m, NULL);
        break;
    case SOP_CWRITE:
        m.type = PROTO_PAGE_WRITE;
        m.u.page.slab = o->srv_slab;
        m.u.page.page = o->page;
        send_msg(s, &m, o->buf);
        break;
    case SOP_READV: {
        struct fab_rma rma[FAB_RMA_MAX];
        for (unsigned i = 0; i < o->nmem; i++) {
            const struct sop *mo = o->mem[i];
            const struct replica *rp = &s->p->slabs[mo->slab].rep[mo->rep];
            rma[i] = (struct fab_rma){ rp->raddr + (uint64_t)mo->page * POOL_PAGE_SIZE, rp->rkey,
                                       (size_t)mo->req->npages * POOL_PAGE_SIZE };
        }
        if (fab_readv(s->fab, s->fa, rma, (int)o->nmem, on_read_done, s, o->req_id))
            srv_down(s, "out of read buffers");
        else
            s->p->st.xport_reads++;
        break;
    }
    case SOP_CREAD:
    case SOP_READ: {
        const struct replica *rp = &ps->rep[o->rep];
        size_t len = (size_t)(o->kind == SOP_READ ? o->req->npages : 1) * POOL_PAGE_SIZE;
        int rc = fab_read(s->fab, s->fa, len, rp->raddr + (uint64_t)o->page * POOL_PAGE_SIZE, rp->rkey,
                          on_read_done, s, o->req_id);
        if (rc)
            srv_down(s, "out of read buffers");
        else if (o->kind == SOP_READ)
            s->p->st.xport_reads++;
        break;
    }
    }
}

static void sop_submit(struct server *s, struct sop *o)
{
    if (s->inflight < MAX_INFLIGHT) {
        sop_launch(s, o);
        return;
    }
    LIST_APPEND(s->q_head, s->q_tail, o);
}

/* The sop a reply or completion belongs to, taken off its slot; NULL if stale. */
static struct sop *sop_take(struct server *s, uint64_t req_id)
{
    unsigned slot = req_id & 0xff;
    if (slot >= MAX_INFLIGHT || !s->slots[slot] || s->slots[slot]->req_id != req_id)
        return NULL;
    struct sop *o = s->slots[slot];
    s->slots[slot] = NULL;
    s->inflight--;
    fab_expect(s->fab, -1);
    if (s->q_head && s->state == SRV_UP) {
        struct sop *n = s->q_head;
        s->q_head = n->next;
        if (!s->q_head)
            s->q_tail = NULL;
        sop_launch(s, n);
    }
    return o;
}

/* ---- writes ---- */

static void replica_stale(struct pool *p, uint32_t slab, int rep, const char *why)
{
    struct pslab *ps = &p->slabs[slab];
    if (!ps->rep[rep].ok)
        return;
    ps->rep[rep].ok = false;
    mx_warn("pool: slab %u replica on memd %s is stale (%s): degraded", slab,
            p->srv[ps->rep[rep].srv].addr, why);
}

/* One replica's answer for one page of a run. */
static void write_req_done(struct pool *p, struct req *r, uint32_t slab, int status)
{
    if (status == -ESTALE)
        r->fenced = true;   /* the replica is fine: it is the writer that is not */
    else if (!status)
        r->acked++;
    if (--r->pending)
        return;
    p->slabs[slab].wpending--;
    int st = r->fenced ? -ESTALE : r->acked ? 0 : -EIO;
    if (st)
        put_page(p, slab, (uint32_t)r->page);   /* the slot goes back: nothing of it is trusted */
    else
        p->st.writes++;
    finish(p, r, st);
}

/* One replica's answer for a run: every page of it shares the outcome. */
static void write_replica_done(struct pool *p, struct sop *o, int status)
{
    if (status && status != -ESTALE)
        replica_stale(p, o->slab, o->rep, status == -EIO ? "write failed" : strerror(-status));
    for (unsigned i = 0; i < o->npages; i++)
        write_req_done(p, o->run[i], o->slab, status);
    if (p->rb.active && p->rb.slab == o->slab)
        rb_step(p);
}

/* Another free slot of slab for the next page of a run: the one right after
 * the previous page if it is free (so sequential writes read back in runs,
 * pool_read_run), else the first free one from the slab's hint. */
static bool take_in_slab(struct pool *p, uint32_t slab, uint32_t after, uint32_t *page)
{
    struct pslab *ps = &p->slabs[slab];
    uint32_t want = after + 1;
    if (!ps->nfree)
        return false;
    if (want < p->pages_per_slab && !(ps->bits[want / 64] & (1ull << (want % 64)))) {
        *page = want;
        slot_claim(p, ps, want);
        return true;
    }
    return slot_take_free(p, ps, page);
}

/* Puts reqs[0..n), pages of one volume placed in slab (each req's page set),
 * on the wire: one PAGE_WRITE per live replica carries them all. */
static void launch_run(struct pool *p, struct req **reqs, unsigned n, uint32_t slab)
{
    struct pslab *ps = &p->slabs[slab];
    int up = 0;
    for (int i = 0; i < ps->nrep; i++)
        if (ps->rep[i].ok && p->srv[ps->rep[i].srv].state == SRV_UP)
            up++;
    for (unsigned k = 0; k < n; k++)
        reqs[k]->pending = up;
    if (!up) {
        for (unsigned k = 0; k < n; k++) {
            put_page(p, slab, (uint32_t)reqs[k]->page);
            finish(p, reqs[k], -EIO);
        }
        return;
    }
    ps->wpending += n;
    for (int i = 0; i < ps->nrep; i++) {
        if (!ps->rep[i].ok || p->srv[ps->rep[i].srv].state != SRV_UP)
            continue;
        struct sop *o = sop_new(p, SOP_WRITE);
        if (!o) {
            /* This replica misses the run: it may never be read again. */
            replica_stale(p, slab, i, "out of memory");
            for (unsigned k = 0; k < n; k++)
                write_req_done(p, reqs[k], slab, -ENOMEM);
            continue;
        }
        o->req = reqs[0];
        o->npages = n;
        memcpy(o->run, reqs, n * sizeof(*reqs));
        o->slab = slab;
        o->rep = i;
        o->page = (uint32_t)reqs[0]->page;
        sop_submit(&p->srv[ps->rep[i].srv], o);
    }
}

/* Places writes in the order they came: a run takes a free slot, then more
 * slots of the same slab for the following writes of the same volume and
 * epoch, up to PROTO_RUN_MAX.  With no free slot the rest wait for a slab. */
static void place_writes(struct pool *p, struct req *r)
{
    while (r) {
        uint32_t slab, page;
        if (!take_page(p, &slab, &page)) {
            if (p->wait_tail)
                p->wait_tail->next = r;
            else
                p->wait_head = r;
            while (r->next)
                r = r->next;
            p->wait_tail = r;
            kick_slab(p);
            return;
        }
        struct req *run[PROTO_RUN_MAX];
        unsigned n = 0;
        do {
            r->page = make_page(slab, page);
            run[n++] = r;
            r = r->next;
        } while (r && n < PROTO_RUN_MAX && r->vid == run[0]->vid && r->epoch == run[0]->epoch &&
                 take_in_slab(p, slab, page, &page));
        launch_run(p, run, n, slab);
    }
}

/* Puts a server's gathered reads on the wire: as many as the provider
 * gathers into one RMA read (fab_rma_limit, within FAB_BIG_MAX) per sop. */
static void flush_reads(struct pool *p, struct server *s)
{
    struct sop *o = s->rg_head;
    s->rg_head = s->rg_tail = NULL;
    int lim = s->state == SRV_UP && s->fab ? fab_rma_limit(s->fab) : 1;
    while (o) {
        struct sop *v = NULL;
        if (o->next && lim > 1)
            v = sop_new(p, SOP_READV);
        if (!v) {
            struct sop *next = o->next;
            if (s->state == SRV_UP)
                sop_submit(s, o);
            else {
                read_failed(p, o, "server down", true);
                sop_free(p, o);
            }
            o = next;
            continue;
        }
        if (s->state != SRV_UP) {
            /* The previous group's launch found the server gone: these go elsewhere. */
            sop_free(p, v);
            lim = 1;
            continue;
        }
        size_t bytes = 0;
        while (o && (int)v->nmem < lim && bytes + (size_t)o->req->npages * POOL_PAGE_SIZE <= FAB_BIG_MAX) {
            bytes += (size_t)o->req->npages * POOL_PAGE_SIZE;
            v->mem[v->nmem++] = o;
            o = o->next;
        }
        sop_submit(s, v);
    }
}

/* A zero-delay timer ending the loop turn's I/O: the writes issued during it
 * (the pages of a multi-page guest write, a burst of swap-outs from several
 * requests) are placed as runs, one message per replica and run instead of
 * one per page; the reads go out gathered per server. */
static int turn_end(struct evloop *el, long long id, void *arg)
{
    struct pool *p = arg;
    p->gather_timer = 0;
    struct req *r = p->gather_head;
    p->gather_head = p->gather_tail = NULL;
    place_writes(p, r);
    for (int i = 0; i < p->nsrv; i++)
        if (p->srv[i].rg_head)
            flush_reads(p, &p->srv[i]);
    return -1;
}

static void turn_end_arm(struct pool *p)
{
    if (!p->gather_timer && (p->gather_timer = evloop_add_timer(p->el, 0, turn_end, p)) <= 0) {
        p->gather_timer = 0;
        turn_end(p->el, 0, p);          /* no timer to be had: now */
    }
}

static void start_write(struct pool *p, struct req *r)
{
    LIST_APPEND(p->gather_head, p->gather_tail, r);
    turn_end_arm(p);
}

static struct req *req_new(struct pool *p, enum req_kind kind, void *arg)
{
    struct req *r = p->free_reqs;
    if (r) {
        p->free_reqs = r->next;
        memset(r, 0, offsetof(struct req, hash));   /* hash is set before it is read (verify) */
    } else if (!(r = calloc(1, sizeof(*r)))) {
        /* Without a request there is nothing to defer a failure through. */
        mx_err("pool: out of memory for a %s", kind == R_READ ? "read" : "write");
        abort();
    }
    r->kind = kind;
    r->arg = arg;
    r->t_ns = evloop_now_ns();
    return r;
}

void pool_write_vol(struct pool *p, const void *data, uint64_t vid, uint64_t epoch,
                    pool_write_cb cb, void *arg)
{
    struct req *r = req_new(p, R_WRITE, arg);
    r->data = data;
    r->wcb = cb;
    r->vid = vid;
    r->epoch = epoch;
    start_write(p, r);
}

void pool_write_new(struct pool *p, const void *data, pool_write_cb cb, void *arg)
{
    pool_write_vol(p, data, 0, 0, cb, arg);
}

/* ---- reads ---- */

static void issue_read(struct pool *p, struct req *r)
{
    uint32_t slab, page;
    if (!split_page(p, r->page, &slab, &page) || r->npages < 1 || r->npages > POOL_RUN_MAX ||
        page + r->npages > p->pages_per_slab) {
        finish(p, r, -EINVAL);
        return;
    }
    struct pslab *ps = &p->slabs[slab];
    int best = -1;
    for (int i = 0; i < ps->nrep; i++) {
        struct server *s = &p->srv[ps->rep[i].srv];
        if (!ps->rep[i].ok || s->state != SRV_UP || (r->tried & (1u << i)))
            continue;
        if (best < 0 || s->inflight < p->srv[ps->rep[best].srv].inflight)
            best = i;
    }
    if (best < 0) {
        finish(p, r, -EIO);
        return;
    }
    struct sop *o = sop_new(p, SOP_READ);
    if (!o) {
        finish(p, r, -ENOMEM);
        return;
    }
    r->tried |= 1u << best;
    o->req = r;
    o->slab = slab;
    o->rep = best;
    o->page = page;
    struct server *s = &p->srv[ps->rep[best].srv];
    if (!p->gather_reads || (s->inflight == 0 && !s->rg_head)) {
        sop_submit(s, o);       /* an idle server: nothing to gather with, no wait for the turn's end */
        return;
    }
    LIST_APPEND(s->rg_head, s->rg_tail, o);
    turn_end_arm(p);
}

/* flushed: the server was just declared down, which is logged once, not per read. */
static void read_failed(struct pool *p, struct sop *o, const char *why, bool flushed)
{
    mx_log(flushed ? MX_LOG_DEBUG : MX_LOG_WARN,
           "pool: read of slab %u page %u from memd %s failed (%s), trying another replica", o->slab,
           o->page, p->srv[p->slabs[o->slab].rep[o->rep].srv].addr, why);
    issue_read(p, o->req);
}

/* A read's bytes arrived (data: its pages): checked where the slab was
 * adopted, then handed over.  Frees o. */
static void read_landed(struct pool *p, struct sop *o, const void *data)
{
    struct req *r = o->req;
    for (unsigned i = 0; r->verify && p->slabs[o->slab].adopted && i < r->npages; i++) {
        uint8_t h[16];
        pool_hash((const uint8_t *)data + (size_t)i * POOL_PAGE_SIZE, h);
        if (memcmp(h, r->hash[i], 16)) {
            /* Not the server's fault: this replica missed the write the
             * record describes (a cut its old owner never repaired). */
            p->slabs[o->slab].rep[o->rep].ok = false;
            read_failed(p, o, "contents do not match the volume record", false);
            sop_free(p, o);
            return;
        }
    }
    memcpy(r->out, data, (size_t)r->npages * POOL_PAGE_SIZE);
    histo_record(&p->t[POOL_T_XPORT_READ], evloop_now_ns() - o->t_ns);
    p->st.reads += r->npages;
    finish(p, r, 0);
    sop_free(p, o);
}

static void on_read_done(void *arg, uint64_t tag, int status, const void *data, size_t len)
{
    struct server *s = arg;
    struct pool *p = s->p;
    struct sop *o = sop_take(s, tag);
    if (!o)
        return;
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
            srv_down(s, "RMA read failed");
        return;
    }
    if (o->kind == SOP_CREAD) {
        int st = status ? status : len != POOL_PAGE_SIZE ? -EIO : 0;
        rb_read_done(p, o, st, data);
        sop_free(p, o);
        if (st)
            srv_down(s, "RMA read failed");
        return;
    }
    if (status || len != (size_t)o->req->npages * POOL_PAGE_SIZE) {
        read_failed(p, o, status ? fab_strerror(-status) : "short read", false);
        sop_free(p, o);
        srv_down(s, "RMA read failed");
        return;
    }
    read_landed(p, o, data);
}

/* hash: NULL, or the volume record's hash to check an adopted slab's bytes against. */
void pool_read_run(struct pool *p, pool_page_t first, unsigned n, const uint8_t (*hashes)[16], void *data,
                   pool_io_cb cb, void *arg)
{
    struct req *r = req_new(p, R_READ, arg);
    r->page = first;
    r->npages = n;
    r->out = data;
    r->rcb = cb;
    if (hashes && n <= POOL_RUN_MAX) {
        r->verify = true;
        memcpy(r->hash, hashes, (size_t)n * 16);
    }
    issue_read(p, r);
}

void pool_read(struct pool *p, pool_page_t page, void *data, pool_io_cb cb, void *arg)
{
    pool_read_run(p, page, 1, NULL, data, cb, arg);
}

bool pool_page_follows(pool_page_t a, pool_page_t b)
{
    return b == a + 1 && (b >> 32) == (a >> 32);
}

void pool_read_checked(struct pool *p, pool_page_t page, const uint8_t hash[16], void *data,
                       pool_io_cb cb, void *arg)
{
    pool_read_run(p, page, 1, (const uint8_t (*)[16])hash, data, cb, arg);
}

/* ---- slabs ---- */

static uint64_t srv_free(const struct server *s)
{
    return s->capacity > s->used ? s->capacity - s->used : 0;
}

static bool candidate(const struct pool *p, const struct server *s, const struct pslab *ps)
{
    if (s->state != SRV_UP || s->full || s->draining || srv_free(s) < p->slab_size)
        return false;
    for (int i = 0; i < ps->nrep; i++)
        if (ps->rep[i].srv == s->idx)
            return false;
    return true;
}

/* Power of two choices: two random candidates, the one with more free room. */
static int pick_server(struct pool *p, const struct pslab *ps)
{
    int c[MEMX_MAX_SERVERS], n = 0;
    for (int i = 0; i < p->nsrv; i++)
        if (candidate(p, &p->srv[i], ps))
            c[n++] = i;
    if (n == 0)
        return -1;
    int a = c[rand() % n], b = c[rand() % n];
    return srv_free(&p->srv[a]) >= srv_free(&p->srv[b]) ? a : b;
}

static bool any_first_connect(const struct pool *p)
{
    for (int i = 0; i < p->nsrv; i++)
        if (!p->srv[i].tried_once)
            return true;
    return false;
}

static void fail_waiting(struct pool *p, int status)
{
    while (p->wait_head) {
        struct req *r = p->wait_head;
        p->wait_head = r->next;
        finish(p, r, status);
    }
    p->wait_tail = NULL;
}

static void place_replica(struct pool *p, uint32_t slab)
{
    struct pslab *ps = &p->slabs[slab];
    int sidx = pick_server(p, ps);
    if (sidx < 0)
        return;
    struct sop *o = sop_new(p, SOP_ALLOC);
    if (!o)
        return;
    o->slab = slab;
    o->rep = ps->nrep;
    ps->rep[ps->nrep] = (struct replica){ .srv = sidx };
    ps->nrep++;
    ps->allocating++;
    sop_submit(&p->srv[sidx], o);
}

/* Every SLAB_ALLOC for the slab being built has answered. */
static void slab_built(struct pool *p, uint32_t slab)
{
    struct pslab *ps = &p->slabs[slab];
    int live = 0;
    for (int i = 0; i < p->nsrv; i++)
        live += p->srv[i].state == SRV_UP;
    p->building = -1;
    if (ps->nrep == 0) {
        ps->used = false;
        free(ps->bits);
        ps->bits = NULL;
        if (any_first_connect(p) && !live)
            return;     /* servers still coming up: the writes wait for them */
        if (live)
            mx_warn("pool: no memory server has room for another slab: pool full");
        else
            mx_err("pool: no memory server reachable");
        fail_waiting(p, live ? -ENOSPC : -EIO);
        return;
    }
    ps->ready = true;
    p->st.slabs++;
    if (ps->nrep < p->replicas) {
        if (!p->degraded_warned)
            mx_warn("pool: degraded: slab %u has %d of %d replicas (%d memory servers usable)",
                    slab, ps->nrep, p->replicas, live);
        p->degraded_warned = true;
    } else {
        p->degraded_warned = false;
    }
    struct req *r = p->wait_head;
    p->wait_head = p->wait_tail = NULL;
    place_writes(p, r);
}

/* A free entry of the slab table, cleared and marked used with every page
 * free (the table grows by 16); -1 out of memory. */
static int64_t slab_slot(struct pool *p)
{
    uint32_t i = 0;
    while (i < p->nslabs && p->slabs[i].used)
        i++;
    if (i == p->nslabs) {
        struct pslab *ns = realloc(p->slabs, (size_t)(p->nslabs + 16) * sizeof(*ns));
        if (!ns)
            return -1;
        memset(ns + p->nslabs, 0, 16 * sizeof(*ns));
        p->slabs = ns;
        p->nslabs += 16;
    }
    struct pslab *ps = &p->slabs[i];
    memset(ps, 0, sizeof(*ps));
    ps->bits = calloc(p->pages_per_slab / 64, sizeof(uint64_t));
    if (!ps->bits)
        return -1;
    ps->used = true;
    ps->nfree = p->pages_per_slab;
    return i;
}

/* Starts building a slab if writes wait for one and none is being built. */
static void kick_slab(struct pool *p)
{
    if (p->building >= 0 || !p->wait_head)
        return;
    int64_t i = slab_slot(p);
    if (i < 0) {
        fail_waiting(p, -ENOMEM);
        return;
    }
    struct pslab *ps = &p->slabs[i];
    do
        randombytes_buf(&ps->uid, sizeof(ps->uid));
    while (ps->uid == 0);
    p->building = (int)i;
    for (int r = 0; r < p->replicas; r++)
        place_replica(p, i);
    if (ps->allocating == 0)
        slab_built(p, i);
}

static void alloc_done(struct pool *p, struct server *s, struct sop *o, const struct proto_msg *m)
{
    struct pslab *ps = &p->slabs[o->slab];
    ps->allocating--;
    if (m && m->status == 0 && m->u.slab_alloc_r.size == p->slab_size) {
        struct replica *rp = &ps->rep[o->rep];
        rp->id = m->u.slab_alloc_r.slab;
        rp->raddr = m->u.slab_alloc_r.raddr;
        rp->rkey = m->u.slab_alloc_r.rkey;
        rp->gen = s->gen;
        rp->ok = true;
        s->capacity = m->u.slab_alloc_r.capacity;
        s->used = m->u.slab_alloc_r.used;
        if (srv_free(s) < p->slab_size && !s->full) {
            mx_warn("memd %s: full", s->addr);
            s->full = true;
        }
    } else {
        if (m && m->status == ENOSPC) {
            if (!s->full)
                mx_warn("memd %s: full", s->addr);
            s->full = true;
        } else if (m) {
            mx_warn("memd %s: slab allocation failed: %s", s->addr,
                    m->status ? strerror(m->status) : "wrong slab size");
        }
        /* Drop the placeholder (compacting keeps indexes of allocs in flight
         * valid only if it is last, so swap with the last unanswered one). */
        int last = ps->nrep - 1;
        if (o->rep != last) {
            ps->rep[o->rep] = ps->rep[last];
            for (int i = 0; i < p->nsrv; i++) {
                struct server *t = &p->srv[i];
                for (int k = 0; k < MAX_INFLIGHT; k++)
                    if (t->slots[k] && t->slots[k]->kind == SOP_ALLOC && t->slots[k]->slab == o->slab &&
                        t->slots[k]->rep == last)
                        t->slots[k]->rep = o->rep;
                for (struct sop *q = t->q_head; q; q = q->next)
                    if (q->kind == SOP_ALLOC && q->slab == o->slab && q->rep == last)
                        q->rep = o->rep;
            }
        }
        ps->nrep--;
        place_replica(p, o->slab);
    }
    if (ps->allocating == 0)
        slab_built(p, o->slab);
}

/* ---- re-replication and drain ---- */

/* Good replicas of a slab; a draining server's count only if with_draining. */
static int good_replicas(const struct pool *p, const struct pslab *ps, bool with_draining)
{
    int n = 0;
    for (int i = 0; i < ps->nrep; i++)
        n += ps->rep[i].ok && (with_draining || !p->srv[ps->rep[i].srv].draining);
    return n;
}

/* Logs when the pool enters or leaves degraded mode. */
static void rb_check_state(struct pool *p)
{
    uint64_t degraded = 0, lost = 0;
    for (uint32_t i = 0; i < p->nslabs; i++) {
        const struct pslab *ps = &p->slabs[i];
        if (!ps->used || !ps->ready)
            continue;
        int g = good_replicas(p, ps, true);
        degraded += g < p->replicas;
        lost += g == 0;
    }
    p->st.degraded_slabs = degraded;
    p->st.lost_slabs = lost;
    if (!!degraded == p->degraded)
        return;
    p->degraded = degraded != 0;
    if (degraded)
        mx_warn("pool: degraded: %llu slabs have fewer than %d copies (%llu with none)",
                (unsigned long long)degraded, p->replicas, (unsigned long long)lost);
    else
        mx_info("pool: redundancy restored: every slab has %d copies", p->replicas);
}

/* force: a replica we stopped trusting or never finished; volume records
 * name its slab, but the good copies live elsewhere. */
static void rb_free_remote(struct pool *p, int srv, uint32_t id, bool force)
{
    struct server *s = &p->srv[srv];
    struct sop *o = sop_new(p, SOP_FREE);
    if (!o)
        return;
    o->srv_slab = id;
    o->flags = force ? PROTO_FREE_FORCE : 0;
    sop_submit(s, o);
    s->full = false;
}

/* Ends the rebuild once no copy is in flight (a late copy must never land in
 * a target slab we freed and the server handed out again). */
static void rb_settle(struct pool *p)
{
    struct rebuild *rb = &p->rb;
    if (!rb->aborting || rb->inflight)
        return;
    const struct server *t = &p->srv[rb->target];
    if (rb->allocated && t->state == SRV_UP && t->gen == rb->target_gen)
        rb_free_remote(p, rb->target, rb->nr.id, true);
    rb->active = rb->aborting = false;
}

static void rb_abort(struct pool *p, const char *why)
{
    if (!p->rb.active || p->rb.aborting)
        return;
    mx_warn("pool: re-replication of slab %u onto memd %s stopped (%s); will retry", p->rb.slab,
            p->srv[p->rb.target].addr, why);
    p->rb.aborting = true;
    rb_settle(p);
}

/* Where the new replica goes: an up server with room that holds no good
 * replica of the slab (power of two choices among them). */
static int rb_target(struct pool *p, const struct pslab *ps)
{
    int c[MEMX_MAX_SERVERS], n = 0;
    for (int i = 0; i < p->nsrv; i++) {
        const struct server *s = &p->srv[i];
        if (s->state != SRV_UP || s->full || s->draining || srv_free(s) < p->slab_size)
            continue;
        bool holds = false;
        for (int r = 0; r < ps->nrep; r++)
            holds |= ps->rep[r].ok && ps->rep[r].srv == i;
        if (!holds)
            c[n++] = i;
    }
    if (n == 0)
        return -1;
    int a = c[rand() % n], b = c[rand() % n];
    return srv_free(&p->srv[a]) >= srv_free(&p->srv[b]) ? a : b;
}

/* The rep[] slot the new replica takes: a stale one, else a draining one, else a new one. */
static int rb_slot(const struct pool *p, const struct pslab *ps)
{
    for (int i = 0; i < ps->nrep; i++)
        if (!ps->rep[i].ok)
            return i;
    for (int i = 0; i < ps->nrep; i++)
        if (p->srv[ps->rep[i].srv].draining)
            return i;
    return ps->nrep < MAX_REPLICAS ? ps->nrep : -1;
}

static void rb_start(struct pool *p)
{
    for (uint32_t n = 0; n < p->nslabs; n++) {
        uint32_t i = (p->rb.slab + 1 + n) % p->nslabs;     /* round robin: no slab starves */
        struct pslab *ps = &p->slabs[i];
        if (!ps->used || !ps->ready || (int)i == p->building || good_replicas(p, ps, true) == 0 ||
            good_replicas(p, ps, false) >= p->replicas)
            continue;
        int t = rb_target(p, ps), slot = rb_slot(p, ps);
        if (t < 0 || slot < 0)
            continue;
        struct sop *o = sop_new(p, SOP_ALLOC);
        if (!o)
            return;
        struct rebuild *rb = &p->rb;
        uint64_t gen = rb->gen + 1;
        memset(rb, 0, sizeof(*rb));
        *rb = (struct rebuild){ .active = true, .gen = gen, .slab = i, .slot = slot, .target = t,
                                .target_gen = p->srv[t].gen, .started_ms = evloop_now_ms() };
        o->rebuild = true;
        o->rgen = gen;
        o->slab = i;
        mx_info("pool: re-replicating slab %u (%u pages in use) onto memd %s", i,
                p->pages_per_slab - ps->nfree, p->srv[t].addr);
        sop_submit(&p->srv[t], o);
        return;
    }
}

static void rb_finish(struct pool *p)
{
    struct rebuild *rb = &p->rb;
    struct pslab *ps = &p->slabs[rb->slab];
    if (rb->slot < ps->nrep) {
        const struct replica *old = &ps->rep[rb->slot];
        const struct server *os = &p->srv[old->srv];
        /* A draining replica, or one that missed a write on a server still up, is still held there. */
        if (os->state == SRV_UP && old->gen == os->gen)
            rb_free_remote(p, old->srv, old->id, true);
    } else {
        ps->nrep++;
    }
    ps->rep[rb->slot] = rb->nr;
    ps->rep[rb->slot].ok = true;
    mx_info("pool: slab %u re-replicated onto memd %s: %llu pages in %llu ms", rb->slab,
            p->srv[rb->target].addr, (unsigned long long)rb->pages,
            (unsigned long long)(evloop_now_ms() - rb->started_ms));
    rb->active = false;
    rb_check_state(p);
}

/* Moves the rebuild forward: start one, launch copies, finish it. */
static void rb_step(struct pool *p)
{
    struct rebuild *rb = &p->rb;
    if (!rb->active) {
        rb_start(p);
        return;
    }
    if (rb->aborting || !rb->allocated)
        return;
    const struct server *t = &p->srv[rb->target];
    if (t->state != SRV_UP || t->gen != rb->target_gen) {
        rb_abort(p, "target server down");
        return;
    }
    struct pslab *ps = &p->slabs[rb->slab];
    if (ps->wpending)
        return;     /* writes that started before the slab was closed must land first */
    while (rb->inflight < RB_QD && rb->next < p->pages_per_slab) {
        uint32_t page = rb->next++;
        /* An adopted slab may hold pages of volumes not loaded here: copy all. */
        if (!ps->adopted && !(ps->bits[page / 64] & (1ull << (page % 64))))
            continue;
        int src = -1;
        for (int i = 0; i < ps->nrep; i++) {
            const struct server *s = &p->srv[ps->rep[i].srv];
            if (ps->rep[i].ok && s->state == SRV_UP &&
                (src < 0 || s->inflight < p->srv[ps->rep[src].srv].inflight))
                src = i;
        }
        struct sop *o = src < 0 ? NULL : sop_new(p, SOP_CREAD);
        if (!o) {
            rb_abort(p, src < 0 ? "no good replica left to copy from" : "out of memory");
            return;
        }
        o->slab = rb->slab;
        o->rep = src;
        o->page = page;
        o->rgen = rb->gen;
        rb->inflight++;
        sop_submit(&p->srv[ps->rep[src].srv], o);
    }
    if (rb->next >= p->pages_per_slab && rb->inflight == 0)
        rb_finish(p);
}

static void rb_alloc_done(struct pool *p, struct server *s, struct sop *o, const struct proto_msg *m)
{
    struct rebuild *rb = &p->rb;
    bool got = m && m->status == 0 && m->u.slab_alloc_r.size == p->slab_size;
    if (m) {
        s->capacity = m->u.slab_alloc_r.capacity;
        s->used = m->u.slab_alloc_r.used;
    }
    if (!rb->active || o->rgen != rb->gen || rb->aborting) {
        if (got)
            rb_free_remote(p, s->idx, m->u.slab_alloc_r.slab, true);
        rb_settle(p);
        return;
    }
    if (!got) {
        if (m && m->status == ENOSPC)
            s->full = true;
        rb_abort(p, m ? (m->status ? strerror(m->status) : "wrong slab size") : "target server down");
        return;
    }
    rb->nr = (struct replica){ .srv = s->idx, .id = m->u.slab_alloc_r.slab, .raddr = m->u.slab_alloc_r.raddr,
                               .rkey = m->u.slab_alloc_r.rkey, .gen = s->gen };
    rb->allocated = true;
    rb_step(p);
}

static void rb_read_done(struct pool *p, struct sop *o, int status, const void *data)
{
    struct rebuild *rb = &p->rb;
    if (!rb->active || o->rgen != rb->gen)
        return;
    struct sop *w = NULL;
    if (!status && !rb->aborting && (w = sop_new(p, SOP_CWRITE)) && (w->buf = malloc(POOL_PAGE_SIZE))) {
        memcpy(w->buf, data, POOL_PAGE_SIZE);
        w->slab = o->slab;
        w->page = o->page;
        w->srv_slab = rb->nr.id;
        w->rgen = rb->gen;
        sop_submit(&p->srv[rb->target], w);     /* the copy stays in flight */
        return;
    }
    if (w)
        sop_free(p, w);
    rb->inflight--;
    rb_abort(p, status ? "reading a good replica failed" : "out of memory");
    rb_settle(p);
}

static void rb_copy_done(struct pool *p, struct sop *o, int status)
{
    struct rebuild *rb = &p->rb;
    if (!rb->active || o->rgen != rb->gen)
        return;
    rb->inflight--;
    if (status) {
        rb_abort(p, "writing the new replica failed");
        rb_settle(p);
        return;
    }
    rb->pages++;
    p->rerep_pages++;
    if (rb->aborting)
        rb_settle(p);
    else
        rb_step(p);
}

int pool_drain(struct pool *p, const char *addr, bool on, char *err, size_t errlen)
{
    for (int i = 0; i < p->nsrv; i++) {
        struct server *s = &p->srv[i];
        if (strcmp(s->addr, addr))
            continue;
        if (s->draining != on)
            mx_info("memd %s: %s", s->addr, on ? "draining: its slabs move to other servers" : "drain cancelled");
        s->draining = on;
        rb_step(p);
        return 0;
    }
    snprintf(err, errlen, "'%s' is not a configured memory server", addr);
    return -1;
}

void pool_free_page(struct pool *p, pool_page_t page)
{
    uint32_t slab, pg;
    if (!split_page(p, page, &slab, &pg)) {
        mx_warn("pool: free of unknown page 0x%llx ignored", (unsigned long long)page);
        return;
    }
    put_page(p, slab, pg);
    struct pslab *ps = &p->slabs[slab];
    if (ps->nfree != p->pages_per_slab || (int)slab == p->building ||
        (p->rb.active && p->rb.slab == slab))
        return;
    /* Give an empty slab back only if another one still has room, so a
     * workload that frees and writes one page does not churn slabs. */
    bool other = false;
    for (uint32_t i = 0; i < p->nslabs && !other; i++)
        other = i != slab && p->slabs[i].used && p->slabs[i].ready && p->slabs[i].nfree;
    if (!other)
        return;
    for (int i = 0; i < ps->nrep; i++) {
        struct server *s = &p->srv[ps->rep[i].srv];
        /* A replica from an earlier session there is on its orphan list already. */
        if (s->state != SRV_UP || ps->rep[i].gen != s->gen)
            continue;
        struct sop *o = sop_new(p, SOP_FREE);
        if (!o)
            continue;
        o->slab = slab;
        o->srv_slab = ps->rep[i].id;
        sop_submit(s, o);
        s->full = false;
    }
    free(ps->bits);
    memset(ps, 0, sizeof(*ps));
    p->st.slabs--;
}

/* ---- connections ---- */

static void orphan_add(struct server *s, uint32_t id)
{
    if (s->norphans == s->orphans_cap) {
        size_t cap = s->orphans_cap ? s->orphans_cap * 2 : 16;
        uint32_t *n = realloc(s->orphans, cap * sizeof(*n));
        if (!n)
            return;     /* the slab stays allocated there until the server restarts */
        s->orphans = n;
        s->orphans_cap = cap;
    }
    s->orphans[s->norphans++] = id;
}

static void srv_connect(struct server *s)
{
    struct pool *p = s->p;
    char err[256];
    /* Called from the tick only, never from inside one of this fab's callbacks. */
    fab_close(s->fab);
    s->have_fa = false;
    s->gen++;
    s->state = SRV_CONNECTING;
    s->hs_started_ms = evloop_now_ms();
    struct fab_opts fo = { .provider = p->provider, .peer = s->addr, .name = s->name, .on_recv = on_recv,
                           .arg = s };
    if (!(s->fab = fab_open(p->el, &fo, err, sizeof(err))) ||
        fab_peer_add(s->fab, s->addr, &s->fa, err, sizeof(err))) {
        srv_down(s, err);
        return;
    }
    s->have_fa = true;
    auth_nonce(s->cnonce);
    struct proto_msg m = { .type = PROTO_HELLO, .req_id = s->gen << 8 | HS_SLOT };
    memcpy(m.u.hello.id, p->id, sizeof(p->id));
    /* Whatever an earlier run of this backend left there is unreachable now. */
    m.u.hello.flags = s->had_session ? 0 : PROTO_HELLO_FRESH;
    memcpy(m.u.hello.nonce, s->cnonce, PROTO_NONCE_BYTES);
    size_t al = sizeof(m.u.hello.addr);
    if (fab_local_name(s->fab, m.u.hello.addr, &al) == 0)
        m.u.hello.addr_len = (uint32_t)al;
    send_msg(s, &m, NULL);
}

/* Fails everything a server holds; reads move to other replicas. */
static void srv_flush(struct server *s)
{
    struct pool *p = s->p;
    struct sop *list = s->q_head;
    s->q_head = s->q_tail = NULL;
    for (int k = 0; k < MAX_INFLIGHT; k++) {
        if (s->slots[k]) {
            s->slots[k]->next = list;
            list = s->slots[k];
            s->slots[k] = NULL;
        }
    }
    if (s->fab)
        fab_expect(s->fab, -s->inflight);
    s->inflight = 0;
    while (list) {
        struct sop *o = list;
        list = o->next;
        switch (o->kind) {
        case SOP_WRITE: write_replica_done(p, o, -EIO); break;
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
        case SOP_CTL: o->ccb(o->carg, s->idx, NULL); break;
        }
        free(o->buf);
        sop_free(p, o);
    }
}

static void srv_down(struct server *s, const char *why)
{
    struct pool *p = s->p;
    if (s->state == SRV_DOWN || s->state == SRV_REFUSED)
        return;
    bool was_up = s->state == SRV_UP;
    s->state = SRV_DOWN;
    s->tried_once = true;
    s->retry_at_ms = evloop_now_ms() + s->backoff_ms;
    s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : s->backoff_ms * 2;
    if (was_up)
        mx_warn("memd %s: down (%s)", s->addr, why);
    else
        mx_debug("memd %s: connection attempt failed (%s)", s->addr, why);
    /* No replica there can be trusted any more: writes went on without it.
     * They are re-created elsewhere, and freed there if it comes back. */
    for (uint32_t i = 0; i < p->nslabs; i++)
        for (int r = 0; r < p->slabs[i].nrep; r++) {
            struct replica *rp = &p->slabs[i].rep[r];
            if (!p->slabs[i].used || rp->srv != s->idx)
                continue;
            if (p->slabs[i].ready)
                replica_stale(p, i, r, "server down");
            if (was_up && rp->gen == s->gen)
                orphan_add(s, rp->id);
        }
    srv_flush(s);
    rb_check_state(p);
    if (!was_up)
        kick_slab(p);   /* writes waiting on first connects may now have an answer */
    if (p->building < 0 && p->wait_head) {
        int live = pool_live_servers(p);
        if (!live && !any_first_connect(p))
            fail_waiting(p, -EIO);
    }
}

static void srv_refused(struct server *s, const char *why)
{
    mx_err("memd %s: refused: %s", s->addr, why);
    srv_down(s, why);
    s->state = SRV_REFUSED;
    s->retry_at_ms = evloop_now_ms() + REFUSED_RETRY_MS;
    struct pool *p = s->p;
    if (p->building < 0 && p->wait_head && !pool_live_servers(p) && !any_first_connect(p))
        fail_waiting(p, -EIO);
}

static void on_handshake(struct server *s, const struct proto_msg *m)
{
    struct pool *p = s->p;
    if (m->req_id != (s->gen << 8 | HS_SLOT) || s->state != SRV_CONNECTING)
        return;
    if (m->type == PROTO_CHALLENGE) {
        memcpy(s->sid, m->u.challenge.id, sizeof(s->sid));
        memcpy(s->snonce, m->u.challenge.nonce, PROTO_NONCE_BYTES);
        struct proto_msg a = { .type = PROTO_AUTH, .req_id = m->req_id };
        auth_proof(p->key, AUTH_CLIENT, s->snonce, s->cnonce, p->id, s->sid, a.u.auth.mac);
        send_msg(s, &a, NULL);
        return;
    }
    if (m->type == PROTO_REFUSED) {
        srv_refused(s, m->u.refused.reason);
        return;
    }
    /* WELCOME */
    if (!auth_check(p->key, AUTH_SERVER, s->snonce, s->cnonce, p->id, s->sid, m->u.welcome.mac)) {
        srv_refused(s, "server could not prove the cluster key");
        return;
    }
    if (m->u.welcome.slab_size != p->slab_size) {
        char a[32], b[32];
        mx_err("memd %s: slab size %s differs from [cluster] slab_size = %s", s->addr,
               memx_format_size(m->u.welcome.slab_size, a, sizeof(a)),
               memx_format_size(p->slab_size, b, sizeof(b)));
        srv_refused(s, "slab size mismatch");
        return;
    }
    s->state = SRV_UP;
    s->hb_inflight = false;
    s->hb_sent_ms = evloop_now_ms();
    if (s->had_session && strcmp(s->sid, s->last_sid) == 0) {
        if (s->norphans)
            mx_info("memd %s: back after a cut; freeing the %zu slabs we held there before",
                    s->addr, s->norphans);
        for (size_t i = 0; i < s->norphans; i++)
            rb_free_remote(p, s->idx, s->orphans[i], true);
    } else if (s->had_session) {
        mx_info("memd %s: restarted (was %s, now %s): what we held there is gone", s->addr,
                s->last_sid, s->sid);
    }
    s->norphans = 0;
    s->had_session = true;
    memcpy(s->last_sid, s->sid, sizeof(s->last_sid));
    s->tried_once = true;
    s->backoff_ms = BACKOFF_MIN_MS;
    s->capacity = m->u.welcome.capacity;
    s->used = m->u.welcome.used;
    s->full = false;
    char c[32], u[32];
    mx_info("memd %s: up over %s, %s capacity, %s used", s->addr, fab_provider(s->fab),
            memx_format_size(s->capacity, c, sizeof(c)), memx_format_size(s->used, u, sizeof(u)));
    kick_slab(p);
}

static void on_recv(void *arg, fab_addr_t from, const void *buf, size_t len)
{
    struct server *s = arg;
    struct pool *p = s->p;
    if (!s->have_fa || from != s->fa)
        return;     /* only the configured server gets an answer, or a hearing */
    struct proto_msg m;
    char why[160];
    if (proto_decode(buf, len, &m, why, sizeof(why))) {
        mx_warn("memd %s: bad message: %s", s->addr, why);
        return;
    }
    switch (m.type) {
    case PROTO_CHALLENGE:
    case PROTO_WELCOME:
        on_handshake(s, &m);
        return;
    case PROTO_REFUSED:
        if ((m.req_id & 0xff) == HS_SLOT)
            on_handshake(s, &m);
        else if (s->state == SRV_UP && m.status == ESTALE)
            srv_down(s, "it has no session for us: restarted behind the same address");
        else if (s->state == SRV_UP)
            srv_refused(s, m.u.refused.reason);
        return;
    case PROTO_SLAB_ALLOC_R:
    case PROTO_SLAB_FREE_R:
    case PROTO_PAGE_WRITE_R:
    case PROTO_STATS_R:
    case PROTO_SLAB_FIND_R:
    case PROTO_VOL_CLAIM_R:
    case PROTO_VOL_DROP_R:
    case PROTO_META_PUT_R:
    case PROTO_META_LIST_R:
        break;
    default:
        mx_warn("memd %s: unexpected %s, ignored", s->addr, proto_type_name(m.type));
        return;
    }
    struct sop *o = sop_take(s, m.req_id);
    if (!o)
        return;
    if (o->kind == SOP_CTL && m.type == o->buf[5] + 1) {
        free(o->buf);
        o->buf = NULL;
        o->ccb(o->carg, s->idx, &m);
    } else if (m.type == PROTO_SLAB_ALLOC_R && o->kind == SOP_ALLOC && o->rebuild)
        rb_alloc_done(p, s, o, &m);
    else if (m.type == PROTO_SLAB_ALLOC_R && o->kind == SOP_ALLOC)
        alloc_done(p, s, o, &m);
    else if (m.type == PROTO_PAGE_WRITE_R && o->kind == SOP_WRITE) {
        if (!m.status) {
            uint64_t rtt = evloop_now_ns() - o->t_ns, srv = m.u.page.server_ns;
            histo_record(&p->t[POOL_T_XPORT_WRITE], rtt > srv ? rtt - srv : 0);
            histo_record(&p->t[POOL_T_SERVER], srv);
        }
        write_replica_done(p, o, m.status ? -(int)m.status : 0);
    }
    else if (m.type == PROTO_PAGE_WRITE_R && o->kind == SOP_CWRITE) {
        rb_copy_done(p, o, m.status ? -(int)m.status : 0);
        free(o->buf);
        o->buf = NULL;
    }
    else if (m.type == PROTO_STATS_R && o->kind == SOP_STATS) {
        s->hb_inflight = false;
        s->capacity = m.u.stats_r.capacity;
        s->used = m.u.stats_r.used;
        if (s->full && srv_free(s) >= p->slab_size)
            s->full = false;
    } else if (m.type == PROTO_SLAB_FREE_R && o->kind == SOP_FREE) {
        if (m.status == EBUSY)
            mx_info("memd %s: slab %u kept: a volume attached elsewhere still uses it", s->addr,
                    m.u.slab_free.slab);
        else if (m.status == EPERM && (o->flags & PROTO_FREE_FORCE))
            mx_debug("memd %s: slab %u is not ours to free", s->addr, m.u.slab_free.slab);
        else if (m.status)
            mx_warn("memd %s: slab free failed: %s", s->addr, strerror(m.status));
    } else {
        mx_warn("memd %s: %s does not answer the request it names", s->addr, proto_type_name(m.type));
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

/* Deadlines are compared as now > start + limit, never now - start > limit:
 * taking a server down (re)launches its reads on other servers with a start
 * time read after `now`, and the unsigned difference would wrap and declare a
 * healthy server timed out the instant another one died. */
static int tick(struct evloop *el, long long id, void *arg)
{
    struct pool *p = arg;
    uint64_t now = evloop_now_ms();
    for (int i = 0; i < p->nsrv; i++) {
        struct server *s = &p->srv[i];
        switch (s->state) {
        case SRV_CONNECTING:
            if (now > s->hs_started_ms + HELLO_TIMEOUT_MS)
                srv_down(s, "no answer to the handshake");
            break;
        case SRV_UP:
            /* An idle connection to a dead server shows nothing: ask it something. */
            if (!s->hb_inflight && now > s->hb_sent_ms + HEARTBEAT_MS) {
                struct sop *o = sop_new(p, SOP_STATS);
                if (o) {
                    s->hb_inflight = true;
                    s->hb_sent_ms = now;
                    sop_submit(s, o);
                }
            }
            if (s->hb_inflight && now > s->hb_sent_ms + HB_TIMEOUT_MS) {
                srv_down(s, "no answer to the heartbeat");
                break;
            }
            for (int k = 0; k < MAX_INFLIGHT; k++)
                if (s->slots[k] && now > s->slots[k]->started_ms + OP_TIMEOUT_MS) {
                    srv_down(s, "operation timed out");
                    break;
                }
            break;
        case SRV_DOWN:
        case SRV_REFUSED:
            /* Its endpoint may still be retrying a dead connection: drop it
             * here, outside every callback of that endpoint. */
            if (s->fab) {
                fab_close(s->fab);
                s->fab = NULL;
                s->have_fa = false;
            }
            if (now >= s->retry_at_ms)
                srv_connect(s);
            break;
        }
    }
    rb_check_state(p);
    rb_step(p);
    return TICK_MS;
}

/* ---- lifecycle and introspection ---- */

struct pool *pool_new(struct evloop *el, const struct memx_config *cfg,
                      const uint8_t key[MEMX_KEY_BYTES], char *err, size_t errlen)
{
    if (cfg->nservers == 0) {
        snprintf(err, errlen, "[cluster] servers: no memory servers configured");
        return NULL;
    }
    if (cfg->slab_size / POOL_PAGE_SIZE % 64) {
        snprintf(err, errlen, "[cluster] slab_size: must be a multiple of 256K");
        return NULL;
    }
    if (auth_init()) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    struct pool *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->el = el;
    memcpy(p->key, key, MEMX_KEY_BYTES);
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    if (cfg->node_id[0])
        snprintf(p->id, sizeof(p->id), "%s", cfg->node_id);
    else
        snprintf(p->id, sizeof(p->id), "backd@%.40s", host);
    p->replicas = cfg->replicas;
    p->gather_reads = cfg->gather_reads;
    p->slab_size = cfg->slab_size;
    p->pages_per_slab = (uint32_t)(cfg->slab_size / POOL_PAGE_SIZE);
    p->building = -1;
    p->nsrv = cfg->nservers;
    p->st.servers = cfg->nservers;
    if (p->replicas > p->nsrv)
        mx_warn("pool: [cluster] replicas = %d but only %d memory servers are configured: degraded",
                p->replicas, p->nsrv);
    snprintf(p->provider, sizeof(p->provider), "%s", cfg->provider);
    /* A provider that cannot open is a configuration error, reported now. */
    struct fab_opts fo = { .provider = cfg->provider, .name = "pool", .on_recv = NULL, .arg = NULL };
    struct fab *probe = fab_open(el, &fo, err, errlen);
    if (!probe) {
        free(p);
        return NULL;
    }
    fab_close(probe);
    if ((p->tick = evloop_add_timer(el, TICK_MS, tick, p)) < 0) {
        snprintf(err, errlen, "pool: cannot hook onto the event loop");
        free(p);
        return NULL;
    }
    for (int i = 0; i < p->nsrv; i++) {
        struct server *s = &p->srv[i];
        s->p = p;
        s->idx = i;
        snprintf(s->addr, sizeof(s->addr), "%s", cfg->servers[i]);
        snprintf(s->name, sizeof(s->name), "pool -> memd %s", s->addr);
        s->backoff_ms = BACKOFF_MIN_MS;
        srv_connect(s);
    }
    return p;
}

static void free_reqs(struct req *r)
{
    while (r) {
        struct req *n = r->next;
        free(r);
        r = n;
    }
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    evloop_del_timer(p->el, p->tick);
    if (p->deliver_timer)
        evloop_del_timer(p->el, p->deliver_timer);
    if (p->gather_timer)
        evloop_del_timer(p->el, p->gather_timer);
    for (int i = 0; i < p->nsrv; i++) {
        fab_close(p->srv[i].fab);
        free(p->srv[i].orphans);
        for (struct sop *o = p->srv[i].rg_head, *next; o; o = next) {
            next = o->next;
            free(o->req);
            free(o);
        }
    }
    /* Requests still in flight are dropped with the pool.  A write's request is
     * shared by its replica sops: the last one holding it frees it. */
    for (int i = 0; i < p->nsrv; i++) {
        struct server *s = &p->srv[i];
        struct sop *list = s->q_head;
        for (int k = 0; k < MAX_INFLIGHT; k++)
            if (s->slots[k]) {
                s->slots[k]->next = list;
                list = s->slots[k];
            }
        while (list) {
            struct sop *o = list;
            list = o->next;
            if (o->kind == SOP_READ)
                free(o->req);
            for (unsigned k = 0; o->kind == SOP_READV && k < o->nmem; k++) {
                free(o->mem[k]->req);
                free(o->mem[k]);
            }
            for (unsigned k = 0; o->kind == SOP_WRITE && k < o->npages; k++)
                if (--o->run[k]->pending == 0)
                    free(o->run[k]);
            free(o->buf);
            free(o);
        }
    }
    free_reqs(p->wait_head);
    free_reqs(p->gather_head);
    free_reqs(p->done_head);
    free_reqs(p->free_reqs);
    for (struct sop *o = p->free_sops, *n; o; o = n) {
        n = o->next;
        free(o);
    }
    for (uint32_t i = 0; i < p->nslabs; i++)
        free(p->slabs[i].bits);
    free(p->slabs);
    explicit_bzero(p->key, sizeof(p->key));
    free(p);
}

struct evloop *pool_evloop(const struct pool *p) { return p->el; }

int pool_live_servers(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < p->nsrv; i++)
        n += p->srv[i].state == SRV_UP;
    return n;
}

void pool_get_timing(const struct pool *p, struct histo out[POOL_T_N])
{
    memcpy(out, p->t, sizeof(p->t));
}

void pool_get_stats(const struct pool *p, struct pool_stats *st)
{
    *st = p->st;
    st->rereplicated_pages = p->rerep_pages;
    st->rebuilding = p->rb.active;
    st->servers = p->nsrv;
    st->live_servers = pool_live_servers(p);
}

int pool_get_servers(const struct pool *p, struct pool_server_info *out, int max)
{
    for (int i = 0; i < p->nsrv && i < max; i++) {
        const struct server *s = &p->srv[i];
        snprintf(out[i].addr, sizeof(out[i].addr), "%s", s->addr);
        snprintf(out[i].provider, sizeof(out[i].provider), "%s", s->fab ? fab_provider(s->fab) : p->provider);
        out[i].state = state_names[s->state];
        out[i].replicas = 0;
        for (uint32_t k = 0; k < p->nslabs; k++)
            for (int r = 0; r < p->slabs[k].nrep; r++)
                out[i].replicas += p->slabs[k].used && p->slabs[k].rep[r].ok && p->slabs[k].rep[r].srv == i;
        if (s->state == SRV_UP && s->draining)
            out[i].state = out[i].replicas ? "draining" : "drained";
        out[i].capacity = s->capacity;
        out[i].used = s->used;
    }
    return p->nsrv;
}

/* ---- volume metadata support ---- */

void pool_hash(const void *page, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(page, POOL_PAGE_SIZE));
    memcpy(out, c.digest, 16);
}

void pool_page_locate(const struct pool *p, pool_page_t page, uint64_t *uid, uint32_t *idx)
{
    uint32_t slab, pg;
    if (!split_page(p, page, &slab, &pg)) {
        *uid = 0;
        *idx = 0;
        return;
    }
    *uid = p->slabs[slab].uid;
    *idx = pg;
}

pool_page_t pool_page_in(const struct pool *p, uint32_t slab, uint32_t idx)
{
    return slab < p->nslabs && idx < p->pages_per_slab ? make_page(slab, idx) : 0;
}

int pool_up_servers(const struct pool *p, int *out, int max)
{
    int n = 0;
    for (int i = 0; i < p->nsrv && n < max; i++)
        if (p->srv[i].state == SRV_UP)
            out[n++] = i;
    return n;
}

const char *pool_server_addr(const struct pool *p, int srv)
{
    return srv >= 0 && srv < p->nsrv ? p->srv[srv].addr : "?";
}

int pool_ctl(struct pool *p, int srv, const struct proto_msg *m, pool_ctl_cb cb, void *arg)
{
    if (srv < 0 || srv >= p->nsrv || p->srv[srv].state != SRV_UP)
        return -1;
    struct sop *o = sop_new(p, SOP_CTL);
    uint8_t *buf = malloc(PROTO_MSG_MAX);
    size_t len = buf ? proto_encode(m, buf, PROTO_MSG_MAX) : 0;
    if (!o || !len) {
        free(buf);
        if (o)
            sop_free(p, o);
        return -1;
    }
    o->buf = buf;
    o->blen = len;
    o->ccb = cb;
    o->carg = arg;
    sop_submit(&p->srv[srv], o);
    return 0;
}

/* Adoption: one SLAB_FIND per live server; the slab gets a replica for each
 * server that holds it. */
struct adopt {
    struct pool *p;
    uint64_t uid;
    uint32_t slab;
    int pending;
    pool_adopt_cb cb;
    void *arg;
};

static void adopt_end(struct adopt *a)
{
    struct pool *p = a->p;
    struct pslab *ps = &p->slabs[a->slab];
    int status = 0;
    if (ps->nrep == 0) {
        free(ps->bits);
        memset(ps, 0, sizeof(*ps));
        status = -ENOENT;
    } else {
        ps->ready = true;
        p->st.slabs++;
        mx_info("pool: adopted slab %016llx: %d replica(s)", (unsigned long long)a->uid, ps->nrep);
    }
    a->cb(a->arg, status, a->slab);
    free(a);
    rb_check_state(p);
}

static int adopt_deliver(struct evloop *el, long long id, void *arg);

static void adopt_found(void *arg, int srv, const struct proto_msg *m)
{
    struct adopt *a = arg;
    struct pool *p = a->p;
    struct pslab *ps = &p->slabs[a->slab];
    if (m && m->type == PROTO_SLAB_FIND_R && m->status == 0 && m->u.slab_find_r.uid == a->uid &&
        m->u.slab_find_r.size == p->slab_size && ps->nrep < MAX_REPLICAS) {
        bool dup = false;
        for (int i = 0; i < ps->nrep; i++)
            dup |= ps->rep[i].srv == srv;
        if (!dup)
            ps->rep[ps->nrep++] = (struct replica){ .srv = srv, .id = m->u.slab_find_r.slab,
                                                    .raddr = m->u.slab_find_r.raddr,
                                                    .rkey = m->u.slab_find_r.rkey,
                                                    .gen = p->srv[srv].gen, .ok = true };
    }
    if (--a->pending == 0)
        evloop_add_timer(p->el, 0, adopt_deliver, a);
}

static int adopt_deliver(struct evloop *el, long long id, void *arg)
{
    struct adopt *a = arg;
    if (a->pending == 0 && a->p->slabs[a->slab].adopted && !a->p->slabs[a->slab].ready) {
        adopt_end(a);       /* nobody to ask: no server up */
        return -1;
    }
    a->cb(a->arg, 0, a->slab);
    free(a);
    return -1;
}

void pool_adopt(struct pool *p, uint64_t uid, pool_adopt_cb cb, void *arg)
{
    struct adopt *a = calloc(1, sizeof(*a));
    if (!a) {
        mx_err("pool: out of memory adopting a slab");
        abort();
    }
    *a = (struct adopt){ .p = p, .uid = uid, .cb = cb, .arg = arg };
    for (uint32_t i = 0; i < p->nslabs; i++)
        if (p->slabs[i].used && p->slabs[i].uid == uid) {
            a->slab = i;
            evloop_add_timer(p->el, 0, adopt_deliver, a);   /* never inside the call */
            return;
        }
    int64_t i = slab_slot(p);
    if (i < 0) {
        mx_err("pool: out of memory adopting a slab");
        abort();
    }
    /* A page is in use once a loaded volume holds it (pool_page_hold). */
    struct pslab *ps = &p->slabs[i];
    ps->adopted = true;
    ps->uid = uid;
    a->slab = (uint32_t)i;
    a->pending = 1;     /* held while asking, so a synchronous failure cannot end it early */
    struct proto_msg m = { .type = PROTO_SLAB_FIND };
    m.u.slab_alloc.uid = uid;
    for (int k = 0; k < p->nsrv; k++)
        if (pool_ctl(p, k, &m, adopt_found, a) == 0)
            a->pending++;
    if (--a->pending == 0)
        evloop_add_timer(p->el, 0, adopt_deliver, a);
}

bool pool_page_hold(struct pool *p, pool_page_t page)
{
    uint32_t slab, pg;
    if (!split_page(p, page, &slab, &pg))
        return false;
    struct pslab *ps = &p->slabs[slab];
    uint64_t bit = 1ull << (pg % 64);
    if (ps->bits[pg / 64] & bit)
        return false;
    ps->bits[pg / 64] |= bit;
    ps->nfree--;
    p->st.pages_stored++;
    return true;
}
