/* libFuzzer target for proto_decode(): not part of make check.  Build and run
 * (tests/unit/net.inc):
 *   make -C build fuzz-proto && build/fuzz_proto -max_total_time=60
 * Anything decode accepts must re-encode to the same bytes. */
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
