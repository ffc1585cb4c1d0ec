#!/bin/bash
# (b) A hostile guest: domain 1 sends malformed requests of every kind on its
# disk while domain 2 keeps verifying its own.  Each bad request must be
# refused (BLKIF_RSP_ERROR, or EOPNOTSUPP for an unknown op) with domain 1's
# disk still serving afterwards; req_prod far ahead of the ring must get the
# disk disconnected.  Domain 2 sees no error, memx-backd stays up, and
# domain 1 can reconnect.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

it_start_world 256M
it_create 1 xvdb "memx:it-evil:16M"
it_create 2 xvdb "memx:it-good:96M"

# Domain 2 verifies its disk over and over until domain 1 is done, so every
# bad request lands while honest I/O is in flight beside it.
(
  runs=0
  while [ $runs = 0 ] || [ ! -e "$T/evil-done" ]; do
    it_io 2 xvdb verify --size 32M --qd 8 --seed $((21 + runs)) --discard-fraction 0.02 > "$T/good.out" \
      2> "$T/good.log" || exit 1
    runs=$((runs + 1))
    echo "$runs" > "$T/good.runs"
  done
) &
good=$!

kinds="too-many-segs past-end bad-gref bad-sects unknown-op indirect-too-many discard-past-end"
refused=0
for k in $kinds; do
  it_io 1 xvdb raw-bad "$k" > "$T/bad-$k.out" 2> "$T/bad-$k.log" ||
    { cat "$T/bad-$k.out"; it_fail "raw-bad $k was not refused cleanly"; }
  cat "$T/bad-$k.out" | grep raw-bad
  grep -q 'device still serves I/O' "$T/bad-$k.out" || it_fail "raw-bad $k: device A stopped serving"
  if [ "$k" = unknown-op ]; then
    grep -q 'status -2 (BLKIF_RSP_EOPNOTSUPP)' "$T/bad-$k.out" || it_fail "unknown op not answered EOPNOTSUPP"
  fi
  refused=$((refused + 1))
done
it_io 1 xvdb raw-bad req-prod-ahead > "$T/bad-ahead.out" 2> "$T/bad-ahead.log" ||
  { cat "$T/bad-ahead.out"; it_fail "req_prod far ahead did not get the device disconnected"; }
cat "$T/bad-ahead.out"
it_alive backd

# The evil guest's disk comes back after a reconnect (Closed -> Initialising -> InitWait).
it_io 1 xvdb write --seed 3 --offset 0 --size 1M > "$T/re.out" 2> "$T/re.log" || it_fail "domain 1 cannot reconnect"
it_io 1 xvdb read-verify --seed 3 --offset 0 --size 1M >> "$T/re.out" 2>> "$T/re.log" ||
  it_fail "domain 1 reads wrong data after reconnecting"

touch "$T/evil-done"
wait $good || { cat "$T/good.out"; it_fail "domain 2's verify failed while domain 1 misbehaved"; }
cat "$T/good.out"
[ "$(it_field "$T/good.out" mismatches)" = 0 ] || it_fail "domain 2 saw mismatches"
it_alive backd
it_summary "$refused malformed kinds refused + req-prod-ahead disconnected; domain 2 verified" \
  "$(cat "$T/good.runs") x $(it_field "$T/good.out" verified) pages alongside, 0 mismatches; backd alive;" \
  "domain 1 reconnected"
