#!/bin/bash
# The Prometheus endpoints ([backend] and [memserver] metrics_listen): a
# guest writes and verifies, then the backend's /metrics is scraped with
# curl, passes the real Prometheus' `promtool check metrics`, and agrees with
# `memxctl --json stats` and `pool` (requests by operation, pages, servers
# up); a memory server's /metrics gives its capacity; anything but GET
# /metrics is refused (404, 405).
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

command -v promtool >/dev/null || it_fail "promtool is not installed (tools/install-deps.sh installs prometheus)"
command -v jq >/dev/null || it_fail "jq is not installed (tools/install-deps.sh installs it)"
world_conf capacity=256M servers=3 replicas=2 slab=4M log=info
MPORT=$(world_free_port)
printf '[backend]\nmetrics_listen = 127.0.0.1:%s\n' "$MPORT" >> "$WORLD_CONF"
world_start_sim
world_start_pool
world_start_backd
it_create 1 xvdb "memx:it-metrics:16M"
it_io 1 xvdb verify --size 16M --qd 8 --seed 3 --zero-fraction 0.1 > "$T/io.out" 2> "$T/io.log" ||
  { cat "$T/io.out"; it_fail "the guest's verify failed"; }

scrape() { curl -sf "http://127.0.0.1:$MPORT/metrics" > "$T/m.txt" || it_fail "scraping http://127.0.0.1:$MPORT/metrics failed"; }
metric() { # name{labels} -> value
  awk -v k="$1" '$1 == k { print $2 }' "$T/m.txt"
}
scrape
promtool check metrics < "$T/m.txt" > "$T/promtool.out" 2>&1 || { cat "$T/promtool.out"; it_fail "promtool check metrics failed"; }
"$B/memxctl" --socket "$T/backd.sock" --json stats > "$T/stats.json" || it_fail "memxctl stats failed"
"$B/memxctl" --socket "$T/backd.sock" --json pool > "$T/pool.json" || it_fail "memxctl pool failed"
for op in read write; do
  want=$(jq -r ".volumes[] | select(.name == \"it-metrics\") | .${op}s" "$T/stats.json")
  got=$(metric "memx_volume_requests_total{volume=\"it-metrics\",op=\"$op\"}")
  [ -n "$got" ] && [ "$got" = "$want" ] || it_fail "memx_volume_requests_total op=$op is '$got', memxctl stats says $want"
  n=$(metric "memx_volume_latency_seconds_count{volume=\"it-metrics\",op=\"$op\"}")
  [ "$n" = "$want" ] || it_fail "the $op latency histogram counts '$n' requests, memxctl stats $want"
done
for kind in logical stored zero dup; do
  want=$(jq -r ".volumes[] | select(.name == \"it-metrics\") | .${kind}_pages" "$T/stats.json")
  got=$(metric "memx_volume_pages{volume=\"it-metrics\",kind=\"$kind\"}")
  [ "$got" = "$want" ] || it_fail "memx_volume_pages kind=$kind is '$got', memxctl stats says $want"
done
up=$(grep -c '^memx_server_up{.*} 1$' "$T/m.txt" || true)
want=$(jq -r '[.servers[] | select(.state == "up")] | length' "$T/pool.json")
[ "$up" = "$want" ] && [ "$up" = 3 ] || it_fail "memx_server_up: $up servers up, memxctl pool says $want"
[ "$(metric memx_pool_degraded_slabs)" = "$(jq -r .degraded_slabs "$T/pool.json")" ] || it_fail "degraded slabs differ"
grep -q '^memx_stage_latency_seconds_bucket{domid="1",devid="51728",stage="grant_copy",le="+Inf"} [1-9]' "$T/m.txt" ||
  it_fail "no grant-copy stage histogram for the device"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/other")" = 404 ] || it_fail "/other was not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:$MPORT/metrics")" = 405 ] || it_fail "DELETE was not 405"
it_alive backd

# A memory server's own endpoint.
MDPORT=$(world_free_port)
MDP=$(world_free_port)
cp "$WORLD_CONF" "$T/memd-m.conf"
printf '[memserver]\nmetrics_listen = 127.0.0.1:%s\n' "$MDP" >> "$T/memd-m.conf"
world_spawn memdm "$B/memx-memd" --config "$T/memd-m.conf" --listen "127.0.0.1:$MDPORT" --capacity 32M
it_wait_for "the extra memx-memd's metrics" 10 curl -sf -o "$T/md.txt" "http://127.0.0.1:$MDP/metrics"
promtool check metrics < "$T/md.txt" > "$T/promtool2.out" 2>&1 || { cat "$T/promtool2.out"; it_fail "promtool: memx-memd's metrics"; }
grep -q '^memx_memd_capacity_bytes 33554432$' "$T/md.txt" || it_fail "memx-memd's capacity metric: $(grep capacity "$T/md.txt")"

it_summary "backend /metrics: $(grep -c '^# TYPE' "$T/m.txt") families, promtool clean, requests/pages/servers equal to memxctl's; memx-memd /metrics clean"
