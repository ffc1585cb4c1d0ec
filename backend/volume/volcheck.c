/* volcheck.c — loading: a page's newest record that none of its page's
 * holders reported is checked against the page's bytes before it is served.
 *
 * Why: a record normally comes with its page (the servers holding the slab
 * hold it) or was published to every in-sync server (the slab's holders
 * among them).  One exception: a write in flight when a new owner fenced its
 * writer can land, page and record, on one server only (the others had
 * already refused it), and is never acknowledged.  If the new owner then
 * re-replicated that slab elsewhere (it could not reach that server), the
 * record outlives its page: the slot it names holds other bytes on every
 * holder, and serving it fails the page (EIO) although its last acknowledged
 * write is intact under the previous record (check-faults missedclaim).
 *
 * So while the records are listed, the servers that reported each page's
 * newest record are noted (lpn -> seq, mask); after adoption, every newest
 * PAGE record no holder reported is read back (unchecked, so a mismatch
 * condemns no replica) and compared with its hash.  A mismatch marks it bad;
 * volmeta.c then lists the servers again for those pages' older records
 * (volcheck_refetched), and the newest older one replaces it (or none: the
 * page had no acknowledged write).  A read that fails keeps the record (a
 * transient failure must not roll a page back).  At most CHECK_ROUNDS rounds.
 */
#include "volmeta_int.h"

#include "pool.h"
#include "volstore.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_READS   8             /* verification reads in flight */
#define CHECK_ROUNDS  3
#define NO_LPN        UINT64_MAX

struct seen {
    uint64_t lpn, seq;
    uint64_t mask;                  /* servers (index < 64) that reported seq */
    uint64_t bad_seq;               /* nonzero: that record is bad, older ones are wanted */
    bool wide;                      /* reported by a server past 63: never judged */
};

struct suspect {
    struct proto_rec r;
    pool_page_t page;
};

struct vread {
    struct volmeta *m;
    struct suspect *s;
    uint8_t buf[POOL_PAGE_SIZE];
};

struct volcheck {
    struct seen *e;
    size_t cap, n;
    struct volstore *fallback;      /* refetch: older records of bad pages */
    size_t nbad, rounds;
    struct suspect *sus;         /* pages whose newest record is checked */
    size_t nsus, next, tcap;
    int inflight;
    bool issuing;
    struct vread rd[CHECK_READS];
};

static size_t slot_of(const struct volcheck *c, uint64_t lpn)
{
    return (size_t)((lpn * 0x9E3779B97F4A7C15ull) >> 20) & (c->cap - 1);
}

static struct seen *find(struct volcheck *c, uint64_t lpn)
{
    if (!c->cap)
        return NULL;
    for (size_t i = slot_of(c, lpn);; i = (i + 1) & (c->cap - 1)) {
        if (c->e[i].lpn == lpn)
            return &c->e[i];
        if (c->e[i].lpn == NO_LPN)
            return NULL;
    }
}

static int grow(struct volcheck *c)
{
    size_t ncap = c->cap ? c->cap * 2 : 1024;
    struct seen *ne = malloc(ncap * sizeof(*ne));
    if (!ne)
        return -ENOMEM;
    for (size_t i = 0; i < ncap; i++)
        ne[i].lpn = NO_LPN;
    struct seen *old = c->e;
    size_t ocap = c->cap;
    c->e = ne;
    c->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (old[i].lpn == NO_LPN)
            continue;
        size_t k = slot_of(c, old[i].lpn);
        while (ne[k].lpn != NO_LPN)
            k = (k + 1) & (ncap - 1);
        ne[k] = old[i];
    }
    free(old);
    return 0;
}

static struct seen *find_or_add(struct volcheck *c, uint64_t lpn)
{
    struct seen *e = find(c, lpn);
    if (e)
        return e;
    if ((c->n + 1) * 2 > c->cap && grow(c))
        return NULL;
    size_t k = slot_of(c, lpn);
    while (c->e[k].lpn != NO_LPN)
        k = (k + 1) & (c->cap - 1);
    c->e[k] = (struct seen){ .lpn = lpn };
    c->n++;
    return &c->e[k];
}

static void note(struct seen *e, int srv, uint64_t seq)
{
    if (seq > e->seq) {
        e->seq = seq;
        e->mask = 0;
        e->wide = false;
    }
    if (seq != e->seq)
        return;
    if (srv < 64)
        e->mask |= 1ull << srv;
    else
        e->wide = true;
}

int volcheck_note(struct volmeta *m, int srv, const struct proto_rec *r)
{
    if (!m->chk && !(m->chk = calloc(1, sizeof(*m->chk))))
        return -ENOMEM;
    struct seen *e = find_or_add(m->chk, r->lpn);
    if (!e)
        return -ENOMEM;
    note(e, srv, r->seq);
    return 0;
}

void volcheck_refetch_begin(struct volmeta *m)
{
    struct volcheck *c = m->chk;
    for (size_t i = 0; i < c->cap; i++)
        if (c->e[i].lpn != NO_LPN && c->e[i].bad_seq) {
            c->e[i].seq = 0;
            c->e[i].mask = 0;
            c->e[i].wide = false;
        }
}

int volcheck_refetched(struct volmeta *m, int srv, const struct proto_rec *r)
{
    struct volcheck *c = m->chk;
    struct seen *e = find(c, r->lpn);
    if (!e || !e->bad_seq || r->seq >= e->bad_seq)
        return 0;
    if (!c->fallback && !(c->fallback = volstore_new()))
        return -ENOMEM;
    note(e, srv, r->seq);
    return volstore_put_rec(c->fallback, m->vid, 1, r) ? -ENOMEM : 0;
}

static void check_done(struct volmeta *m)
{
    struct volcheck *c = m->chk;
    if (c->issuing || c->inflight || c->next < c->nsus)
        return;
    free(c->sus);
    c->sus = NULL;
    c->nsus = c->next = c->tcap = 0;
    volmeta_checked(m);
}

static void issue(struct volmeta *m);

static void on_read(void *arg, int status)
{
    struct vread *vr = arg;
    struct volmeta *m = vr->m;
    struct suspect *s = vr->s;
    struct volcheck *c = m->chk;
    vr->s = NULL;
    c->inflight--;
    if (status) {
        meta_warn(m, "page %llu: checking its newest record against its page failed (%s): the record is kept",
                  (unsigned long long)s->r.lpn, strerror(-status));
    } else {
        uint8_t h[16];
        pool_hash(vr->buf, h);
        struct seen *e = find(c, s->r.lpn);
        if (memcmp(h, s->r.hash, 16) && e) {
            if (!c->nbad)
                meta_warn(m, "page %llu: its newest record names a slot whose holders hold other bytes "
                          "(a write never acknowledged, whose page has gone with its server): its previous "
                          "record is looked for", (unsigned long long)s->r.lpn);
            e->bad_seq = s->r.seq;
            c->nbad++;
        }
    }
    issue(m);
    check_done(m);
}

static void issue(struct volmeta *m)
{
    struct volcheck *c = m->chk;
    c->issuing = true;
    for (int i = 0; i < CHECK_READS && c->next < c->nsus; i++) {
        struct vread *vr = &c->rd[i];
        if (vr->s)
            continue;
        vr->m = m;
        vr->s = &c->sus[c->next++];
        c->inflight++;
        pool_read(m->pool, vr->s->page, vr->buf, on_read, vr);
    }
    c->issuing = false;
}

static bool reported_by_holder(const struct volmeta *m, const struct seen *e, pool_page_t page)
{
    int out[64];
    int n = pool_page_servers(m->pool, page, out, 64);
    if (e->wide || n == 0)
        return true;            /* nothing to judge by: as before */
    for (int i = 0; i < n; i++)
        if (out[i] < 64 && (e->mask >> out[i] & 1))
            return true;
    return false;
}

int volcheck_begin(struct volmeta *m, pool_page_t (*page_of)(struct volmeta *m, const struct proto_rec *r))
{
    static struct proto_rec recs[PROTO_REC_MAX];
    struct volcheck *c = m->chk;
    if (!c || c->rounds >= CHECK_ROUNDS)
        return 0;
    c->nbad = 0;
    uint64_t cursor = 0;
    do {
        int n = volstore_list(m->merge, m->vid, &cursor, recs, PROTO_REC_MAX);
        for (int i = 0; i < n; i++) {
            if (recs[i].kind != PROTO_REC_PAGE)
                continue;
            pool_page_t page = page_of(m, &recs[i]);
            struct seen *e = find(c, recs[i].lpn);
            if (!page || !e || e->seq != recs[i].seq || reported_by_holder(m, e, page))
                continue;
            if (c->nsus == c->tcap) {
                size_t ncap = c->tcap ? c->tcap * 2 : 16;
                struct suspect *t = realloc(c->sus, ncap * sizeof(*t));
                if (!t)
                    return -ENOMEM;
                c->sus = t;
                c->tcap = ncap;
            }
            c->sus[c->nsus++] = (struct suspect){ recs[i], page };
        }
        if (n <= 0)
            break;
    } while (cursor);
    if (!c->nsus)
        return 0;
    meta_info(m, "%zu page(s) whose newest record no holder of its page reported: checking them against their pages",
              c->nsus);
    issue(m);
    check_done(m);
    return 1;
}

bool volcheck_bad(const struct volmeta *m)
{
    return m->chk && m->chk->nbad && m->chk->rounds < CHECK_ROUNDS;
}

int volcheck_rebuild(struct volmeta *m)
{
    static struct proto_rec recs[PROTO_REC_MAX];
    struct volcheck *c = m->chk;
    struct volstore *nm = volstore_new();
    if (!nm)
        return -ENOMEM;
    size_t replaced = 0, dropped = 0;
    uint64_t cursor = 0;
    do {
        int n = volstore_list(m->merge, m->vid, &cursor, recs, PROTO_REC_MAX);
        for (int i = 0; i < n; i++) {
            struct seen *e = find(c, recs[i].lpn);
            if (e && e->bad_seq) {
                e->seq ? replaced++ : dropped++;
                continue;
            }
            if (volstore_put_rec(nm, m->vid, 1, &recs[i]))
                goto oom;
        }
        if (n <= 0)
            break;
    } while (cursor);
    cursor = 0;
    do {
        int n = c->fallback ? volstore_list(c->fallback, m->vid, &cursor, recs, PROTO_REC_MAX) : 0;
        for (int i = 0; i < n; i++)
            if (volstore_put_rec(nm, m->vid, 1, &recs[i]))
                goto oom;
        if (n <= 0)
            break;
    } while (cursor);
    for (size_t i = 0; i < c->cap; i++)
        c->e[i].bad_seq = 0;
    meta_warn(m, "%zu newest record(s) named bytes no holder has (writes never acknowledged): %zu page(s) now "
              "served from their previous record, %zu with none (never written before)", c->nbad, replaced, dropped);
    volstore_free(c->fallback);
    c->fallback = NULL;
    volstore_free(m->merge);
    m->merge = nm;
    c->nbad = 0;
    c->rounds++;
    return 0;
oom:
    volstore_free(nm);
    return -ENOMEM;
}

void volcheck_free(struct volmeta *m)
{
    struct volcheck *c = m->chk;
    if (!c)
        return;
    /* Called only once no verification read is out (load ended). */
    free(c->e);
    free(c->sus);
    volstore_free(c->fallback);
    free(c);
    m->chk = NULL;
}
