/* adopt.c — what volume metadata needs from the pool (cluster.h): adoption
 * of the slabs a loaded volume's records point into, the cluster-wide names
 * of pages, and the request/reply channel to one server (pool_ctl).
 *
 * Adoption asks SLAB_FIND for the slab's uid of the servers the slab
 * directory lists for it (etcd), or of every live server when there is no
 * directory, it does not know the slab, or none of those has it; the slab
 * gets a replica for each server that holds it.  Nothing new is placed in an
 * adopted slab, and its pages are in use only once a loaded volume holds them
 * (pool_page_hold), so a page the records do not name is never handed out
 * twice.  Every answer is delivered through a deferred call, never inside
 * pool_adopt.
 */
#include "pool_int.h"
#include "log.h"
#include "proto.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct adopt {
    struct pool *p;
    uint64_t uid;
    uint32_t slab;
    int pending;                /* SLAB_FINDs unanswered (+1 while asking) */
    bool asked_all;             /* every live server was asked */
    pool_adopt_cb cb;
    void *arg;
    struct ev_defer deliver;
    LIST_ENTRY(adopt) link;
};

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

bool pool_page_hold(struct pool *p, pool_page_t page)
{
    uint32_t slab, pg;
    if (!split_page(p, page, &slab, &pg) || !slots_hold(&p->slabs[slab].slots, pg))
        return false;
    p->st.pages_stored++;
    return true;
}

int pool_ctl(struct pool *p, int srv, const struct proto_msg *m, pool_ctl_cb cb, void *arg)
{
    if (srv < 0 || srv >= p->nsrv || p->srv[srv]->state != SRV_UP)
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
    /* A post that fails synchronously must not call back inside this call
     * (callers count their requests after it returns): sop_fail flags it
     * and it is -1.  Saved and restored: a failure chain may nest a call. */
    struct sop *outer = p->ctl_posting;
    bool outer_failed = p->ctl_post_failed;
    p->ctl_posting = o;
    p->ctl_post_failed = false;
    srv_submit(p->srv[srv], o);
    bool failed = p->ctl_post_failed;
    p->ctl_posting = outer;
    p->ctl_post_failed = outer_failed;
    return failed ? -1 : 0;
}

static void adopt_drop(struct adopt *a)
{
    evloop_defer_cancel(a->p->el, &a->deliver);
    LIST_REMOVE(a, link);
    free(a);
}

static void adopt_end(struct adopt *a)
{
    struct pool *p = a->p;
    struct pslab *ps = &p->slabs[a->slab];
    int status = 0;
    if (ps->nrep == 0) {
        slots_fini(&ps->slots);
        memset(ps, 0, sizeof(*ps));
        status = -ENOENT;
    } else {
        ps->ready = true;
        p->st.slabs++;
        pool_info("adopted slab %016llx: %d replica(s)", (unsigned long long)a->uid, ps->nrep);
    }
    pool_adopt_cb cb = a->cb;
    void *arg = a->arg;
    uint32_t slab = a->slab;
    adopt_drop(a);
    cb(arg, status, slab);
    rb_check_state(p);
}

static void ask(struct adopt *a, const char (*addrs)[128], int n);

static void adopt_deliver(struct evloop *el, void *arg)
{
    struct adopt *a = arg;
    if (a->pending == 0 && !a->asked_all && a->p->slabs[a->slab].adopted && !a->p->slabs[a->slab].ready &&
        a->p->slabs[a->slab].nrep == 0) {
        ask(a, NULL, -1);   /* none of the servers the directory named has it */
        return;
    }
    if (a->pending == 0 && a->p->slabs[a->slab].adopted && !a->p->slabs[a->slab].ready) {
        adopt_end(a);       /* every server answered (or none was up to ask) */
        return;
    }
    pool_adopt_cb cb = a->cb;
    void *carg = a->arg;
    uint32_t slab = a->slab;
    adopt_drop(a);
    cb(carg, 0, slab);
}

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
                                                    .gen = p->srv[srv]->gen, .inc = p->srv[srv]->inc,
                                                    .ok = true };
    }
    if (--a->pending == 0)
        evloop_defer(p->el, &a->deliver);
}

static void adopt_dir(void *arg, int n, const char (*addrs)[128]);

void pool_adopt(struct pool *p, uint64_t uid, pool_adopt_cb cb, void *arg)
{
    struct adopt *a = xcalloc(1, sizeof(*a));
    if (!a) {
        xalloc_fail("pool: adopting slab %016llx", (unsigned long long)uid);
        fail_oom(p, &(struct oom_fail){ .kind = OOM_ADOPT, .cb.a = cb, .arg = arg });
        return;
    }
    *a = (struct adopt){ .p = p, .uid = uid, .cb = cb, .arg = arg };
    evloop_defer_init(&a->deliver, adopt_deliver, a);
    LIST_INSERT_HEAD(&p->adopts, a, link);
    for (uint32_t i = 0; i < p->nslabs; i++)
        if (p->slabs[i].used && p->slabs[i].uid == uid) {
            a->slab = i;
            evloop_defer(p->el, &a->deliver);   /* never inside the call */
            return;
        }
    int64_t i = slab_slot(p);
    if (i < 0) {
        xalloc_fail("pool: a slab table entry for slab %016llx", (unsigned long long)uid);
        adopt_drop(a);
        fail_oom(p, &(struct oom_fail){ .kind = OOM_ADOPT, .cb.a = cb, .arg = arg });
        return;
    }
    /* A page is in use once a loaded volume holds it (pool_page_hold). */
    struct pslab *ps = &p->slabs[i];
    ps->adopted = true;
    ps->uid = uid;
    a->slab = (uint32_t)i;
    if (p->dir && p->dir->get(p->dir->ctx, uid, adopt_dir, a) == 0) {
        return;
    }
    ask(a, NULL, -1);
}

/* SLAB_FIND to the servers named (n >= 0), or to every live one (n < 0). */
static void ask(struct adopt *a, const char (*addrs)[128], int n)
{
    struct pool *p = a->p;
    a->pending = 1;     /* held while asking, so a synchronous failure cannot end it early */
    a->asked_all = n < 0;
    struct proto_msg m = { .type = PROTO_SLAB_FIND };
    m.u.slab_alloc.uid = a->uid;
    /* Counted before the post: one that fails synchronously answers
     * (adopt_found, NULL) inside pool_ctl, and must find its count there. */
    for (int k = 0; k < p->nsrv; k++) {
        bool listed = n < 0;
        for (int i = 0; i < n && !listed; i++)
            listed = !strcmp(addrs[i], p->srv[k]->addr);
        if (!listed)
            continue;
        a->pending++;
        if (pool_ctl(p, k, &m, adopt_found, a) != 0)
            a->pending--;
    }
    if (--a->pending == 0)
        evloop_defer(p->el, &a->deliver);
}

static void adopt_dir(void *arg, int n, const char (*addrs)[128])
{
    struct adopt *a = arg;
    ask(a, addrs, n);
}

void adopt_free_all(struct pool *p)
{
    struct adopt *a;
    while ((a = LIST_FIRST(&p->adopts)))
        adopt_drop(a);
}
