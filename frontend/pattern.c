#include "pattern.h"

#include <stdio.h>
#include <string.h>

void pat_fill(void *page, uint64_t seed, uint64_t key)
{
    uint64_t *w = page;
    if (key == 0) {
        memset(page, 0, PAT_PAGE);
        return;
    }
    uint64_t s = seed * 0xD6E8FEB86659FD93ull ^ key;
    w[0] = seed;
    w[1] = key;
    for (unsigned i = 2; i < PAT_PAGE / 8; i++)
        w[i] = pat_mix(&s);
}

bool pat_check(const void *page, uint64_t seed, uint64_t key)
{
    uint64_t want[PAT_PAGE / 8];
    pat_fill(want, seed, key);
    return memcmp(want, page, PAT_PAGE) == 0;
}

const char *pat_describe(const void *page, char *buf, unsigned len)
{
    const uint64_t *w = page;
    static const uint8_t zero[PAT_PAGE];
    if (memcmp(page, zero, PAT_PAGE) == 0)
        snprintf(buf, len, "zeros");
    else if (pat_check(page, w[0], w[1]))
        snprintf(buf, len, "seed %llu key %#llx", (unsigned long long)w[0], (unsigned long long)w[1]);
    else
        snprintf(buf, len, "garbage (first words %#llx %#llx)", (unsigned long long)w[0],
                 (unsigned long long)w[1]);
    return buf;
}
