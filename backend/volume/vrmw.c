/* vrmw.c — a write of part of a page: read the page, modify it, store it whole.
 *
 * Runs only while the page is otherwise idle (volume.c queues it behind the
 * page's writes in flight and starts it from op_end), so the page it reads is
 * the one every earlier write left.  The page read holds a reference on the
 * source page, so it cannot be freed and reused under the read.  A part-page
 * write that leaves zeros stores no page: the map says zero (or none, for a
 * discard of a page that never had data).
 */
#include "volume_int.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void rmw_modify(struct volume *v, struct pop *p)
{
    if (p->buf)
        memcpy(p->bounce + p->off, p->buf, p->len);
    else
        memset(p->bounce + p->off, 0, p->len);
    if (vol_page_is_zero(p->bounce)) {
        bool keep_none = p->was_none && p->r->kind == REQ_DISCARD;
        vol_pop_set(v, p, (struct pm_ent){ .kind = keep_none ? PM_NONE : PM_ZERO });
        return;
    }
    vstore_page(p, p->bounce);
}

static void rmw_read_done(void *arg, int status)
{
    struct pop *p = arg;
    struct volume *v = p->r->v;
    if (status == -EHOSTUNREACH && vol_hold_unreach(p, AG_RMW))
        return;     /* the reference on src is kept while held */
    if (status == -EHOSTUNREACH)
        status = -EIO;
    pageref_put(&v->vs->refs, p->src);
    if (status) {
        vol_wr_end(p, status);
        return;
    }
    rmw_modify(v, p);
}

void vol_rmw_start(struct volume *v, struct pop *p)
{
    struct pm_ent e = pagemap_get(&v->map, p->idx);
    p->bounce = xcalloc(1, VOLUME_PAGE_SIZE);
    if (!p->bounce) {
        vol_wr_end(p, xalloc_fail("volume %s: a read-modify-write buffer", v->name));
        return;
    }
    p->was_none = e.kind == PM_NONE;
    if (e.kind == PM_LOST) {
        vol_wr_end(p, -EIO);    /* the rest of the page is gone: never fill it with zeros */
        return;
    }
    if (e.kind == PM_PAGE) {
        if (pageref_get(&v->vs->refs, e.page) < 0) {
            vol_wr_end(p, xalloc_fail("volume %s: a page reference", v->name));
            return;
        }
        p->src = e.page;
        memcpy(p->phash, e.hash, 16);   /* for a retry; vstore_page sets the new page's */
        pool_read_checked(v->vs->pool, e.page, e.hash, p->bounce, rmw_read_done, p);
        return;
    }
    rmw_modify(v, p);
}

void vol_rmw_read_again(struct pop *p)
{
    pool_read_checked(p->r->v->vs->pool, p->src, p->phash, p->bounce, rmw_read_done, p);
}
