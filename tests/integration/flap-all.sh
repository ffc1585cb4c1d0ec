#!/bin/bash
# Every memory server unreachable at once, under a guest that writes and
# verifies (a switch flap, a stalled rack, a starved emulator): all three
# memory servers are stopped (SIGSTOP) for 8 s, long past the backend's
# heartbeat and operation timeouts, so the backend declares every one down
# with the guest's writes and reads in flight; then they go on as the same
# processes.  The guest must see a pause, never an I/O error: the pool
# answers "unreachable" and the volume holds those page operations, trying
# them again, for up to [backend] io_hold_s (60 s by default); the slabs are
# revalidated when their servers return and nothing is lost.  Then the same
# with io_hold_s = 1 (changed live with memxctl reload): a flap longer than
# that fails the writes cleanly, with the old data intact.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

it_start_world 256M 3 2 1M
it_create 1 xvdb "memx:it-flap:96M"
ctl() { "$B/memxctl" --socket "$WORLD_SOCK" "$@"; }
requests() { ctl --json devices 2>/dev/null | sed -n 's/.*"requests": *\([0-9]*\).*/\1/p' | head -1; }
at_least() { local n; n=$(requests); [ -n "$n" ] && [ "$n" -ge "$1" ]; }
stop_all() { for i in 0 1 2; do kill -"$1" "${WORLD_PID[memd$i]}"; done; }

it_io 1 xvdb verify --size 96M --qd 16 --seed 5 --timeout 60000 > "$T/io.out" 2> "$T/io.log" &
io=$!
it_wait_for "the guest's first 3000 requests" 60 at_least 3000
it_running $io || it_fail "the guest's verify ended before the flap: make the workload longer"
stop_all STOP
t0=$(date +%s.%N)
it_wait_for "every memory server declared down" 30 \
  bash -c "[ \$(grep -c 'memd .*: down' '$T/backd.log') -ge 3 ]"
it_wait_for "guest I/O held for unreachable servers" 30 grep -q 'memory servers unreachable: .* held' "$T/backd.log"
sleep 3
before=$(requests)
stop_all CONT
t1=$(date +%s.%N)
it_wait_for "guest requests served again after the flap" 60 at_least $((before + 100))
t2=$(date +%s.%N)
rc=0
wait $io || rc=$?
cat "$T/io.out"
[ $rc = 0 ] || { tail -5 "$T/io.log"; it_fail "the guest's verify failed across a flap of every memory server (exit $rc)"; }
[ "$(it_field "$T/io.out" mismatches)" = 0 ] || it_fail "mismatches after the flap"
[ "$(it_field "$T/io.out" io_errors)" = 0 ] || it_fail "I/O errors after the flap"
held=$(ctl --json stats | sed -n 's/.*"held_unreachable": *\([0-9]*\).*/\1/p' | head -1)
[ "${held:-0}" -gt 0 ] || it_fail "memxctl stats counts no held operation"
it_alive backd

# io_hold_s = 1: a longer flap fails the guest's writes cleanly.
it_io 1 xvdb write --seed 6 --offset 0 --size 4M > "$T/w0.out" 2> "$T/w0.log" || it_fail "writing 4 MiB failed"
sed -i 's/^\[backend\]/[backend]\nio_hold_s = 1/' "$WORLD_CONF"
ctl reload > "$T/reload.out" 2>&1 || { cat "$T/reload.out"; it_fail "memxctl reload failed"; }
grep -q 'io_hold_s' "$T/reload.out" || { cat "$T/reload.out"; it_fail "memxctl reload did not apply io_hold_s"; }
stop_all STOP
it_wait_for "every memory server declared down again" 30 \
  bash -c "[ \$(grep -c 'memd .*: down' '$T/backd.log') -ge 6 ]"
rc=0
it_io 1 xvdb write --seed 7 --offset 0 --size 1M --qd 4 > "$T/w1.out" 2> "$T/w1.log" || rc=$?
stop_all CONT
[ $rc = 1 ] || { cat "$T/w1.out"; it_fail "writes past io_hold_s gave exit status $rc, not 1 (write errors)"; }
grep -q 'unreachable for 1000 ms: writes fail with EIO' "$T/backd.log" || it_fail "the backend did not say why the writes failed"
it_wait_for "the servers back" 60 bash -c "'$B/memxctl' --socket '$WORLD_SOCK' status | grep -q 'servers *3 of 3 live'"
it_io 1 xvdb read-verify --seed 6 --offset 1M --size 3M > "$T/r0.out" 2> "$T/r0.log" ||
  { cat "$T/r0.out"; it_fail "data written before the failed writes no longer verifies"; }
it_alive backd
it_summary "flap of all 3 memory servers (declared down) under qd 16: 0 I/O errors, 0 mismatches," \
  "$held page operations held; guest served again $(awk -v a="$t1" -v b="$t2" 'BEGIN{printf "%.1f", b-a}') s after the" \
  "servers went on ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s stopped); io_hold_s=1: writes failed cleanly, old data intact"
