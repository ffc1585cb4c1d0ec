/* histo.h — fixed-size log-linear latency histogram (HdrHistogram-like, ~3% resolution).
 * Recording is a few instructions and never allocates, so it sits on the data path.
 */
#ifndef MEMX_HISTO_H
#define MEMX_HISTO_H

#include <stdint.h>

#define HISTO_SUB_BITS 5                        /* 32 linear buckets per power of two */
#define HISTO_BUCKETS  ((64 - HISTO_SUB_BITS + 1) << HISTO_SUB_BITS)

struct histo {
    uint64_t count, sum, min, max;
    uint32_t buckets[HISTO_BUCKETS];
};

void     histo_reset(struct histo *h);
void     histo_record(struct histo *h, uint64_t value);
/* q in [0,1]; returns an upper bound of the bucket holding that quantile, 0 if empty. */
uint64_t histo_quantile(const struct histo *h, double q);
void     histo_merge(struct histo *into, const struct histo *from);
/* Values recorded at or below v, to the histogram's resolution (a bucket
 * counts once its upper bound is <= v): Prometheus' cumulative buckets. */
uint64_t histo_count_le(const struct histo *h, uint64_t v);

#endif
