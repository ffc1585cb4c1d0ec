/* pool.c — the pool client's lifecycle: pool_new from struct pool_opts, the
 * tick that drives every server, the done queue every completion goes
 * through, and stats.  See pool.h for the contract, pool_int.h for the map
 * of the other files.
 *
 * Shape: one fabric endpoint per memory server (srvconn.c).  Work for a
 * server is a "server op" (sop.c).  Writes are gathered per loop turn and go
 * out as runs to every replica (pwrite.c); reads go to the least busy good
 * replica, gathered per server where that pays (pread.c); a slab that lost a
 * replica is copied to another server one slab at a time (rebuild.c).
 */
#include "pool_int.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Static_assert(POOL_KEY_BYTES == MEMX_KEY_BYTES, "pool.h's key size is the configuration's");

/* ---- completions ---- */

static void deliver(struct evloop *el, void *arg);

static void recopy_run(struct evloop *el, void *arg);

void finish(struct pool *p, struct req *r, int status)
{
    r->status = status;
    r->finished = true;
    if (status < 0)
        p->st.errors++;
    else
        histo_record(&p->t[r->kind == R_READ ? POOL_T_READ : POOL_T_WRITE], evloop_now_ns() - r->t_ns);
    STAILQ_INSERT_TAIL(&p->done, r, link);
    evloop_defer(p->el, &p->deliver);
}

void fail_oom(struct pool *p, const struct oom_fail *f)
{
    p->st.errors++;
    if (p->noom < OOM_FAILS) {
        p->oom[p->noom++] = *f;
        evloop_defer(p->el, &p->deliver);
        return;
    }
    /* OOM_FAILS failures in one turn and still no memory: the one case a
     * callback runs inside its call, rather than never (a hung guest) or
     * abort() (every guest of the host). */
    switch (f->kind) {
    case OOM_WRITE: f->cb.w(f->arg, -ENOMEM, 0); break;
    case OOM_READ: f->cb.r(f->arg, -ENOMEM); break;
    case OOM_ADOPT: f->cb.a(f->arg, -ENOMEM, 0); break;
    }
}

/* Runs at the end of the loop turn, so evloop_run_once() returns right after
 * the callbacks instead of sleeping once more first. */
static void deliver(struct evloop *el, void *arg)
{
    struct pool *p = arg;
    /* Take the lists first: callbacks may start I/O that finishes at once. */
    struct req_list l = STAILQ_HEAD_INITIALIZER(l);
    STAILQ_CONCAT(&l, &p->done);
    struct oom_fail f[OOM_FAILS];
    unsigned nf = p->noom;
    memcpy(f, p->oom, nf * sizeof(*f));
    p->noom = 0;
    struct req *r;
    while ((r = STAILQ_FIRST(&l))) {
        STAILQ_REMOVE_HEAD(&l, link);
        if (r->kind == R_WRITE)
            r->wcb(r->arg, r->status, r->status < 0 ? 0 : r->page);
        else
            r->rcb(r->arg, r->status);
        r->delivered = true;
        /* A hedged read's other sop, or a late replica's write, is still
         * out: the last one puts it back. */
        if (r->kind == R_WRITE ? r->pending == 0 : r->nsops == 0)
            STAILQ_INSERT_HEAD(&p->free_reqs, r, link);
    }
    for (unsigned i = 0; i < nf; i++)
        switch (f[i].kind) {
        case OOM_WRITE: f[i].cb.w(f[i].arg, -ENOMEM, 0); break;
        case OOM_READ: f[i].cb.r(f[i].arg, -ENOMEM); break;
        case OOM_ADOPT: f[i].cb.a(f[i].arg, -ENOMEM, 0); break;
        }
}

/* NULL out of memory (the caller fails the op through fail_oom). */
struct req *req_new(struct pool *p, enum req_kind kind, void *arg)
{
    struct req *r = STAILQ_FIRST(&p->free_reqs);
    if (r) {
        STAILQ_REMOVE_HEAD(&p->free_reqs, link);
        memset(r, 0, offsetof(struct req, hash));   /* hash is set before it is read (verify) */
    } else if (!(r = xcalloc(1, sizeof(*r)))) {
        xalloc_fail("pool: a %s request", kind == R_READ ? "read" : "write");
        return NULL;
    }
    r->kind = kind;
    r->arg = arg;
    r->t_ns = evloop_now_ns();
    return r;
}

/* ---- pages ---- */

pool_page_t make_page(uint32_t slab, uint32_t page)
{
    return ((uint64_t)(slab + 1) << 32) | page;
}

bool split_page(const struct pool *p, pool_page_t pg, uint32_t *slab, uint32_t *page)
{
    uint64_t s = pg >> 32;
    if (s == 0 || s > p->nslabs || (uint32_t)pg >= p->pages_per_slab || !p->slabs[s - 1].used)
        return false;
    *slab = (uint32_t)(s - 1);
    *page = (uint32_t)pg;
    return true;
}

bool pool_page_follows(pool_page_t a, pool_page_t b)
{
    return b == a + 1 && (b >> 32) == (a >> 32);
}

/* ---- servers, as the rest of the pool sees them ---- */

/* Whether a server may still come up for the first time: one not tried yet,
 * or (no server known yet: etcd mode, they arrive after start) the time a
 * first connection may take. */
bool any_first_connect(const struct pool *p)
{
    if (p->nsrv == 0)
        return evloop_now_ms() < p->born_ms + SRV_HELLO_TIMEOUT_MS;
    for (int i = 0; i < p->nsrv; i++)
        if (!p->srv[i]->tried_once && !p->srv[i]->gone)
            return true;
    return false;
}

const struct place_srv *pool_place_view(struct pool *p)
{
    struct place_srv *out = p->place_sv;
    for (int i = 0; i < p->nsrv; i++) {
        const struct server *s = p->srv[i];
        /* A server known late (a write of ours waited WRITE_LATE_MS there) takes no new slab or copy
         * until it answers again while another can: each slab built there would stall the writes
         * waiting for it (place.c). */
        out[i] = (struct place_srv){ .up = s->state == SRV_UP, .late = s->late, .full = s->full,
                                     .draining = s->draining, .free = srv_free(s) };
    }
    return out;
}

/* A replica counts as holding a copy for placement while it may still be
 * good (ok, or away and revalidatable): a rebuild never stacks a second
 * copy on its server.  A dead one does not. */
int pool_rep_view(const struct pslab *ps, struct place_rep out[REP_SLOTS])
{
    for (int i = 0; i < ps->nrep; i++)
        out[i] = (struct place_rep){ .srv = ps->rep[i].srv, .ok = !ps->rep[i].dead };
    return ps->nrep;
}

void orphan_add(struct server *s, uint32_t id)
{
    if (s->norphans == s->orphans_cap) {
        size_t cap = s->orphans_cap ? s->orphans_cap * 2 : 16;
        uint32_t *n = xreallocarray(s->orphans, cap, sizeof(*n));
        if (!n)
            return;     /* the slab stays allocated there until the server restarts */
        s->orphans = n;
        s->orphans_cap = cap;
    }
    s->orphans[s->norphans++] = id;
}

void pool_no_server_check(struct pool *p)
{
    if (p->building < 0 && !STAILQ_EMPTY(&p->waiting) && !pool_live_servers(p) && !any_first_connect(p))
        fail_waiting(p, -EHOSTUNREACH);    /* nothing stored: the caller may try again */
}

void pool_srv_down(struct server *s, bool was_up)
{
    struct pool *p = s->p;
    /* Its replicas (of built slabs and of slabs still being built alike) stop
     * being read and start recording the writes they miss: intact there, they
     * are revalidated if it comes back as the same process (replica.c). */
    reps_server_down(p, s);
    srv_flush(s);
    rb_check_state(p);
    if (!was_up)
        kick_slab(p);   /* writes waiting on first connects may now have an answer */
    pool_no_server_check(p);
}

void pool_srv_up(struct server *s, bool same_incarnation)
{
    struct pool *p = s->p;
    if (same_incarnation && s->norphans)
        srv_info(s, "back after a cut; freeing the %zu slabs the pool gave back meanwhile", s->norphans);
    /* Invariant: an orphan is a slab whose every page the pool gave back. */
    for (size_t i = 0; same_incarnation && i < s->norphans; i++)
        rb_free_remote(p, s->idx, s->orphans[i], true);
    s->norphans = 0;
    reps_server_up(p, s, same_incarnation);
    rb_check_state(p);
    kick_slab(p);
}

/* ---- lifecycle ---- */

static int tick(struct evloop *el, long long id, void *arg)
{
    struct pool *p = arg;
    uint64_t now = evloop_now_ms();
    for (int i = 0; i < p->nsrv; i++)
        srv_tick(p->srv[i], now);
    for (uint32_t i = 0; i < p->nslabs; i++) {
        if (p->slabs[i].used)
            slab_trim(p, i);
        slab_give_back(p, i);           /* one emptied while a late op was out */
    }
    rb_check_state(p);
    rb_step(p);
    pool_no_server_check(p);    /* the wait for a first server has a bound */
    return TICK_MS;
}

void pool_opts_init(struct pool_opts *o)
{
    *o = (struct pool_opts){ .replicas = 2, .slab_size = 8u << 20, .provider = "tcp;ofi_rxm" };
}

struct pool *pool_new(struct evloop *el, const struct pool_opts *o, const uint8_t key[POOL_KEY_BYTES],
                      char *err, size_t errlen)
{
    if (o->nservers < 0) {
        snprintf(err, errlen, "[cluster] servers: a negative count");
        return NULL;
    }
    if (o->slab_size == 0 || o->slab_size / POOL_PAGE_SIZE % 64) {
        snprintf(err, errlen, "[cluster] slab_size: must be a multiple of 256K");
        return NULL;
    }
    if (o->replicas < 1 || o->replicas > MAX_REPLICAS) {
        snprintf(err, errlen, "[cluster] replicas: must be 1 to %d", MAX_REPLICAS);
        return NULL;
    }
    if (auth_init()) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    struct pool *p = xcalloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->el = el;
    memcpy(p->key, key, POOL_KEY_BYTES);
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    if (o->node_id && o->node_id[0])
        snprintf(p->id, sizeof(p->id), "%s", o->node_id);
    else
        snprintf(p->id, sizeof(p->id), "backd@%.40s", host);
    p->replicas = o->replicas;
    p->gather_reads = o->gather_reads;
    p->slab_size = o->slab_size;
    p->pages_per_slab = (uint32_t)(o->slab_size / POOL_PAGE_SIZE);
    p->building = -1;
    p->born_ms = evloop_now_ms();
    p->rnd = rand;
    STAILQ_INIT(&p->waiting);
    STAILQ_INIT(&p->done);
    STAILQ_INIT(&p->free_sops);
    STAILQ_INIT(&p->gather);
    STAILQ_INIT(&p->free_reqs);
    LIST_INIT(&p->adopts);
    evloop_defer_init(&p->deliver, deliver, p);
    evloop_defer_init(&p->turn_end, turn_end, p);
    evloop_defer_init(&p->recopy, recopy_run, p);
    if (o->nservers && p->replicas > o->nservers)
        pool_warn("[cluster] replicas = %d but only %d memory servers are configured: degraded",
                  p->replicas, o->nservers);
    snprintf(p->provider, sizeof(p->provider), "%s", o->provider ? o->provider : "tcp;ofi_rxm");
    /* A provider that cannot open is a configuration error, reported now. */
    if (srv_probe(el, p->provider, err, errlen)) {
        free(p);
        return NULL;
    }
    if ((p->tick = evloop_add_timer(el, TICK_MS, tick, p)) < 0) {
        snprintf(err, errlen, "pool: cannot hook onto the event loop");
        free(p);
        return NULL;
    }
    for (int i = 0; i < o->nservers; i++) {
        char why[200];
        if (pool_add_server(p, o->servers[i], why, sizeof(why))) {
            snprintf(err, errlen, "[cluster] servers: %s", why);
            pool_free(p);
            return NULL;
        }
    }
    return p;
}

/* ---- membership ---- */

static struct server *find_server(const struct pool *p, const char *addr)
{
    for (int i = 0; i < p->nsrv; i++)
        if (strcmp(p->srv[i]->addr, addr) == 0)
            return p->srv[i];
    return NULL;
}

/* Room for one more server in the table and the placement snapshot. */
static int srv_table_grow(struct pool *p)
{
    if (p->nsrv < p->srv_cap)
        return 0;
    int cap = p->srv_cap ? p->srv_cap * 2 : 8;
    struct server **ns = xreallocarray(p->srv, (size_t)cap, sizeof(*ns));
    if (!ns)
        return -1;
    p->srv = ns;
    struct place_srv *pv = xreallocarray(p->place_sv, (size_t)cap, sizeof(*pv));
    if (!pv)
        return -1;      /* p->srv is bigger, srv_cap not: consistent, retried next time */
    p->place_sv = pv;
    p->srv_cap = cap;
    return 0;
}

int pool_add_server(struct pool *p, const char *addr, char *err, size_t errlen)
{
    char host[POOL_ADDR_MAX], port[16];
    if (strlen(addr) >= POOL_ADDR_MAX || memx_split_hostport(addr, host, sizeof(host), port, sizeof(port))) {
        snprintf(err, errlen, "'%.*s': not host:port", POOL_ADDR_MAX, addr);
        return -1;
    }
    struct server *s = find_server(p, addr);
    if (s && !s->gone)
        return 0;
    if (s) {
        /* Its replicas are away, not dead: reconnecting revalidates those
         * the same process still holds (replica.c), like any reconnect. */
        s->gone = false;
        srv_info(s, "back in the membership: reconnecting");
        srv_connect(s);
        return 0;
    }
    if (srv_table_grow(p) || !(s = xcalloc(1, sizeof(*s)))) {
        xalloc_fail("pool: memory server %s", addr);
        snprintf(err, errlen, "out of memory for memory server %s", addr);
        return -1;
    }
    srv_init(s, p, p->nsrv, addr);
    p->srv[p->nsrv++] = s;
    srv_info(s, "joined the pool (%d servers known)", p->nsrv);
    srv_connect(s);
    return 0;
}

int pool_remove_server(struct pool *p, const char *addr)
{
    struct server *s = find_server(p, addr);
    if (!s)
        return -1;
    if (s->gone)
        return 0;
    s->gone = true;
    srv_warn(s, "left the membership: disconnected, its replicas re-replicated elsewhere");
    /* Invariant: a removed server's replicas are never freed on it by us
     * (it is gone) and nothing else is freed for it: they turn away
     * (untrusted, their missed writes tracked) exactly as a dead server's,
     * and re-replication copies each slab from a good replica elsewhere. */
    srv_down(s, "left the membership");
    return 0;
}

static void free_reqs(struct req_list *l)
{
    struct req *r;
    while ((r = STAILQ_FIRST(l))) {
        STAILQ_REMOVE_HEAD(l, link);
        free(r);
    }
}

static void free_sop_list(struct sop_list *l, bool free_reads)
{
    struct sop *o;
    while ((o = STAILQ_FIRST(l))) {
        STAILQ_REMOVE_HEAD(l, link);
        if (free_reads)
            read_sop_drop(o->req);
        free(o->buf);
        free(o);
    }
}

void pool_free(struct pool *p)
{
    if (!p)
        return;
    evloop_del_timer(p->el, p->tick);
    if (p->hedge_timer)
        evloop_del_timer(p->el, p->hedge_timer);
    evloop_defer_cancel(p->el, &p->deliver);
    evloop_defer_cancel(p->el, &p->turn_end);
    evloop_defer_cancel(p->el, &p->recopy);
    adopt_free_all(p);
    for (int i = 0; i < p->nsrv; i++) {
        struct server *s = p->srv[i];
        srv_close(s);
        free_sop_list(&s->gathered, true);
    }
    /* Requests still in flight are dropped with the pool.  A write's request is
     * shared by its replica sops: the last one holding it frees it. */
    for (int i = 0; i < p->nsrv; i++) {
        struct server *s = p->srv[i];
        for (int k = 0; k < SRV_MAX_INFLIGHT; k++)
            if (s->slots[k]) {
                STAILQ_INSERT_HEAD(&s->queue, s->slots[k], link);
                s->slots[k] = NULL;
            }
        struct sop *o;
        while ((o = STAILQ_FIRST(&s->queue))) {
            STAILQ_REMOVE_HEAD(&s->queue, link);
            if (o->kind == SOP_READ)
                read_sop_drop(o->req);
            for (unsigned k = 0; o->kind == SOP_READV && k < o->nmem; k++) {
                read_sop_drop(o->mem[k]->req);
                free(o->mem[k]);
            }
            for (unsigned k = 0; o->kind == SOP_WRITE && k < o->npages; k++)
                write_sop_drop(o->run[k]);
            free(o->buf);
            free(o);
        }
    }
    free_reqs(&p->waiting);
    free_reqs(&p->gather);
    free_reqs(&p->done);
    free_reqs(&p->free_reqs);
    free_sop_list(&p->free_sops, false);
    for (uint32_t i = 0; i < p->nslabs; i++) {
        slots_fini(&p->slabs[i].slots);
        for (int r = 0; r < REP_SLOTS; r++)
            rep_release(&p->slabs[i].rep[r]);
    }
    free(p->slabs);
    for (int i = 0; i < p->nsrv; i++)
        free(p->srv[i]);
    free(p->srv);
    free(p->place_sv);
    explicit_bzero(p->key, sizeof(p->key));
    free(p);
}

/* ---- introspection ---- */

struct evloop *pool_evloop(const struct pool *p) { return p->el; }

int pool_live_servers(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < p->nsrv; i++)
        n += p->srv[i]->state == SRV_UP;
    return n;
}

void pool_get_timing(const struct pool *p, struct histo out[POOL_T_N])
{
    memcpy(out, p->t, sizeof(p->t));
}

/* ---- re-replicated slabs owe their pages' records (cluster.h) ---- */

static void recopy_run(struct evloop *el, void *arg)
{
    struct pool *p = arg;
    (void)el;
    if (p->recopy_cb)
        p->recopy_cb(p->recopy_arg);
}

void recopy_note(struct pool *p, uint32_t slab)
{
    p->slabs[slab].recopied = true;
    evloop_defer(p->el, &p->recopy);
}

void pool_set_recopy_cb(struct pool *p, void (*cb)(void *arg), void *arg)
{
    p->recopy_cb = cb;
    p->recopy_arg = arg;
}

bool pool_page_recopied(const struct pool *p, pool_page_t page)
{
    uint32_t slab, pg;
    return split_page(p, page, &slab, &pg) && p->slabs[slab].recopied;
}

int pool_page_servers(const struct pool *p, pool_page_t page, int *out, int max)
{
    uint32_t slab, pg;
    if (!split_page(p, page, &slab, &pg))
        return 0;
    const struct pslab *ps = &p->slabs[slab];
    int n = 0;
    for (int i = 0; i < ps->nrep && n < max; i++)
        if (rep_live(p, &ps->rep[i]))
            out[n++] = ps->rep[i].srv;
    return n;
}

void pool_recopied_clear(struct pool *p)
{
    for (uint32_t i = 0; i < p->nslabs; i++)
        p->slabs[i].recopied = false;
}

void pool_get_stats(const struct pool *p, struct pool_stats *st)
{
    *st = p->st;
    st->rereplicated_pages = p->rerep_pages;
    st->rebuilding = p->rb.active;
    st->servers = p->nsrv;
    st->live_servers = pool_live_servers(p);
}

/* An up server being drained shows as "draining" until it holds no replica,
 * then "drained". */
static const char *const state_names[] = { "connecting", "up", "down", "refused" };

int pool_nservers(const struct pool *p) { return p->nsrv; }

int pool_get_servers(const struct pool *p, struct pool_server_info *out, int max)
{
    for (int i = 0; i < p->nsrv && i < max; i++) {
        const struct server *s = p->srv[i];
        const char *prov = srv_provider(s);
        snprintf(out[i].addr, sizeof(out[i].addr), "%s", s->addr);
        snprintf(out[i].provider, sizeof(out[i].provider), "%s", prov ? prov : p->provider);
        out[i].state = state_names[s->state];
        out[i].replicas = 0;
        for (uint32_t k = 0; k < p->nslabs; k++)
            for (int r = 0; r < p->slabs[k].nrep; r++)
                out[i].replicas += p->slabs[k].used && p->slabs[k].rep[r].ok && p->slabs[k].rep[r].srv == i;
        if (s->state == SRV_UP && s->draining)
            out[i].state = out[i].replicas ? "draining" : "drained";
        if (s->gone)
            out[i].state = "gone";
        out[i].capacity = s->capacity;
        out[i].used = s->used;
    }
    return p->nsrv;
}

int pool_up_servers(const struct pool *p, int *out, int max)
{
    int n = 0;
    for (int i = 0; i < p->nsrv && n < max; i++)
        if (p->srv[i]->state == SRV_UP)
            out[n++] = i;
    return n;
}

const char *pool_node_id(const struct pool *p) { return p->id; }

void pool_set_directory(struct pool *p, const struct pool_dir_ops *ops) { p->dir = ops; }

void dir_note(struct pool *p, uint32_t slab)
{
    const struct pslab *ps = &p->slabs[slab];
    if (!p->dir || !ps->used || !ps->uid)
        return;
    const char *addrs[REP_SLOTS];
    int n = 0;
    for (int i = 0; i < ps->nrep; i++)
        if (ps->rep[i].srv >= 0 && ps->rep[i].inc && !ps->rep[i].dead)
            addrs[n++] = p->srv[ps->rep[i].srv]->addr;
    p->dir->put(p->dir->ctx, ps->uid, p->slab_size, addrs, n);
}

void dir_forget(struct pool *p, uint64_t uid)
{
    if (p->dir && uid)
        p->dir->del(p->dir->ctx, uid);
}

bool pool_connecting(const struct pool *p) { return any_first_connect(p); }
int pool_replicas(const struct pool *p) { return p->replicas; }

int pool_member_servers(const struct pool *p)
{
    int n = 0;
    for (int i = 0; i < p->nsrv; i++)
        n += !p->srv[i]->gone;
    return n;
}

const char *pool_server_addr(const struct pool *p, int srv)
{
    return srv >= 0 && srv < p->nsrv ? p->srv[srv]->addr : "?";
}

uint64_t pool_server_inc(const struct pool *p, int srv)
{
    return srv >= 0 && srv < p->nsrv ? p->srv[srv]->inc : 0;
}
