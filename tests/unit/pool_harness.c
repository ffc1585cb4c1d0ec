/* The shared harness of the pool's failure-handling tests (test_rebuild,
 * test_flap): one pool over the fake server connection (fake_srvconn.c), the
 * pages written to it and the checks every test makes of its replicas.
 * Deterministic: no processes, no fabric, the placement's random source is
 * the test's. */
#include "pool_harness.h"
#include "evloop.h"
#include "fake_srvconn.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct evloop *el;
struct pool *p;
uint8_t data[MAXPAGES][POOL_PAGE_SIZE];
pool_page_t pages[MAXPAGES];

void wdone(void *arg, int status, pool_page_t page)
{
    struct op *o = arg;
    o->done = true;
    o->status = status;
    o->page = page;
}

void rdone(void *arg, int status)
{
    struct op *o = arg;
    o->done = true;
    o->status = status;
}

static int seq_rnd(void)
{
    static unsigned x = 12345;
    x = x * 1103515245u + 12345u;
    return (int)(x >> 16 & 0x7fff);
}

/* Runs the loop until *flag (NULL: n turns) or about ms. */
bool run_until(const bool *flag, int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while ((!flag || !*flag) && evloop_now_ms() < end)
        evloop_run_once(el, 10);
    return !flag || *flag;
}

void mkpool(int nsrv, int replicas)
{
    struct pool_opts o;
    static char names[HARNESS_MAX_SERVERS][POOL_ADDR_MAX];
    uint8_t key[POOL_KEY_BYTES] = { 1 };
    char err[256];
    CU_ASSERT_FATAL(nsrv >= 0 && nsrv <= HARNESS_MAX_SERVERS);
    pool_opts_init(&o);
    o.nservers = nsrv;
    for (int i = 0; i < nsrv; i++)
        snprintf(names[i], sizeof(names[i]), "fake:%d", 7000 + i);
    o.servers = names;
    o.replicas = replicas;
    o.slab_size = SLAB_BYTES;
    p = pool_new(el, &o, key, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    p->rnd = seq_rnd;
    CU_ASSERT_EQUAL(pool_live_servers(p), nsrv);
}

void endpool(void)
{
    pool_free(p);
    p = NULL;
}

void write_pages(unsigned n, unsigned seed)
{
    struct op ops[MAXPAGES] = { { 0 } };
    CU_ASSERT_FATAL(n >= 1 && n <= MAXPAGES);
    for (unsigned i = 0; i < n; i++) {
        for (unsigned b = 0; b < POOL_PAGE_SIZE; b++)
            data[i][b] = (uint8_t)(seed * 131 + i * 17 + b * 7 + (b >> 8));
        pool_write_new(p, data[i], wdone, &ops[i]);
    }
    CU_ASSERT_TRUE_FATAL(run_until(&ops[n - 1].done, 2000));
    for (unsigned i = 0; i < n; i++) {
        CU_ASSERT_TRUE(ops[i].done);
        CU_ASSERT_EQUAL(ops[i].status, 0);
        pages[i] = ops[i].page;
    }
}

int read_page(pool_page_t pg, uint8_t *out)
{
    struct op o = { 0 };
    pool_read(p, pg, out, rdone, &o);
    CU_ASSERT_FALSE(o.done);
    CU_ASSERT_TRUE_FATAL(run_until(&o.done, 2000));
    return o.status;
}

int good(const struct pslab *ps)
{
    int n = 0;
    for (int i = 0; i < ps->nrep; i++)
        n += ps->rep[i].ok;
    return n;
}

bool holds_good(const struct pslab *ps, int srv)
{
    for (int i = 0; i < ps->nrep; i++)
        if (ps->rep[i].ok && ps->rep[i].srv == srv)
            return true;
    return false;
}

/* The one invariant no failure may break: a replica the pool reads from is
 * a slab its server really holds, with every page the pool stored there. */
void check_replicas(unsigned n)
{
    for (uint32_t k = 0; k < p->nslabs; k++) {
        const struct pslab *ps = &p->slabs[k];
        if (!ps->used || !ps->ready)
            continue;
        for (int r = 0; r < ps->nrep; r++) {
            const struct replica *rp = &ps->rep[r];
            if (!rp->ok)
                continue;
            for (unsigned i = 0; i < n; i++) {
                uint32_t slab, pg;
                if (!split_page(p, pages[i], &slab, &pg) || slab != k)
                    continue;
                const uint8_t *b = fake_srv_page(p->srv[rp->srv], rp->id, pg);
                CU_ASSERT_PTR_NOT_NULL_FATAL(b);
                CU_ASSERT_EQUAL(memcmp(b, data[i], POOL_PAGE_SIZE), 0);
            }
        }
    }
}

static bool healed(void)
{
    struct pool_stats st;
    pool_get_stats(p, &st);
    return st.degraded_slabs == 0 && !st.rebuilding;
}

bool wait_healed(int ms)
{
    uint64_t end = evloop_now_ms() + (uint64_t)ms;
    while (!healed() && evloop_now_ms() < end)
        evloop_run_once(el, 10);
    return healed();
}

/* Reads every page of pages[0..n) back and compares it with what was written. */
void read_all(unsigned n)
{
    static uint8_t buf[POOL_PAGE_SIZE];
    for (unsigned i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(read_page(pages[i], buf), 0);
        CU_ASSERT_EQUAL(memcmp(buf, data[i], POOL_PAGE_SIZE), 0);
    }
}

/* The suite's init and cleanup: the log (as the program named) and the loop. */
int harness_suite_init(const char *prog)
{
    mx_log_init(prog, MX_LOG_WARN);
    el = evloop_new();
    return el ? 0 : -1;
}

int harness_suite_clean(void)
{
    evloop_free(el);
    return 0;
}
