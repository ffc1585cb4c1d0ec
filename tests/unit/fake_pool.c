/* fake_pool.c — in-memory pool.h for unit tests; see fake_pool.h. */
#include "fake_pool.h"

#include "evloop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct fpage {
    uint8_t *data;          /* NULL until the write completes */
    bool allocated;         /* handed out (or reserved by an in-flight write) */
    unsigned readers;       /* reads in flight */
};

enum fop_kind { FOP_WRITE, FOP_READ };

struct fop {
    enum fop_kind kind;
    int status;
    pool_page_t page;
    const void *src;
    void *dst;
    pool_write_cb wcb;
    pool_io_cb rcb;
    void *arg;
    struct fop *next;
};

struct fake_server {
    struct pool_server_info info;
    char state[16];
};

struct pool {
    struct evloop *el;
    int efd;
    struct fpage *pages;    /* handle h lives at pages[h - 1]; handles are never reused */
    size_t npages, cap_pages;
    uint64_t allocated, capacity;
    struct fop *head, **tail;
    size_t pending;
    bool hold;
    unsigned fail_w, fail_r;
    int fail_w_err, fail_r_err;
    uint64_t violations, writes, reads, errors;
    struct fake_server servers[8];
    int nservers;
};

static void kick(struct pool *p)
{
    uint64_t one = 1;
    if (!p->hold && p->pending && write(p->efd, &one, sizeof(one)) != sizeof(one))
        abort();
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
        op->wcb(op->arg, op->status, op->status == 0 ? op->page : 0);
    } else {
        struct fpage *pg = op->page ? &p->pages[op->page - 1] : NULL;
        if (pg) {
            pg->readers--;
            if (op->status == 0 && pg->data)
                memcpy(op->dst, pg->data, POOL_PAGE_SIZE);
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
    size_t n = p->pending;
    while (n-- && !p->hold && p->head)
        complete(p, unlink_at(p, 0));
    kick(p);
}

struct pool *fake_pool_new(struct evloop *el)
{
    struct pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->el = el;
    p->tail = &p->head;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0 || evloop_add_fd(el, p->efd, EV_READ, on_event, p) < 0) {
        if (p->efd >= 0)
            close(p->efd);
        free(p);
        return NULL;
    }
    return p;
}

struct pool *pool_new(struct evloop *el, const struct memx_config *cfg,
                      const uint8_t key[MEMX_KEY_BYTES], char *err, size_t errlen)
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
    for (size_t i = 0; i < p->npages; i++)
        free(p->pages[i].data);
    free(p->pages);
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

void pool_write_new(struct pool *p, const void *data, pool_write_cb cb, void *arg)
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
    } else {
        op->page = alloc_page(p);
    }
    if (op->status)
        p->errors++;
    enqueue(p, op);
}

static struct fpage *live_page(struct pool *p, pool_page_t page)
{
    if (page == 0 || page > p->npages || !p->pages[page - 1].allocated || !p->pages[page - 1].data)
        return NULL;
    return &p->pages[page - 1];
}

void pool_read(struct pool *p, pool_page_t page, void *data, pool_io_cb cb, void *arg)
{
    struct fop *op = calloc(1, sizeof(*op));
    if (!op)
        abort();
    op->kind = FOP_READ;
    op->dst = data;
    op->rcb = cb;
    op->arg = arg;
    p->reads++;
    struct fpage *pg = live_page(p, page);
    if (!pg) {
        p->violations++;
        op->status = -EIO;
    } else if (p->fail_r) {
        p->fail_r--;
        op->status = p->fail_r_err;
    } else {
        op->page = page;
        pg->readers++;
    }
    if (op->status)
        p->errors++;
    enqueue(p, op);
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
}

int pool_get_servers(const struct pool *p, struct pool_server_info *out, int max)
{
    for (int i = 0; i < p->nservers && i < max; i++)
        out[i] = p->servers[i].info;
    return p->nservers;
}

void fake_pool_fail_writes(struct pool *p, unsigned n, int err) { p->fail_w = n; p->fail_w_err = err; }
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
