# tests/faults/scen-crash.sh — crash consistency of the backend (issue 15
# item 2), sourced by run.sh (its helpers, SCENARIOS; the write-history
# helpers are scen-etcd.sh's).  memx-backd is killed (-9) in a write storm
# of memx-io hwrite over HSIZE: requests of 1 to 8 pages, 16 in flight,
# every page once and then random rewrites, their pages stamped (writer,
# page, generation), zeros, shared pages (the backend de-duplicates them)
# or discarded, so every kind of page-map record is in flight at the kill.
# The writer is the guest's frontend, another process: it outlives the kill,
# and its log names every write it issued and every one acknowledged (each
# line in the kernel before the next request goes).  The attach after the
# kill must find every page holding its last acknowledged write or a later
# one that was in flight, never an older one, zeros where a write was
# acknowledged, another page's bytes, a write never issued or garbage
# (history-verify), and prints
#   <scenario>: N pages verified, 0 lost, 0 mismatches, 0 from a fenced writer (...)
#
#   crashsame   host 1's backend killed mid-storm; the writer stops there (its
#               writes in flight never complete); memx-backd started again on
#               host 1 and the guest attaches afresh: the pool as the kill left it
#   crashother  the same kill; host 2's backend attaches the volume by name
#   crashloop   three kills in one storm, memx-backd started again each time
#               under the guest's frontend, which stays Connected (the new
#               backend answers what is still on its ring); then host 1 and
#               host 2 attach
#   crashhost   host 1 crashes as a machine does: its links go down as its
#               backend is killed, so what its kernel had not yet sent is lost
#               (a kill alone loses nothing a socket holds: an acknowledgement
#               that runs ahead of its record's answer shows only here); host
#               2 attaches, writes on, then host 1's links come back and its
#               dead backend's last messages reach the servers late: they
#               must change no page
#   crashserver host 1 crashes and memory server 1 is killed with it; host 2
#               attaches over the two servers left
#   crashstale  every server cut off etcd for 2.5 s mid-storm, so for about
#               a second each refuses writes and records (its owner view is
#               stale); host 1's backend killed 0.2 s after they are back, host
#               2 attaches.  It found vmap.c's vol_release_old freeing the page
#               the servers' last record still named when a write's records
#               were refused: reused, it no longer matched that record, host 2
#               read EIO there and condemned the slab's copies (fixed)
#   crashcheck  the checker itself on the storm's pages (no fault): against
#               a doctored log it must see writes never issued, zeros, stamps
#               and shared pages older than the last acknowledged write, and
#               accept a later write that was in flight
# All but crashcheck need etcd (not run with MEMX_FAULTS_STATIC=1): an attach
# on another host is a claim there.

CRASH_MIX="--bs 32K --zero-fraction 0.1 --dup-fraction 0.1 --discard-fraction 0.05"

# The storm: hwrite with the mix on host H as writer W for MS ms, in the
# background (GUEST_PIDS: world_down stops it).  Stopped (SIGTERM) with its
# backend dead, it gives what is in flight 2 s, then closes the device: three
# XenBus waits of its --timeout, so it gets 15 s before SIGKILL.
crash_hw_start() { # host writer ms
  guest_at "$1"
  # shellcheck disable=SC2086
  timeout -k 15 "${GUEST_TIMEOUT:-120}" ip netns exec "$GNS" "$B/memx-io" --platform sim --sim-dir "$GSIM" --domid 1 \
    --device device/vbd/51728 --timeout 1500 hwrite --writer "$2" --log "$T/hist$2.log" --offset 0 --size "$HSIZE" \
    --qd 16 --duration "$3" $CRASH_MIX > "$T/hw$2.out" 2> "$T/hw$2.err" &
  eval "HW_PID_$2=$!"
  GUEST_PIDS+=($!)
}
# Waits until writer W has N pages acknowledged (its log's "a" lines).
acked_lines() { local n; n=$(grep -c '^a ' "$T/hist$1.log" 2>/dev/null); echo "${n:-0}"; }
wait_acked() { # writer n secs
  for _ in $(seq $(($3 * 20))); do [ "$(acked_lines "$1")" -ge "$2" ] && return 0; sleep 0.05; done
  fail "writer $1 had $(acked_lines "$1") pages acknowledged in $3 s, not $2: $(cat "$T/hw$1.err")"
}
# Writer W's requests issued before epoch T and not acknowledged by then: in flight at T.
inflight_at() { # writer t
  awk -v t="$2" '$1 == "i" && $4 / 1e9 < t { iss[$3] = 1 } $1 == "a" && $5 / 1e9 < t { ack[$3] = 1 }
    END { for (g in iss) n += !(g in ack); print n + 0 }' "$T/hist$1.log"
}
# Writer W's pages acknowledged after epoch T (answers the backend pushed before it died).
acked_after() { awk -v t="$2" '$1 == "a" && $5 / 1e9 > t { n++ } END { print n + 0 }' "$T/hist$1.log"; }
# Every kind of write must have been acknowledged, or the storm did not test it.
kinds_acked() { # writer
  local k n
  for k in stamp zero discard dup multi rewrites; do
    n=$(field "$T/hw$1.out" "$k")
    [ "${n:-0}" -gt 0 ] || fail "writer $1 had no $k write acknowledged: $(grep "by kind" "$T/hw$1.out")"
  done
}
kinds_line() { sed -n 's/.*by kind //p' "$T/hw$1.out" | sed 's/ multi-page requests//; s/ pages written again//'; }

# kill -9 of host 1's backend mid-storm (KT: once it is dead); the writers named must outlive it.
crash_kill() {
  no_crash
  if [ -z "${PID_backd:-}" ] || ! kill -0 "$PID_backd" 2>/dev/null; then fail "host 1's backend is not running before the kill"; fi
  kill9 "$PID_backd"
  KT=$(now)
  local w
  for w in "$@"; do
    eval "kill -0 \$HW_PID_$w" 2>/dev/null || fail "writer $w did not outlive the backend's kill: $(cat "$T/hw$w.err")"
  done
}
# Host 1's backend started again after a kill (the dead one's log kept as backd.N.log).
backd_restart() {
  local n=1
  while [ -e "$T/backd.$n.log" ]; do n=$((n + 1)); done
  mv "$T/backd.log" "$T/backd.$n.log"
  rm -f "$T/backd.sock"
  start_backd
}
# The checker's own view of the kill, after a verify that passed on host H:
# the same pages against writer 1's log doctored so that every write it
# never saw answered was acknowledged at the kill (KT).  The pages such a
# write did not reach are then lost (MISSED: how many; 0 only if every write
# in flight had landed, which a crash may leave), and nothing else changes.
crash_selfcheck() { # host
  awk -v kt="$KT" 'NR == FNR { if ($1 == "a") ack[$2 " " $3] = 1; next }
    $1 == "i" && !(($2 " " $3) in ack) { printf "a %s %s %s %.0f %s\n", $2, $3, $4, kt * 1e9, $5; next } { print }' \
    "$T/hist1.log" "$T/hist1.log" > "$T/hist1-acked.log"
  hverify "$1" self --log "$T/hist1-acked.log"
  MISSED=$(field "$T/self.out" lost)
  local ver; ver=$(field "$T/self.out" verified)
  if [ "$(( ${ver:-0} + ${MISSED:-0} ))" != "$(hpages)" ] || [ "$(field "$T/self.out" mismatches)" != 0 ]; then
    fail "with the writes in flight called acknowledged, pages other than theirs changed: $(grep history-verify "$T/self.out")"
  fi
}

# The writer stopped (SIGTERM: it issues nothing more) and its run over.
hw_stop() { # writer
  local p; eval "p=\$HW_PID_$1"
  kill -TERM "$p" 2>/dev/null || true
  wait "$p" || true
}

scenario_crashsame() {
  SCEN=crashsame; world_up
  crash_hw_start 1 1 60000
  wait_acked 1 $((8 * $(hpages))) 40
  crash_kill 1
  local kin; kin=$(inflight_at 1 "$KT")
  hw_stop 1
  [ "$(field "$T/hw1.out" unacked)" -gt 0 ] || fail "no write was in flight at the kill: $(cat "$T/hw1.out")"
  kinds_acked 1
  local t0; t0=$(now)
  backd_restart
  hverify 1 v1 --log "$T/hist1.log"
  grep -q "volume faults: loaded from the pool" "$T/backd.log" || fail "the restarted backend did not load the volume from the pool"
  local took; took=$(since "$t0")
  hreport v1 " (host 1 again, ${took} s after the restart; kill -9 with $kin requests in flight,\
 $(field "$T/hw1.out" unacked) pages never answered, $(acked_after 1 "$KT") answered after it; $(field "$T/v1.out" inflight)\
 pages hold a write that was in flight; acknowledged: $(kinds_line 1))"
  crash_selfcheck 1
  echo "$SCEN: the checker calls $MISSED pages lost once the writes that were in flight count as acknowledged"
}

scenario_crashother() {
  SCEN=crashother; world_up
  crash_hw_start 1 1 60000
  wait_acked 1 $((8 * $(hpages))) 40
  crash_kill 1
  local kin; kin=$(inflight_at 1 "$KT")
  kill -TERM "$HW_PID_1" 2>/dev/null || true        # its log is final; its device closes meanwhile
  local t0; t0=$(now)
  attach2
  hw_wait 1
  [ "$(field "$T/hw1.out" unacked)" -gt 0 ] || fail "no write was in flight at the kill: $(cat "$T/hw1.out")"
  kinds_acked 1
  hverify 2 v2 --log "$T/hist1.log"
  hreport v2 " (host 2, attached $(awk -v a="$t0" -v b="$TF" 'BEGIN { printf "%.1f", b - a }') s after the kill;\
 kill -9 with $kin requests in flight, $(field "$T/hw1.out" unacked) pages never answered; $(field "$T/v2.out" inflight)\
 pages hold a write that was in flight; acknowledged: $(kinds_line 1))"
  crash_selfcheck 2
  echo "$SCEN: the checker calls $MISSED pages lost once the writes that were in flight count as acknowledged"
}

scenario_crashloop() {
  SCEN=crashloop; world_up
  crash_hw_start 1 1 100000
  local kins="" want=$((2 * $(hpages))) replayed
  for _ in 1 2 3; do
    wait_acked 1 "$want" 40
    crash_kill 1
    kins="$kins${kins:+, }$(inflight_at 1 "$KT")"
    sleep 0.3                                       # the frontend waits on a dead backend
    backd_restart
    want=$(( $(acked_lines 1) + 2 * $(hpages) ))
  done
  wait_acked 1 "$want" 40
  hw_stop 1
  if [ "$(field "$T/hw1.out" io_errors)" != 0 ] || [ "$(field "$T/hw1.out" unacked)" != 0 ]; then
    fail "the guest's writes failed across the restarts: $(cat "$T/hw1.out"; head -n 5 "$T/hw1.err")"
  fi
  kinds_acked 1
  replayed=$(grep -h "resumed its ring after a restart" "$T"/backd*.log | sed -n 's/.*: \([0-9]*\) request(s) replayed.*/\1/p' |
             paste -sd, -)
  [ -n "$replayed" ] || fail "no restarted backend resumed the guest's ring: $(grep -h "vbd" "$T/backd.log" | tail -5)"
  hverify 1 v1 --log "$T/hist1.log"
  hreport v1 " (host 1 after 3 kills with $kins requests in flight, the frontend Connected throughout;\
 restarted backends replayed $replayed requests; $(kinds_line 1))"
  attach2
  hverify 2 v2 --log "$T/hist1.log"
  hreport v2 " (host 2 attached the volume after that)"
}

# Host 1's links to its servers and to etcd, all down or up.
host1_links() { # down|up
  local i
  for i in $(seq 0 $((NSRV - 1))); do ip -n "$(bns)" link set "${TAG}b$i" "$1"; done
  ip -n "$(bns)" link set etcd0 "$1"
}
# Bytes host 1's dead backend's sockets still hold for its servers (the kernel retransmits them).
host1_unsent() { ip netns exec "$(bns)" ss -tnH 2>/dev/null | awk '$5 ~ /:7480$/ { n += $3 } END { print n + 0 }'; }

scenario_crashhost() {
  SCEN=crashhost; world_up
  crash_hw_start 1 1 60000
  wait_acked 1 $((8 * $(hpages))) 40
  host1_links down                                  # host 1 stops as a machine does:
  crash_kill 1                                      # what its kernel had not sent is not sent
  kill -TERM "$HW_PID_1" 2>/dev/null || true
  local t0 unsent; t0=$(now); unsent=$(host1_unsent)
  local kin; kin=$(inflight_at 1 "$KT")
  attach2
  local tf=$TF
  hw_wait 1
  kinds_acked 1
  hverify 2 v2 --log "$T/hist1.log"
  hreport v2 " (host 2, attached $(awk -v a="$t0" -v b="$tf" 'BEGIN { printf "%.1f", b - a }') s after host 1 went;\
 $kin requests in flight, $(field "$T/hw1.out" unacked) pages never answered; $(field "$T/v2.out" inflight) pages hold\
 a write that was in flight; acknowledged: $(kinds_line 1))"
  crash_selfcheck 2
  echo "$SCEN: the checker calls $MISSED pages lost once the writes that were in flight count as acknowledged"
  # Host 2 writes on; then host 1's links are back, and what its dead backend's kernel still
  # had for the servers reaches them late: it must change no page.
  crash_hw_start 2 2 3000; hw_wait 2; hw_acked 2
  [ "$(field "$T/hw2.out" io_errors)" = 0 ] || fail "host 2's writes failed: $(head -n 5 "$T/hw2.err")"
  local late; late=$(host1_unsent)
  host1_links up
  local tu; tu=$(now)
  for _ in $(seq 100); do [ "$(host1_unsent)" = 0 ] && break; sleep 0.1; done
  local left drained refused; left=$(host1_unsent) drained=$(since "$tu")
  refused=$(cat "$T"/memd*.log | grep -c "(backd-host1).*refused" || true)
  hverify 2 v3 --log "$T/hist1.log" --log "$T/hist2.log" --fence "1@$tf"
  hreport v3 " (host 2 again, after its $(field "$T/hw2.out" acked) writes and host 1's links back: the dead backend's\
 kernel held ${unsent} bytes for the servers at the crash, ${late} when the links came back, ${left} ${drained} s later;\
 the servers refused host 1 $refused times)"
}

scenario_crashserver() {
  SCEN=crashserver; world_up
  crash_hw_start 1 1 60000
  wait_acked 1 $((8 * $(hpages))) 40
  host1_links down                                  # host 1 crashes,
  crash_kill 1
  # shellcheck disable=SC2154
  kill9 "$PID_memd1"                                # and a memory server with it
  kill -TERM "$HW_PID_1" 2>/dev/null || true
  local t0 kin; t0=$(now); kin=$(inflight_at 1 "$KT")
  attach2 $((NSRV - 1))
  hw_wait 1
  kinds_acked 1
  hverify 2 v2 --log "$T/hist1.log"
  hreport v2 " (host 2 over the $((NSRV - 1)) servers left, attached $(awk -v a="$t0" -v b="$TF" 'BEGIN { printf "%.1f", b - a }') s\
 after host 1 and server 1 went; $kin requests in flight, $(field "$T/hw1.out" unacked) pages never answered;\
 $(field "$T/v2.out" inflight) pages hold a write that was in flight; acknowledged: $(kinds_line 1))"
  crash_selfcheck 2
  echo "$SCEN: the checker calls $MISSED pages lost once the writes that were in flight count as acknowledged"
}

scenario_crashstale() {
  SCEN=crashstale; world_up
  crash_hw_start 1 1 60000
  wait_acked 1 $((4 * $(hpages))) 40
  local i
  for i in $(seq 0 $((NSRV - 1))); do etcd_cut "$(sns "$i")"; done
  sleep 2.5
  for i in $(seq 0 $((NSRV - 1))); do etcd_heal "$(sns "$i")"; done
  sleep 0.2
  crash_kill 1
  kill -TERM "$HW_PID_1" 2>/dev/null || true
  local stale failed
  stale=$(cat "$T"/memd*.log | grep -c "cannot prove ownership now" || true)
  attach2
  hw_wait 1
  failed=$(grep -c "write of .* failed" "$T/backd.log" || true)
  hverify 2 v2 --log "$T/hist1.log"
  hreport v2 " (host 2; $stale servers went stale, host 1 failed $failed guest writes before its kill)"
}

# The checker itself.  Writer 1's log doctored, 16 pages each way, from the
# last acknowledged write of every page (last.txt: page gen kind):
#   gone     a stamp's write taken out of the log: the page holds a write never issued
#   zeroed   a later acknowledged zero write over a stamp: the stamp is older
#   stamped  a later acknowledged stamp over zeros or a discard: the zeros are older
#   redup    a later acknowledged shared page of another class over one: older
#   pending  a later stamp issued and never acknowledged: it may not have landed (fine)
scenario_crashcheck() {
  SCEN=crashcheck; world_up
  crash_hw_start 1 1 1500; hw_wait 1; hw_acked 1
  kinds_acked 1
  hverify 1 c1 --log "$T/hist1.log"
  hreport c1 " (the storm's pages as written: $(kinds_line 1))"
  awk '$1 == "a" && (!($2 in a) || $5 > a[$2]) { a[$2] = $5; g[$2] = $3; k[$2] = $6 }
    END { for (p in a) print p, g[p], k[p] }' "$T/hist1.log" | sort -n > "$T/last.txt"
  awk '$3 == "stamp" { n++; print $0, n <= 16 ? "gone" : n <= 32 ? "zeroed" : n <= 48 ? "pending" : "" }
    ($3 == "zero" || $3 == "discard") && ++z <= 16 { print $0, "stamped" }
    $3 ~ /^dup/ && ++d <= 16 { print $0, "redup" }' "$T/last.txt" | awk 'NF == 4' > "$T/plan.txt"
  [ "$(wc -l < "$T/plan.txt")" = 80 ] || fail "the storm left too few pages of some kind: $(awk '{ print $3 }' "$T/last.txt" | sort | uniq -c | tr '\n' ' ')"
  # Later than anything: issued 1 s, acknowledged 2 s after the last acknowledgement; generations past any.
  awk 'NR == FNR { plan[$1 " " $2] = $4; page[NR] = $1; how[NR] = $4; kind[NR] = $3; n = NR; next }
    $1 == "a" && $5 > m { m = $5 }
    ($1 == "a" || $1 == "i") && plan[$2 " " $3] == "gone" { next }
    { print }
    END {
      for (i = 1; i <= n; i++) {
        g = 1000000000000 + page[i]; is = m + 1e9; ac = m + 2e9
        if (how[i] == "zeroed") printf "a %d %.0f %.0f %.0f zero\n", page[i], g, is, ac
        if (how[i] == "stamped") printf "a %d %.0f %.0f %.0f stamp\n", page[i], g, is, ac
        if (how[i] == "redup") printf "a %d %.0f %.0f %.0f dup%d\n", page[i], g, is, ac, (substr(kind[i], 4) + 1) % 4
        if (how[i] == "pending") printf "i %d %.0f %.0f stamp\n", page[i], g, is
      }
    }' "$T/plan.txt" "$T/hist1.log" > "$T/hist1-doctored.log"
  hverify 1 c2 --log "$T/hist1-doctored.log"
  local total; total=$(hpages)
  if [ "$(field "$T/c2.out" mismatches)" != 16 ] || [ "$(field "$T/c2.out" lost)" != 48 ] ||
     [ "$(field "$T/c2.out" verified)" != $((total - 64)) ]; then
    fail "the doctored log should give 16 mismatches, 48 lost and $((total - 64)) verified: $(grep history-verify "$T/c2.out"; head -n 12 "$T/c2.err")"
  fi
  echo "$SCEN: against the doctored log the checker saw 16 writes never issued, 16 stamps, 16 zeros and 16 shared pages" \
    "older than their last acknowledged write, and accepted 16 later writes in flight"
}

SCENARIOS="$SCENARIOS crashcheck"
if [ "$ETCD_MODE" = 1 ]; then
  SCENARIOS="$SCENARIOS crashsame crashother crashloop crashhost crashserver crashstale"
fi
