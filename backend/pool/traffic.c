/* traffic.c — what the pool's transport carried (pool.h pool_get_traffic):
 * the fabric counts per endpoint (lib/net/fabric.h fab_traffic), this sums
 * the endpoints of every server the pool knows and adds those closed since
 * the process started, so a server's reconnect (a new endpoint) loses none
 * of its counts.  The closed total is the process's: in memx-backd every
 * endpoint is the pool's (one pool per process), and a test running several
 * pools in one process sees their closed endpoints together.
 */
#include "pool_int.h"
#include "fabric.h"

void pool_get_traffic(const struct pool *p, struct pool_traffic *out)
{
    struct fab_traffic t, e;
    fab_get_closed_traffic(&t);
    for (int i = 0; i < p->nsrv; i++) {
        fab_get_traffic(p->srv[i]->fab, &e);
        fab_traffic_add(&t, &e);
    }
    *out = (struct pool_traffic){
        .msgs_sent = t.sent, .bytes_sent = t.sent_bytes,
        .page_msgs = t.sent_bulk, .page_bytes = t.sent_bulk_bytes,
        .msgs_recvd = t.recvd, .bytes_recvd = t.recvd_bytes,
        .rma_reads = t.rma_reads, .rma_pieces = t.rma_pieces, .rma_bytes = t.rma_bytes,
    };
}
