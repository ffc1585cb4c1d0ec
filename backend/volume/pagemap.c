/* pagemap.c — the two-level page map; the contract and cost model are in pagemap.h.
 *
 * A leaf keeps the handles in one array and the kinds as bitmaps beside it: a
 * PM_PAGE entry is a non-zero handle, the others have handle 0 and a bit in
 * zero or lost (never both).  dup only means something for PM_PAGE.
 */
#include "pagemap.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pm_leaf {
    uint64_t page[PAGEMAP_LEAF_N];
    uint64_t zero[PAGEMAP_LEAF_N / 64];
    uint64_t dup[PAGEMAP_LEAF_N / 64];
    uint64_t lost[PAGEMAP_LEAF_N / 64];
    uint32_t used;          /* entries not PM_NONE; the leaf goes when it drops to 0 */
    uint8_t hash[PAGEMAP_LEAF_N][16];
};

int pagemap_init(struct pagemap *m, uint64_t npages)
{
    memset(m, 0, sizeof(*m));
    m->npages = npages;
    m->ntop = (size_t)((npages + PAGEMAP_LEAF_N - 1) >> PAGEMAP_LEAF_BITS);
    /* calloc of a large array is lazily zeroed memory: untouched parts cost nothing. */
    m->top = calloc(m->ntop ? m->ntop : 1, sizeof(*m->top));
    return m->top ? 0 : -ENOMEM;
}

void pagemap_fini(struct pagemap *m, void (*each)(void *arg, uint64_t page), void *arg)
{
    for (size_t t = 0; m->top && t < m->ntop; t++) {
        struct pm_leaf *l = m->top[t];
        if (!l)
            continue;
        for (unsigned i = 0; each && i < PAGEMAP_LEAF_N; i++)
            if (l->page[i])
                each(arg, l->page[i]);
        free(l);
    }
    free(m->top);
    memset(m, 0, sizeof(*m));
}

struct pm_ent pagemap_get(const struct pagemap *m, uint64_t idx)
{
    assert(idx < m->npages);
    const struct pm_leaf *l = m->top[idx >> PAGEMAP_LEAF_BITS];
    unsigned i = idx & (PAGEMAP_LEAF_N - 1);
    if (!l)
        return (struct pm_ent){ .kind = PM_NONE };
    uint64_t bit = 1ull << (i % 64);
    if (l->page[i]) {
        struct pm_ent e = { .kind = PM_PAGE, .page = l->page[i], .dup = (l->dup[i / 64] & bit) != 0 };
        memcpy(e.hash, l->hash[i], 16);
        return e;
    }
    if (l->zero[i / 64] & bit)
        return (struct pm_ent){ .kind = PM_ZERO };
    if (l->lost[i / 64] & bit)
        return (struct pm_ent){ .kind = PM_LOST };
    return (struct pm_ent){ .kind = PM_NONE };
}

static void set_bit(uint64_t *map, unsigned i, bool on)
{
    uint64_t bit = 1ull << (i % 64);
    if (on)
        map[i / 64] |= bit;
    else
        map[i / 64] &= ~bit;
}

int pagemap_set(struct pagemap *m, uint64_t idx, const struct pm_ent *e, struct pm_ent *old)
{
    assert(idx < m->npages);
    assert(e->kind != PM_PAGE || e->page != 0);
    struct pm_leaf **lp = &m->top[idx >> PAGEMAP_LEAF_BITS];
    unsigned i = idx & (PAGEMAP_LEAF_N - 1);
    struct pm_ent was = pagemap_get(m, idx);
    if (!*lp) {
        if (e->kind != PM_NONE) {
            *lp = calloc(1, sizeof(**lp));
            if (!*lp)
                return -ENOMEM;
            m->leaves++;
        }
    }
    struct pm_leaf *l = *lp;
    if (l) {
        l->page[i] = e->kind == PM_PAGE ? e->page : 0;
        if (e->kind == PM_PAGE)
            memcpy(l->hash[i], e->hash, 16);
        set_bit(l->lost, i, e->kind == PM_LOST);
        set_bit(l->zero, i, e->kind == PM_ZERO);
        set_bit(l->dup, i, e->kind == PM_PAGE && e->dup);
        l->used += (e->kind != PM_NONE) - (was.kind != PM_NONE);
        if (!l->used) {
            free(l);
            *lp = NULL;
            m->leaves--;
        }
    }
    if (old)
        *old = was;
    return 0;
}

bool pagemap_has_leaf(const struct pagemap *m, uint64_t idx)
{
    assert(idx < m->npages);
    return m->top[idx >> PAGEMAP_LEAF_BITS] != NULL;
}

size_t pagemap_leaves(const struct pagemap *m) { return m->leaves; }
