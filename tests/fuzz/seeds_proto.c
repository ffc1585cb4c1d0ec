/* seeds_proto.c — writes fuzz_proto's seeds: one valid message of every type, encoded by
 * proto_encode() itself (and, for replies, an error reply too), so the seeds follow the
 * protocol when it changes.  tests/fuzz/run.sh adds them to the checked-in corpus on every
 * run; `seeds_proto tests/fuzz/corpus/proto` refreshes the checked-in copies.
 *
 * Usage: seeds_proto DIR
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put(const char *dir, const char *name, const struct proto_msg *m)
{
    static uint8_t buf[PROTO_WRITE_MAX];
    size_t n = proto_encode(m, buf, sizeof(buf));
    if (n == 0) {
        fprintf(stderr, "seeds_proto: %s does not encode\n", name);
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: seeds_proto DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    static uint8_t pages[2 * PROTO_PAGE_SIZE];
    for (size_t i = 0; i < sizeof(pages); i++)
        pages[i] = (uint8_t)(i * 7);
    static const struct proto_rec recs[2] = {
        { .lpn = 1, .seq = 5, .uid = 0x1234, .page = 3, .kind = PROTO_REC_PAGE, .hash = { 1, 2, 3 } },
        { .lpn = 2, .seq = 6, .kind = PROTO_REC_ZERO },
    };
    int bad = 0;
    for (int t = 1; t < PROTO_TYPE_MAX; t++) {
        struct proto_msg m;
        memset(&m, 0, sizeof(m));
        m.type = (uint8_t)t;
        m.req_id = 1000 + (uint64_t)t;
        switch (t) {
        case PROTO_HELLO:
            strcpy(m.u.hello.id, "backend-1");
            memset(m.u.hello.nonce, 0xab, sizeof(m.u.hello.nonce));
            m.u.hello.addr_len = 16;
            memset(m.u.hello.addr, 0x11, 16);
            m.u.hello.flags = PROTO_HELLO_FRESH;
            break;
        case PROTO_CHALLENGE:
            strcpy(m.u.challenge.id, "memd-1");
            memset(m.u.challenge.nonce, 0xcd, sizeof(m.u.challenge.nonce));
            break;
        case PROTO_AUTH: memset(m.u.auth.mac, 0x42, sizeof(m.u.auth.mac)); break;
        case PROTO_WELCOME:
            memset(m.u.welcome.mac, 0x43, sizeof(m.u.welcome.mac));
            m.u.welcome.capacity = 1ull << 30;
            m.u.welcome.used = 1ull << 20;
            m.u.welcome.slab_size = 1ull << 21;
            break;
        case PROTO_REFUSED: strcpy(m.u.refused.reason, "bad key"); break;
        case PROTO_SLAB_ALLOC_R:
            m.u.slab_alloc_r = (typeof(m.u.slab_alloc_r)){ 7, 1u << 21, 0x7f0000000000, 99, 1ull << 30,
                                                           1ull << 21 };
            break;
        case PROTO_SLAB_FREE: case PROTO_SLAB_FREE_R:
            m.u.slab_free.slab = 7;
            m.u.slab_free.flags = t == PROTO_SLAB_FREE ? PROTO_FREE_FORCE : 0;
            break;
        case PROTO_PAGE_WRITE:
            m.u.page.slab = 7;
            m.u.page.vid = 3;
            m.u.page.epoch = 2;
            m.u.page.data = pages;
            m.u.page.npages = 2;
            m.u.page.slots[0] = 4;
            m.u.page.slots[1] = 9;
            m.u.page.recs[0] = (struct proto_wrec){ .lpn = 12, .seq = 2ull << 40 | 6, .hash = { 0xaa, [15] = 0x55 } };
            break;
        case PROTO_PAGE_WRITE_R: m.u.page.slab = 7; m.u.page.page = 4; m.u.page.server_ns = 800; break;
        case PROTO_PAGE_READ: case PROTO_PAGE_READ_R:
            m.u.page.slab = 7;
            m.u.page.page = 4;
            m.u.page.data = pages;
            break;
        case PROTO_STATS_R: m.u.stats_r = (typeof(m.u.stats_r)){ 1ull << 30, 1ull << 20, 3, 2 }; break;
        case PROTO_SLAB_ALLOC: case PROTO_SLAB_FIND: m.u.slab_alloc.uid = 0x1234; break;
        case PROTO_SLAB_FIND_R:
            m.u.slab_find_r = (typeof(m.u.slab_find_r)){ 7, 512, 0x1234, 1u << 21, 0x7f0000000000, 99, 1 };
            break;
        case PROTO_VOL_CLAIM: case PROTO_VOL_CLAIM_R: case PROTO_VOL_DROP: case PROTO_VOL_DROP_R:
            m.u.vol.vid = 3;
            m.u.vol.epoch = 2;
            m.u.vol.size = 1ull << 30;
            m.u.vol.nrecs = 2;
            strcpy(m.u.vol.name, "vm1-swap");
            break;
        case PROTO_META_PUT: case PROTO_META_PUT_R: case PROTO_META_LIST: case PROTO_META_LIST_R:
            m.u.meta.vid = 3;
            m.u.meta.epoch = 2;
            m.u.meta.cursor = t == PROTO_META_LIST_R ? 17 : 0;
            m.u.meta.n = 2;
            m.u.meta.recs = recs;
            break;
        default: break;
        }
        char name[64];
        snprintf(name, sizeof(name), "%02d-%s", t, proto_type_name(t));
        bad |= put(dir, name, &m);
        /* A reply that reports an error (its body may be shorter). */
        if (t != PROTO_HELLO && t != PROTO_AUTH && strstr(proto_type_name(t), "_R")) {
            m.status = 28;      /* ENOSPC */
            snprintf(name, sizeof(name), "%02d-%s-err", t, proto_type_name(t));
            bad |= put(dir, name, &m);
        }
    }
    /* One page, the single-page form of PAGE_WRITE. */
    struct proto_msg w = { .type = PROTO_PAGE_WRITE, .req_id = 1 };
    w.u.page.slab = 1;
    w.u.page.page = 2;
    w.u.page.data = pages;
    bad |= put(dir, "10-PAGE_WRITE-one", &w);
    return bad ? 1 : 0;
}
