/* fuzz_coord.c — libFuzzer target for what etcd (or whoever answers in its
 * place, or wrote its keys) controls: lib/coord's reply parser cj_parse()
 * and the ckeys decoders.  Not part of make check; tests/fuzz/run.sh BUILD.
 *
 * Input: one selector byte, then for the parser the reply's bytes, for a
 * decoder "key\n" and the value.  Whatever a decoder accepts must encode and
 * decode again to the same thing; whatever the parser accepts must hold
 * relative keys with exactly vlen value bytes. */
#include <stdlib.h>
#include <string.h>

#include "ckeys.h"
#include "coord_parse.h"

static void parse(enum cj_kind k, const char *p, size_t n)
{
    struct cj_reply r;
    char why[160];
    if (cj_parse(k, p, n, "/memx/f", &r, why, sizeof(why)) == 0) {
        if (r.rev <= 0)
            abort();
        for (size_t i = 0; i < r.nkv; i++)
            if (!r.kvs[i].key || r.kvs[i].val[r.kvs[i].vlen] != '\0' || r.kvs[i].mod_rev <= 0)
                abort();
    } else if (!why[0]) {
        abort();        /* every refusal says why */
    }
    cj_reply_free(&r);
}

static void decode(int which, const char *key, const char *val, size_t vlen)
{
    char why[256], buf[2048], name[CK_NAME_MAX], name2[CK_NAME_MAX], node[CK_NODE_MAX];
    int n;
    why[0] = '\0';
    switch (which) {
    case 0: {
        struct ck_server a, b;
        if (ck_server_decode(key, val, vlen, &a, why, sizeof(why)))
            break;
        if ((n = ck_server_encode(&a, buf, sizeof(buf))) < 0 || ck_server_decode(key, buf, (size_t)n, &b, why, sizeof(why)) ||
            memcmp(&a, &b, sizeof(a)))
            abort();
        return;
    }
    case 1: {
        struct ck_backend a, b;
        if (ck_backend_decode(key, val, vlen, &a, why, sizeof(why)))
            break;
        if ((n = ck_backend_encode(&a, buf, sizeof(buf))) < 0 || ck_backend_decode(key, buf, (size_t)n, &b, why, sizeof(why)) ||
            memcmp(&a, &b, sizeof(a)))
            abort();
        return;
    }
    case 2: {
        struct ck_volume a, b;
        if (ck_volume_decode(key, val, vlen, name, &a, why, sizeof(why)))
            break;
        if ((n = ck_volume_encode(&a, buf, sizeof(buf))) < 0 ||
            ck_volume_decode(key, buf, (size_t)n, name2, &b, why, sizeof(why)) || memcmp(&a, &b, sizeof(a)) ||
            strcmp(name, name2) || strchr(name, '/'))
            abort();
        return;
    }
    case 3: {
        struct ck_owner a, b;
        if (ck_owner_decode(key, val, vlen, name, &a, why, sizeof(why)))
            break;
        if ((n = ck_owner_encode(&a, buf, sizeof(buf))) < 0 ||
            ck_owner_decode(key, buf, (size_t)n, name2, &b, why, sizeof(why)) || memcmp(&a, &b, sizeof(a)) ||
            strcmp(name, name2))
            abort();
        return;
    }
    default: {
        struct ck_slab a, b;
        uint64_t uid, uid2;
        if (ck_slab_decode(key, val, vlen, node, &uid, &a, why, sizeof(why)))
            break;
        memset(&b, 0, sizeof(b));
        if (a.nrep < 1 || a.nrep > CK_REPLICAS || (n = ck_slab_encode(&a, buf, sizeof(buf))) < 0 ||
            ck_slab_decode(key, buf, (size_t)n, node, &uid2, &b, why, sizeof(why)) || uid != uid2 ||
            memcmp(&a, &b, sizeof(a)))
            abort();
        return;
    }
    }
    if (!why[0])
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned sel = data[0] % (CJ_NKINDS + 5);
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if (sel < CJ_NKINDS) {
        parse((enum cj_kind)sel, p, n);
        return 0;
    }
    const char *nl = memchr(p, '\n', n);
    if (!nl || (size_t)(nl - p) > 512)
        return 0;
    char key[513];
    memcpy(key, p, (size_t)(nl - p));
    key[nl - p] = '\0';
    decode((int)(sel - CJ_NKINDS), key, nl + 1, n - (size_t)(nl - p) - 1);
    return 0;
}
