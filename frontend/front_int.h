/* front_int.h — libmemxfront internals shared by front_xenbus.c (handshake,
 * teardown) and front_ring.c (rings, requests, completions). */
#ifndef MEMX_FRONT_INT_H
#define MEMX_FRONT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>

#include "memxfront.h"
#include "xenplat.h"

#define MF_MAX_RING_ORDER   4u      /* XENBUS_MAX_RING_GRANT_ORDER, as Linux */
#define MF_MAX_QUEUES       16u
#define MF_MAX_INDIRECT     512u    /* one indirect page per request */
#define MF_SEGS_PER_IND_PAGE (XP_PAGE_SIZE / sizeof(struct blkif_request_segment))
#define MF_MAX_POOL_PAGES   65536u
#define MF_DEFAULT_POOL_CAP 4096u

struct mf_slot {
    memxfront_cb cb;
    void    *arg;
    void    *rbuf;              /* read destination, filled on completion */
    size_t   len;
    uint32_t *pages;            /* bounce page indices (max_segs entries) */
    uint16_t npages;
    uint8_t  op;                /* BLKIF_OP_* as submitted (indirect: the inner op) */
    bool     busy;
};

struct mf_queue {
    unsigned idx;
    struct blkif_sring *sring;  /* shared with the backend */
    unsigned nr_ents;
    RING_IDX req_prod_pvt;      /* requests written but maybe not yet published */
    RING_IDX rsp_cons;
    uint32_t ring_refs[1u << MF_MAX_RING_ORDER];
    int port;                   /* local event channel, -1 before allocation */
    unsigned depth;
    struct mf_slot *slots;
    uint32_t *slot_pages;       /* depth * max_segs page indices */
    uint16_t *free_ids;
    unsigned nfree;
    uint8_t  *ind;              /* depth indirect-descriptor pages, granted read-only */
    uint32_t *ind_refs;
};

struct memxfront {
    struct xp *xp;
    char front[128];
    char token[160];
    uint16_t handle;            /* the vdev number, echoed in every request */
    struct memxfront_opts opts;
    struct memxfront_info info;
    unsigned ring_order;
    uint8_t  flush_op;           /* FLUSH_DISKCACHE, or WRITE_BARRIER if only that is offered */
    unsigned nq, next_q;
    int steer;                  /* memxfront_set_queue: the one queue to use, or -1 (round robin) */
    struct mf_queue q[MF_MAX_QUEUES];
    uint8_t  *pool;             /* bounce pages, granted writable */
    uint32_t *pool_refs;
    unsigned npool;
    uint32_t *pool_free;
    unsigned pool_nfree;
    unsigned inflight;
    int epfd;
    bool watching;
    bool dead;                  /* the backend left: nothing more will complete */
    /* The backend went back to InitWait while we were connected: a restarted
     * memx-backd walking the device it found Connected.  Like Linux blkfront
     * we keep the ring and every request on it, and kick each queue once the
     * backend is Connected again. */
    bool backend_restarting;
};

/* front_ring.c */
int  mf_queue_setup(struct memxfront *f, struct mf_queue *q, char *err, size_t errlen);
int  mf_data_setup(struct memxfront *f, char *err, size_t errlen);
void mf_release(struct memxfront *f);
void mf_fail_all(struct memxfront *f, int status);
int  mf_consume_all(struct memxfront *f);

/* front_xenbus.c */
int  mf_backend_state(struct memxfront *f);
bool mf_check_backend(struct memxfront *f);
/* memxfront_opts.debug_partial_mq: n requests on q before the backend maps it. */
void mf_debug_prefill(struct memxfront *f, struct mf_queue *q, unsigned n);

#endif
