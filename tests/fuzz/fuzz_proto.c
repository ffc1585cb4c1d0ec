/* fuzz_proto.c — libFuzzer target for proto_decode(), what any network peer controls: not
 * part of make check.  Build and run: tests/fuzz/run.sh BUILD (tests/fuzz/Makefile.inc); seeds
 * from tests/fuzz/seeds_proto.c.  Anything decode accepts must re-encode to the same bytes. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_msg m;
    char why[160];
    static uint8_t again[PROTO_WRITE_MAX];
    if (proto_decode(data, size, &m, why, sizeof(why)) == 0) {
        size_t n = proto_encode(&m, again, sizeof(again));
        if (n != size || memcmp(again, data, size) != 0)
            abort();
    }
    return 0;
}
