#!/bin/bash
# Issue 13 item 6: a partial multi-queue connect.  Domain 1 asks for two
# queues, pre-fills queue 0 with requests and leaves queue-1/ring-ref out.
# memx-backd must refuse the connect (Closed, the reason in the backend's
# error node) without taking a request off queue 0 and without dying, while
# domain 2 verifies its own disk; domain 1 then connects properly.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

it_start_world 256M
it_create 1 xvdb "memx:it-half:16M"
it_create 2 xvdb "memx:it-whole:32M"
BE=/local/domain/0/backend/vbd/1/51728

it_io 2 xvdb verify --size 32M --qd 8 --seed 31 > "$T/good.out" 2> "$T/good.log" &
good=$!
it_io 1 xvdb raw-bad partial-mq > "$T/half.out" 2> "$T/half.log" ||
  { cat "$T/half.out" "$T/half.log"; it_fail "the partial multi-queue connect was not refused cleanly"; }
cat "$T/half.out"
it_alive backd
err=$(it_xl read $BE/error 2>/dev/null || true)
case $err in *queue-1*) ;; *) it_fail "backend error node does not name queue-1: '$err'" ;; esac
grep -q 'bad request' "$T/backd.log" && it_fail "memx-backd took a request off the half-connected device"

# Domain 1 comes back with a proper connect (Closed -> Initialising -> InitWait).
it_io 1 xvdb write --seed 6 --offset 0 --size 1M > "$T/re.out" 2> "$T/re.log" || it_fail "domain 1 cannot reconnect"
it_io 1 xvdb read-verify --seed 6 --offset 0 --size 1M >> "$T/re.out" 2>> "$T/re.log" ||
  it_fail "domain 1 reads wrong data after reconnecting"
wait $good || { cat "$T/good.out"; it_fail "domain 2's verify failed beside the hostile connect"; }
[ "$(it_field "$T/good.out" mismatches)" = 0 ] || it_fail "domain 2 saw mismatches"
it_alive backd
it_summary "partial multi-queue connect refused ($err); backd alive; domain 2 verified" \
  "$(it_field "$T/good.out" verified) pages; domain 1 reconnected"
