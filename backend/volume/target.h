/* target.h — the toolstack's target string for a MemX disk.
 *
 * PURE: parsing only, no volume table, no allocation.  The string is
 * "memx:<volume>:<size>[:<option>...]": name 1..VOLUME_NAME_MAX-1 characters of
 * [A-Za-z0-9._-], size as memx_parse_size() reads it (2G, 512M, 4096) and a
 * non-zero multiple of 4 KiB, options "dedup=yes|no" (default yes) and
 * "quota=<size>" (a non-zero multiple of 4 KiB, at most the volume's size:
 * how much the volume may hold in the pool; default none).  Shaped so
 * that the XenBus side can reject a bad disk line before it touches a volume.
 */
#ifndef MEMX_TARGET_H
#define MEMX_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "volume.h"

struct volume_opts {
    bool dedup;
    uint64_t quota_bytes;       /* 0: no quota */
};

/* 0, or -1 with a message for people in err (it quotes the target).  name gets
 * the volume name (namelen must leave room for it), *size its size in bytes;
 * opts may be NULL: options are then checked and dropped.  Outputs are written
 * only on success. */
int volume_parse_target_opts(const char *target, char *name, size_t namelen, uint64_t *size,
                             struct volume_opts *opts, char *err, size_t errlen);
int volume_parse_target(const char *target, char *name, size_t namelen, uint64_t *size,
                        char *err, size_t errlen);

#endif
