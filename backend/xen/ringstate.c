/* ringstate.c — a queue's resumable ring state in a file (see ringstate.h).
 *
 * Layout: a header, then 2 x ring-size entries.  Entries outstanding at any
 * time: the requests taken and not answered (< ring size, ring_get_request
 * checks) plus those answered and not yet published (<= ring size).  Each
 * entry is FREE, TAKEN (req_idx, raw valid) or ANSWERED (rsp_idx valid too).
 * Store order, so a successor reads a consistent file whenever the process
 * died: an entry's fields before its state; its state before the header's
 * req_cons moves past it; rsp_pub only after the ring's rsp_prod.
 */
#include "ringstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "barrier.h"
#include "blkif_abi.h"
#include "ring.h"
#include "xalloc.h"

#define RS_MAGIC   0x5352584du     /* "MXRS" */
#define RS_VERSION 1u
#define RS_RAW     BLKIF_RING_ENTRY_MAX

enum { RS_FREE, RS_TAKEN, RS_ANSWERED };

struct rs_hdr {
    uint32_t magic, version;
    uint32_t abi, npages, size, entsz, ref0;
    uint32_t req_cons;          /* every request below it is recorded in an entry (or answered and published) */
    uint32_t rsp_pub;           /* the rsp_prod we last published (informational: the ring's is authoritative) */
    uint32_t nent;
};

struct rs_ent {
    uint32_t state, req_idx, rsp_idx, pad;
    uint8_t raw[RS_RAW];
};

struct ringstate {
    char *path;
    struct rs_hdr *h;
    struct rs_ent *e;
    size_t len;
    uint32_t size;
    int *free;                  /* stack of free entries */
    unsigned nfree;
    int *rsp_ent;               /* response index & (size - 1) -> its entry, until published */
    int *replay;                /* entries to replay, oldest request first */
    unsigned nreplay;
    bool resumed;               /* a predecessor's state of this ring was taken over */
};

/* Orders our own stores for a successor that maps the file after we died
 * (one writer, so no CPU fence is needed: only the compiler's order). */
#define rs_order() __atomic_signal_fence(__ATOMIC_SEQ_CST)

static int by_req_idx_base;
static const struct ringstate *by_req_idx_s;
static int by_req_idx(const void *a, const void *b)
{
    const struct rs_ent *x = &by_req_idx_s->e[*(const int *)a], *y = &by_req_idx_s->e[*(const int *)b];
    int32_t dx = (int32_t)(x->req_idx - (uint32_t)by_req_idx_base), dy = (int32_t)(y->req_idx - (uint32_t)by_req_idx_base);
    return dx < dy ? -1 : dx > dy;
}

static void fresh(struct ringstate *s, const struct ring *r, uint32_t ref0)
{
    memset(s->h, 0, s->len);
    s->nfree = s->nreplay = 0;
    uint32_t nent = 2 * s->size;
    for (uint32_t i = nent; i-- > 0;)
        s->free[s->nfree++] = (int)i;
    *s->h = (struct rs_hdr){ .magic = RS_MAGIC, .version = RS_VERSION, .abi = (uint32_t)r->abi,
                             .npages = r->npages, .size = r->size, .entsz = (uint32_t)r->entsz,
                             .ref0 = ref0, .req_cons = r->req_cons, .rsp_pub = r->rsp_prod_pub, .nent = nent };
}

/* A predecessor's state of this ring: which requests the guest still waits
 * for.  0 resumed (r moved, replays listed), 1 not this ring's or not
 * consistent (start afresh), -1 impossible (the frontend broke its ring). */
static int resume(struct ringstate *s, struct ring *r, uint32_t ref0, char *why, size_t whylen)
{
    const struct rs_hdr *h = s->h;
    if (h->magic != RS_MAGIC || h->version != RS_VERSION || h->abi != (uint32_t)r->abi ||
        h->npages != r->npages || h->size != r->size || h->entsz != r->entsz || h->ref0 != ref0 ||
        h->nent != 2 * s->size)
        return 1;
    uint32_t rc = h->req_cons, rsp = r->rsp_prod_pub;     /* the ring's published rsp_prod */
    s->nfree = s->nreplay = 0;
    for (uint32_t i = 0; i < h->nent; i++) {
        const struct rs_ent *e = &s->e[i];
        bool live = e->state != RS_FREE && (int32_t)(rc - e->req_idx) > 0 &&
                    rc - e->req_idx <= h->nent;
        bool published = e->state == RS_ANSWERED && (int32_t)(rsp - e->rsp_idx) > 0;
        if (live && !published)
            s->replay[s->nreplay++] = (int)i;
        else
            s->free[s->nfree++] = (int)i;
    }
    /* Every request below rc is answered by a published response (rsp of
     * them) or waits: nothing else is consistent. */
    if (s->nreplay != rc - rsp) {
        snprintf(why, whylen, "state of %u waiting request(s) does not match the ring (%u taken, %u answered)",
                 s->nreplay, rc, rsp);
        return 1;
    }
    if (rc - rsp > r->size)
        return -1;
    /* What is not replayed is free in the file too: an entry a crash left
     * half-taken must not look live to the process after the next crash. */
    for (unsigned i = 0; i < s->nfree; i++)
        s->e[s->free[i]].state = RS_FREE;
    by_req_idx_s = s;
    by_req_idx_base = (int)(rc - h->nent);     /* below every live request */
    qsort(s->replay, s->nreplay, sizeof(*s->replay), by_req_idx);
    for (unsigned i = 0; i < s->nreplay; i++) {
        s->e[s->replay[i]].state = RS_TAKEN;   /* answered anew, from rsp on */
        s->e[s->replay[i]].rsp_idx = 0;
    }
    ring_resume(r, rc);
    return 0;
}

struct ringstate *rs_open(const char *path, struct ring *r, uint32_t ref0, int *nreplay, char *why,
                          size_t whylen)
{
    *nreplay = 0;
    why[0] = 0;
    struct ringstate *s = xcalloc(1, sizeof(*s));
    int fd = -1;
    if (!s)
        goto nomem;
    s->size = r->size;
    s->len = sizeof(struct rs_hdr) + (size_t)2 * r->size * sizeof(struct rs_ent);
    s->path = strdup(path);
    s->free = xcalloc(2 * r->size, sizeof(int));
    s->replay = xcalloc(2 * r->size, sizeof(int));
    s->rsp_ent = xcalloc(r->size, sizeof(int));
    if (!s->path || !s->free || !s->replay || !s->rsp_ent)
        goto nomem;
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    bool had = (size_t)st.st_size == s->len;
    if (!had && ftruncate(fd, (off_t)s->len) < 0) {
        snprintf(why, whylen, "%s: %s", path, strerror(errno));
        goto fail;
    }
    void *m = mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        snprintf(why, whylen, "%s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    s->h = m;
    s->e = (struct rs_ent *)(s->h + 1);
    int rc = had ? resume(s, r, ref0, why, whylen) : 1;
    if (rc < 0) {
        *nreplay = -1;
        return s;
    }
    if (rc > 0) {
        fresh(s, r, ref0);
        return s;
    }
    *nreplay = (int)s->nreplay;
    s->resumed = true;
    return s;
nomem:
    snprintf(why, whylen, "out of memory");
fail:
    if (fd >= 0)
        close(fd);
    if (s) {
        free(s->path);
        free(s->free);
        free(s->replay);
        free(s->rsp_ent);
    }
    free(s);
    return NULL;
}

bool rs_resumed(const struct ringstate *s) { return s && s->resumed; }

int rs_replay_ent(const struct ringstate *s, unsigned i) { return i < s->nreplay ? s->replay[i] : -1; }

const void *rs_raw(const struct ringstate *s, int ent) { return s->e[ent].raw; }

int rs_take(struct ringstate *s, uint32_t idx, const void *raw)
{
    if (!s->nfree)
        return -1;      /* more outstanding than a ring can have: the caller breaks the ring */
    int i = s->free[--s->nfree];
    struct rs_ent *e = &s->e[i];
    memcpy(e->raw, raw, s->h->entsz);
    e->req_idx = idx;
    rs_order();         /* the entry is complete before it counts ... */
    e->state = RS_TAKEN;
    rs_order();         /* ... and counts before req_cons moves past it */
    s->h->req_cons = idx + 1;
    return i;
}

void rs_answer(struct ringstate *s, int ent, uint32_t rsp_idx)
{
    struct rs_ent *e = &s->e[ent];
    e->rsp_idx = rsp_idx;
    rs_order();         /* the index before the state that makes it count */
    e->state = RS_ANSWERED;
    s->rsp_ent[rsp_idx & (s->size - 1)] = ent;
    rs_order();         /* recorded before the response is written to the ring */
}

void rs_published(struct ringstate *s, uint32_t old, uint32_t new)
{
    rs_order();         /* after the ring's rsp_prod: the ring is authoritative, this is bookkeeping */
    s->h->rsp_pub = new;
    for (uint32_t j = old; j != new; j++) {
        int i = s->rsp_ent[j & (s->size - 1)];
        s->e[i].state = RS_FREE;
        s->free[s->nfree++] = i;
    }
}

void rs_close(struct ringstate *s, bool remove)
{
    if (!s)
        return;
    munmap(s->h, s->len);
    if (remove)
        unlink(s->path);
    free(s->path);
    free(s->free);
    free(s->replay);
    free(s->rsp_ent);
    free(s);
}
