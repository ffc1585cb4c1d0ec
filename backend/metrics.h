/* metrics.h — memx-backd's Prometheus exposition, served by
 * lib/metrics_http.h when [backend] metrics_listen is set: volumes
 * (pages by kind, requests, errors, latency histograms), devices (state,
 * requests, bad requests, latency by stage), memory servers (up, capacity,
 * used), the pool (degraded and lost slabs, rebuilding, latency by stage).
 * The same sources as memxctl's stats, volumes, devices and pool. */
#ifndef MEMX_BACKD_METRICS_H
#define MEMX_BACKD_METRICS_H

#include "ctl.h"

#include <stdio.h>

/* A metrics_render_cb; arg is the daemon's struct ctl_ctx. */
int backd_metrics_render(void *arg, FILE *f);

#endif
