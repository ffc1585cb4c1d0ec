#include "histo.h"

#include <string.h>

void histo_reset(struct histo *h)
{
    memset(h, 0, sizeof(*h));
}

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << HISTO_SUB_BITS))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HISTO_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift) & ((1u << HISTO_SUB_BITS) - 1);
    return ((shift + 1) << HISTO_SUB_BITS) + sub;
}

static uint64_t bucket_upper(unsigned b)
{
    if (b < (1u << HISTO_SUB_BITS))
        return b;
    unsigned shift = (b >> HISTO_SUB_BITS) - 1;
    uint64_t sub = b & ((1u << HISTO_SUB_BITS) - 1);
    uint64_t base = ((1ull << HISTO_SUB_BITS) | sub) << shift;
    return base + ((1ull << shift) - 1);
}

void histo_record(struct histo *h, uint64_t v)
{
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += v;
    h->buckets[bucket_of(v)]++;
}

uint64_t histo_quantile(const struct histo *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if (rank >= h->count)
        rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HISTO_BUCKETS; b++) {
        seen += h->buckets[b];
        if (seen > rank) {
            uint64_t u = bucket_upper(b);
            return u > h->max ? h->max : (u < h->min ? h->min : u);
        }
    }
    return h->max;
}

uint64_t histo_count_le(const struct histo *h, uint64_t v)
{
    if (!h->count || v < h->min)
        return 0;
    if (v >= h->max)
        return h->count;
    uint64_t n = 0;
    for (unsigned b = 0; b < HISTO_BUCKETS && bucket_upper(b) <= v; b++)
        n += h->buckets[b];
    return n;
}

void histo_merge(struct histo *into, const struct histo *from)
{
    if (!from->count)
        return;
    if (!into->count || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    into->sum += from->sum;
    for (unsigned b = 0; b < HISTO_BUCKETS; b++)
        into->buckets[b] += from->buckets[b];
}
