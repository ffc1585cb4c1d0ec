#!/bin/bash
# Issue 16 item 2a: memx-backd upgraded under a guest that keeps writing and
# verifying (qd 16 over 2 queues), with `memxctl upgrade` twice: to the same binary, then
# with --binary to a copy of it.  Each time the process stops reading the
# ring, drains, and execs the binary (same pid); the new image resumes the
# Connected device from XenStore and the ring state file.  The guest's
# verify must end with every page verified, no I/O error, the backend node
# Connected throughout (no InitWait, Closing or Closed written), the pid the
# same, no descriptor carried over.  Between the two, upgrades that cannot
# happen: --binary /nonexistent is refused before anything stops, and a file
# that is executable but no program gets as far as the exec, which fails:
# the old process must serve on and memxctl must say so and exit non-zero.
# Last, an upgrade whose drain cannot end (every memory server stopped with
# writes in flight): past the drain bound (shortened to 1.5 s here, 10 s in
# production) it hands over anyway and the successor replays the requests
# the guest still waits for.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

export MEMX_TEST_UPGRADE_DRAIN_MS=1500
it_start_world 512M
it_create 1 xvdb "memx:it-upgrade:160M"
BE=/local/domain/0/backend/vbd/1/51728
pid=${WORLD_PID[backd]}
ctl() { "$B/memxctl" --socket "$WORLD_SOCK" "$@"; }
# Requests the backend took on the device (counted afresh by each image).
requests() { ctl --json devices 2>/dev/null | sed -n 's/.*"requests": *\([0-9]*\).*/\1/p' | head -1; }
at_least() { local n; n=$(requests); [ -n "$n" ] && [ "$n" -ge "$1" ]; }

it_io 1 xvdb verify --size 160M --qd 16 --queues 2 --seed 9 --timeout 60000 > "$T/io.out" 2> "$T/io.log" &
io=$!
it_wait_for "the guest's first 2000 requests" 60 at_least 2000
# The backend node's state from here to the last upgrade, sampled (a blip
# to InitWait between two samples is caught by the log check below
# instead).  It ends with memx-backd (the clean-up waits for it) or when told to.
( while world_running "$pid" && [ ! -e "$T/stop-sampler" ]; do
    it_xl read "$BE/state" 2>/dev/null || echo gone; sleep 0.01
  done ) > "$T/states" &
sampler=$!
fds0=$(ls /proc/"$pid"/fd | wc -l)

# upgrade_ok LABEL ARGS...: one hand-over that must succeed; sets PAUSE (ms).
upgrade_ok() {
  local label=$1 out
  shift
  it_running $io || it_fail "the guest's verify ended before the $label upgrade: make the workload longer"
  out=$(ctl upgrade "$@" 2>&1) || { echo "$out"; it_fail "memxctl upgrade $* failed"; }
  echo "$out"
  PAUSE=$(sed -n 's/.*guest I\/O paused \([0-9]*\) ms.*/\1/p' <<< "$out")
  [ -n "$PAUSE" ] || it_fail "memxctl upgrade did not print the guest I/O pause"
  world_running "$pid" || it_fail "memx-backd (pid $pid) is gone after the $label upgrade"
  [ "$(ctl --json status | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')" = "$pid" ] ||
    it_fail "a process other than pid $pid answers after the $label upgrade"
}

upgrade_ok first
pause1=$PAUSE
it_wait_for "requests on the upgraded backend" 60 at_least 1000

# Refused before anything stops.
if out=$(ctl upgrade --binary /nonexistent 2>&1); then it_fail "memxctl upgrade --binary /nonexistent succeeded"; fi
echo "$out"
grep -q "No such file" <<< "$out" || it_fail "memxctl upgrade --binary /nonexistent did not say why"
# Passes the checks, fails at the exec (ENOEXEC): the process resumes.
printf 'not a program\n' > "$T/not-a-program"
chmod 755 "$T/not-a-program"
before=$(requests)
if out=$(ctl upgrade --binary "$T/not-a-program" 2>&1); then it_fail "an upgrade to a non-program succeeded"; fi
echo "$out"
grep -q "upgrade failed: cannot exec" <<< "$out" || it_fail "memxctl did not report the failed exec"
grep -q "hand-over failed: cannot exec $T/not-a-program" "$T/backd.log" || it_fail "memx-backd did not log the failed exec"
world_running "$pid" || it_fail "memx-backd died after a failed exec"
it_wait_for "requests served after the failed exec" 30 at_least $((before + 500))

cp "$B/memx-backd" "$T/memx-backd-next"
upgrade_ok second --binary "$T/memx-backd-next"
pause2=$PAUSE
[ "$(readlink /proc/"$pid"/exe)" = "$T/memx-backd-next" ] || it_fail "pid $pid does not run $T/memx-backd-next"
fds2=$(ls /proc/"$pid"/fd | wc -l)

# A drain that cannot end: the servers stopped under the guest's writes
# (for less than their 5 s etcd lease), the upgrade hands over with the
# writes in flight, the servers go on; the successor replays.
it_wait_for "requests on the second successor" 60 at_least 1000
it_running $io || it_fail "the guest's verify ended before the stuck upgrade: make the workload longer"
for i in 0 1 2; do kill -STOP "${WORLD_PID[memd$i]}"; done
ctl upgrade > "$T/stuck.out" 2>&1 &
up=$!
it_wait_for "the hand-over past the drain bound" 10 grep -q 'drain did not end within 1500 ms' "$T/backd.log"
sleep 0.5
for i in 0 1 2; do kill -CONT "${WORLD_PID[memd$i]}"; done
rc=0
wait $up || rc=$?
cat "$T/stuck.out"
[ $rc = 0 ] || it_fail "memxctl upgrade with a drain that could not end failed (exit $rc)"
left=$(sed -n 's/.*drain did not end within 1500 ms: \([0-9]*\) request(s).*/\1/p' "$T/backd.log")
# Over both queues, as the last successor resumed them.
replayed3=$(awk '/taking over from the previous memx-backd/ { n = 0 }
  /resumed its ring after a restart/ { sub(/.*restart: /, ""); n += $1 } END { print n }' "$T/backd.log")
[ "${left:-0}" -gt 0 ] || it_fail "no request was in flight when the stuck drain handed over"
[ "$replayed3" = "$left" ] || it_fail "$left request(s) handed over in flight, but $replayed3 replayed"
pause3=$(sed -n 's/.*guest I\/O paused \([0-9]*\) ms.*/\1/p' "$T/stuck.out")

# SIGUSR2 is the same hand-over, to the path the process was started from.
it_wait_for "requests on the third successor" 60 at_least 1000
it_running $io || it_fail "the guest's verify ended before the SIGUSR2 upgrade: make the workload longer"
kill -USR2 "$pid"
it_wait_for "the SIGUSR2 hand-over" 30 bash -c "[ \$(grep -c 'hand-over done' '$T/backd.log') = 4 ]"
[ "$(readlink /proc/"$pid"/exe)" = "$T/memx-backd-next" ] || it_fail "SIGUSR2 did not exec the path pid $pid was started from"
touch "$T/stop-sampler"
wait "$sampler" || true
# The log up to here: the guest closes the device once its verify is done.
cp "$T/backd.log" "$T/upgrades.txt"

rc=0
wait $io || rc=$?
cat "$T/io.out"
[ $rc = 0 ] || { tail -5 "$T/io.log"; it_fail "the guest's verify failed across the upgrades (exit $rc)"; }
[ "$(it_field "$T/io.out" mismatches)" = 0 ] || it_fail "mismatches after the upgrades"
[ "$(it_field "$T/io.out" io_errors)" = 0 ] || it_fail "I/O errors after the upgrades"
it_alive backd
[ "$(sort -u "$T/states" | tr '\n' ' ')" = "4 " ] ||
  it_fail "the backend node left Connected: states seen $(sort -u "$T/states" | tr '\n' ' ')"
L=$T/upgrades.txt
[ "$(grep -c -- '-> InitWait' "$L")" = 1 ] ||
  it_fail "memx-backd wrote InitWait again (the frontend sees a state change): $(grep -- '-> InitWait' "$L")"
! grep -q -- '-> Closing\|-> Closed' "$L" || it_fail "memx-backd closed the device during an upgrade"
[ "$(grep -c 'hand-over done' "$L")" = 4 ] || it_fail "the log does not show four hand-overs done"
[ "$(grep -c 'resumed its ring after a restart' "$L")" -ge 2 ] || it_fail "the log does not show the rings resumed"
[ "$fds2" -le $((fds0 + 2)) ] || it_fail "descriptors carried over the exec: $fds0 before, $fds2 after two upgrades"
it_summary "upgrades under a Connected guest at qd 16, 2 queues (pid $pid kept, state 4 throughout): guest I/O paused" \
  "${pause1} ms and ${pause2} ms; a missing binary refused and a failed exec served on;" \
  "a drain stuck on stopped servers handed over after 1.5 s, $left request(s) replayed (pause ${pause3} ms);" \
  "SIGUSR2 handed over too;" \
  "$(it_field "$T/io.out" verified) pages verified, 0 mismatches, 0 I/O errors"
