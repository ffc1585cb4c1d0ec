#!/bin/bash
# (d) Clean shutdown: SIGTERM to memx-backd with a guest connected and doing
# I/O: it exits 0 and the backend's XenBus state goes Closed (the guest sees
# a disconnect, not a hang).  Then SIGTERM to each memx-memd and to
# memx-simxsd: each exits 0.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

it_start_world 128M
it_create 1 xvdb "memx:it-term:64M"
BE=/local/domain/0/backend/vbd/1/51728

it_io 1 xvdb verify --size 64M --qd 16 --seed 4 > "$T/io.out" 2> "$T/io.log" &
io=$!
it_wait_for "the guest's disk to connect" 10 grep -q 'queue(s)' "$T/io.out"
sleep 0.5
[ "$(it_xl read $BE/state)" = 4 ] || it_fail "backend not Connected before SIGTERM"

it_stop backd 15
[ "$IT_RC" = 0 ] || it_fail "memx-backd exited $IT_RC on SIGTERM (want 0)"
state=$(it_xl read $BE/state 2>/dev/null || echo gone)
[ "$state" = 6 ] || it_fail "backend state after memx-backd stopped is '$state', not 6 (Closed)"
grep -q 'queue(s)' "$T/io.out" || it_fail "memx-io never connected"
for _ in $(seq 100); do it_running $io || break; sleep 0.1; done
it_running $io && it_fail "memx-io still waits on a backend that has gone"
iorc=0
wait $io || iorc=$?
grep -q 'disconnected' "$T/io.log" || it_fail "memx-io did not report the disconnect (exit $iorc)"

for i in 0 1 2; do
  it_stop "memd$i" 10
  [ "$IT_RC" = 0 ] || it_fail "memx-memd $i exited $IT_RC on SIGTERM (want 0)"
done
it_stop simxsd 10
[ "$IT_RC" = 0 ] || it_fail "memx-simxsd exited $IT_RC on SIGTERM (want 0)"
it_summary "backd SIGTERM with a busy guest: exit 0, backend Closed, guest saw disconnect;" \
  "3 memd + simxsd exit 0"
