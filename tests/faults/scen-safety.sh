# tests/faults/scen-safety.sh — the pool never destroys intact data (issue 13,
# items 1 and 2), sourced by run.sh (its helpers, SCENARIOS).
#
#   stall_r1, stall_r2, stall_r3   every memory server stopped (SIGSTOP) for
#             3 s, longer than the backend's heartbeat timeout, with 1, 2 and
#             3 copies of every slab: the backend declares every server down,
#             then they come back as the same processes with every slab
#             intact, and every page must read back (revalidated, not freed)
#   cutall    every link of the backend host cut for 3 s, then back
#
# Each writes the whole volume first, then makes the fault with no guest I/O
# in flight (a guest I/O waiting on an unreachable pool is item 4's), and
# ends with run.sh's verify_report line.  It also says how many servers the
# backend declared down and how many replicas it revalidated, so a run where
# the fault was too short to matter shows as such (and fails).

# Waits until the backend has declared every server down; the count seen.
wait_all_down() { # secs
  local n=0
  for _ in $(seq $(($1 * 10))); do
    n=$(grep -c "memd 10\.77\.[0-9]\.2:7480: down (" "$T/backd.log" || true)
    [ "$n" -ge $NSRV ] && break
    sleep 0.1
  done
  echo "$n"
}

safety_report() { # seed t_fault
  local downs reval freed
  downs=$(grep -c "memd 10\.77\.[0-9]\.2:7480: down (" "$T/backd.log" || true)
  [ "$downs" -ge $NSRV ] || fail "the fault was too short: only $downs servers were declared down"
  verify_report "$1" "$2"
  [ -n "${SAFETY_KEEP:-}" ] && cp "$T/backd.log" "$SAFETY_KEEP"
  reval=$(sed -n 's/.*back: \([0-9]*\) replicas revalidated.*/\1/p' "$T/backd.log" | awk '{ n += $1 } END { print n + 0 }')
  freed=$(grep -c "copy on memd .* freed" "$T/backd.log" || true)
  echo "$SCEN: $downs servers declared down, $reval replicas revalidated, $freed surplus copies freed"
}

stall_all() { # replicas seed
  REPLICAS=$1 world_up
  io write --seed "$2" --offset 0 --size "$SIZE" --qd 16 > "$T/write.out" 2> "$T/write.log" || fail "write failed"
  [ "$(field "$T/write.out" io_errors)" = 0 ] || fail "guest write errors: $(cat "$T/write.out")"
  ctl_state_is ok 30 || fail "pool not ok before the fault: $(ctl pool)"
  local t0 i; t0=$(date +%s.%N)
  for i in $(seq 0 $((NSRV - 1))); do eval "kill -STOP \$PID_memd$i"; done
  sleep 3
  [ "$(wait_all_down 3)" -ge $NSRV ] || true
  for i in $(seq 0 $((NSRV - 1))); do eval "kill -CONT \$PID_memd$i"; done
  safety_report "$2" "$t0"
}

scenario_stall_r1() { SCEN=stall_r1; stall_all 1 811; }
scenario_stall_r2() { SCEN=stall_r2; stall_all 2 812; }
scenario_stall_r3() { SCEN=stall_r3; stall_all 3 813; }

scenario_cutall() {
  SCEN=cutall; world_up
  io write --seed 821 --offset 0 --size "$SIZE" --qd 16 > "$T/write.out" 2> "$T/write.log" || fail "write failed"
  [ "$(field "$T/write.out" io_errors)" = 0 ] || fail "guest write errors: $(cat "$T/write.out")"
  ctl_state_is ok 30 || fail "pool not ok before the fault: $(ctl pool)"
  local t0 i; t0=$(date +%s.%N)
  for i in $(seq 0 $((NSRV - 1))); do ip -n "$(bns)" link set "${TAG}b$i" down; done
  sleep 3
  [ "$(wait_all_down 3)" -ge $NSRV ] || true
  for i in $(seq 0 $((NSRV - 1))); do ip -n "$(bns)" link set "${TAG}b$i" up; done
  safety_report 821 "$t0"
}

SCENARIOS="$SCENARIOS stall_r1 stall_r2 stall_r3 cutall"
