/* ctl_stats.c — the control socket's stats reply (ctl_int.h). */
#include "ctl_int.h"

#include "pool.h"
#include "vbd.h"

#include <stdlib.h>

static json_object *stats_object(const char *name, const struct volume_stats *st)
{
    json_object *o = json_object_new_object();
    if (name)
        add_str(o, "name", name);
    add_pages(o, st);
    add_u64(o, "requests", st->reads + st->writes + st->discards + st->flushes);
    add_u64(o, "reads", st->reads);
    add_u64(o, "writes", st->writes);
    add_u64(o, "discards", st->discards);
    add_u64(o, "flushes", st->flushes);
    add_u64(o, "errors", st->errors);
    add_u64(o, "held_unreachable", st->held_unreach);
    if (name) {     /* a volume's quota (0: none), what it counts, and the writes it refused */
        add_u64(o, "quota_pages", st->quota_pages);
        add_u64(o, "quota_used_pages", st->stored_pages + st->dup_pages);
    }
    add_u64(o, "quota_refused", st->quota_refused);
    add_us(o, "read_p50_us", histo_quantile(&st->read_ns, 0.50));
    add_us(o, "read_p99_us", histo_quantile(&st->read_ns, 0.99));
    add_us(o, "write_p50_us", histo_quantile(&st->write_ns, 0.50));
    add_us(o, "write_p99_us", histo_quantile(&st->write_ns, 0.99));
    return o;
}

static void add_stage(json_object *arr, const char *name, const struct histo *h)
{
    json_object *o = json_object_new_object();
    add_str(o, "stage", name);
    add_u64(o, "count", h->count);
    add_us(o, "p50_us", histo_quantile(h, 0.50));
    add_us(o, "p99_us", histo_quantile(h, 0.99));
    add_us(o, "mean_us", h->count ? h->sum / h->count : 0);
    json_object_array_add(arr, o);
}

/* The backend's latency by stage over every device (blkback.h stage_ns), in
 * request order, with the pool's share of the volume stage split out
 * (pool.h pool_get_timing): a slow stage shows where it is. */
static json_object *stages_object(const struct ctl_ctx *ctx)
{
    static const char *const names[BLKBACK_STAGES] = { "ring_pickup", "grant_copy", "volume",
                                                       "response" };
    static const char *const pool_names[POOL_T_N] = { "pool_read", "pool_write", "transport_read",
                                                      "transport_write", "server_write" };
    json_object *arr = json_object_new_array();
    int n = ctl_device_count(ctx);
    struct blkback_dev_info *d = n > 0 ? calloc((size_t)n, sizeof(*d)) : NULL;
    struct histo *tot = calloc(BLKBACK_STAGES + POOL_T_N, sizeof(*tot)), *pt = tot + BLKBACK_STAGES;
    if (tot) {
        n = d ? blkback_list(ctx->bb, d, n) : 0;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < BLKBACK_STAGES; k++)
                histo_merge(&tot[k], &d[i].stage_ns[k]);
        if (ctx->pool)
            pool_get_timing(ctx->pool, pt);
        for (int k = 0; k < BLKBACK_STAGES; k++) {
            if (k == VBD_STAGE_RESPONSE && ctx->pool)
                for (int j = 0; j < POOL_T_N; j++)
                    add_stage(arr, pool_names[j], &pt[j]);
            add_stage(arr, names[k], &tot[k]);
        }
    }
    free(tot);
    free(d);
    return arr;
}

static void add_ratio(json_object *o, const char *k, uint64_t num, uint64_t den)
{
    char buf[32];
    double v = den ? (double)num / (double)den : 0.0;
    snprintf(buf, sizeof(buf), "%.2f", v);
    json_object_object_add(o, k, json_object_new_double_s(v, buf));
}

/* What the pool's transport carried (pool.h pool_get_traffic), in total and
 * per guest request, so that what a write or a read costs on the wire is
 * visible: a 4 KiB write is one page message per replica and its answer; a
 * record sent apart from its page, or one message per server, shows as more
 * messages per write.  Reads are one-sided (RMA reads, no message), so every
 * message is charged to the writes, the few per second of heartbeats and slab
 * allocations included. */
static json_object *traffic_object(const struct ctl_ctx *ctx, uint64_t writes, uint64_t reads)
{
    struct pool_traffic t = { 0 };
    if (ctx->pool)
        pool_get_traffic(ctx->pool, &t);
    json_object *o = json_object_new_object();
    add_u64(o, "msgs_sent", t.msgs_sent);
    add_u64(o, "bytes_sent", t.bytes_sent);
    add_u64(o, "page_msgs", t.page_msgs);
    add_u64(o, "page_bytes", t.page_bytes);
    add_u64(o, "msgs_recvd", t.msgs_recvd);
    add_u64(o, "bytes_recvd", t.bytes_recvd);
    add_u64(o, "rma_reads", t.rma_reads);
    add_u64(o, "rma_pieces", t.rma_pieces);
    add_u64(o, "rma_bytes", t.rma_bytes);
    json_object *w = json_object_new_object();
    add_ratio(w, "msgs", t.msgs_sent + t.msgs_recvd, writes);
    add_ratio(w, "msgs_sent", t.msgs_sent, writes);
    add_ratio(w, "page_msgs", t.page_msgs, writes);
    add_ratio(w, "other_msgs", t.msgs_sent - t.page_msgs, writes);
    add_ratio(w, "msgs_recvd", t.msgs_recvd, writes);
    add_ratio(w, "bytes", t.bytes_sent + t.bytes_recvd, writes);
    add_ratio(w, "bytes_sent", t.bytes_sent, writes);
    add_ratio(w, "page_bytes", t.page_bytes, writes);
    add_ratio(w, "other_bytes", t.bytes_sent - t.page_bytes, writes);
    json_object_object_add(o, "per_write", w);
    json_object *r = json_object_new_object();
    add_ratio(r, "rma_reads", t.rma_reads, reads);
    add_ratio(r, "rma_pieces", t.rma_pieces, reads);
    add_ratio(r, "bytes", t.rma_bytes, reads);
    json_object_object_add(o, "per_read", r);
    add_u64(o, "writes", writes);
    add_u64(o, "reads", reads);
    return o;
}

json_object *ctl_stats_reply(const struct ctl_ctx *ctx)
{
    /* Two histograms each: keep them off the stack. */
    struct volume_stats *st = malloc(sizeof(*st)), *tot = calloc(1, sizeof(*tot));
    if (!st || !tot) {
        free(st);
        free(tot);
        json_object *e = json_object_new_object();
        add_str(e, "error", "out of memory");
        return e;
    }
    histo_reset(&tot->read_ns);
    histo_reset(&tot->write_ns);
    json_object *arr = json_object_new_array();
    struct volume *v;
    for (size_t i = 0; (v = volumes_at(ctx->vols, i)); i++) {
        volume_get_stats(v, st);
        json_object_array_add(arr, stats_object(volume_name(v), st));
        tot->size_bytes += st->size_bytes;
        tot->logical_pages += st->logical_pages;
        tot->stored_pages += st->stored_pages;
        tot->zero_pages += st->zero_pages;
        tot->dup_pages += st->dup_pages;
        tot->reads += st->reads;
        tot->writes += st->writes;
        tot->discards += st->discards;
        tot->flushes += st->flushes;
        tot->errors += st->errors;
        tot->held_unreach += st->held_unreach;
        tot->quota_refused += st->quota_refused;
        histo_merge(&tot->read_ns, &st->read_ns);
        histo_merge(&tot->write_ns, &st->write_ns);
    }
    /* Shared pages are charged to their first writer: the host-wide table
     * has the exact stored/dup split. */
    struct volumes_stats hs;
    volumes_get_stats(ctx->vols, &hs);
    tot->stored_pages = hs.stored_pages;
    tot->dup_pages = hs.dup_pages;
    json_object *dd = json_object_new_object();
    json_object_object_add(dd, "enabled", json_object_new_boolean(hs.dedup));
    add_u64(dd, "hits", hs.dedup_hits);
    add_u64(dd, "late_hits", hs.late_hits);
    add_u64(dd, "collisions", hs.collisions);
    add_u64(dd, "compare_reads", hs.compare_reads);
    add_u64(dd, "index_pages", hs.index_pages);
    add_u64(dd, "cached_pages", hs.cached_pages);
    json_object *r = json_object_new_object();
    json_object_object_add(r, "volumes", arr);
    json_object_object_add(r, "totals", stats_object(NULL, tot));
    json_object_object_add(r, "dedup", dd);
    json_object_object_add(r, "stages", stages_object(ctx));
    json_object_object_add(r, "traffic", traffic_object(ctx, tot->writes, tot->reads));
    free(st);
    free(tot);
    return r;
}
