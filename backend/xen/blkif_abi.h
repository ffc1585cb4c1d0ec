/* blkif_abi.h — the three blkif request/response layouts on the wire and the
 * one place a request is copied off the shared ring.
 *
 * A frontend announces its ABI in XenStore ("protocol": "x86_32-abi",
 * "x86_64-abi"; absent = x86_32 on x86, see blkif_abi_parse).  The layouts differ only
 * in alignment: an i386 guest aligns uint64_t to 4 bytes, so its ring entries
 * are 108 bytes and every field after the handle sits 4 bytes earlier than in
 * the 112-byte x86_64 entry.  The structs below are our own equivalents of
 * Linux's xen-blkback/common.h, pinned by static asserts to the offsets both
 * Linux and QEMU use.
 *
 * blkif_abi_get_request() reads a ring entry exactly once (one memcpy into
 * local memory) and decodes only that copy: a frontend that rewrites the entry
 * afterwards cannot change what was validated.
 */
#ifndef MEMX_BLKIF_ABI_H
#define MEMX_BLKIF_ABI_H

#include <stddef.h>
#include <stdint.h>

#include <xen/io/blkif.h>
#include <xen/io/protocols.h>

enum blkif_abi { BLKIF_ABI_NATIVE, BLKIF_ABI_X86_32, BLKIF_ABI_X86_64 };

/* Segments described by one indirect page (8-byte blkif_request_segment). */
#define BLKIF_SEGS_PER_INDIRECT_PAGE (4096u / 8u)
/* Offset of the ring entries from the start of the shared page (ring.h's sring header). */
#define BLKIF_SRING_HDR 64u
#define BLKIF_RING_ENTRY_MAX 112u   /* the larger of the two entry sizes (x86_64) */

/* Same as struct blkif_request_segment (8 bytes on every ABI). */
struct blkif_wire_seg { uint32_t gref; uint8_t first_sect, last_sect; uint16_t pad; };

/* ---- x86_32: uint64_t aligned to 4 ------------------------------------ */
#pragma pack(push, 4)
struct blkif_x86_32_request {
    uint8_t  operation;
    uint8_t  nr_segments;
    uint16_t handle;
    uint64_t id;
    uint64_t sector_number;
    struct blkif_wire_seg seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
struct blkif_x86_32_request_discard {
    uint8_t  operation;
    uint8_t  flag;
    uint16_t handle;
    uint64_t id;
    uint64_t sector_number;
    uint64_t nr_sectors;
};
struct blkif_x86_32_request_indirect {
    uint8_t  operation;
    uint8_t  indirect_op;
    uint16_t nr_segments;
    uint64_t id;
    uint64_t sector_number;
    uint16_t handle;
    uint16_t pad1;
    uint32_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    uint64_t pad2;
};
/* Padding is spelled out so a response never carries stale bytes (XSA-216). */
struct blkif_x86_32_response {
    uint64_t id;
    uint8_t  operation;
    uint8_t  pad;
    int16_t  status;
};
#pragma pack(pop)

/* ---- x86_64: uint64_t aligned to 8 (also what ARM guests use) --------- */
typedef uint64_t blkif_u64a8 __attribute__((aligned(8)));
struct blkif_x86_64_request {
    uint8_t  operation;
    uint8_t  nr_segments;
    uint16_t handle;
    blkif_u64a8 id;
    blkif_u64a8 sector_number;
    struct blkif_wire_seg seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
struct blkif_x86_64_request_discard {
    uint8_t  operation;
    uint8_t  flag;
    uint16_t handle;
    blkif_u64a8 id;
    blkif_u64a8 sector_number;
    blkif_u64a8 nr_sectors;
};
struct blkif_x86_64_request_indirect {
    uint8_t  operation;
    uint8_t  indirect_op;
    uint16_t nr_segments;
    blkif_u64a8 id;
    blkif_u64a8 sector_number;
    uint16_t handle;
    uint32_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
};
struct blkif_x86_64_response {
    blkif_u64a8 id;
    uint8_t  operation;
    uint8_t  pad;
    int16_t  status;
    uint32_t pad2;
};

/* ---- the canonical, local form every ABI decodes into ---------------- */
struct blkif_seg {
    uint32_t gref;
    uint8_t  first_sect, last_sect;
};

struct blkif_req {
    uint8_t  operation;         /* as on the ring (BLKIF_OP_INDIRECT stays) */
    uint8_t  indirect_op;       /* BLKIF_OP_INDIRECT only */
    uint8_t  discard_flag;      /* BLKIF_OP_DISCARD only */
    uint16_t nr_segments;       /* direct: 0..255 as sent; indirect: 0..65535 */
    uint16_t handle;
    uint64_t id;
    uint64_t sector_number;
    uint64_t nr_sectors;        /* BLKIF_OP_DISCARD only */
    uint32_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
    struct blkif_seg seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];   /* direct read/write */
};

/* "x86_32-abi" or "x86_64-abi"; NULL or "" (no protocol node) is x86_32 on
 * x86 and native elsewhere, as Linux blkback and QEMU read it.  -1 for
 * anything else. */
int blkif_abi_parse(const char *protocol);
const char *blkif_abi_name(enum blkif_abi abi);          /* "native", "x86_32-abi", ... */
size_t blkif_abi_entry_size(enum blkif_abi abi);          /* 112 or 108 */
/* Requests per ring of 2^order pages (ring.h's __CONST_RING_SIZE). */
unsigned blkif_abi_ring_size(enum blkif_abi abi, unsigned pages);

/* Copies entry (guest memory) once and decodes the copy into *req. */
void blkif_abi_get_request(enum blkif_abi abi, const void *entry, struct blkif_req *req);
/* Writes a response into entry (the whole slot is written, no stale bytes). */
void blkif_abi_put_response(enum blkif_abi abi, void *entry, uint64_t id, uint8_t op, int16_t status);

#endif
