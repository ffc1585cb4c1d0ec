/* slabs.c — the slot allocator of a pool slab.  See slabs.h. */
#include "slabs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int slots_init(struct slots *s, uint32_t n)
{
    memset(s, 0, sizeof(*s));
    if (n == 0 || n % 64)
        return -EINVAL;
    if (!(s->bits = calloc(n / 64, sizeof(uint64_t))))
        return -ENOMEM;
    s->n = s->nfree = n;
    return 0;
}

void slots_fini(struct slots *s)
{
    free(s->bits);
    memset(s, 0, sizeof(*s));
}

bool slots_in_use(const struct slots *s, uint32_t page)
{
    return page < s->n && (s->bits[page / 64] & (1ull << (page % 64)));
}

static void claim(struct slots *s, uint32_t page)
{
    s->bits[page / 64] |= 1ull << (page % 64);
    s->nfree--;
}

bool slots_take(struct slots *s, uint32_t *page)
{
    uint32_t words = s->n / 64;
    if (!s->nfree)
        return false;
    for (uint32_t k = 0, w = s->hint; k < words; k++, w = (w + 1) % words) {
        if (s->bits[w] == UINT64_MAX)
            continue;
        s->hint = w;
        *page = w * 64 + (uint32_t)__builtin_ctzll(~s->bits[w]);
        claim(s, *page);
        return true;
    }
    return false;
}

bool slots_take_run(struct slots *s, unsigned n, uint32_t *page)
{
    uint32_t words = s->n / 64;
    if (n == 0 || n > 64 || s->nfree < n)
        return false;
    for (uint32_t k = 0, w = s->hint; k < words; k++, w = (w + 1) % words) {
        uint64_t free = ~s->bits[w], m = free;
        /* Bit j of m stays set while slots j .. j+i of the word are all free
         * (the shift brings in zeros: a stretch never crosses the word's end). */
        for (unsigned i = 1; m && i < n; i++)
            m &= free >> i;
        if (!m)
            continue;
        s->hint = w;
        *page = w * 64 + (uint32_t)__builtin_ctzll(m);
        claim(s, *page);
        return true;
    }
    return false;
}

bool slots_take_next(struct slots *s, uint32_t after, uint32_t *page)
{
    uint32_t want = after + 1;
    if (!s->nfree)
        return false;
    if (want < s->n && !slots_in_use(s, want)) {
        *page = want;
        claim(s, want);
        return true;
    }
    return slots_take(s, page);
}

bool slots_hold(struct slots *s, uint32_t page)
{
    if (page >= s->n || slots_in_use(s, page))
        return false;
    claim(s, page);
    return true;
}

bool slots_put(struct slots *s, uint32_t page)
{
    if (!slots_in_use(s, page))
        return false;
    s->bits[page / 64] &= ~(1ull << (page % 64));
    s->nfree++;
    return true;
}
