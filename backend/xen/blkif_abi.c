/* blkif_abi.c — decoding ring entries of the three blkif ABIs. */
#include "blkif_abi.h"

#include <string.h>

/* The offsets Linux (xen-blkback/common.h) and QEMU (xen_blkif.h) use. */
_Static_assert(sizeof(struct blkif_wire_seg) == 8, "segment");
_Static_assert(sizeof(struct blkif_x86_32_request) == 108, "x86_32 request");
_Static_assert(offsetof(struct blkif_x86_32_request, handle) == 2, "x86_32 handle");
_Static_assert(offsetof(struct blkif_x86_32_request, id) == 4, "x86_32 id");
_Static_assert(offsetof(struct blkif_x86_32_request, sector_number) == 12, "x86_32 sector");
_Static_assert(offsetof(struct blkif_x86_32_request, seg) == 20, "x86_32 seg");
_Static_assert(offsetof(struct blkif_x86_32_request_discard, nr_sectors) == 20, "x86_32 discard");
_Static_assert(offsetof(struct blkif_x86_32_request_indirect, handle) == 20, "x86_32 ind handle");
_Static_assert(offsetof(struct blkif_x86_32_request_indirect, indirect_grefs) == 24, "x86_32 ind grefs");
_Static_assert(sizeof(struct blkif_x86_32_request_indirect) == 64, "x86_32 indirect");
_Static_assert(sizeof(struct blkif_x86_32_response) == 12, "x86_32 response");
_Static_assert(offsetof(struct blkif_x86_32_response, status) == 10, "x86_32 status");
_Static_assert(sizeof(struct blkif_x86_64_request) == 112, "x86_64 request");
_Static_assert(offsetof(struct blkif_x86_64_request, id) == 8, "x86_64 id");
_Static_assert(offsetof(struct blkif_x86_64_request, sector_number) == 16, "x86_64 sector");
_Static_assert(offsetof(struct blkif_x86_64_request, seg) == 24, "x86_64 seg");
_Static_assert(offsetof(struct blkif_x86_64_request_discard, nr_sectors) == 24, "x86_64 discard");
_Static_assert(offsetof(struct blkif_x86_64_request_indirect, handle) == 24, "x86_64 ind handle");
_Static_assert(offsetof(struct blkif_x86_64_request_indirect, indirect_grefs) == 28, "x86_64 ind grefs");
_Static_assert(sizeof(struct blkif_x86_64_request_indirect) == 64, "x86_64 indirect");
_Static_assert(sizeof(struct blkif_x86_64_response) == 16, "x86_64 response");
_Static_assert(offsetof(struct blkif_x86_64_response, status) == 10, "x86_64 status");
_Static_assert(offsetof(struct blkif_sring, ring) == BLKIF_SRING_HDR, "sring header");
#if defined(__x86_64__)
/* On x86_64 our x86_64 layout must be exactly the public header's. */
_Static_assert(sizeof(struct blkif_request) == sizeof(struct blkif_x86_64_request), "native");
_Static_assert(offsetof(struct blkif_request_indirect, indirect_grefs) == 28, "native indirect");
_Static_assert(offsetof(struct blkif_response, status) == 10, "native status");
#endif

/* Every ABI except i386's aligns uint64_t naturally, so "native" means the
 * x86_64 layout (also on ARM) unless this backend itself is 32-bit x86. */
static enum blkif_abi resolve(enum blkif_abi abi)
{
    if (abi != BLKIF_ABI_NATIVE)
        return abi;
#if defined(__i386__)
    return BLKIF_ABI_X86_32;
#else
    return BLKIF_ABI_X86_64;
#endif
}

int blkif_abi_parse(const char *protocol)
{
    /* No protocol node (or an empty one, which Linux's xenbus_scanf also
     * reads as none): only old frontends omit it, and on x86 those are i386
     * guests, so the default is x86_32 whatever this backend's own width, as
     * in Linux's xen-blkback (common.h: BLKIF_PROTOCOL_DEFAULT is X86_32
     * under CONFIG_X86) and QEMU's hw/block/xen-block.c (x86 machines). */
    if (!protocol || !*protocol)
#if defined(__i386__) || defined(__x86_64__)
        return BLKIF_ABI_X86_32;
#else
        return BLKIF_ABI_NATIVE;
#endif
    if (!strcmp(protocol, XEN_IO_PROTO_ABI_X86_32))
        return BLKIF_ABI_X86_32;
    if (!strcmp(protocol, XEN_IO_PROTO_ABI_X86_64))
        return BLKIF_ABI_X86_64;
    if (!strcmp(protocol, XEN_IO_PROTO_ABI_NATIVE))
        return BLKIF_ABI_NATIVE;
    return -1;
}

const char *blkif_abi_name(enum blkif_abi abi)
{
    switch (abi) {
    case BLKIF_ABI_X86_32: return XEN_IO_PROTO_ABI_X86_32;
    case BLKIF_ABI_X86_64: return XEN_IO_PROTO_ABI_X86_64;
    default:               return "native";
    }
}

size_t blkif_abi_entry_size(enum blkif_abi abi)
{
    /* A ring slot is a union of request and response: the request is larger. */
    return resolve(abi) == BLKIF_ABI_X86_32 ? sizeof(struct blkif_x86_32_request)
                                            : sizeof(struct blkif_x86_64_request);
}

unsigned blkif_abi_ring_size(enum blkif_abi abi, unsigned pages)
{
    unsigned n = (unsigned)((pages * 4096u - BLKIF_SRING_HDR) / blkif_abi_entry_size(abi));
    unsigned p = 1;
    while (p * 2 <= n)
        p *= 2;
    return p;
}

static void get_segs(struct blkif_req *req, const struct blkif_wire_seg *seg)
{
    unsigned n = req->nr_segments < BLKIF_MAX_SEGMENTS_PER_REQUEST ? req->nr_segments
                                                                   : BLKIF_MAX_SEGMENTS_PER_REQUEST;
    for (unsigned i = 0; i < n; i++) {
        req->seg[i].gref = seg[i].gref;
        req->seg[i].first_sect = seg[i].first_sect;
        req->seg[i].last_sect = seg[i].last_sect;
    }
}

/* The two decoders are the same code over two sets of struct types. */
#define DECODE(req, u)                                                             \
    do {                                                                           \
        (req)->operation = (u)->rw.operation;                                      \
        switch ((u)->rw.operation) {                                               \
        case BLKIF_OP_DISCARD:                                                     \
            (req)->discard_flag = (u)->discard.flag;                               \
            (req)->handle = (u)->discard.handle;                                   \
            (req)->id = (u)->discard.id;                                           \
            (req)->sector_number = (u)->discard.sector_number;                     \
            (req)->nr_sectors = (u)->discard.nr_sectors;                           \
            break;                                                                 \
        case BLKIF_OP_INDIRECT:                                                    \
            (req)->indirect_op = (u)->indirect.indirect_op;                        \
            (req)->nr_segments = (u)->indirect.nr_segments;                        \
            (req)->handle = (u)->indirect.handle;                                  \
            (req)->id = (u)->indirect.id;                                          \
            (req)->sector_number = (u)->indirect.sector_number;                    \
            memcpy((req)->indirect_grefs, (u)->indirect.indirect_grefs,            \
                   sizeof((req)->indirect_grefs));                                 \
            break;                                                                 \
        default: /* read, write, flush, barrier and unknown ops share one layout */\
            (req)->nr_segments = (u)->rw.nr_segments;                              \
            (req)->handle = (u)->rw.handle;                                        \
            (req)->id = (u)->rw.id;                                                \
            (req)->sector_number = (u)->rw.sector_number;                          \
            get_segs((req), (u)->rw.seg);                                          \
            break;                                                                 \
        }                                                                          \
    } while (0)

void blkif_abi_get_request(enum blkif_abi abi, const void *entry, struct blkif_req *req)
{
    memset(req, 0, sizeof(*req));
    if (resolve(abi) == BLKIF_ABI_X86_32) {
        union {
            struct blkif_x86_32_request rw;
            struct blkif_x86_32_request_discard discard;
            struct blkif_x86_32_request_indirect indirect;
        } u;
        memcpy(&u, entry, sizeof(u.rw));        /* the only read of guest memory */
        DECODE(req, &u);
    } else {
        union {
            struct blkif_x86_64_request rw;
            struct blkif_x86_64_request_discard discard;
            struct blkif_x86_64_request_indirect indirect;
        } u;
        memcpy(&u, entry, sizeof(u.rw));        /* the only read of guest memory */
        DECODE(req, &u);
    }
}

void blkif_abi_put_response(enum blkif_abi abi, void *entry, uint64_t id, uint8_t op, int16_t status)
{
    if (resolve(abi) == BLKIF_ABI_X86_32) {
        struct blkif_x86_32_response r = { .id = id, .operation = op, .status = status };
        memcpy(entry, &r, sizeof(r));
    } else {
        struct blkif_x86_64_response r = { .id = id, .operation = op, .status = status };
        memcpy(entry, &r, sizeof(r));
    }
}
