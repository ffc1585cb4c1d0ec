/* volume.c — named volumes over the pool; see volume.h.
 *
 * Layout of one volume:
 *   map      two-level page map (a top array of leaf pointers, leaves of
 *            LEAF_N entries allocated on first write), so a 1 TiB volume costs
 *            512 KiB of (lazily zeroed) top array until it is written.  An
 *            entry is a pool page handle, or 0 with a bit in the leaf's zero
 *            bitmap for "written as zeros", or 0 alone for "never written".
 *   active   a hash of the pages that have writes in flight: the per-page
 *            issue/apply sequence numbers (later-issued write wins whatever the
 *            completion order) and the queue of read-modify-writes waiting for
 *            the page to go idle.
 *   writes   in-flight writes and discards in issue order, for flush.
 *
 * Pool page references live in one place, the volumes table (struct volumes):
 * a page has one implicit reference (the map entry) and only pages with more
 * (a read in flight on a page being replaced, de-duplicated pages shared by
 * several entries of any volumes) have a row in refs.  The last put frees it.
 *
 * De-duplication (dedup.h holds the content index): a full page about to be
 * stored is hashed, and each stored page with that hash is compared byte for
 * byte (from the index's byte cache, else read back from the pool) before the
 * new entry shares it.  Sharing is copy-on-write for free: writes go out of
 * place anyway, so an overwrite or discard of one copy only drops a reference.
 * A replayed write of the same bytes shares the page its entry already holds:
 * the refcount ends where it was.  A map entry remembers whether its write
 * stored the page or shared one (the leaf's dup bitmap), for the statistics.
 * The index itself is not saved anywhere: a restarted backend rebuilds it from
 * the volume records it loads (each carries its page's hash), and the
 * refcounts from how many loaded entries name each page.
 */
#include "volume.h"

#include "config.h"
#include "dedup.h"
#include "evloop.h"
#include "log.h"
#include "cluster.h"
#include "volmeta.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SECTORS_PER_PAGE (VOLUME_PAGE_SIZE / VOLUME_SECTOR_SIZE)
#define LEAF_BITS 12
#define LEAF_N    (1u << LEAF_BITS)
#define MAX_CAND  4     /* stored pages compared per hash hit (more than one only after a collision) */

/* ---- small helpers ----------------------------------------------------- */

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (!p) {
        mx_err("volume: out of memory (%zu bytes)", n * sz);
        abort();
    }
    return p;
}

static bool page_is_zero(const uint8_t *p)
{
    return p[0] == 0 && memcmp(p, p + 1, VOLUME_PAGE_SIZE - 1) == 0;
}

/* Chained hash keyed by uint64; nodes are embedded in their owners. */
struct hnode {
    uint64_t key;
    struct hnode *next;
};

struct htab {
    struct hnode **b;
    size_t nb, n;
};

static size_t ht_slot(const struct htab *t, uint64_t key)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (t->nb - 1);
}

static struct hnode *ht_find(const struct htab *t, uint64_t key)
{
    if (!t->n)
        return NULL;
    for (struct hnode *n = t->b[ht_slot(t, key)]; n; n = n->next)
        if (n->key == key)
            return n;
    return NULL;
}

static void ht_insert(struct htab *t, struct hnode *node)
{
    if (t->n >= t->nb) {
        struct htab nt = { xcalloc(t->nb ? t->nb * 2 : 16, sizeof(*nt.b)), t->nb ? t->nb * 2 : 16, 0 };
        for (size_t i = 0; i < t->nb; i++)
            for (struct hnode *n = t->b[i], *next; n; n = next) {
                next = n->next;
                size_t s = ht_slot(&nt, n->key);
                n->next = nt.b[s];
                nt.b[s] = n;
            }
        free(t->b);
        nt.n = t->n;
        *t = nt;
    }
    size_t s = ht_slot(t, node->key);
    node->next = t->b[s];
    t->b[s] = node;
    t->n++;
}

static void ht_remove(struct htab *t, struct hnode *node)
{
    for (struct hnode **pp = &t->b[ht_slot(t, node->key)]; *pp; pp = &(*pp)->next)
        if (*pp == node) {
            *pp = node->next;
            t->n--;
            return;
        }
}

/* ---- types -------------------------------------------------------------- */

/* ENT_LOST: the volume's records name a page no live server holds (loaded
 * after more servers died than there were copies): reads fail, never zeros. */
enum ent_kind { ENT_NONE, ENT_ZERO, ENT_PAGE, ENT_LOST };

struct ent {
    enum ent_kind kind;
    pool_page_t page;
    bool dup;               /* ENT_PAGE: the write shared a page already stored */
    uint8_t hash[16];       /* ENT_PAGE: XXH3-128 of its bytes (the record's check) */
};

struct leaf {
    pool_page_t page[LEAF_N];
    uint64_t zero[LEAF_N / 64];
    uint64_t dup[LEAF_N / 64];
    uint64_t lost[LEAF_N / 64];
    uint32_t used;          /* entries not ENT_NONE; the leaf goes when it drops to 0 */
    uint8_t hash[LEAF_N][16];
};

enum req_kind { REQ_READ, REQ_WRITE, REQ_DISCARD, REQ_FLUSH };

struct req {
    struct volume *v;
    enum req_kind kind;
    volume_cb cb;
    void *arg;
    int status;             /* first error wins */
    unsigned pending;       /* page ops in flight, +1 while the request is being issued */
    uint64_t t0;
    uint64_t wid;           /* writes/discards: issue order; flush: the last wid it covers */
    struct req *prev, *next;/* writes/discards: the in-flight list; flush: the flush queue */
    struct req *dnext;      /* the deferred-completion queue */
    struct pop *run;        /* reads: the run of pages being gathered, not yet issued */
};

struct active {
    struct hnode h;         /* key: logical page index */
    uint64_t issued, applied;
    unsigned busy;          /* page writes in flight, including a running RMW */
    struct pop *wq, **wq_tail;  /* RMWs waiting for busy == 0 */
};

struct pop {
    struct req *r;
    struct active *a;
    uint64_t idx;
    uint32_t off, len;      /* byte range inside the page */
    uint8_t *buf;           /* the caller's bytes for this range; NULL: zeros (discard edge) */
    uint64_t seq;
    uint64_t rseq;          /* the volume record's sequence number, taken at issue */
    struct ent old;         /* what a finished write replaced, kept until its record is published */
    uint8_t phash[16];      /* storing: XXH3-128 of the page (the record's check) */
    pool_page_t src;        /* RMW/read: the page being read (a reference is held) */
    unsigned n;             /* read: pages in the run, src and the slots after it (a reference on each) */
    uint8_t (*rhash)[16];   /* read: the run's record hashes, once it has more than one page */
    bool was_none;          /* RMW: the page was never written (a discard edge keeps it so) */
    uint8_t *bounce;
    struct pop *next;
    /* storing a full page (store_page) */
    const uint8_t *data;
    struct dedup_hash hash;
    bool hashed;                    /* de-duplicated: hash is set */
    pool_page_t cand[MAX_CAND];     /* stored pages with the same hash, a reference held on each untried one */
    unsigned ncand, ci;
    uint8_t *cmp;                   /* a candidate's bytes read back from the pool */
};

/* A request that arrived while the volume was loading from the pool. */
enum held_kind { H_READ, H_WRITE, H_DISCARD, H_FLUSH };
struct held {
    enum held_kind kind;
    uint64_t sector, nsect;
    void *buf;
    volume_cb cb;
    void *arg;
    struct held *next;
};

struct pref {
    struct hnode h;         /* key: pool page */
    uint64_t refs;          /* always >= 2: a page with one reference has no row */
};

struct volume {
    struct volumes *vs;
    char name[VOLUME_NAME_MAX];
    char owner[64];
    uint64_t size, npages;
    struct leaf **top;
    size_t ntop;
    struct htab active;
    struct req *wfirst, *wlast;     /* in-flight writes/discards, oldest first */
    struct req *ffirst, *flast;     /* flushes waiting, oldest first */
    uint64_t next_wid;
    unsigned inflight;              /* requests of every kind not yet completed */
    bool nodedup;                   /* the target said dedup=no */
    /* Metadata in the pool (volmeta.h): the volume is usable once loaded;
     * I/O that arrives while it loads waits in held. */
    struct volmeta *meta;
    enum { V_LOADING, V_READY, V_FAILED } state;
    char load_err[200];
    struct held *held, **held_tail;
    int load_tries;
    long long load_timer;
    struct volume_stats st;
};

struct volumes {
    struct pool *pool;
    struct evloop *el;
    bool dedup;
    bool persist;                   /* volumes keep their metadata in the pool (volmeta.h) */
    int efd;
    struct req *dfirst, *dlast;     /* requests done during their own issue, to complete from the loop */
    struct htab refs;
    struct dedup *dd;               /* NULL: de-duplication off */
    uint64_t live;                  /* pool pages held (each counted once however shared) */
    uint64_t logical, zero, entries;/* host-wide sums of the maps' entries */
    uint64_t hits, late_hits, collisions, compare_reads;
    struct volume **v;
    size_t n, cap;
    struct pop *free_pops;
};

/* ---- target strings ------------------------------------------------------ */

/* One option after the size; the only one so far is de-duplication. */
static int parse_option(const char *target, const char *o, size_t len, struct volume_opts *opts,
                        char *err, size_t errlen)
{
    static const char key[] = "dedup=";
    size_t kl = sizeof(key) - 1;
    if (len > kl && strncmp(o, key, kl) == 0) {
        if (len - kl == 3 && strncmp(o + kl, "yes", 3) == 0) {
            opts->dedup = true;
            return 0;
        }
        if (len - kl == 2 && strncmp(o + kl, "no", 2) == 0) {
            opts->dedup = false;
            return 0;
        }
    }
    snprintf(err, errlen, "target '%s': unknown option '%.*s' (known: dedup=yes, dedup=no)", target,
             (int)len, o);
    return -1;
}

int volume_parse_target_opts(const char *target, char *name, size_t namelen, uint64_t *size,
                             struct volume_opts *opts, char *err, size_t errlen)
{
    static const char prefix[] = "memx:";
    if (strncmp(target, prefix, sizeof(prefix) - 1) != 0) {
        snprintf(err, errlen, "target '%s': expected memx:<volume>:<size>", target);
        return -1;
    }
    const char *n = target + sizeof(prefix) - 1;
    const char *colon = strchr(n, ':');
    if (!colon) {
        snprintf(err, errlen, "target '%s': missing size (expected memx:<volume>:<size>)", target);
        return -1;
    }
    size_t len = (size_t)(colon - n);
    bool ok = len >= 1 && len < VOLUME_NAME_MAX && len < namelen;
    for (size_t i = 0; ok && i < len; i++) {
        char c = n[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '_' || c == '-';
    }
    if (!ok) {
        snprintf(err, errlen, "target '%s': volume name must be 1..%d characters of [A-Za-z0-9._-]",
                 target, VOLUME_NAME_MAX - 1);
        return -1;
    }
    const char *s = colon + 1, *send = strchr(s, ':');
    size_t slen = send ? (size_t)(send - s) : strlen(s);
    char sbuf[32] = "";
    if (slen < sizeof(sbuf)) {
        memcpy(sbuf, s, slen);
        sbuf[slen] = '\0';
    }
    uint64_t sz;
    if (slen >= sizeof(sbuf) || memx_parse_size(sbuf, &sz) < 0) {
        snprintf(err, errlen, "target '%s': '%.*s' is not a size (use e.g. 512M, 2G)", target, (int)slen, s);
        return -1;
    }
    if (sz == 0 || sz % VOLUME_PAGE_SIZE) {
        snprintf(err, errlen, "target '%s': size must be a non-zero multiple of 4K", target);
        return -1;
    }
    struct volume_opts o = { .dedup = true };
    for (const char *p = send; p; p = strchr(p + 1, ':')) {
        const char *e = strchr(p + 1, ':');
        size_t olen = e ? (size_t)(e - p - 1) : strlen(p + 1);
        if (parse_option(target, p + 1, olen, &o, err, errlen) < 0)
            return -1;
    }
    memcpy(name, n, len);
    name[len] = '\0';
    *size = sz;
    if (opts)
        *opts = o;
    return 0;
}

int volume_parse_target(const char *target, char *name, size_t namelen, uint64_t *size,
                        char *err, size_t errlen)
{
    return volume_parse_target_opts(target, name, namelen, size, NULL, err, errlen);
}

/* ---- page references (the one place a pool page's refcount lives) ------- */

static void page_get(struct volumes *vs, pool_page_t page)
{
    struct pref *r = (struct pref *)ht_find(&vs->refs, page);
    if (r) {
        r->refs++;
        return;
    }
    r = xcalloc(1, sizeof(*r));
    r->h.key = page;
    r->refs = 2;
    ht_insert(&vs->refs, &r->h);
}

static void page_put(struct volumes *vs, pool_page_t page)
{
    struct pref *r = (struct pref *)ht_find(&vs->refs, page);
    if (!r) {
        if (vs->dd)
            dedup_forget(vs->dd, page);
        vs->live--;
        pool_free_page(vs->pool, page);
        return;
    }
    if (--r->refs == 1) {
        ht_remove(&vs->refs, &r->h);
        free(r);
    }
}

/* ---- the page map ---------------------------------------------------------- */

static struct ent map_get(const struct volume *v, uint64_t idx)
{
    const struct leaf *l = v->top[idx >> LEAF_BITS];
    unsigned i = idx & (LEAF_N - 1);
    if (!l)
        return (struct ent){ .kind = ENT_NONE, .page = 0, .dup = false };
    uint64_t bit = 1ull << (i % 64);
    if (l->page[i]) {
        struct ent e = { .kind = ENT_PAGE, .page = l->page[i], .dup = (l->dup[i / 64] & bit) != 0 };
        memcpy(e.hash, l->hash[i], 16);
        return e;
    }
    if (l->zero[i / 64] & bit)
        return (struct ent){ .kind = ENT_ZERO, .page = 0, .dup = false };
    if (l->lost[i / 64] & bit)
        return (struct ent){ .kind = ENT_LOST, .page = 0, .dup = false };
    return (struct ent){ .kind = ENT_NONE, .page = 0, .dup = false };
}

static void count(struct volume *v, struct ent e, int64_t d)
{
    struct volumes *vs = v->vs;
    if (e.kind == ENT_PAGE) {
        if (e.dup)
            v->st.dup_pages += (uint64_t)d;
        else
            v->st.stored_pages += (uint64_t)d;
        vs->entries += (uint64_t)d;
    } else if (e.kind == ENT_ZERO) {
        v->st.zero_pages += (uint64_t)d;
        vs->zero += (uint64_t)d;
    }
    if (e.kind != ENT_NONE) {
        v->st.logical_pages += (uint64_t)d;
        vs->logical += (uint64_t)d;
    }
}

/* Installs e and returns what was there; the caller releases the old page. */
static struct ent map_set(struct volume *v, uint64_t idx, struct ent e)
{
    struct leaf **lp = &v->top[idx >> LEAF_BITS];
    unsigned i = idx & (LEAF_N - 1);
    struct ent old = map_get(v, idx);
    /* A replayed write that shared the page it already had keeps its accounting. */
    if (e.kind == ENT_PAGE && old.kind == ENT_PAGE && e.page == old.page)
        e.dup = old.dup;
    if (!*lp) {
        if (e.kind == ENT_NONE)
            return old;
        *lp = xcalloc(1, sizeof(**lp));
    }
    struct leaf *l = *lp;
    uint64_t bit = 1ull << (i % 64);
    l->page[i] = e.kind == ENT_PAGE ? e.page : 0;
    if (e.kind == ENT_PAGE)
        memcpy(l->hash[i], e.hash, 16);
    if (e.kind == ENT_LOST)
        l->lost[i / 64] |= bit;
    else
        l->lost[i / 64] &= ~bit;
    if (e.kind == ENT_ZERO)
        l->zero[i / 64] |= bit;
    else
        l->zero[i / 64] &= ~bit;
    if (e.kind == ENT_PAGE && e.dup)
        l->dup[i / 64] |= bit;
    else
        l->dup[i / 64] &= ~bit;
    l->used += (e.kind != ENT_NONE) - (old.kind != ENT_NONE);
    count(v, old, -1);
    count(v, e, 1);
    if (!l->used) {
        free(l);
        *lp = NULL;
    }
    return old;
}

/* Applies a finished page write unless a later-issued one got there first. */
/* Like apply, but the replaced page is handed back in *old instead of let
 * go: with metadata in the pool it may be let go only once the servers hold
 * the record that replaces it (a fenced write must not free a page the
 * volume's new owner still reads). */
static bool install(struct volume *v, struct active *a, uint64_t idx, uint64_t seq, struct ent e,
                    struct ent *old)
{
    old->kind = ENT_NONE;
    if (a && seq <= a->applied) {
        if (e.kind == ENT_PAGE)
            page_put(v->vs, e.page);
        return false;
    }
    if (a)
        a->applied = seq;
    *old = map_set(v, idx, e);
    return true;
}

static bool apply(struct volume *v, struct active *a, uint64_t idx, uint64_t seq, struct ent e)
{
    struct ent old;
    bool done = install(v, a, idx, seq, e, &old);
    if (old.kind == ENT_PAGE)
        page_put(v->vs, old.page);
    return done;
}

/* The record replacing old is published (status 0) or not. */
static void release_old(struct volume *v, struct ent old, int status)
{
    if (old.kind != ENT_PAGE)
        return;
    if (status == -ESTALE)
        return;     /* the new owner's records may name it: never free it here */
    page_put(v->vs, old.page);
}

/* Tells the pool's servers what page idx now is (volmeta.h); cb runs when
 * they have it.  False when this volume keeps no metadata in the pool. */
static bool publish(struct volume *v, uint64_t idx, uint64_t rseq, const struct ent *e,
                    volmeta_pub_cb cb, void *arg)
{
    if (!v->meta)
        return false;
    struct proto_rec r = { .lpn = idx, .seq = rseq };
    if (e->kind == ENT_PAGE) {
        r.kind = PROTO_REC_PAGE;
        pool_page_locate(v->vs->pool, e->page, &r.uid, &r.page);
        memcpy(r.hash, e->hash, 16);
    } else {
        r.kind = e->kind == ENT_ZERO ? PROTO_REC_ZERO : PROTO_REC_NONE;
    }
    volmeta_publish(v->meta, &r, cb, arg);
    return true;
}

static uint64_t next_rseq(struct volume *v) { return v->meta ? volmeta_next_seq(v->meta) : 0; }

/* ---- requests ------------------------------------------------------------- */

static void kick(struct volumes *vs)
{
    uint64_t one = 1;
    if (write(vs->efd, &one, sizeof(one)) != sizeof(one))
        mx_err("volume: eventfd write: %s", strerror(errno));
}

static struct req *req_new(struct volume *v, enum req_kind kind, volume_cb cb, void *arg)
{
    struct req *r = xcalloc(1, sizeof(*r));
    r->v = v;
    r->kind = kind;
    r->cb = cb;
    r->arg = arg;
    r->pending = 1;
    r->t0 = evloop_now_ns();
    v->inflight++;
    if (kind == REQ_WRITE || kind == REQ_DISCARD) {
        r->wid = ++v->next_wid;
        r->prev = v->wlast;
        if (v->wlast)
            v->wlast->next = r;
        else
            v->wfirst = r;
        v->wlast = r;
    }
    return r;
}

/* Takes every flush whose writes are all done off the queue, into *out. */
static void flushes_ready(struct volume *v, struct req **out)
{
    uint64_t oldest = v->wfirst ? v->wfirst->wid : UINT64_MAX;
    while (v->ffirst && v->ffirst->wid < oldest) {
        struct req *f = v->ffirst;
        v->ffirst = f->next;
        if (!v->ffirst)
            v->flast = NULL;
        f->next = *out;
        *out = f;
    }
}

static void finish(struct req *r)
{
    struct volume *v = r->v;
    uint64_t ns = evloop_now_ns() - r->t0;
    struct req *flushes = NULL;
    if (r->status)
        v->st.errors++;
    switch (r->kind) {
    case REQ_READ:
        histo_record(&v->st.read_ns, ns);
        break;
    case REQ_WRITE:
        histo_record(&v->st.write_ns, ns);
        /* fall through */
    case REQ_DISCARD:
        if (r->prev)
            r->prev->next = r->next;
        else
            v->wfirst = r->next;
        if (r->next)
            r->next->prev = r->prev;
        else
            v->wlast = r->prev;
        flushes_ready(v, &flushes);
        break;
    case REQ_FLUSH:
        break;
    }
    v->inflight--;
    for (struct req *f = flushes; f; f = f->next)
        v->inflight--;
    /* Bookkeeping is done before any callback: a callback may detach and
     * delete the volume. */
    volume_cb cb = r->cb;
    void *arg = r->arg;
    int status = r->status;
    free(r);
    cb(arg, status);
    while (flushes) {
        struct req *f = flushes;
        flushes = f->next;
        cb = f->cb;
        arg = f->arg;
        free(f);
        cb(arg, 0);
    }
}

static void req_put(struct req *r, bool issuing)
{
    if (--r->pending)
        return;
    if (!issuing) {
        finish(r);
        return;
    }
    /* Completed inside the call that started it: finish from the loop. */
    struct volumes *vs = r->v->vs;
    r->dnext = NULL;
    if (vs->dlast)
        vs->dlast->dnext = r;
    else
        vs->dfirst = r;
    vs->dlast = r;
    kick(vs);
}

static void req_page_done(struct req *r, int status)
{
    if (status && !r->status)
        r->status = status;
    req_put(r, false);
}

static void on_deferred(struct evloop *el, int fd, unsigned events, void *arg)
{
    struct volumes *vs = arg;
    uint64_t n;
    if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        mx_err("volume: eventfd read: %s", strerror(errno));
    struct req *r = vs->dfirst;
    vs->dfirst = vs->dlast = NULL;
    while (r) {
        struct req *next = r->dnext;
        finish(r);
        r = next;
    }
}

/* ---- per-page write state -------------------------------------------------- */

static struct active *active_get(struct volume *v, uint64_t idx, bool create)
{
    struct active *a = (struct active *)ht_find(&v->active, idx);
    if (a || !create)
        return a;
    a = xcalloc(1, sizeof(*a));
    a->h.key = idx;
    a->wq_tail = &a->wq;
    ht_insert(&v->active, &a->h);
    return a;
}

static void rmw_start(struct volume *v, struct pop *p);

/* A page write ended: start the next waiting RMW once the page is idle. */
static void op_end(struct volume *v, struct active *a)
{
    if (--a->busy)
        return;
    struct pop *next = a->wq;
    if (!next) {
        ht_remove(&v->active, &a->h);
        free(a);
        return;
    }
    a->wq = next->next;
    if (!a->wq)
        a->wq_tail = &a->wq;
    a->busy++;
    rmw_start(v, next);
}

static struct pop *pop_new(struct req *r, uint64_t idx, uint32_t off, uint32_t len, uint8_t *buf)
{
    struct volumes *vs = r->v->vs;
    struct pop *p = vs->free_pops;
    if (p) {
        vs->free_pops = p->next;
        memset(p, 0, sizeof(*p));
    } else {
        p = xcalloc(1, sizeof(*p));
    }
    p->r = r;
    p->idx = idx;
    p->off = off;
    p->len = len;
    p->buf = buf;
    r->pending++;
    return p;
}

/* Kept for reuse: a page operation is the volume's per-page allocation. */
static void pop_free(struct pop *p)
{
    struct volumes *vs = p->r->v->vs;
    free(p->rhash);
    free(p->bounce);
    free(p->cmp);
    p->next = vs->free_pops;
    vs->free_pops = p;
}

/* A page write (full or read-modify-write) ended: the page goes idle. */
static void wr_end(struct pop *p, int status)
{
    struct volume *v = p->r->v;
    struct req *r = p->r;
    op_end(v, p->a);
    pop_free(p);
    req_page_done(r, status);
}

static void published(void *arg, int status)
{
    struct pop *p = arg;
    release_old(p->r->v, p->old, status);
    wr_end(p, status);
}

/* The page is in the pool, stored anew or shared: e holds a reference for the
 * map.  The guest hears of it once the servers hold the record too. */
static void stored(struct pop *p, int status, struct ent e)
{
    if (status == 0) {
        if (e.kind == ENT_PAGE)
            memcpy(e.hash, p->phash, 16);
        struct volume *v = p->r->v;
        if (!v->meta) {
            apply(v, p->a, p->idx, p->seq, e);
        } else if (install(v, p->a, p->idx, p->seq, e, &p->old)) {
            publish(v, p->idx, p->rseq, &e, published, p);
            return;
        }
    }
    wr_end(p, status);
}

static void written(void *arg, int status, pool_page_t page);

/* Stores a fresh copy of the page, under the volume's ownership. */
static void store_new(struct pop *p, const void *data)
{
    struct volume *v = p->r->v;
    if (v->meta)
        pool_write_vol(v->vs->pool, data, volmeta_vid(v->meta), volmeta_epoch(v->meta), written, p);
    else
        pool_write_new(v->vs->pool, data, written, p);
}

/* ---- storing a full page, with de-duplication ------------------------------ */

/* The content index this volume's writes use, or NULL. */
static struct dedup *dd_of(const struct volume *v)
{
    return v->nodedup ? NULL : v->vs->dd;
}

static void share(struct pop *p)
{
    struct volumes *vs = p->r->v->vs;
    pool_page_t page = p->cand[p->ci];
    while (++p->ci < p->ncand)
        page_put(vs, p->cand[p->ci]);
    vs->hits++;
    stored(p, 0, (struct ent){ .kind = ENT_PAGE, .page = page, .dup = true });
}

static void written(void *arg, int status, pool_page_t page)
{
    struct pop *p = arg;
    struct volumes *vs = p->r->v->vs;
    if (status == -ESTALE && p->r->v->meta)
        volmeta_fence(p->r->v->meta);
    if (status) {
        stored(p, status, (struct ent){ .kind = ENT_NONE, .page = 0, .dup = false });
        return;
    }
    vs->live++;
    if (p->hashed) {
        /* An equal page may have been stored while this one was in flight
         * (guests booting together write the same pages at once): share that
         * one and give this back, so concurrency costs a write, not space. */
        pool_page_t c[MAX_CAND];
        size_t n = dedup_lookup(vs->dd, p->hash, c, MAX_CAND);
        for (size_t i = 0; i < n; i++) {
            const void *b = dedup_cached(vs->dd, c[i]);
            if (b && memcmp(b, p->data, VOLUME_PAGE_SIZE) == 0) {
                page_get(vs, c[i]);
                vs->live--;
                pool_free_page(vs->pool, page);
                vs->late_hits++;
                stored(p, 0, (struct ent){ .kind = ENT_PAGE, .page = c[i], .dup = true });
                return;
            }
        }
        dedup_insert(vs->dd, p->hash, page, p->data);
    }
    stored(p, 0, (struct ent){ .kind = ENT_PAGE, .page = page, .dup = false });
}

static void compared(void *arg, int status);

/* Tries the remaining candidates, from the byte cache where it can; writes a
 * new page when none is equal. */
static void try_next(struct pop *p)
{
    struct volumes *vs = p->r->v->vs;
    while (p->ci < p->ncand) {
        pool_page_t c = p->cand[p->ci];
        const void *b = dedup_cached(vs->dd, c);
        if (!b) {
            vs->compare_reads++;
            if (!p->cmp)
                p->cmp = xcalloc(1, VOLUME_PAGE_SIZE);
            const uint8_t *rh = dedup_record_hash(vs->dd, c);
            if (rh)
                pool_read_checked(vs->pool, c, rh, p->cmp, compared, p);
            else
                pool_read(vs->pool, c, p->cmp, compared, p);
            return;
        }
        if (memcmp(b, p->data, VOLUME_PAGE_SIZE) == 0) {
            share(p);
            return;
        }
        vs->collisions++;
        page_put(vs, c);
        p->ci++;
    }
    store_new(p, p->data);
}

static void compared(void *arg, int status)
{
    struct pop *p = arg;
    struct volumes *vs = p->r->v->vs;
    pool_page_t c = p->cand[p->ci];
    /* A failed read only costs the sharing: the page is stored anew. */
    if (status == 0) {
        dedup_cache_put(vs->dd, c, p->cmp);
        if (memcmp(p->cmp, p->data, VOLUME_PAGE_SIZE) == 0) {
            share(p);
            return;
        }
        vs->collisions++;
    }
    page_put(vs, c);
    p->ci++;
    try_next(p);
}

/* Stores the full page at data (valid until the pop ends) and calls stored().
 * May complete inside the call: the request's issue reference keeps that from
 * reaching the caller's callback. */
static void store_page(struct pop *p, const uint8_t *data)
{
    struct volumes *vs = p->r->v->vs;
    p->data = data;
    if (!dd_of(p->r->v)) {
        if (p->r->v->meta)
            pool_hash(data, p->phash);
        store_new(p, data);
        return;
    }
    /* One pass gives the index's hash and the record's check alike. */
    p->hash = dedup_hash_page(data, p->r->v->meta ? p->phash : NULL);
    p->hashed = true;
    p->ncand = (unsigned)dedup_lookup(vs->dd, p->hash, p->cand, MAX_CAND);
    /* Held across the compares: a candidate must not be freed (and its
     * handle reused) while it is being read or about to be shared. */
    for (unsigned i = 0; i < p->ncand; i++)
        page_get(vs, p->cand[i]);
    p->ci = 0;
    try_next(p);
}

/* ---- read-modify-write of part of a page: runs only while the page is otherwise idle ---- */

static void rmw_modify(struct volume *v, struct pop *p)
{
    if (p->buf)
        memcpy(p->bounce + p->off, p->buf, p->len);
    else
        memset(p->bounce + p->off, 0, p->len);
    if (page_is_zero(p->bounce)) {
        bool keep_none = p->was_none && p->r->kind == REQ_DISCARD;
        struct ent e = { .kind = keep_none ? ENT_NONE : ENT_ZERO, .page = 0, .dup = false };
        if (!v->meta) {
            apply(v, p->a, p->idx, p->seq, e);
        } else if (install(v, p->a, p->idx, p->seq, e, &p->old)) {
            publish(v, p->idx, p->rseq, &e, published, p);
            return;
        }
        wr_end(p, 0);
        return;
    }
    store_page(p, p->bounce);
}

static void rmw_read_done(void *arg, int status)
{
    struct pop *p = arg;
    struct volume *v = p->r->v;
    page_put(v->vs, p->src);
    if (status) {
        wr_end(p, status);
        return;
    }
    rmw_modify(v, p);
}

static void rmw_start(struct volume *v, struct pop *p)
{
    struct ent e = map_get(v, p->idx);
    p->bounce = xcalloc(1, VOLUME_PAGE_SIZE);
    p->was_none = e.kind == ENT_NONE;
    if (e.kind == ENT_LOST) {
        wr_end(p, -EIO);    /* the rest of the page is gone: never fill it with zeros */
        return;
    }
    if (e.kind == ENT_PAGE) {
        p->src = e.page;
        page_get(v->vs, e.page);
        pool_read_checked(v->vs->pool, e.page, e.hash, p->bounce, rmw_read_done, p);
        return;
    }
    rmw_modify(v, p);
}

/* A whole page turned to zeros (or discarded) without pool I/O: only its record goes out. */
struct zpub {
    struct req *r;
    struct ent old;
};

static void zero_published(void *arg, int status)
{
    struct zpub *z = arg;
    struct req *r = z->r;
    release_old(r->v, z->old, status);
    free(z);
    req_page_done(r, status);
}

/* One page's share of a write or discard.  buf NULL means zeros. */
static void write_page(struct req *r, uint64_t idx, uint32_t off, uint32_t len, const uint8_t *buf)
{
    struct volume *v = r->v;
    if (len == VOLUME_PAGE_SIZE && (!buf || page_is_zero(buf))) {
        /* Zeros (or a discarded page) need no pool I/O: they win at once over
         * any write to this page still in flight. */
        struct active *a = active_get(v, idx, false);
        struct ent e = { .kind = buf ? ENT_ZERO : ENT_NONE, .page = 0, .dup = false };
        uint64_t rseq = next_rseq(v);
        if (!v->meta) {
            apply(v, a, idx, a ? ++a->issued : 0, e);
            return;
        }
        struct zpub *z = xcalloc(1, sizeof(*z));
        z->r = r;
        if (install(v, a, idx, a ? ++a->issued : 0, e, &z->old)) {
            r->pending++;
            publish(v, idx, rseq, &e, zero_published, z);
        } else {
            free(z);
        }
        return;
    }
    struct pop *p = pop_new(r, idx, off, len, (uint8_t *)buf);
    p->a = active_get(v, idx, true);
    p->seq = ++p->a->issued;
    p->rseq = next_rseq(v);
    if (len == VOLUME_PAGE_SIZE) {
        p->a->busy++;
        store_page(p, buf);
    } else if (p->a->busy) {
        *p->a->wq_tail = p;
        p->a->wq_tail = &p->next;
    } else {
        p->a->busy++;
        rmw_start(v, p);
    }
}

static void rd_done(void *arg, int status)
{
    struct pop *p = arg;
    struct req *r = p->r;
    if (status == 0 && p->bounce)
        memcpy(p->buf, p->bounce + p->off, p->len);
    for (unsigned i = 0; i < p->n; i++)
        page_put(r->v->vs, p->src + i);
    pop_free(p);
    req_page_done(r, status);
}

/* Issues the run of full pages read_page gathered. */
static void run_issue(struct req *r)
{
    struct pop *p = r->run;
    if (!p)
        return;
    r->run = NULL;
    const uint8_t (*hashes)[16] = p->rhash ? p->rhash : &p->phash;
    pool_read_run(r->v->vs->pool, p->src, p->n, hashes, p->buf, rd_done, p);
}

/* Whether a full page stored at page extends r's run: the next slot of the
 * pool, and the next page of the caller's buffer. */
static bool run_extends(const struct req *r, pool_page_t page, const uint8_t *buf)
{
    const struct pop *p = r->run;
    return p && p->n < POOL_RUN_MAX && buf == p->buf + (size_t)p->n * VOLUME_PAGE_SIZE &&
           pool_page_follows(p->src + p->n - 1, page);
}

static void read_page(struct req *r, uint64_t idx, uint32_t off, uint32_t len, uint8_t *buf)
{
    struct volume *v = r->v;
    struct ent e = map_get(v, idx);
    if (e.kind == ENT_LOST) {
        if (!r->status)
            r->status = -EIO;
        return;
    }
    if (e.kind != ENT_PAGE) {
        memset(buf, 0, len);
        return;
    }
    page_get(v->vs, e.page);
    if (len == VOLUME_PAGE_SIZE && run_extends(r, e.page, buf)) {
        struct pop *run = r->run;
        if (!run->rhash) {
            run->rhash = xcalloc(POOL_RUN_MAX, 16);
            memcpy(run->rhash[0], run->phash, 16);
        }
        memcpy(run->rhash[run->n++], e.hash, 16);
        return;
    }
    run_issue(r);
    struct pop *p = pop_new(r, idx, off, len, buf);
    p->src = e.page;
    p->n = 1;
    if (len == VOLUME_PAGE_SIZE) {
        /* Issued once the pages after it are known (run_issue). */
        memcpy(p->phash, e.hash, 16);
        r->run = p;
        return;
    }
    p->bounce = xcalloc(1, VOLUME_PAGE_SIZE);
    pool_read_checked(v->vs->pool, e.page, e.hash, p->bounce, rd_done, p);
}

/* Splits a sector range into page pieces. */
static void for_each_page(struct req *r, uint64_t sector, uint64_t nsect, uint8_t *buf,
                          void (*fn)(struct req *, uint64_t, uint32_t, uint32_t, uint8_t *))
{
    uint64_t byte = sector * VOLUME_SECTOR_SIZE, end = byte + nsect * VOLUME_SECTOR_SIZE;
    while (byte < end) {
        uint64_t idx = byte / VOLUME_PAGE_SIZE;
        uint32_t off = (uint32_t)(byte % VOLUME_PAGE_SIZE);
        uint64_t room = VOLUME_PAGE_SIZE - off;
        uint32_t len = (uint32_t)(end - byte < room ? end - byte : room);
        fn(r, idx, off, len, buf);
        if (buf)
            buf += len;
        byte += len;
    }
}

static void write_piece(struct req *r, uint64_t idx, uint32_t off, uint32_t len, uint8_t *buf)
{
    write_page(r, idx, off, len, buf);
}

/* True when the request was taken care of: held while the volume loads,
 * or failed because it cannot be served (load failed, or fenced). */
static bool gate(struct volume *v, enum held_kind kind, uint64_t sector, uint64_t nsect, void *buf,
                 volume_cb cb, void *arg)
{
    if (v->state == V_LOADING) {
        struct held *h = xcalloc(1, sizeof(*h));
        *h = (struct held){ kind, sector, nsect, buf, cb, arg, NULL };
        *v->held_tail = h;
        v->held_tail = &h->next;
        return true;
    }
    bool fenced = v->meta && volmeta_fenced(v->meta);
    if (v->state == V_READY && !fenced)
        return false;
    struct req *r = req_new(v, kind == H_READ ? REQ_READ : kind == H_FLUSH ? REQ_FLUSH :
                               kind == H_WRITE ? REQ_WRITE : REQ_DISCARD, cb, arg);
    r->status = fenced ? -ESTALE : -EIO;
    req_put(r, true);
    return true;
}

void volume_read(struct volume *v, uint64_t sector, uint32_t nsect, void *buf, volume_cb cb, void *arg)
{
    if (gate(v, H_READ, sector, nsect, buf, cb, arg))
        return;
    struct req *r = req_new(v, REQ_READ, cb, arg);
    v->st.reads++;
    for_each_page(r, sector, nsect, buf, read_page);
    run_issue(r);
    req_put(r, true);
}

void volume_write(struct volume *v, uint64_t sector, uint32_t nsect, const void *buf, volume_cb cb, void *arg)
{
    if (gate(v, H_WRITE, sector, nsect, (void *)buf, cb, arg))
        return;
    struct req *r = req_new(v, REQ_WRITE, cb, arg);
    v->st.writes++;
    for_each_page(r, sector, nsect, (uint8_t *)buf, write_piece);
    req_put(r, true);
}

void volume_discard(struct volume *v, uint64_t sector, uint64_t nsect, volume_cb cb, void *arg)
{
    if (gate(v, H_DISCARD, sector, nsect, NULL, cb, arg))
        return;
    struct req *r = req_new(v, REQ_DISCARD, cb, arg);
    v->st.discards++;
    uint64_t end = sector + nsect;
    uint64_t full_lo = (sector + SECTORS_PER_PAGE - 1) / SECTORS_PER_PAGE, full_hi = end / SECTORS_PER_PAGE;
    if (full_lo >= full_hi) {
        for_each_page(r, sector, nsect, NULL, write_piece);
        req_put(r, true);
        return;
    }
    if (sector % SECTORS_PER_PAGE)
        for_each_page(r, sector, full_lo * SECTORS_PER_PAGE - sector, NULL, write_piece);
    /* Whole pages with writes in flight first (the discard must win over
     * them even where the map has nothing yet), then the written leaves:
     * a discard of a huge, sparse range skips what was never written. */
    for (size_t b = 0; b < v->active.nb; b++)
        for (struct hnode *n = v->active.b[b]; n; n = n->next)
            if (n->key >= full_lo && n->key < full_hi)
                write_page(r, n->key, 0, VOLUME_PAGE_SIZE, NULL);
    for (uint64_t idx = full_lo; idx < full_hi;) {
        uint64_t leaf_end = ((idx >> LEAF_BITS) + 1) << LEAF_BITS;
        if (leaf_end > full_hi)
            leaf_end = full_hi;
        for (; idx < leaf_end && v->top[idx >> LEAF_BITS]; idx++)
            write_page(r, idx, 0, VOLUME_PAGE_SIZE, NULL);
        idx = leaf_end;
    }
    if (end % SECTORS_PER_PAGE)
        for_each_page(r, full_hi * SECTORS_PER_PAGE, end - full_hi * SECTORS_PER_PAGE, NULL, write_piece);
    req_put(r, true);
}

void volume_flush(struct volume *v, volume_cb cb, void *arg)
{
    if (gate(v, H_FLUSH, 0, 0, NULL, cb, arg))
        return;
    struct req *r = req_new(v, REQ_FLUSH, cb, arg);
    v->st.flushes++;
    r->wid = v->next_wid;
    if (!v->wfirst || v->wfirst->wid > r->wid) {
        req_put(r, true);
        return;
    }
    r->pending--;           /* completed by the last write it waits for */
    r->next = NULL;
    if (v->flast)
        v->flast->next = r;
    else
        v->ffirst = r;
    v->flast = r;
}

/* ---- the table ------------------------------------------------------------ */

struct volumes *volumes_new(struct pool *pool, bool dedup)
{
    struct volumes *vs = xcalloc(1, sizeof(*vs));
    vs->pool = pool;
    vs->el = pool_evloop(pool);
    vs->dedup = dedup;
    vs->persist = true;
    vs->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (vs->efd < 0 || evloop_add_fd(vs->el, vs->efd, EV_READ, on_deferred, vs) < 0) {
        mx_err("volume: cannot set up completions: %s", strerror(errno));
        if (vs->efd >= 0)
            close(vs->efd);
        free(vs);
        return NULL;
    }
    if (dedup)
        vs->dd = dedup_new(DEDUP_CACHE_PAGES);
    return vs;
}

static void volume_free_map(struct volume *v, bool free_pages)
{
    for (size_t t = 0; t < v->ntop; t++) {
        struct leaf *l = v->top[t];
        if (!l)
            continue;
        for (unsigned i = 0; free_pages && i < LEAF_N; i++)
            if (l->page[i])
                page_put(v->vs, l->page[i]);
        free(l);
    }
    free(v->top);
    free(v->active.b);
}

void volumes_free(struct volumes *vs)
{
    if (!vs)
        return;
    /* The pages stay in the pool: volumes outlive this backend's table. */
    for (size_t i = 0; i < vs->n; i++) {
        struct volume *v = vs->v[i];
        volume_free_map(v, false);
        if (v->load_timer)
            evloop_del_timer(vs->el, v->load_timer);
        volmeta_free(v->meta);
        for (struct held *h = v->held, *next; h; h = next) {
            next = h->next;
            free(h);
        }
        free(v);
    }
    for (size_t i = 0; i < vs->refs.nb; i++)
        for (struct hnode *n = vs->refs.b[i], *next; n; n = next) {
            next = n->next;
            free(n);
        }
    free(vs->refs.b);
    dedup_free(vs->dd);
    for (struct pop *p = vs->free_pops, *next; p; p = next) {
        next = p->next;
        free(p);
    }
    while (vs->dfirst) {
        struct req *r = vs->dfirst;
        vs->dfirst = r->dnext;
        free(r);
    }
    evloop_del_fd(vs->el, vs->efd);
    close(vs->efd);
    free(vs->v);
    free(vs);
}

struct volume *volumes_find(struct volumes *vs, const char *name)
{
    for (size_t i = 0; i < vs->n; i++)
        if (strcmp(vs->v[i]->name, name) == 0)
            return vs->v[i];
    return NULL;
}

struct volume *volumes_at(struct volumes *vs, size_t i) { return i < vs->n ? vs->v[i] : NULL; }

/* ---- loading from the pool ------------------------------------------------- */

#define LOAD_RETRY_MS  250
#define LOAD_TRIES     120          /* 30 s for a memory server to come up */

static void on_rec(void *arg, const struct proto_rec *r, pool_page_t page, bool slab_ok)
{
    struct volume *v = arg;
    if (r->lpn >= v->npages || r->kind == PROTO_REC_NONE)
        return;
    struct ent e = { .kind = ENT_ZERO, .page = 0, .dup = false };
    if (r->kind == PROTO_REC_PAGE && !slab_ok) {
        e.kind = ENT_LOST;
    } else if (r->kind == PROTO_REC_PAGE) {
        e.kind = ENT_PAGE;
        e.page = page;
        memcpy(e.hash, r->hash, 16);
        /* The first holder owns the page's reference and puts the page back
         * in the content index (so a restarted backend goes on sharing it);
         * the others share it, as their writes did. */
        if (pool_page_hold(v->vs->pool, page)) {
            v->vs->live++;
            if (dd_of(v))
                dedup_insert_loaded(v->vs->dd, r->hash, page);
        } else {
            page_get(v->vs, page);
            e.dup = true;
        }
    }
    map_set(v, r->lpn, e);
}

static void load_start(struct volume *v);

static int load_retry(struct evloop *el, long long id, void *arg)
{
    struct volume *v = arg;
    v->load_timer = 0;
    load_start(v);
    return -1;
}

static void loaded(void *arg, int status, const char *msg)
{
    struct volume *v = arg;
    if (status == -EAGAIN && ++v->load_tries < LOAD_TRIES) {
        if (v->load_tries == 1)
            mx_info("volume %s: waiting for a memory server to load it from (%s)", v->name, msg);
        v->load_timer = evloop_add_timer(v->vs->el, LOAD_RETRY_MS, load_retry, v);
        return;
    }
    if (status) {
        v->state = V_FAILED;
        snprintf(v->load_err, sizeof(v->load_err), "%s", msg[0] ? msg : strerror(-status));
        mx_err("volume %s: cannot be loaded from the pool: %s", v->name, v->load_err);
    } else {
        v->state = V_READY;
        mx_info("volume %s: ready (%llu pages with data)", v->name,
                (unsigned long long)v->st.logical_pages);
    }
    struct held *h = v->held;
    v->held = NULL;
    v->held_tail = &v->held;
    while (h) {
        struct held *next = h->next;
        switch (h->kind) {
        case H_READ: volume_read(v, h->sector, (uint32_t)h->nsect, h->buf, h->cb, h->arg); break;
        case H_WRITE: volume_write(v, h->sector, (uint32_t)h->nsect, h->buf, h->cb, h->arg); break;
        case H_DISCARD: volume_discard(v, h->sector, h->nsect, h->cb, h->arg); break;
        case H_FLUSH: volume_flush(v, h->cb, h->arg); break;
        }
        free(h);
        h = next;
    }
}

static void load_start(struct volume *v)
{
    volmeta_load(v->meta, on_rec, loaded, v);
}

int volume_state(const struct volume *v, const char **err)
{
    if (v->state == V_LOADING)
        return 1;
    if (v->state == V_FAILED) {
        *err = v->load_err;
        return -1;
    }
    if (v->meta && volmeta_fenced(v->meta)) {
        *err = "attached by another backend since (fenced)";
        return -1;
    }
    return 0;
}

const char *volume_state_name(const struct volume *v)
{
    if (v->meta && volmeta_fenced(v->meta))
        return "fenced";
    return v->state == V_LOADING ? "loading" : v->state == V_FAILED ? "failed" : "ready";
}

uint64_t volume_epoch(const struct volume *v) { return v->meta ? volmeta_epoch(v->meta) : 0; }

static void volume_remove(struct volumes *vs, size_t i)
{
    struct volume *v = vs->v[i];
    vs->logical -= v->st.logical_pages;
    vs->zero -= v->st.zero_pages;
    vs->entries -= v->st.stored_pages + v->st.dup_pages;
    /* A fenced volume's pages belong to its new owner now. */
    volume_free_map(v, !(v->meta && volmeta_fenced(v->meta)));
    volmeta_free(v->meta);
    free(v);
    memmove(&vs->v[i], &vs->v[i + 1], (vs->n - i - 1) * sizeof(*vs->v));
    vs->n--;
}

struct volume *volume_attach(struct volumes *vs, const char *name, uint64_t size, const char *owner,
                             char *err, size_t errlen)
{
    char a[32], b[32];
    struct volume *v = volumes_find(vs, name);
    /* A failed load (no server then, or the volume was taken over): start over. */
    if (v && !v->owner[0] && !v->inflight &&
        (v->state == V_FAILED || (v->meta && volmeta_fenced(v->meta)))) {
        for (size_t i = 0; i < vs->n; i++)
            if (vs->v[i] == v)
                volume_remove(vs, i);
        v = NULL;
    }
    if (v) {
        if (v->size != size) {
            snprintf(err, errlen, "volume %s exists with size %s, not %s", name,
                     memx_format_size(v->size, a, sizeof(a)), memx_format_size(size, b, sizeof(b)));
            return NULL;
        }
        if (v->owner[0]) {
            snprintf(err, errlen, "volume %s is attached already (by %s)", name, v->owner);
            return NULL;
        }
        snprintf(v->owner, sizeof(v->owner), "%s", owner);
        return v;
    }
    size_t len = strlen(name);
    if (len == 0 || len >= VOLUME_NAME_MAX || size == 0 || size % VOLUME_PAGE_SIZE) {
        snprintf(err, errlen, "volume '%s': bad name or size %llu (must be a non-zero multiple of 4K)",
                 name, (unsigned long long)size);
        return NULL;
    }
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 8;
        struct volume **nv = realloc(vs->v, cap * sizeof(*nv));
        if (!nv) {
            snprintf(err, errlen, "volume %s: out of memory", name);
            return NULL;
        }
        vs->v = nv;
        vs->cap = cap;
    }
    v = xcalloc(1, sizeof(*v));
    v->vs = vs;
    memcpy(v->name, name, len + 1);
    snprintf(v->owner, sizeof(v->owner), "%s", owner);
    v->size = size;
    v->npages = size / VOLUME_PAGE_SIZE;
    v->ntop = (size_t)((v->npages + LEAF_N - 1) >> LEAF_BITS);
    /* calloc of a large array is lazily zeroed memory: untouched parts cost nothing. */
    v->top = xcalloc(v->ntop, sizeof(*v->top));
    v->st.size_bytes = size;
    histo_reset(&v->st.read_ns);
    histo_reset(&v->st.write_ns);
    v->held_tail = &v->held;
    v->state = V_READY;
    if (vs->persist) {
        v->meta = volmeta_new(vs->pool, name, size);
        if (!v->meta) {
            snprintf(err, errlen, "volume %s: out of memory", name);
            free(v->top);
            free(v);
            return NULL;
        }
        v->state = V_LOADING;
    }
    vs->v[vs->n++] = v;
    if (v->meta)
        load_start(v);
    return v;
}

void volume_detach(struct volume *v)
{
    assert(v->inflight == 0);
    v->owner[0] = '\0';
}

int volume_delete(struct volumes *vs, const char *name)
{
    for (size_t i = 0; i < vs->n; i++) {
        struct volume *v = vs->v[i];
        if (strcmp(v->name, name) != 0)
            continue;
        if (v->owner[0] || v->state == V_LOADING)
            return -EBUSY;
        if (v->meta && !volmeta_fenced(v->meta) && v->state == V_READY)
            volmeta_drop(v->meta);
        volume_remove(vs, i);
        return 0;
    }
    return -ENOENT;
}

const char *volume_name(const struct volume *v) { return v->name; }
const char *volume_owner(const struct volume *v) { return v->owner; }
uint64_t volume_size(const struct volume *v) { return v->size; }

void volume_get_stats(const struct volume *v, struct volume_stats *st)
{
    *st = v->st;
    st->dedup = volume_dedup(v);
}

void volume_set_dedup(struct volume *v, bool on) { v->nodedup = !on; }
bool volume_dedup(const struct volume *v) { return dd_of(v) != NULL; }

void volumes_get_stats(const struct volumes *vs, struct volumes_stats *st)
{
    memset(st, 0, sizeof(*st));
    st->dedup = vs->dd != NULL;
    st->logical_pages = vs->logical;
    st->zero_pages = vs->zero;
    st->stored_pages = vs->live;
    /* live also counts pages only an in-flight read still holds: momentarily
     * it can exceed the mapped pages. */
    st->dup_pages = vs->entries > vs->live ? vs->entries - vs->live : 0;
    st->dedup_hits = vs->hits + vs->late_hits;
    st->late_hits = vs->late_hits;
    st->collisions = vs->collisions;
    st->compare_reads = vs->compare_reads;
    if (vs->dd) {
        struct dedup_stats ds;
        dedup_get_stats(vs->dd, &ds);
        st->index_pages = ds.entries;
        st->cached_pages = ds.cached;
    }
}
