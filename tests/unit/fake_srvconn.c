/* fake_srvconn.c — srvconn.h over in-memory servers.  See fake_srvconn.h. */
#include "fake_srvconn.h"
#include "pool_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_MAX_SLABS 64

struct fslab {
    bool used;
    uint64_t uid;               /* the pool's name for it (SLAB_FIND) */
    uint8_t *mem;
};

struct fsrv {
    struct server *s;
    bool hold;
    unsigned fail_posts;
    unsigned refuse_writes;                 /* the next page writes answered with refuse_status */
    unsigned frees, frees_forced;           /* SLAB_FREEs taken; of those, with PROTO_FREE_FORCE */
    uint16_t refuse_status;
    struct fslab slabs[FAKE_MAX_SLABS];     /* server slab id = index + 1 */
    unsigned capacity;                      /* slabs */
    struct ev_defer answer;
};

static unsigned default_capacity = 16;

void fake_srv_set_capacity(unsigned slabs) { default_capacity = slabs; }

static struct fsrv *F(const struct server *s) { return s->fake; }

static unsigned used_slabs(const struct fsrv *f)
{
    unsigned n = 0;
    for (unsigned i = 0; i < FAKE_MAX_SLABS; i++)
        n += f->slabs[i].used;
    return n;
}

unsigned fake_srv_slabs(const struct server *s) { return used_slabs(F(s)); }
unsigned fake_srv_frees(const struct server *s, bool forced) { return forced ? F(s)->frees_forced : F(s)->frees; }

static void account(struct fsrv *f)
{
    f->s->capacity = (uint64_t)f->capacity * f->s->p->slab_size;
    f->s->used = (uint64_t)used_slabs(f) * f->s->p->slab_size;
}

static struct fslab *slab_of(struct fsrv *f, uint32_t id)
{
    return id >= 1 && id <= FAKE_MAX_SLABS && f->slabs[id - 1].used ? &f->slabs[id - 1] : NULL;
}

const uint8_t *fake_srv_page(const struct server *s, uint32_t srv_slab, uint32_t page)
{
    struct fslab *fs = slab_of(F(s), srv_slab);
    return fs && page < s->p->pages_per_slab ? fs->mem + (size_t)page * POOL_PAGE_SIZE : NULL;
}

uint32_t fake_srv_add_slab(struct server *s, uint64_t uid, uint8_t fill)
{
    struct fsrv *f = F(s);
    for (unsigned i = 0; i < FAKE_MAX_SLABS; i++) {
        if (f->slabs[i].used)
            continue;
        if (!(f->slabs[i].mem = malloc((size_t)s->p->pages_per_slab * POOL_PAGE_SIZE)))
            return 0;
        memset(f->slabs[i].mem, fill, (size_t)s->p->pages_per_slab * POOL_PAGE_SIZE);
        f->slabs[i].used = true;
        f->slabs[i].uid = uid;
        account(f);
        return i + 1;
    }
    return 0;
}

/* ---- answering ops, as a memd would ---- */

static void take_slot(struct server *s, struct sop *o)
{
    s->slots[o->req_id & 0xff] = NULL;
    s->inflight--;
    struct sop *n = STAILQ_FIRST(&s->queue);
    if (n && s->state == SRV_UP) {
        STAILQ_REMOVE_HEAD(&s->queue, link);
        srv_submit(s, n);
    }
}

static void answer(struct server *s, struct sop *o)
{
    struct fsrv *f = F(s);
    struct pool *p = s->p;
    size_t pg = POOL_PAGE_SIZE;
    take_slot(s, o);
    struct proto_msg m = { .req_id = o->req_id };
    switch (o->kind) {
    case SOP_ALLOC: {
        m.type = PROTO_SLAB_ALLOC_R;
        unsigned i = 0;
        while (i < FAKE_MAX_SLABS && f->slabs[i].used)
            i++;
        if (used_slabs(f) >= f->capacity || i == FAKE_MAX_SLABS ||
            !(f->slabs[i].mem = calloc(p->pages_per_slab, pg))) {
            m.status = ENOSPC;
        } else {
            f->slabs[i].used = true;
            f->slabs[i].uid = p->slabs[o->slab].uid;
            m.u.slab_alloc_r.slab = i + 1;
            m.u.slab_alloc_r.size = p->slab_size;
            m.u.slab_alloc_r.raddr = (uint64_t)(i + 1) << 32;
            m.u.slab_alloc_r.rkey = i + 1;
        }
        account(f);
        m.u.slab_alloc_r.capacity = s->capacity;
        m.u.slab_alloc_r.used = s->used;
        sop_reply(s, o, &m);
        return;
    }
    case SOP_FREE: {
        m.type = PROTO_SLAB_FREE_R;
        m.u.slab_free.slab = o->srv_slab;
        struct fslab *fs = slab_of(f, o->srv_slab);
        if (fs) {
            free(fs->mem);
            *fs = (struct fslab){ 0 };
            f->frees++;
            f->frees_forced += (o->flags & PROTO_FREE_FORCE) != 0;
        } else {
            m.status = ENOENT;
        }
        account(f);
        sop_reply(s, o, &m);
        return;
    }
    case SOP_WRITE:
    case SOP_CWRITE: {
        m.type = PROTO_PAGE_WRITE_R;
        uint32_t id = o->kind == SOP_WRITE ? p->slabs[o->slab].rep[o->rep].id : o->srv_slab;
        struct fslab *fs = slab_of(f, id);
        if (!fs)
            m.status = ENOENT;
        else if (o->kind == SOP_WRITE && f->refuse_writes) {
            f->refuse_writes--;
            m.status = f->refuse_status;        /* nothing stored, as a memd refusing it */
        } else if (o->kind == SOP_CWRITE)
            memcpy(fs->mem + (size_t)o->page * pg, o->buf, pg);
        else
            for (unsigned i = 0; i < o->npages; i++)
                memcpy(fs->mem + (size_t)(uint32_t)o->run[i]->page * pg, o->run[i]->data, pg);
        sop_reply(s, o, &m);
        return;
    }
    case SOP_STATS:
        m.type = PROTO_STATS_R;
        account(f);
        m.u.stats_r.capacity = s->capacity;
        m.u.stats_r.used = s->used;
        sop_reply(s, o, &m);
        return;
    case SOP_CTL: {
        m.type = (uint8_t)(o->buf[5] + 1);
        m.status = ENOENT;
        struct proto_msg q;
        char why[64];
        if (proto_decode(o->buf, o->blen, &q, why, sizeof(why)) == 0 && q.type == PROTO_SLAB_FIND)
            for (unsigned i = 0; i < FAKE_MAX_SLABS; i++)
                if (f->slabs[i].used && f->slabs[i].uid == q.u.slab_alloc.uid) {
                    m.status = 0;
                    m.u.slab_find_r.uid = f->slabs[i].uid;
                    m.u.slab_find_r.slab = i + 1;
                    m.u.slab_find_r.size = p->slab_size;
                    m.u.slab_find_r.raddr = (uint64_t)(i + 1) << 32;
                    m.u.slab_find_r.rkey = i + 1;
                }
        sop_reply(s, o, &m);
        return;
    }
    case SOP_READ:
    case SOP_CREAD:
    case SOP_READV: {
        static uint8_t buf[FAB_BIG_MAX];
        size_t len = 0;
        struct sop *one[1] = { o };
        struct sop **mem = o->kind == SOP_READV ? o->mem : one;
        unsigned n = o->kind == SOP_READV ? o->nmem : 1;
        for (unsigned i = 0; i < n; i++) {
            const struct sop *r = mem[i];
            size_t l = (size_t)(r->kind == SOP_CREAD ? 1 : r->req->npages) * pg;
            struct fslab *fs = slab_of(f, p->slabs[r->slab].rep[r->rep].id);
            if (!fs || len + l > sizeof(buf)) {
                sop_read_done(s, o, -EIO, NULL, 0);     /* a bad key: the RMA read fails */
                return;
            }
            memcpy(buf + len, fs->mem + (size_t)r->page * pg, l);
            len += l;
        }
        sop_read_done(s, o, 0, buf, len);
        return;
    }
    }
}

/* The ops in s's slots now, oldest first. */
static unsigned held(const struct server *s, int kind, struct sop **out)
{
    unsigned n = 0;
    for (int k = 0; k < SRV_MAX_INFLIGHT; k++)
        if (s->slots[k] && (kind < 0 || (int)s->slots[k]->kind == kind))
            out[n++] = s->slots[k];
    for (unsigned i = 1; i < n; i++)
        for (unsigned j = i; j > 0 && out[j - 1]->req_id >> 8 > out[j]->req_id >> 8; j--) {
            struct sop *t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static unsigned release(struct server *s, int kind, unsigned max)
{
    struct sop *ops[SRV_MAX_INFLIGHT];
    uint64_t ids[SRV_MAX_INFLIGHT];
    unsigned n = held(s, kind, ops), done = 0;
    for (unsigned i = 0; i < n; i++)
        ids[i] = ops[i]->req_id;
    /* An answer may take the server down (flushing the rest) or launch more:
     * answer only what is still in its slot. */
    for (unsigned i = 0; i < n && done < max; i++) {
        if (s->slots[ids[i] & 0xff] != ops[i] || ops[i]->req_id != ids[i] || s->state != SRV_UP)
            continue;
        answer(s, ops[i]);
        done++;
    }
    return done;
}

static void on_answer(struct evloop *el, void *arg)
{
    struct fsrv *f = arg;
    if (!f->hold)
        release(f->s, -1, UINT32_MAX);
}

void fake_srv_hold(struct server *s, bool on)
{
    F(s)->hold = on;
    if (!on)
        evloop_defer(s->p->el, &F(s)->answer);
}

unsigned fake_srv_release(struct server *s) { return release(s, -1, UINT32_MAX); }
unsigned fake_srv_release_kind(struct server *s, int kind, unsigned n) { return release(s, kind, n); }

unsigned fake_srv_held(const struct server *s, int kind)
{
    struct sop *ops[SRV_MAX_INFLIGHT];
    return held(s, kind, ops);
}

void fake_srv_fail_posts(struct server *s, unsigned n) { F(s)->fail_posts = n; }

void fake_srv_refuse_writes(struct server *s, unsigned n, int status)
{
    F(s)->refuse_writes = n;
    F(s)->refuse_status = (uint16_t)status;
}

/* ---- srvconn.h ---- */

int srv_probe(struct evloop *el, const char *provider, char *err, size_t errlen) { return 0; }

void srv_init(struct server *s, struct pool *p, int idx, const char *addr)
{
    s->p = p;
    s->idx = idx;
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    snprintf(s->name, sizeof(s->name), "pool -> fake memd %s", s->addr);
    STAILQ_INIT(&s->queue);
    STAILQ_INIT(&s->gathered);
    struct fsrv *f = calloc(1, sizeof(*f));
    if (!f)
        abort();    /* a test harness: nothing to fail gracefully to */
    f->s = s;
    f->capacity = default_capacity;
    evloop_defer_init(&f->answer, on_answer, f);
    s->fake = f;
}

void srv_close(struct server *s)
{
    struct fsrv *f = F(s);
    if (!f)
        return;
    evloop_defer_cancel(s->p->el, &f->answer);
    for (unsigned i = 0; i < FAKE_MAX_SLABS; i++)
        free(f->slabs[i].mem);
    free(f);
    s->fake = NULL;
    free(s->orphans);
    s->orphans = NULL;
}

static void come_up(struct server *s, bool same)
{
    s->gen++;
    s->state = SRV_UP;
    s->tried_once = true;
    s->had_session = true;
    s->full = false;
    account(F(s));
    srv_info(s, "up (fake)");
    pool_srv_up(s, same);
}

/* The first connection meets a fresh process; a later one (pool_add_server
 * of a removed server) the same one, which kept its slabs. */
void srv_connect(struct server *s) { come_up(s, s->had_session); }

void fake_srv_restart(struct server *s, bool same_incarnation)
{
    struct fsrv *f = F(s);
    if (!same_incarnation)
        for (unsigned i = 0; i < FAKE_MAX_SLABS; i++) {
            free(f->slabs[i].mem);
            f->slabs[i] = (struct fslab){ 0 };
        }
    f->fail_posts = 0;
    f->refuse_writes = 0;
    come_up(s, same_incarnation);
}

void srv_tick(struct server *s, uint64_t now_ms) { }

void srv_submit(struct server *s, struct sop *o)
{
    struct fsrv *f = F(s);
    if (s->inflight >= SRV_MAX_INFLIGHT) {
        STAILQ_INSERT_TAIL(&s->queue, o, link);
        return;
    }
    int slot = 0;
    while (s->slots[slot])
        slot++;
    s->slots[slot] = o;
    s->inflight++;
    o->req_id = (uint64_t)(++s->seq) << 8 | (uint64_t)slot;
    o->started_ms = evloop_now_ms();
    o->t_ns = evloop_now_ns();
    if (f->fail_posts) {
        f->fail_posts--;
        srv_down(s, "fake post failure");     /* o is in its slot: the flush fails it */
        return;
    }
    if (!f->hold)
        evloop_defer(s->p->el, &f->answer);
}

void srv_flush(struct server *s)
{
    struct sop_list l = STAILQ_HEAD_INITIALIZER(l);
    STAILQ_CONCAT(&l, &s->queue);
    for (int k = 0; k < SRV_MAX_INFLIGHT; k++)
        if (s->slots[k]) {
            STAILQ_INSERT_HEAD(&l, s->slots[k], link);
            s->slots[k] = NULL;
        }
    s->inflight = 0;
    struct sop *o;
    while ((o = STAILQ_FIRST(&l))) {
        STAILQ_REMOVE_HEAD(&l, link);
        sop_fail(s, o);
    }
}

void srv_down(struct server *s, const char *why)
{
    if (s->state == SRV_DOWN || s->state == SRV_REFUSED)
        return;
    bool was_up = s->state == SRV_UP;
    s->state = SRV_DOWN;
    s->tried_once = true;
    srv_warn(s, "down (%s)", why);
    pool_srv_down(s, was_up);
}

int srv_rma_limit(const struct server *s) { return s->state == SRV_UP ? 4 : 1; }

const char *srv_provider(const struct server *s) { return s->state == SRV_UP ? "fake" : NULL; }
