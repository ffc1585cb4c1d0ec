# tests/faults/scen-net.sh — hostile network peers (sourced by run.sh; see its header).
#   spoof   while the guest writes, a host without the cluster key (backend
#           host 2's namespace, which reaches every server) sends each server
#           HELLOs claiming backend 1's identity and endpoint address, a
#           handshake under a key of its own, and forced SLAB_FREEs with a
#           made-up seal (tools/memx-spoof.c).  Backend 1's sessions survive
#           (no server ends one, the backend never sees a server go down),
#           the servers log the refusals, and every page verifies.

scenario_spoof() {
  SCEN=spoof; world_up
  [ -x "$B/memx-spoof" ] || fail "$B/memx-spoof is missing (build first)"
  write_start 909; write_midway
  local t0 i as pids=(); t0=$(date +%s.%N)
  for i in $(seq 0 $((NSRV - 1))); do
    # Backend 1's endpoint address as this server's log names it.
    as=$(sed -n 's/.*: \([0-9.]*:[0-9]*\) (backd-host1) authenticated.*/\1/p' "$T/memd$i.log" | tail -1)
    [ -n "$as" ] || fail "server $i's log does not name backend 1's address"
    ip netns exec "$(b2ns)" "$B/memx-spoof" --server "10.77.$i.2:7480" --id backd-host1 --as "$as" \
      --rounds 20 --slabs 64 > "$T/spoof$i.out" 2>&1 &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || fail "memx-spoof failed: $(cat "$T"/spoof*.out)"; done
  write_wait
  cat "$T"/spoof*.out
  ! grep -q ANSWERED "$T"/spoof*.out || fail "a server answered the spoofer: $(cat "$T"/spoof*.out)"
  for i in $(seq 0 $((NSRV - 1))); do
    ! grep -q "(backd-host1) ended" "$T/memd$i.log" ||
      fail "server $i ended backend 1's session: $(grep "(backd-host1) ended" "$T/memd$i.log" | head -3)"
    grep -q "wrong cluster key" "$T/memd$i.log" || fail "server $i does not log the refused handshake"
    grep -q "unauthenticated" "$T/memd$i.log" || fail "server $i does not log the refused requests"
  done
  ! grep -q "memd 10.77.*: down" "$T/backd.log" ||
    fail "backend 1 lost a server to the spoofer: $(grep "memd 10.77.*: down" "$T/backd.log" | head -3)"
  verify_report 909 "$t0"
}

SCENARIOS="$SCENARIOS spoof"
