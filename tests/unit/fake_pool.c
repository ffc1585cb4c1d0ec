/* fake_pool.c — in-memory pool.h for unit tests; see fake_pool.h. */
#include "fake_pool.h"

#include "evloop.h"
#include "proto.h"
#include "volstore.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct fpage {
    uint8_t *data;          /* NULL until the write completes */
    bool held;              /* some volume of this "process" references it (see fake_pool_restart) */
    bool allocated;         /* handed out (or reserved by an in-flight write) */
    unsigned readers;       /* reads in flight */
    bool recopied;          /* a replica of it was re-made without its record (pool_page_recopied) */
};

enum fop_kind { FOP_WRITE, FOP_READ, FOP_CTL, FOP_ADOPT };

struct fop {
    enum fop_kind kind;
    int status;
    pool_page_t page;
    const void *src;
    void *dst;
    pool_write_cb wcb;
    pool_io_cb rcb;
    void *arg;
    unsigned n;             /* read: pages in the run, from page on */
    bool verify;            /* read: check each page against its hash */
    uint8_t hash[POOL_RUN_MAX][16];
    bool has_rec;           /* write: its record goes to the page's replicas */
    struct pool_wrec rec;
    uint64_t vid, epoch;
    uint8_t *reply;         /* FOP_CTL: the encoded answer */
    size_t rlen;
    pool_ctl_cb ccb;
    int srv;                /* FOP_CTL: the metadata server answering */
    uint8_t *req;           /* FOP_CTL held by a stalled server: the encoded request */
    size_t qlen;
    pool_adopt_cb acb;
    struct fop *next;
};

struct fake_server {
    struct pool_server_info info;
    char state[16];
};

struct pool {
    struct evloop *el;
    struct pool_traffic traffic;    /* what pool_get_traffic reports (fake_pool_set_traffic) */
    int efd;
    struct fpage *pages;    /* handle h lives at pages[h - 1]; handles are never reused */
    size_t npages, cap_pages;
    uint64_t allocated, capacity;
    struct fop *head, **tail;
    size_t pending;
    bool hold;
    unsigned fail_w, fail_r, few_w;
    int fail_w_err, fail_r_err;
    uint64_t violations, writes, reads, read_pages, errors;
    uint64_t nospace, nospace_ms;   /* writes refused for capacity (pool_stats nospace_*) */
    struct fake_server servers[8];
    int nservers;
    /* The metadata servers behind pool_ctl (indexes 0..nmeta-1; one unless a
     * test asks for more), each with its own store; a stalled one keeps its
     * requests unanswered (held) until it resumes or is declared down. */
    struct volstore *meta[FAKE_META_MAX];
    int nmeta;
    int owner;
    bool meta_down;
    bool srv_down[FAKE_META_MAX], srv_stalled[FAKE_META_MAX];
    struct fop *held[FAKE_META_MAX], **held_tail[FAKE_META_MAX];
    uint64_t inc[FAKE_META_MAX];    /* bumps when a server restarts (fake_pool_meta_srv_restart) */
    uint64_t meta_records;      /* records carried by META_PUTs */
    /* Metadata answers and adoptions: never held, so hold mode orders page I/O only. */
    struct fop *mhead, **mtail;
    size_t mpending;
    void (*recopy_cb)(void *arg);
    void *recopy_arg;
    int replicas;           /* what pool_replicas says (0: 2, or 1 with one server) */
    unsigned puts_again;    /* the next META_PUTs are answered EAGAIN */
};

static void kick(struct pool *p)
{
    uint64_t one = 1;
    if (((!p->hold && p->pending) || p->mpending) && write(p->efd, &one, sizeof(one)) != sizeof(one))
        abort();
}

/* A page's replicas, as the real pool's slabs have R = 2 of them: servers
 * page % nmeta and the next one (one when there is one server). */
static int page_replicas(const struct pool *p, pool_page_t page, int out[2])
{
    out[0] = (int)(page % (uint64_t)p->nmeta);
    out[1] = (out[0] + 1) % p->nmeta;
    return p->nmeta > 1 ? 2 : 1;
}

/* The record a completed write carried lands with the page on its live
 * replicas: 0 if every one took it, else POOL_WRITE_FEW (as the pool says). */
static int put_page_rec(struct pool *p, const struct fop *op)
{
    int rep[2], n = page_replicas(p, op->page, rep), got = 0;
    struct proto_rec r = { .lpn = op->rec.lpn, .seq = op->rec.seq, .uid = 1, .page = (uint32_t)op->page,
                           .kind = PROTO_REC_PAGE };
    memcpy(r.hash, op->rec.hash, 16);
    for (int i = 0; i < n; i++)
        if (!p->srv_down[rep[i]] && !p->srv_stalled[rep[i]] &&
            volstore_put_rec(p->meta[rep[i]], op->vid, op->epoch, &r) == 0)
            got++;
    if (p->few_w) {
        p->few_w--;
        return POOL_WRITE_FEW;
    }
    return got == n ? 0 : POOL_WRITE_FEW;
}

static void complete(struct pool *p, struct fop *op)
{
    if (op->kind == FOP_WRITE) {
        struct fpage *pg = op->page ? &p->pages[op->page - 1] : NULL;
        if (op->status == 0) {
            pg->data = malloc(POOL_PAGE_SIZE);
            if (!pg->data)
                abort();
            memcpy(pg->data, op->src, POOL_PAGE_SIZE);
        }
        if (op->status == 0)
            pg->held = true;
        if (op->status == 0 && op->has_rec)
            op->status = put_page_rec(p, op);
        op->wcb(op->arg, op->status, op->status >= 0 ? op->page : 0);
    } else if (op->kind == FOP_CTL) {
        struct proto_msg m;
        char why[160];
        if (!op->reply || proto_decode(op->reply, op->rlen, &m, why, sizeof(why)))
            op->ccb(op->arg, op->srv, NULL);
        else
            op->ccb(op->arg, op->srv, &m);
        free(op->reply);
    } else if (op->kind == FOP_ADOPT) {
        op->acb(op->arg, op->status, 0);
    } else {
        for (unsigned i = 0; op->page && i < op->n; i++) {
            struct fpage *pg = &p->pages[op->page + i - 1];
            pg->readers--;
            uint8_t h[16];
            if (op->status == 0 && pg->data && op->verify &&
                (pool_hash(pg->data, h), memcmp(h, op->hash[i], 16)))
                op->status = -EIO;          /* the page is not what the record says */
            else if (op->status == 0 && pg->data)
                memcpy((uint8_t *)op->dst + (size_t)i * POOL_PAGE_SIZE, pg->data, POOL_PAGE_SIZE);
            else if (op->status == 0) {
                p->violations++;            /* freed while the read was in flight */
                op->status = -EIO;
            }
        }
        op->rcb(op->arg, op->status);
    }
    free(op);
}

static struct fop *unlink_at(struct pool *p, size_t i)
{
    struct fop **pp = &p->head;
    while (i--)
        pp = &(*pp)->next;
    struct fop *op = *pp;
    *pp = op->next;
    if (!*pp)
        p->tail = pp;
    p->pending--;
    return op;
}

static void on_event(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct pool *p = arg;
    uint64_t v;
    if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        abort();
    /* Only the ops queued before this point: ones issued by callbacks wait
     * for the next iteration, as they would on a real connection. */
    size_t n = p->pending, mn = p->mpending;
    while (n-- && !p->hold && p->head)
        complete(p, unlink_at(p, 0));
    while (mn-- && p->mhead) {
        struct fop *op = p->mhead;
        p->mhead = op->next;
        if (!p->mhead)
            p->mtail = &p->mhead;
        p->mpending--;
        complete(p, op);
    }
    kick(p);
}

struct pool *fake_pool_new(struct evloop *el)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->el = el;
    p->tail = &p->head;
    p->mtail = &p->mhead;
    p->nmeta = 1;
    for (int i = 0; i < FAKE_META_MAX; i++) {
        p->meta[i] = volstore_new();
        p->held_tail[i] = &p->held[i];
    }
    p->owner = 1;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0 || evloop_add_fd(el, p->efd, EV_READ, on_event, p) < 0) {
        if (p->efd >= 0)
            close(p->efd);
        free(p);
        return NULL;
    }
    return p;
}

struct pool *pool_new(struct evloop *el, const struct pool_opts *o, const uint8_t key[POOL_KEY_BYTES],
                      char *err, size_t errlen)
{
    struct pool *p = fake_pool_new(el);
    if (!p && err)
        snprintf(err, errlen, "fake pool: %s", strerror(errno));
    return p;
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    while (p->head)
        free(unlink_at(p, 0));
    while (p->mhead) {
        struct fop *op = p->mhead;
        p->mhead = op->next;
        free(op->reply);
        free(op);
    }
    for (size_t i = 0; i < p->npages; i++)
        free(p->pages[i].data);
    free(p->pages);
    for (int i = 0; i < FAKE_META_MAX; i++) {
        while (p->held[i]) {
            struct fop *op = p->held[i];
            p->held[i] = op->next;
            free(op->req);
            free(op);
        }
        volstore_free(p->meta[i]);
    }
    evloop_del_fd(p->el, p->efd);
    close(p->efd);
    free(p);
}

struct evloop *pool_evloop(const struct pool *p) { return p->el; }

int pool_live_servers(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < p->nservers; i++)
        n += strcmp(p->servers[i].state, "up") == 0;
    return n;
}

static void enqueue(struct pool *p, struct fop *op)
{
    op->next = NULL;
    *p->tail = op;
    p->tail = &op->next;
    p->pending++;
    kick(p);
}

static void enqueue_meta(struct pool *p, struct fop *op)
{
    op->next = NULL;
    *p->mtail = op;
    p->mtail = &op->next;
    p->mpending++;
    kick(p);
}

static pool_page_t alloc_page(struct pool *p)
{
    if (p->npages == p->cap_pages) {
        size_t n = p->cap_pages ? p->cap_pages * 2 : 256;
        struct fpage *np = realloc(p->pages, n * sizeof(*np));
        if (!np)
            abort();
        memset(np + p->cap_pages, 0, (n - p->cap_pages) * sizeof(*np));
        p->pages = np;
        p->cap_pages = n;
    }
    p->pages[p->npages].allocated = true;
    p->allocated++;
    return ++p->npages;
}

static struct fop *write_op(struct pool *p, const void *data, pool_write_cb cb, void *arg);

void pool_write_new(struct pool *p, const void *data, pool_write_cb cb, void *arg)
{
    enqueue(p, write_op(p, data, cb, arg));
}

static struct fop *write_op(struct pool *p, const void *data, pool_write_cb cb, void *arg)
{
    struct fop *op = calloc(1, sizeof(*op));
    if (!op)
        abort();
    op->kind = FOP_WRITE;
    op->src = data;
    op->wcb = cb;
    op->arg = arg;
    p->writes++;
    if (p->fail_w) {
        p->fail_w--;
        op->status = p->fail_w_err;
    } else if (p->capacity && p->allocated >= p->capacity) {
        op->status = -ENOSPC;
        p->nospace++;
        p->nospace_ms = evloop_now_ms();
    } else {
        op->page = alloc_page(p);
    }
    if (op->status)
        p->errors++;
    return op;
}

static struct fpage *live_page(struct pool *p, pool_page_t page)
{
    if (page == 0 || page > p->npages || !p->pages[page - 1].allocated || !p->pages[page - 1].data)
        return NULL;
    return &p->pages[page - 1];
}

void pool_read_run(struct pool *p, pool_page_t first, unsigned n, const uint8_t (*hashes)[16], void *data,
                   pool_io_cb cb, void *arg)
{
    struct fop *op = calloc(1, sizeof(*op));
    if (!op)
        abort();
    op->kind = FOP_READ;
    op->dst = data;
    op->rcb = cb;
    op->arg = arg;
    p->reads++;
    p->read_pages += n;
    bool live = n >= 1 && n <= POOL_RUN_MAX;
    for (unsigned i = 0; live && i < n; i++)
        live = live_page(p, first + i) != NULL;
    if (!live) {
        p->violations++;
        op->status = -EIO;
    } else if (p->fail_r) {
        p->fail_r--;
        op->status = p->fail_r_err;
    } else {
        op->page = first;
        op->n = n;
        for (unsigned i = 0; i < n; i++)
            p->pages[first + i - 1].readers++;
        if (hashes) {
            op->verify = true;
            memcpy(op->hash, hashes, (size_t)n * 16);
        }
    }
    if (op->status)
        p->errors++;
    enqueue(p, op);
}

void pool_read(struct pool *p, pool_page_t page, void *data, pool_io_cb cb, void *arg)
{
    pool_read_run(p, page, 1, NULL, data, cb, arg);
}

bool pool_page_follows(pool_page_t a, pool_page_t b) { return b == a + 1; }

uint64_t fake_pool_reads(const struct pool *p, uint64_t *pages)
{
    if (pages)
        *pages = p->read_pages;
    return p->reads;
}

void pool_free_page(struct pool *p, pool_page_t page)
{
    struct fpage *pg = live_page(p, page);
    if (!pg || pg->readers) {
        p->violations++;
        return;
    }
    free(pg->data);
    pg->data = NULL;
    pg->allocated = false;
    p->allocated--;
}

/* No network here: nothing to time. */
void pool_get_timing(const struct pool *p, struct histo out[POOL_T_N])
{
    (void)p;
    memset(out, 0, POOL_T_N * sizeof(*out));
}

void pool_get_stats(const struct pool *p, struct pool_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->pages_stored = fake_pool_live_pages(p);
    st->slabs = (st->pages_stored + 255) / 256;
    st->writes = p->writes;
    st->reads = p->reads;
    st->errors = p->errors;
    st->servers = p->nservers;
    st->live_servers = pool_live_servers(p);
    st->nospace_writes = p->nospace;
    st->nospace_last_ms = p->nospace_ms;
}

void fake_pool_set_traffic(struct pool *p, const struct pool_traffic *t) { p->traffic = *t; }

void pool_get_traffic(const struct pool *p, struct pool_traffic *out) { *out = p->traffic; }

int pool_get_servers(const struct pool *p, struct pool_server_info *out, int max)
{
    for (int i = 0; i < p->nservers && i < max; i++)
        out[i] = p->servers[i].info;
    return p->nservers;
}

void fake_pool_fail_writes(struct pool *p, unsigned n, int err) { p->fail_w = n; p->fail_w_err = err; }
void fake_pool_few_writes(struct pool *p, unsigned n) { p->few_w = n; }
void fake_pool_puts_again(struct pool *p, unsigned n) { p->puts_again = n; }
void fake_pool_fail_reads(struct pool *p, unsigned n, int err) { p->fail_r = n; p->fail_r_err = err; }
void fake_pool_set_capacity(struct pool *p, uint64_t pages) { p->capacity = pages; }

void fake_pool_hold(struct pool *p, bool on)
{
    p->hold = on;
    kick(p);
}

size_t fake_pool_pending(const struct pool *p) { return p->pending; }

void fake_pool_release(struct pool *p, size_t i)
{
    if (i < p->pending)
        complete(p, unlink_at(p, i));
}

void fake_pool_release_all(struct pool *p)
{
    while (p->head)
        complete(p, unlink_at(p, 0));
}

uint64_t fake_pool_live_pages(const struct pool *p)
{
    uint64_t n = 0;
    for (size_t i = 0; i < p->npages; i++)
        n += p->pages[i].data != NULL;
    return n;
}

uint64_t fake_pool_violations(const struct pool *p) { return p->violations; }

const void *fake_pool_page(const struct pool *p, pool_page_t page)
{
    return live_page((struct pool *)p, page) ? p->pages[page - 1].data : NULL;
}

void fake_pool_add_server(struct pool *p, const char *addr, const char *provider, const char *state,
                          uint64_t capacity, uint64_t used)
{
    if (p->nservers == (int)(sizeof(p->servers) / sizeof(p->servers[0])))
        return;
    struct fake_server *s = &p->servers[p->nservers++];
    snprintf(s->info.addr, sizeof(s->info.addr), "%s", addr);
    snprintf(s->info.provider, sizeof(s->info.provider), "%s", provider);
    snprintf(s->state, sizeof(s->state), "%s", state);
    s->info.state = s->state;
    s->info.capacity = capacity;
    s->info.used = used;
}

/* The fake has no slabs to move: draining a known server succeeds at once. */
int pool_drain(struct pool *p, const char *addr, bool on, char *err, size_t errlen)
{
    for (int i = 0; i < p->nservers; i++)
        if (strcmp(p->servers[i].info.addr, addr) == 0)
            return 0;
    snprintf(err, errlen, "'%s' is not a configured memory server", addr);
    return -1;
}

/* ---- volume metadata (volmeta.h) over one in-process volstore ---- */

void pool_hash(const void *page, uint8_t out[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(page, POOL_PAGE_SIZE));
    memcpy(out, c.digest, 16);
}

void pool_write_vol(struct pool *p, const void *data, uint64_t vid, uint64_t epoch,
                    const struct pool_wrec *rec, pool_write_cb cb, void *arg)
{
    bool stale = false;
    for (int i = 0; i < p->nmeta; i++)
        stale |= !p->srv_down[i] && volstore_check(p->meta[i], vid, epoch) != 0;
    if (stale) {
        struct fop *op = calloc(1, sizeof(*op));
        if (!op)
            abort();
        op->kind = FOP_WRITE;
        op->status = -ESTALE;
        op->src = data;
        op->wcb = cb;
        op->arg = arg;
        p->writes++;
        p->errors++;
        enqueue(p, op);
        return;
    }
    struct fop *op = write_op(p, data, cb, arg);
    if (rec && vid) {
        op->has_rec = true;
        op->rec = *rec;
        op->vid = vid;
        op->epoch = epoch;
    }
    enqueue(p, op);
}

void pool_read_checked(struct pool *p, pool_page_t page, const uint8_t hash[16], void *data,
                       pool_io_cb cb, void *arg)
{
    pool_read_run(p, page, 1, (const uint8_t (*)[16])hash, data, cb, arg);
}

void pool_page_locate(const struct pool *p, pool_page_t page, uint64_t *uid, uint32_t *idx)
{
    *uid = 1;
    *idx = (uint32_t)page;
}

void pool_adopt(struct pool *p, uint64_t uid, pool_adopt_cb cb, void *arg)
{
    struct fop *op = calloc(1, sizeof(*op));
    if (!op)
        abort();
    op->kind = FOP_ADOPT;
    op->status = uid == 1 ? 0 : -ENOENT;
    op->acb = cb;
    op->arg = arg;
    enqueue_meta(p, op);
}

pool_page_t pool_page_in(const struct pool *p, uint32_t slab, uint32_t idx) { return idx; }

bool pool_page_hold(struct pool *p, pool_page_t page)
{
    struct fpage *pg = live_page(p, page);
    if (!pg) {
        p->violations++;
        return false;
    }
    bool first = !pg->held;
    pg->held = true;
    return first;
}

int pool_up_servers(const struct pool *p, int *out, int max)
{
    int n = 0;
    for (int i = 0; i < p->nmeta && n < max && !p->meta_down; i++)
        if (!p->srv_down[i])
            out[n++] = i;
    return n;
}

const char *pool_server_addr(const struct pool *p, int srv) { return srv ? "fake1" : "fake"; }

int pool_member_servers(const struct pool *p) { return p->nmeta; }
bool pool_connecting(const struct pool *p) { (void)p; return false; }
int pool_replicas(const struct pool *p) { return p->replicas ? p->replicas : p->nmeta > 1 ? 2 : 1; }
void fake_pool_set_replicas(struct pool *p, int r) { p->replicas = r; }

void pool_adopt_settled(struct pool *p, uint32_t slab) { (void)p; (void)slab; }

uint64_t pool_server_inc(const struct pool *p, int srv) { return 1 + p->inc[srv]; }

/* Server srv answers the encoded request q: its reply is queued. */
static void serve(struct pool *p, int srv, const uint8_t *buf, size_t len, pool_ctl_cb cb, void *arg)
{
    struct proto_msg m, r = { 0 };
    char why[160];
    struct volstore *vs = p->meta[srv];
    if (proto_decode(buf, len, &m, why, sizeof(why))) {
        p->violations++;
        return;
    }
    r.req_id = m.req_id;
    static struct proto_rec recs[PROTO_REC_MAX];
    switch (m.type) {
    case PROTO_VOL_CLAIM:
        r.type = PROTO_VOL_CLAIM_R;
        r.u.vol = m.u.vol;
        r.status = (uint16_t)volstore_claim(vs, m.u.vol.vid, m.u.vol.name, m.u.vol.size,
                                            m.u.vol.epoch, p->owner, &r.u.vol.epoch, &r.u.vol.size,
                                            &r.u.vol.nrecs);
        break;
    case PROTO_VOL_DROP:
        r.type = PROTO_VOL_DROP_R;
        r.u.vol = m.u.vol;
        r.status = (uint16_t)volstore_drop(vs, m.u.vol.vid, m.u.vol.epoch);
        break;
    case PROTO_META_PUT:
        r.type = PROTO_META_PUT_R;
        r.u.meta.vid = m.u.meta.vid;
        if (p->puts_again) {
            p->puts_again--;
            r.status = EAGAIN;      /* as a memd whose etcd view is stale */
            break;
        }
        r.status = (uint16_t)volstore_put(vs, m.u.meta.vid, m.u.meta.epoch, m.u.meta.raw, m.u.meta.n);
        p->meta_records += m.u.meta.n;
        break;
    case PROTO_META_LIST: {
        r.type = PROTO_META_LIST_R;
        r.u.meta.vid = m.u.meta.vid;
        uint64_t cursor = m.u.meta.cursor;
        int n = volstore_list(vs, m.u.meta.vid, &cursor, recs, PROTO_REC_MAX);
        if (n < 0) {
            r.status = ENOENT;
        } else {
            r.u.meta.n = (uint32_t)n;
            r.u.meta.recs = recs;
            r.u.meta.cursor = cursor;
        }
        break;
    }
    default:
        p->violations++;
        return;
    }
    struct fop *op = calloc(1, sizeof(*op));
    if (!op || !(op->reply = malloc(PROTO_MSG_MAX)))
        abort();
    op->kind = FOP_CTL;
    op->srv = srv;
    op->rlen = proto_encode(&r, op->reply, PROTO_MSG_MAX);
    op->ccb = cb;
    op->arg = arg;
    enqueue_meta(p, op);
}

int pool_ctl(struct pool *p, int srv, const struct proto_msg *q, pool_ctl_cb cb, void *arg)
{
    if (srv < 0 || srv >= p->nmeta || p->meta_down || p->srv_down[srv])
        return -1;
    uint8_t buf[PROTO_MSG_MAX];
    size_t len = proto_encode(q, buf, sizeof(buf));
    struct proto_msg m;
    char why[160];
    if (!len || proto_decode(buf, len, &m, why, sizeof(why)) ||
        (m.type != PROTO_VOL_CLAIM && m.type != PROTO_VOL_DROP && m.type != PROTO_META_PUT &&
         m.type != PROTO_META_LIST)) {
        p->violations++;
        return -1;
    }
    if (p->srv_stalled[srv]) {
        struct fop *op = calloc(1, sizeof(*op));
        if (!op || !(op->req = malloc(len)))
            abort();
        memcpy(op->req, buf, len);
        op->kind = FOP_CTL;
        op->srv = srv;
        op->qlen = len;
        op->ccb = cb;
        op->arg = arg;
        *p->held_tail[srv] = op;
        p->held_tail[srv] = &op->next;
        return 0;
    }
    serve(p, srv, buf, len, cb, arg);
    return 0;
}

void fake_pool_meta_servers(struct pool *p, int n)
{
    p->nmeta = n < 1 ? 1 : n > FAKE_META_MAX ? FAKE_META_MAX : n;
}

size_t fake_pool_meta_held(const struct pool *p, int srv)
{
    size_t n = 0;
    for (const struct fop *op = p->held[srv]; op; op = op->next)
        n++;
    return n;
}

void fake_pool_meta_stall(struct pool *p, int srv, bool on)
{
    p->srv_stalled[srv] = on;
    if (on)
        return;
    /* It resumes: it answers what it was sent, in order (SIGCONT). */
    struct fop *op;
    while ((op = p->held[srv])) {
        p->held[srv] = op->next;
        serve(p, srv, op->req, op->qlen, op->ccb, op->arg);
        free(op->req);
        free(op);
    }
    p->held_tail[srv] = &p->held[srv];
}

void fake_pool_meta_srv_down(struct pool *p, int srv, bool down)
{
    p->srv_down[srv] = down;
    if (!down)
        return;
    /* Declared down: what it held is answered with no reply, and never reached its store. */
    p->srv_stalled[srv] = false;
    struct fop *op;
    while ((op = p->held[srv])) {
        p->held[srv] = op->next;
        free(op->req);
        op->req = NULL;
        op->reply = NULL;
        enqueue_meta(p, op);
    }
    p->held_tail[srv] = &p->held[srv];
}

static int recopy_fire(struct evloop *el, long long id, void *arg)
{
    struct pool *p = arg;
    (void)el;
    (void)id;
    if (p->recopy_cb)
        p->recopy_cb(p->recopy_arg);
    return -1;
}

/* The server lost its slabs and records: as the real pool re-replicates
 * the slabs it held onto other copies, their pages are flagged recopied. */
void fake_pool_meta_srv_restart(struct pool *p, int srv)
{
    fake_pool_meta_srv_down(p, srv, true);
    volstore_free(p->meta[srv]);
    if (!(p->meta[srv] = volstore_new()))
        abort();
    p->inc[srv]++;
    p->srv_down[srv] = false;
    for (size_t i = 0; i < p->npages; i++) {
        int rep[2], n = page_replicas(p, i + 1, rep);
        for (int k = 0; k < n; k++)
            p->pages[i].recopied |= p->pages[i].data && rep[k] == srv;
    }
    if (evloop_add_timer(p->el, 0, recopy_fire, p) <= 0)
        abort();
}

int pool_page_servers(const struct pool *p, pool_page_t page, int *out, int max)
{
    int rep[2], n = page_replicas(p, page, rep), k = 0;
    for (int i = 0; i < n && k < max; i++)
        if (!p->srv_down[rep[i]])
            out[k++] = rep[i];
    return k;
}

const struct volstore *fake_pool_meta_store(const struct pool *p, int srv) { return p->meta[srv]; }

void fake_pool_meta_put(struct pool *p, int srv, uint64_t vid, const struct proto_rec *r)
{
    uint64_t epoch = 0;
    int owner;
    volstore_owner(p->meta[srv], vid, &epoch, &owner);
    if (volstore_put_rec(p->meta[srv], vid, epoch, r))
        abort();
}

void pool_set_recopy_cb(struct pool *p, void (*cb)(void *arg), void *arg)
{
    p->recopy_cb = cb;
    p->recopy_arg = arg;
}

bool pool_page_recopied(const struct pool *p, pool_page_t page)
{
    return page && page <= p->npages && p->pages[page - 1].recopied;
}

void pool_recopied_clear(struct pool *p)
{
    for (size_t i = 0; i < p->npages; i++)
        p->pages[i].recopied = false;
}

void fake_pool_set_owner(struct pool *p, int owner) { p->owner = owner; }
void fake_pool_meta_down(struct pool *p, bool down) { p->meta_down = down; }
uint64_t fake_pool_meta_records(const struct pool *p) { return p->meta_records; }

void fake_pool_restart(struct pool *p)
{
    for (size_t i = 0; i < p->npages; i++)
        p->pages[i].held = false;
}
