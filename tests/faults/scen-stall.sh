# tests/faults/scen-stall.sh — what one server's death, stall or link cut
# costs the guest (issue 13 item 4), sourced by run.sh (its helpers,
# SCENARIOS).
#
#   one_<fault>_qd<N>_<op>   fault: kill (kill -9), stop (SIGSTOP for 3 s),
#             cut (its link from the backend host down for 3 s); N: 1 or 32
#             I/Os in flight; op: w (the guest writes the volume) or r (it
#             reads it back, written before the fault)
#
# The fault hits memory server 1 0.3 s into the workload, which runs again
# and again for 4.5 s.  Each prints the guest's worst p99 and max I/O latency
# over those passes (memx-io's report) and
# ends with run.sh's verify_report line.  A guest I/O error or a lost page
# fails the scenario, and so does a worst p99 over 50 ms (the issue's target)
# or a max over 1 s: at QD 1 the p99 alone misses a stall (before volpub.c a
# guest write waited 2.2 s for a dead server's record answer with p99 4 ms),
# and waiting for the heartbeat (2.5 s) is exactly what must not come back.
# MEMX_STALL_STRICT=0 only reports the figures (a badly overloaded host).
# Measured on the 2-core dev box with other jobs running (load 3): writes
# p99 1.6-18.9 ms, max 57-114 ms; reads p99 0.1-5.1 ms, max 13-30 ms.

stall_fault() { # fault
  case $1 in
    kill) kill9 "$PID_memd1" ;;
    stop) kill -STOP "$PID_memd1"; sleep 3; kill -CONT "$PID_memd1" ;;
    cut) ip -n "$(bns)" link set "${TAG}b1" down; sleep 3; ip -n "$(bns)" link set "${TAG}b1" up ;;
  esac
}

# Runs the workload over and over until the deadline (epoch seconds), one
# output file per pass: a fast pass (QD32 reads of 48M take a fraction of a
# second) must not end before the fault does.
load_loop() { # cmd qd seed deadline
  local n=0
  while :; do
    io "$1" --seed "$3" --offset 0 --size "$SIZE" --qd "$2" > "$T/load.$n.out" 2>> "$T/load.log" || true
    n=$((n + 1))
    awk -v d="$4" -v now="$(date +%s.%N)" 'BEGIN { exit !(now >= d) }' && break
  done
}

stall_case() { # fault qd op seed
  local fault=$1 qd=$2 op=$3 seed=$4 cmd=write p99=0 max=0 errs=0 passes=0 f v
  world_up
  if [ "$op" = r ]; then
    io write --seed "$seed" --offset 0 --size "$SIZE" --qd 16 > "$T/write.out" 2> "$T/write.log" || fail "write failed"
    ctl_state_is ok 30 || fail "pool not ok before the fault: $(ctl pool)"
    cmd=read-verify
  fi
  rm -f "$T"/load.*.out
  local t0; t0=$(date +%s.%N)
  load_loop "$cmd" "$qd" "$seed" "$(awk -v a="$t0" 'BEGIN { printf "%.3f", a + 4.5 }')" &
  local load=$!
  sleep 0.3
  t0=$(date +%s.%N)
  stall_fault "$fault"
  wait "$load" || true
  # Over every pass: the worst p99 and max, every I/O error.
  for f in "$T"/load.*.out; do
    local line; line=$(grep -E "^(write|read): .* ops " "$f" | tail -1)
    [ -n "$line" ] || fail "no latency report from memx-io: $(cat "$f" "$T/load.log")"
    v=$(echo "$line" | sed -n 's/.* p99 \([0-9.]*\) us.*/\1/p'); p99=$(awk -v a="$p99" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
    v=$(echo "$line" | sed -n 's/.* max \([0-9.]*\) us.*/\1/p'); max=$(awk -v a="$max" -v b="$v" 'BEGIN { print (b > a ? b : a) }')
    v=$(field "$f" io_errors); errs=$((errs + ${v:-1}))
    passes=$((passes + 1))
  done
  echo "$SCEN: guest $cmd at QD $qd through the $fault ($passes passes): worst p99 $(awk -v v="$p99" 'BEGIN { printf "%.1f", v / 1000 }') ms," \
    "max $(awk -v v="$max" 'BEGIN { printf "%.1f", v / 1000 }') ms, $errs I/O errors (target: none, p99 <= 50 ms, max <= 1 s)"
  [ "$errs" = 0 ] || fail "guest I/O errors under the fault: $(cat "$T"/load.*.out)"
  if [ "${MEMX_STALL_STRICT:-1}" != 0 ]; then
    awk -v v="$p99" 'BEGIN { exit !(v > 50000) }' && fail "p99 $p99 us is over the 50 ms target"
    awk -v v="$max" 'BEGIN { exit !(v > 1000000) }' && fail "max $max us: an I/O waited for the server to be declared down"
  fi
  verify_report "$seed" "$t0"
}

for _f in kill stop cut; do
  for _q in 1 32; do
    for _o in w r; do
      eval "scenario_one_${_f}_qd${_q}_${_o}() { SCEN=one_${_f}_qd${_q}_${_o}; stall_case $_f $_q $_o $((900 + ${#_f} * 10 + _q)); }"
      SCENARIOS="$SCENARIOS one_${_f}_qd${_q}_${_o}"
    done
  done
done
unset _f _q _o
