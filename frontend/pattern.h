/* pattern.h — seeded, self-describing 4 KiB page contents for write/verify
 * workloads.  A page's bytes follow from (seed, key) alone, and its first
 * 16 bytes carry seed and key, so a page found in the wrong place says where
 * it came from.  Key 0 is the all-zero page. */
#ifndef MEMX_PATTERN_H
#define MEMX_PATTERN_H

#include <stdbool.h>
#include <stdint.h>

#define PAT_PAGE 4096u

void pat_fill(void *page, uint64_t seed, uint64_t key);
bool pat_check(const void *page, uint64_t seed, uint64_t key);
/* What a mismatching page looks like: "zeros", "seed S key K", or "garbage". */
const char *pat_describe(const void *page, char *buf, unsigned len);

/* splitmix64: the PRNG behind patterns and workloads. */
static inline uint64_t pat_mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#endif
