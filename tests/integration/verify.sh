#!/bin/bash
# (a) 256 MiB random 4 KiB write/verify at queue depth 1 and 32, with flushes,
# discards and zero pages, through the whole stack: memx-io (blkif frontend)
# -> memx-backd (sim) -> 3 memx-memd.  The QD32 run reconnects the same disk
# (Closed -> Initialising -> InitWait); a multi-queue, indirect run follows.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

SIZE=${MEMX_IT_SIZE:-256M}
it_start_world 384M
it_create 1 xvdb "memx:it-verify:$SIZE"
it_create 1 xvdc "memx:it-multi:64M"

run_verify() { # qd seed
  it_io 1 xvdb verify --size "$SIZE" --qd "$1" --seed "$2" --flush-every 1000 --discard-fraction 0.05 \
    --zero-fraction 0.1 --dup-fraction 0.05 > "$T/qd$1.out" 2> "$T/qd$1.log" ||
    { cat "$T/qd$1.out"; it_fail "verify at QD$1 failed"; }
  cat "$T/qd$1.out"
  [ "$(it_field "$T/qd$1.out" mismatches)" = 0 ] || it_fail "QD$1: mismatches"
  [ "$(it_field "$T/qd$1.out" io_errors)" = 0 ] || it_fail "QD$1: I/O errors"
}
run_verify 1 11
run_verify 32 12

# 4 queues, 128 KiB requests (indirect descriptors), then check with 4 KiB reads.
it_io 1 xvdc --queues 4 write --seed 7 --offset 0 --size 64M --bs 128K --qd 16 > "$T/mq.out" 2> "$T/mq.log" ||
  { cat "$T/mq.out"; it_fail "multi-queue indirect write failed"; }
grep -q '4 queue(s)' "$T/mq.out" || it_fail "backend did not negotiate 4 queues: $(head -1 "$T/mq.out")"
it_io 1 xvdc --queues 2 read-verify --seed 7 --offset 0 --size 64M --bs 4K --qd 32 > "$T/mqr.out" 2> "$T/mqr.log" ||
  { cat "$T/mqr.out"; it_fail "multi-queue read-verify failed"; }
cat "$T/mq.out" "$T/mqr.out"
it_alive backd

# memxctl stats breaks the latency down by stage, every stage of this
# workload's path timed (a stage that stopped being measured shows as 0).
"$B/memxctl" --socket "$T/backd.sock" stats > "$T/stats.out" || it_fail "memxctl stats failed"
for st in "ring pickup" "grant copy" "volume" "pool read request" "pool write request" \
          "transport: RMA read" "transport: write" "memory server: write" "response"; do
  n=$(grep -F "$st" "$T/stats.out" | head -1 | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+$/) { print $i; exit }}')
  [ "${n:-0}" -gt 0 ] || { cat "$T/stats.out"; it_fail "memxctl stats: no count for stage '$st'"; }
done
sed -n '/backend stages/,$p' "$T/stats.out"

p50() { sed -n "s/^$2:.*p50 \([0-9.]*\) us p99 \([0-9.]*\) us.*/\1\/\2/p" "$1"; }
v1=$(it_field "$T/qd1.out" verified) v32=$(it_field "$T/qd32.out" verified)
it_summary "QD1 $v1 pages verified (read p50/p99 $(p50 "$T/qd1.out" read) us), QD32 $v32 verified" \
  "(write p50/p99 $(p50 "$T/qd32.out" write) us), mq+indirect $(it_field "$T/mqr.out" verified) verified, 0 mismatches"
