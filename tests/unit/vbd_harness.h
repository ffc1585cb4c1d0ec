/* vbd_harness.h — the in-process toolstack and frontend that the test_vbd
 * programs (test_vbd, test_vbd_hostile) drive memx-backd's Xen side with.
 *
 * The test process is the toolstack and the frontend (a second struct xp
 * with domid 1) as well as the backend: memx-simxsd provides XenStore, the
 * ring and data pages are granted by "domain 1", and the backend runs
 * blkback + the real volume layer over the in-memory fake pool.  Each
 * program calls vbd_suite_init() / vbd_suite_cleanup() from its suite's
 * init and cleanup, so each has its own memx-simxsd, directory and backend.
 *
 * The helpers assert with CUnit (CU_ASSERT*_FATAL ends the running test),
 * so they are called from inside tests only.
 */
#ifndef MEMX_VBD_HARNESS_H
#define MEMX_VBD_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "barrier.h"
#include "blkback.h"
#include "blkif_abi.h"
#include "evloop.h"
#include "fake_pool.h"
#include "volumes.h"
#include "xenplat.h"

#define FE_DOM   1
#define NDATA    16

/* The backend and its world, set up by vbd_suite_init(). */
extern struct evloop *el;
extern struct xp *xbe, *xfe;            /* the backend's and the frontend's (domain 1) */
extern struct pool *pool;               /* the fake pool */
extern struct volumes *vols;
extern struct blkback *bb;
extern bool shut;                       /* set by shut_done */
void shut_done(void *arg);              /* blkback_shutdown's callback */

struct tqueue {
    struct blkif_sring *s;
    unsigned pages, size;
    size_t entsz;
    uint32_t ring_refs[16];
    int port;
    uint32_t req_prod, rsp_cons;
    bool notified;              /* the last push kicked the backend */
};

struct tfront {
    uint32_t devid;
    char fe[96], be[96];
    int nq;
    struct tqueue q[4];
    uint8_t *data;
    uint32_t refs[NDATA];
    uint64_t next_id;
};

/* ---- XenStore, as the backend's connection sees it ---------------------- */
char *xs_get(const char *path);                                 /* malloc'd, or NULL */
bool node_is(const char *d, const char *node, const char *want);
bool wait_node(const char *d, const char *node, const char *want);      /* runs the loop, 5 s */
void put(const char *d, const char *node, const char *val);     /* asserts (fatal) it was written */

/* ---- the toolstack and the frontend's XenStore side --------------------- */
void toolstack_add(struct tfront *f, uint32_t devid, const char *params, const char *mode);
/* Rings, event channels, Initialised.  order < 0: a single "ring-ref";
 * nq > 1: queue-N/ subdirectories; proto NULL: no protocol node. */
void fe_connect_ex(struct tfront *f, int order, int nq, const char *proto);
/* fe_connect_ex's nodes without Initialised; omit_ref_of >= 0 leaves that
 * queue's ring-ref nodes out. */
void fe_rings(struct tfront *f, int order, int nq, const char *proto, int omit_ref_of);
void fe_connect(struct tfront *f);                              /* one page, one queue, x86_64 */
void fe_release(struct tfront *f);                              /* unbinds and unshares */
/* toolstack_add, then fe_connect: asserts (fatal) InitWait and Connected. */
void connect_dev(struct tfront *f, uint32_t devid, const char *params, const char *mode);
void fe_close(struct tfront *f);                                /* Closing -> Closed, then release */

/* ---- the ring ----------------------------------------------------------- */
void *slot(struct tqueue *q, uint32_t i);                       /* entry i (mod the ring's size) */
uint64_t push_q(struct tfront *f, int qi, const void *req, size_t len);     /* its id */
#define push(f, req) push_q((f), 0, (req), sizeof(*(req)))
int wait_rsp_q(struct tfront *f, int qi, uint64_t id, uint8_t *op);     /* status, or 99 */
#define wait_rsp(f, id, op) wait_rsp_q((f), 0, (id), (op))
/* One single-segment read or write of data page `page`, waited for: its status. */
int rw(struct tfront *f, uint8_t op, uint64_t sector, unsigned page, uint8_t first, uint8_t last);

/* ---- the rest ----------------------------------------------------------- */
struct blkback_dev_info *info_of(uint32_t devid, struct blkback_dev_info *buf);    /* buf[8] */
void fill(uint8_t *p, size_t n, unsigned seed);                 /* a pattern per seed */

/* The suite's set-up (log_name: the program's) and tear-down; 0 on success. */
int vbd_suite_init(const char *log_name);
int vbd_suite_cleanup(void);

#endif
