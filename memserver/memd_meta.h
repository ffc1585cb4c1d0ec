/* memd_meta.h — the memory server's answers about volumes: claims (the owner
 * epoch that fences a previous owner) and page-map records, as requests in and
 * replies out.
 *
 * The state lives in a struct volstore (lib/net/volstore.h); this module turns
 * a decoded VOL_CLAIM, VOL_DROP, META_PUT or META_LIST into its reply and logs
 * what an operator needs to see (a claim, a drop, a refused or fenced writer).
 * It knows no fabric and no session: memd.c hands it the request and sends the
 * reply, and anything that plays a memory server in-process (the unit tests'
 * fake pool) can call it the same way instead of carrying its own copy.
 */
#ifndef MEMX_MEMD_META_H
#define MEMX_MEMD_META_H

#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

struct volstore;

/* Who asks, for the volume store and the logs. */
struct memd_meta_peer {
    int owner;                          /* the asking identity (volstore_claim's owner) */
    const char *server;                 /* log prefix, e.g. "memd 127.0.0.1:7480" */
    const char *peer;                   /* printable fabric address */
    const char *client;                 /* the client's HELLO id */
};

/* Whether q is one of the four requests memd_meta_answer() takes. */
bool memd_meta_handles(int type);

/* Fills r (type, req_id, status, body) with the answer to q, a decoded
 * VOL_CLAIM, VOL_DROP, META_PUT or META_LIST, and applies it to vs.  Always
 * answers (a refusal is a status); returns -1 only when q is not one of the
 * four.  A META_LIST reply's records point into storage of this module that
 * the next call reuses: encode r before calling again.  Single-threaded. */
int memd_meta_answer(struct volstore *vs, const struct memd_meta_peer *who, const struct proto_msg *q,
                     struct proto_msg *r);

/* The fence on the data path: may who write pages for volume vid under epoch?
 * 0, ESTALE (logged) when a newer claim holds, so a fenced owner's late
 * writes never reach pages the new owner's records point at, or EPERM
 * (logged) when another identity holds that epoch.  The other requests on a
 * volume (META_LIST, VOL_DROP, META_PUT) answer the same way.  In etcd mode
 * (volstore_etcd_enable) etcd's owners/ view decides first, and a write,
 * claim, put or drop is EAGAIN while the server cannot prove that view
 * recent (the backend retries); META_LIST and a claim of epoch 0 are reads
 * and are answered anyway. */
int memd_meta_check_write(const struct volstore *vs, const struct memd_meta_peer *who, uint64_t vid,
                          uint64_t epoch);

/* A PAGE_WRITE that memd_meta_check_write let through has stored its n
 * pages in the slab named uid, at slots[i]: the records that came with them
 * (recs[i], seq 0: none) are kept as a META_PUT of them would be (one that
 * moves the epoch up stands for the claim this server missed).  0, ESTALE
 * or ENOMEM: then the write must fail, as its records are not all here. */
int memd_meta_put_page_recs(struct volstore *vs, const struct memd_meta_peer *who, uint64_t vid,
                            uint64_t epoch, uint64_t uid, const uint32_t *slots,
                            const struct proto_wrec *recs, uint32_t n);

/* May who free its slab named uid (flags: PROTO_FREE_*)?  0, or EBUSY when
 * the slab must stay because volume records point into it: any record,
 * unless the free is forced (the requester's good copies live elsewhere);
 * even a forced free when a volume who does not own (another backend's
 * claim, or no claim known here) has records there (logged). */
int memd_meta_check_free(const struct volstore *vs, const struct memd_meta_peer *who, uint64_t uid,
                         uint32_t flags);

#endif
