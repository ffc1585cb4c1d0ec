#!/bin/bash
# Issue 13 item 9: memx-backd killed (-9) between writing responses on a
# guest's ring and publishing them, then started again while the guest's
# frontend stays Connected (it never notices: no reconnect).  The new
# process must not read its predecessor's unpublished responses as requests
# (the ring is a union of the two), must answer every request the guest
# still waits for exactly once, and the guest's verify run must end with
# every page verified.  MEMX_TEST_CRASH_BEFORE_PUSH (ring.c) is the
# test-only crash point.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

export MEMX_TEST_CRASH_BEFORE_PUSH=400
it_start_world 256M
unset MEMX_TEST_CRASH_BEFORE_PUSH
it_create 1 xvdb "memx:it-crash:32M"
BE=/local/domain/0/backend/vbd/1/51728

it_io 1 xvdb verify --size 32M --qd 16 --seed 5 --timeout 60000 > "$T/io.out" 2> "$T/io.log" &
io=$!
old=${WORLD_PID[backd]}
it_wait_for "memx-backd to reach its crash point" 60 bash -c "! kill -0 $old 2>/dev/null"
grep -q 'MEMX_TEST_CRASH_BEFORE_PUSH reached' "$T/backd.log" || it_fail "memx-backd died, but not at its crash point"
mv "$T/backd.log" "$T/backd-crashed.log"
[ "$(it_xl read $BE/state)" = 4 ] || it_fail "the backend node is not Connected after the crash"
it_running $io || it_fail "the guest's verify ended with the backend"
world_start_backd
rc=0
wait $io || rc=$?
cat "$T/io.out"
[ $rc = 0 ] || { tail -5 "$T/io.log"; it_fail "the guest's verify failed across the backend's restart (exit $rc)"; }
[ "$(it_field "$T/io.out" mismatches)" = 0 ] || it_fail "mismatches after the restart"
[ "$(it_field "$T/io.out" io_errors)" = 0 ] || it_fail "I/O errors after the restart"
it_alive backd
replayed=$(sed -n 's/.*resumed its ring after a restart: \([0-9]*\) request(s) replayed.*/\1/p' "$T/backd.log")
[ -n "$replayed" ] || it_fail "the restarted backend did not resume the ring"
! grep -q 'bad request' "$T/backd.log" || it_fail "the restarted backend read something on the ring as a bad request"
it_summary "backd killed between response write and push, restarted under a Connected guest:" \
  "$replayed request(s) replayed; $(it_field "$T/io.out" verified) pages verified, 0 mismatches, 0 I/O errors"
