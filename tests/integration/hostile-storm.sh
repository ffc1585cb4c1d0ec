#!/bin/bash
# Issue 13 item 7: a bad-request storm.  Domain 1 keeps its ring full of
# unknown-op requests (each answered at once, EOPNOTSUPP) while domain 2
# runs the same QD8 write workload it ran alone a moment before: memx-backd
# takes a ring's worth of domain 1's requests per loop turn, so domain 2
# keeps serving.  The summary says how much of its throughput it kept.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

it_start_world 256M
it_create 1 xvdb "memx:it-storm:16M"
it_create 2 xvdb "memx:it-calm:64M"

good() {  # good RUN: domain 2's writes, MB/s on stdout
  it_io 2 xvdb write --seed "$1" --offset 0 --size 32M --qd 8 > "$T/good-$1.out" 2> "$T/good-$1.log" ||
    it_fail "domain 2's writes failed (run $1)"
  sed -n 's/.* \([0-9.]*\) MB\/s, \([0-9]*\) IOPS.*/\1 \2/p' "$T/good-$1.out" | tail -1
}

read -r alone_mb alone_iops < <(good 1)
# The storm outlasts domain 2's run (its --timeout caps it at 5 s).
it_io 1 xvdb raw-bad storm --timeout 5000 > "$T/storm.out" 2> "$T/storm.log" &
storm=$!
sleep 0.5
read -r storm_mb storm_iops < <(good 2)
wait $storm || { cat "$T/storm.out"; it_fail "the storming domain's requests were not all refused"; }
cat "$T/storm.out"
grep -q 'device still serves I/O' "$T/storm.out" || it_fail "domain 1's device stopped serving after its storm"
# Every page domain 2 wrote during the storm reads back.
it_io 2 xvdb read-verify --seed 2 --offset 0 --size 32M > "$T/check.out" 2> "$T/check.log" ||
  { cat "$T/check.out"; it_fail "domain 2's data written during the storm does not read back"; }
it_alive backd
kept=$(awk -v a="$alone_mb" -v s="$storm_mb" 'BEGIN { printf "%.0f", (a > 0 ? 100 * s / a : 0) }')
echo "domain 2 alone: $alone_mb MB/s ($alone_iops IOPS); during domain 1's storm: $storm_mb MB/s ($storm_iops IOPS) = $kept% kept"
# A floor only (a shared 2-core machine is noisy): starved, domain 2 would get ~0.
[ "$kept" -ge 10 ] || it_fail "domain 2 kept only $kept% of its throughput during the storm"
it_summary "storm: $(sed -n 's/raw-bad storm: \([0-9]*\) bad requests sent.* \([0-9]*\/s\)$/\1 bad requests, \2/p' \
  "$T/storm.out"); domain 2 kept $kept% ($storm_mb of $alone_mb MB/s, $storm_iops of $alone_iops IOPS);" \
  "its data verified; backd alive"
