#!/bin/bash
# A per-volume quota (target option quota=): a guest whose volume holds its
# quota gets write errors for new pages, never a crash or a lost page:
# what it wrote before verifies, overwrites still work, memxctl stats,
# health (quota_full, code 1) and the metrics endpoint say so; a quota
# larger than the volume is refused at connect with a line naming it.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

command -v jq >/dev/null || it_fail "jq is not installed (tools/install-deps.sh installs it)"
ctl() { "$B/memxctl" --socket "$WORLD_SOCK" "$@"; }
world_conf capacity=64M servers=3 replicas=2 slab=1M log=info
MPORT=$(world_free_port)
printf '[backend]\nmetrics_listen = 127.0.0.1:%s\n' "$MPORT" >> "$WORLD_CONF"
world_start_sim
world_start_pool
world_start_backd
it_create 1 xvdb "memx:it-quota:16M:quota=2M"

it_io 1 xvdb write --seed 1 --offset 0 --size 2M > "$T/w1.out" 2> "$T/w1.log" ||
  { cat "$T/w1.out"; it_fail "2 MiB did not fit in a 2 MiB quota"; }
rc=0
it_io 1 xvdb write --seed 2 --offset 2M --size 1M > "$T/w2.out" 2> "$T/w2.log" || rc=$?
cat "$T/w2.out"
[ "$rc" = 1 ] || it_fail "writing past the quota gave exit status $rc, not 1 (write errors)"
errs=$(it_field "$T/w2.out" io_errors)
[ "${errs:-0}" -gt 0 ] || it_fail "no write errors reported past the quota"
it_alive backd
it_io 1 xvdb read-verify --seed 1 --offset 0 --size 2M > "$T/r1.out" 2> "$T/r1.log" ||
  { cat "$T/r1.out"; it_fail "the data written within the quota no longer verifies"; }
# Overwrites of pages it holds go on at the limit.
it_io 1 xvdb write --seed 3 --offset 0 --size 1M > "$T/w3.out" 2> "$T/w3.log" ||
  { cat "$T/w3.out"; it_fail "an overwrite at the quota's limit failed"; }
it_io 1 xvdb read-verify --seed 3 --offset 0 --size 1M > "$T/r3.out" 2> "$T/r3.log" ||
  { cat "$T/r3.out"; it_fail "the overwrite does not verify"; }
it_io 1 xvdb read-verify --seed 1 --offset 1M --size 1M > "$T/r4.out" 2> "$T/r4.log" ||
  { cat "$T/r4.out"; it_fail "the untouched half no longer verifies"; }

ctl --json stats > "$T/stats.json" || it_fail "memxctl stats failed"
q=$(jq -r '.volumes[] | select(.name == "it-quota") | "\(.quota_pages) \(.quota_used_pages) \(.quota_refused)"' "$T/stats.json")
read -r qp qu qr <<< "$q"
[ "$qp" = 512 ] && [ "$qu" = 512 ] && [ "$qr" -gt 0 ] || it_fail "stats' quota: '$q' (want 512 512 >0)"
ctl stats | grep -q '^quota: volume it-quota holds 512 of 512 pages (100%); [1-9][0-9]* write(s) refused' ||
  it_fail "memxctl stats does not show the quota: $(ctl stats)"
rc=0; ctl health > "$T/h.out" || rc=$?
[ $rc = 1 ] && grep -q 'quota_full: volume it-quota holds 512 of its quota of 512 pages' "$T/h.out" ||
  it_fail "health at the quota: exit $rc, $(cat "$T/h.out")"
curl -sf "http://127.0.0.1:$MPORT/metrics" > "$T/m.txt" || it_fail "scraping the metrics failed"
grep -q '^memx_volume_quota_pages{volume="it-quota"} 512$' "$T/m.txt" || it_fail "no memx_volume_quota_pages 512"
mr=$(awk '$1 == "memx_volume_quota_refused_total{volume=\"it-quota\"}" { print $2 }' "$T/m.txt")
[ "$mr" = "$qr" ] || it_fail "memx_volume_quota_refused_total is '$mr', stats says $qr"
grep -q 'volume it-quota: write refused (ENOSPC)' "$T/backd.log" || it_fail "the refusal is not in the backend's log"

# A quota larger than the volume: the device is refused at connect, the line names why.
it_create 2 xvdb "memx:it-quota2:16M:quota=32M"
rc=0; it_io 2 xvdb info > "$T/i2.out" 2>&1 || rc=$?
[ $rc != 0 ] || it_fail "a device with a quota larger than its volume connected"
it_wait_for "the refusal in the log" 10 grep -q "quota is larger than the volume" "$T/backd.log"
it_alive backd
it_summary "quota 2M: $errs write errors past it, $qr requests refused; earlier data verified, overwrites work;" \
  "stats, health quota_full and metrics agree"
