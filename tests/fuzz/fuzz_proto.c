/* fuzz_proto.c — libFuzzer target for proto_decode() and auth_open(), what any network peer
 * controls: not part of make check.  Build and run: tests/fuzz/run.sh BUILD
 * (tests/fuzz/Makefile.inc); seeds from tests/fuzz/seeds_proto.c.  Anything decode accepts
 * must re-encode to the same bytes but its seal (seq and tag, which proto_encode leaves zero:
 * auth.h's); opening any input under a session must not crash, and a made-up seal must not
 * open. */
#include "auth.h"
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
        if (n != size || memcmp(again, data, PROTO_SEQ_OFF) != 0 ||
            memcmp(again + PROTO_HDR_SIZE, data + PROTO_HDR_SIZE, size - PROTO_HDR_SIZE) != 0)
            abort();
    }
    static struct auth_sess s;
    static bool init;
    if (!init) {
        static const uint8_t key[MEMX_KEY_BYTES] = { 1 }, n1[PROTO_NONCE_BYTES] = { 2 }, n2[PROTO_NONCE_BYTES] = { 3 };
        if (auth_init())
            abort();
        auth_session(&s, key, AUTH_SERVER, n1, n2, "backd@fuzz", "memd@fuzz");
        init = true;
    }
    if (auth_open(&s.rx, data, size) == AUTH_OK)
        abort();    /* a 128-bit tag guessed: the seal is broken */
    return 0;
}
