/* metrics.c — memx-backd's Prometheus exposition (metrics.h): what
 * `memxctl stats`, `volumes`, `devices` and `pool` report, as metric
 * families an exporter scrapes: counters for what only grows, gauges for
 * states and sizes, histograms with their buckets for latency. */
#include "metrics.h"
#include "blkback.h"
#include "histo.h"
#include "metrics_http.h"
#include "pool.h"
#include "vbd.h"
#include "volumes.h"

#include <stdlib.h>
#include <string.h>

static void volumes_part(FILE *f, const struct ctl_ctx *c)
{
    struct volume_stats *st = malloc(sizeof(*st));     /* two histograms: off the stack */
    if (!st)
        return;
    static const struct { const char *name, *type, *help; } fam[] = {
        { "memx_volume_size_bytes", "gauge", "Size of the volume." },
        { "memx_volume_pages", "gauge", "Pages of the volume by kind: logical = stored + zero + dup." },
        { "memx_volume_requests_total", "counter", "Guest requests served, by operation." },
        { "memx_volume_errors_total", "counter", "Guest requests that failed." },
        { "memx_volume_fenced", "gauge", "1 when another backend attached the volume since (this one is fenced)." },
        { "memx_volume_held_unreachable_total", "counter",
          "Page operations held (not failed) while every memory server for them was unreachable." },
        { "memx_volume_quota_pages", "gauge",
          "The volume's quota in pages (target option quota=; 0: none); it counts stored + dup pages." },
        { "memx_volume_quota_refused_total", "counter",
          "Guest writes refused with ENOSPC because their new pages did not fit in the volume's quota." },
    };
    for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
        metrics_family(f, fam[k].name, fam[k].type, fam[k].help);
        struct volume *v;
        for (size_t i = 0; (v = volumes_at(c->vols, i)); i++) {
            volume_get_stats(v, st);
            const char *n = volume_name(v);
            switch (k) {
            case 0:
                fprintf(f, "memx_volume_size_bytes{volume=\"%s\"} %llu\n", n, (unsigned long long)st->size_bytes);
                break;
            case 1: {
                const struct { const char *kind; uint64_t n; } pg[] = {
                    { "logical", st->logical_pages }, { "stored", st->stored_pages },
                    { "zero", st->zero_pages }, { "dup", st->dup_pages } };
                for (size_t j = 0; j < sizeof(pg) / sizeof(pg[0]); j++)
                    fprintf(f, "memx_volume_pages{volume=\"%s\",kind=\"%s\"} %llu\n", n, pg[j].kind,
                            (unsigned long long)pg[j].n);
                break;
            }
            case 2: {
                const struct { const char *op; uint64_t n; } rq[] = {
                    { "read", st->reads }, { "write", st->writes }, { "discard", st->discards },
                    { "flush", st->flushes } };
                for (size_t j = 0; j < sizeof(rq) / sizeof(rq[0]); j++)
                    fprintf(f, "memx_volume_requests_total{volume=\"%s\",op=\"%s\"} %llu\n", n, rq[j].op,
                            (unsigned long long)rq[j].n);
                break;
            }
            case 3:
                fprintf(f, "memx_volume_errors_total{volume=\"%s\"} %llu\n", n, (unsigned long long)st->errors);
                break;
            case 4: {
                const char *why;
                fprintf(f, "memx_volume_fenced{volume=\"%s\"} %d\n", n,
                        volume_state(v, &why) < 0 && strstr(why, "fenced") ? 1 : 0);
                break;
            }
            case 5:
                fprintf(f, "memx_volume_held_unreachable_total{volume=\"%s\"} %llu\n", n,
                        (unsigned long long)st->held_unreach);
                break;
            case 6:
                fprintf(f, "memx_volume_quota_pages{volume=\"%s\"} %llu\n", n, (unsigned long long)st->quota_pages);
                break;
            case 7:
                fprintf(f, "memx_volume_quota_refused_total{volume=\"%s\"} %llu\n", n,
                        (unsigned long long)st->quota_refused);
                break;
            }
        }
    }
    metrics_family(f, "memx_volume_latency_seconds", "histogram",
                   "Guest request latency in the backend, arrival to answer, by operation.");
    struct volume *v;
    for (size_t i = 0; (v = volumes_at(c->vols, i)); i++) {
        volume_get_stats(v, st);
        char l[128];
        snprintf(l, sizeof(l), "volume=\"%s\",op=\"read\"", volume_name(v));
        metrics_histo(f, "memx_volume_latency_seconds", l, &st->read_ns);
        snprintf(l, sizeof(l), "volume=\"%s\",op=\"write\"", volume_name(v));
        metrics_histo(f, "memx_volume_latency_seconds", l, &st->write_ns);
    }
    free(st);
}

static void devices_part(FILE *f, const struct ctl_ctx *c)
{
    static const char *const stage[BLKBACK_STAGES] = { "ring_pickup", "grant_copy", "volume", "response" };
    int n = c->bb ? blkback_list(c->bb, NULL, 0) : 0;
    struct blkback_dev_info *d = n > 0 ? calloc((size_t)n, sizeof(*d)) : NULL;
    n = d ? blkback_list(c->bb, d, n) : 0;
    metrics_family(f, "memx_device_connected", "gauge", "1 while the guest's frontend is Connected.");
    for (int i = 0; i < n; i++)
        fprintf(f, "memx_device_connected{domid=\"%u\",devid=\"%u\",volume=\"%s\"} %d\n", d[i].domid, d[i].devid,
                d[i].volume, strcmp(d[i].state, "Connected") == 0);
    metrics_family(f, "memx_device_requests_total", "counter", "Requests taken from the device's rings.");
    for (int i = 0; i < n; i++)
        fprintf(f, "memx_device_requests_total{domid=\"%u\",devid=\"%u\",volume=\"%s\"} %llu\n", d[i].domid,
                d[i].devid, d[i].volume, (unsigned long long)d[i].requests);
    metrics_family(f, "memx_device_errors_total", "counter", "Requests answered with an error.");
    for (int i = 0; i < n; i++)
        fprintf(f, "memx_device_errors_total{domid=\"%u\",devid=\"%u\",volume=\"%s\"} %llu\n", d[i].domid,
                d[i].devid, d[i].volume, (unsigned long long)d[i].errors);
    metrics_family(f, "memx_device_bad_requests_total", "counter",
                   "Malformed requests the guest sent (answered with an error, never served).");
    for (int i = 0; i < n; i++)
        fprintf(f, "memx_device_bad_requests_total{domid=\"%u\",devid=\"%u\",volume=\"%s\"} %llu\n", d[i].domid,
                d[i].devid, d[i].volume, (unsigned long long)d[i].bad_requests);
    metrics_family(f, "memx_stage_latency_seconds", "histogram",
                   "Backend time per request by stage (ring pickup, grant copy, volume, response), per device.");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < BLKBACK_STAGES; k++) {
            char l[160];
            snprintf(l, sizeof(l), "domid=\"%u\",devid=\"%u\",stage=\"%s\"", d[i].domid, d[i].devid, stage[k]);
            metrics_histo(f, "memx_stage_latency_seconds", l, &d[i].stage_ns[k]);
        }
    free(d);
}

static void pool_part(FILE *f, const struct ctl_ctx *c)
{
    static const char *const tname[POOL_T_N] = { "pool_read", "pool_write", "transport_read", "transport_write",
                                                 "server_write" };
    int n = pool_get_servers(c->pool, NULL, 0);
    struct pool_server_info *s = n > 0 ? calloc((size_t)n, sizeof(*s)) : NULL;
    n = s ? pool_get_servers(c->pool, s, n) : 0;
    metrics_family(f, "memx_server_up", "gauge", "1 while the memory server is up (connected, serving).");
    for (int i = 0; i < n; i++)
        fprintf(f, "memx_server_up{server=\"%s\",state=\"%s\"} %d\n", s[i].addr, s[i].state,
                strcmp(s[i].state, "up") == 0);
    metrics_family(f, "memx_server_capacity_bytes", "gauge", "RAM the memory server contributes.");
    for (int i = 0; i < n; i++)
        fprintf(f, "memx_server_capacity_bytes{server=\"%s\"} %llu\n", s[i].addr, (unsigned long long)s[i].capacity);
    metrics_family(f, "memx_server_used_bytes", "gauge", "RAM of the memory server in use (every backend).");
    for (int i = 0; i < n; i++)
        fprintf(f, "memx_server_used_bytes{server=\"%s\"} %llu\n", s[i].addr, (unsigned long long)s[i].used);
    metrics_family(f, "memx_server_replicas", "gauge", "Good slab replicas of this backend on the server.");
    for (int i = 0; i < n; i++)
        fprintf(f, "memx_server_replicas{server=\"%s\"} %u\n", s[i].addr, s[i].replicas);
    free(s);

    struct pool_stats ps;
    pool_get_stats(c->pool, &ps);
    metrics_family(f, "memx_pool_pages_stored", "gauge", "Pages stored in the pool (once, whatever the replicas).");
    fprintf(f, "memx_pool_pages_stored %llu\n", (unsigned long long)ps.pages_stored);
    metrics_family(f, "memx_pool_slabs", "gauge", "Slabs this backend holds.");
    fprintf(f, "memx_pool_slabs %llu\n", (unsigned long long)ps.slabs);
    metrics_family(f, "memx_pool_degraded_slabs", "gauge", "Slabs with fewer good copies than replicas.");
    fprintf(f, "memx_pool_degraded_slabs %llu\n", (unsigned long long)ps.degraded_slabs);
    metrics_family(f, "memx_pool_lost_slabs", "gauge", "Slabs with no good copy (their pages read as errors).");
    fprintf(f, "memx_pool_lost_slabs %llu\n", (unsigned long long)ps.lost_slabs);
    metrics_family(f, "memx_pool_rebuilding", "gauge", "1 while re-replication runs.");
    fprintf(f, "memx_pool_rebuilding %d\n", ps.rebuilding ? 1 : 0);
    metrics_family(f, "memx_pool_rereplicated_pages_total", "counter", "Pages copied by re-replication.");
    fprintf(f, "memx_pool_rereplicated_pages_total %llu\n", (unsigned long long)ps.rereplicated_pages);
    metrics_family(f, "memx_pool_nospace_writes_total", "counter",
                   "Page writes failed with ENOSPC: no memory server had room for another slab (pool full).");
    fprintf(f, "memx_pool_nospace_writes_total %llu\n", (unsigned long long)ps.nospace_writes);
    metrics_family(f, "memx_pool_page_ops_total", "counter", "Pool page operations, by kind.");
    fprintf(f, "memx_pool_page_ops_total{op=\"write\"} %llu\n", (unsigned long long)ps.writes);
    fprintf(f, "memx_pool_page_ops_total{op=\"read\"} %llu\n", (unsigned long long)ps.reads);
    fprintf(f, "memx_pool_page_ops_total{op=\"error\"} %llu\n", (unsigned long long)ps.errors);
    fprintf(f, "memx_pool_page_ops_total{op=\"write_few\"} %llu\n", (unsigned long long)ps.writes_few);
    struct histo *t = calloc(POOL_T_N, sizeof(*t));
    if (t) {
        pool_get_timing(c->pool, t);
        metrics_family(f, "memx_pool_latency_seconds", "histogram",
                       "Pool time per operation: request issue to completion, transport round trip, server time.");
        for (int k = 0; k < POOL_T_N; k++) {
            char l[48];
            snprintf(l, sizeof(l), "stage=\"%s\"", tname[k]);
            metrics_histo(f, "memx_pool_latency_seconds", l, &t[k]);
        }
        free(t);
    }
}

int backd_metrics_render(void *arg, FILE *f)
{
    const struct ctl_ctx *c = arg;
    metrics_family(f, "memx_backend_info", "gauge", "memx-backd's version and platform.");
    fprintf(f, "memx_backend_info{version=\"%s\",platform=\"%s\",provider=\"%s\"} 1\n", PACKAGE_VERSION,
            c->platform, c->provider);
    volumes_part(f, c);
    devices_part(f, c);
    if (c->pool)
        pool_part(f, c);
    return ferror(f) ? -1 : 0;
}
