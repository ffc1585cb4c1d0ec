# tests/faults/scen-etcd.sh — etcd as the source of truth (issue 14), sourced
# by run.sh (its helpers, SCENARIOS).  Each checks the volume's per-page write
# history (memx-io hwrite / history-verify: every page holds its last
# acknowledged write or a later one that was in flight, never an older one,
# another page's or garbage, and no write a fenced owner issued after its
# fence), and prints
#   <scenario>: N pages verified, 0 lost, 0 mismatches, 0 from a fenced writer, ...
#
#   histcheck    the checker itself (also in the static world): it sees 16
#                pages overwritten by a seeded pattern, a writer fenced before
#                it began, and writes older than the last acknowledged ones
#   etcdnet      the plumbing: etcd answers in every namespace; etcd_cut takes
#                one host off etcd and leaves its data links up
#   splitbrain   host 1 writes; it loses etcd and server 2 while host 2 takes
#                the volume over; host 2 sees the last acknowledged write of
#                every page and no host-1 write issued after its attach; so
#                does a third attach (host 1 again, links back, all servers)
#   missedclaim  host 2 cannot reach server 2 when it takes over; server 2
#                (etcd and host 1 reach it) refuses host 1's writes (its log)
#   stalerecords server 2 stopped through a takeover and the new owner's
#                writes, then back with its old records: a later attach reads
#                the newest
#   leaderloss   ETCD_MEMBERS=3: the etcd leader killed during an attach
#   leaselost    host 1 off etcd while it writes, 3.2 s (within the lease) and
#                8 s (past it): writes held, not failed, then resumed
#   membership   under load a 4th server starts (the backend uses it, no
#                restart) and server 1 gets SIGTERM (drain, deregister)
#   scale        (scen-scale.sh) 8, 16, 32 memory servers, 4 backend hosts:
#                attach time, etcd traffic, backend RSS
# Every scenario here but histcheck needs etcd (not run with MEMX_FAULTS_STATIC=1).
# The fence time of an old owner is when the new owner's attach completed (its
# log's "loaded from the pool"); a history check also fails on a daemon crash.
# A scenario is a fault world of its own; the timeline of each is in its body.

HSIZE=${MEMX_FAULTS_HSIZE:-16M}             # the region written with history
hpages() { echo $(( $(numfmt --from=iec "$HSIZE") / 4096 )); }

ctl2() { ip netns exec "$(b2ns)" "$B/memxctl" --socket "$T/backd2.sock" "$@"; }
server_state_on() { # ctl-fn i
  "$1" --json pool 2>/dev/null | tr -d '\n' | sed 's/{/\n{/g' | grep "10.77.$2.2:7480" | cut -d'}' -f1 |
    sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p' | head -1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# Epoch seconds of the first line of a daemon's log matching an ERE (its HH:MM:SS.mmm stamp).
log_time() { # file ere
  local ts; ts=$(grep -m1 -E "$2" "$1" 2>/dev/null | awk '{ print $1 }')
  [ -n "$ts" ] && date -d "$(date +%F) $ts" +%s.%N
}
wait_log() { # file ere secs
  for _ in $(seq $(($3 * 10))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

# memx-io on host H's guest, bounded: a pool that hangs a guest I/O fails the
# scenario (SIGTERM: hwrite stops and reports; SIGKILL 5 s later), never the suite.
guest_at() { # host: GNS, GSIM
  if [ "$1" = 2 ]; then GNS=$(b2ns) GSIM=$T/sim2; else GNS=$(bns) GSIM=$T/sim; fi
}
guest() { # host args...
  guest_at "$1"; shift
  timeout -k 5 "${GUEST_TIMEOUT:-120}" ip netns exec "$GNS" "$B/memx-io" --platform sim --sim-dir "$GSIM" --domid 1 \
    --device device/vbd/51728 "$@"
}

# hwrite on host H as writer W for MS ms (0: one pass), in the background
# (GUEST_PIDS: world_down stops it).
hw_start() { # host writer ms
  guest_at "$1"
  timeout -k 5 "${GUEST_TIMEOUT:-120}" ip netns exec "$GNS" "$B/memx-io" --platform sim --sim-dir "$GSIM" --domid 1 \
    --device device/vbd/51728 hwrite --writer "$2" --log "$T/hist$2.log" --offset 0 --size "$HSIZE" --qd 16 \
    --duration "$3" > "$T/hw$2.out" 2> "$T/hw$2.err" &
  eval "HW_PID_$2=$!"
  GUEST_PIDS+=($!)
}
hw_wait() { local p; eval "p=\$HW_PID_$1"; wait "$p" || true; }
hw_acked() { # writer: it wrote, and some writes were acknowledged
  local n; n=$(field "$T/hw$1.out" acked)
  [ "${n:-0}" -gt 0 ] || fail "writer $1 had no write acknowledged: $(cat "$T/hw$1.out" "$T/hw$1.err")"
}
# Seconds from writer W's last acknowledgement to epoch T (negative: after it).
last_ack_before() { awk -v t="$2" '$1 == "a" && $5 > m { m = $5 } END { printf "%.2f", t - m / 1e9 }' "$T/hist$1.log"; }
# Writer W's acknowledged writes issued later than epoch T.
issued_after() { awk -v t="$2" '$1 == "a" && $4 / 1e9 > t { n++ } END { print n + 0 }' "$T/hist$1.log"; }
# Writer W's acknowledgements later than epoch T.
acks_after() { awk -v t="$2" '$1 == "a" && $5 / 1e9 > t { n++ } END { print n + 0 }' "$T/hist$1.log"; }

# history-verify on host H; out names the files; the rest are memx-io options (--log, --fence).
hverify() { # host out args...
  local h=$1 out=$2; shift 2
  guest "$h" history-verify --offset 0 --size "$HSIZE" --qd 16 "$@" > "$T/$out.out" 2> "$T/$out.err" || true
}
# A daemon that crashed (memx's fatal-signal handler logs "terminated with signal") fails the scenario.
no_crash() {
  local f; f=$(grep -l "terminated with signal" "$T"/*.log 2>/dev/null | head -1 || true)
  [ -z "$f" ] || fail "$(basename "$f" .log) crashed: $(grep -A4 "terminated with signal" "$f" | head -5 | tr '\n' ' ')"
}

# Prints the scenario's line for a history-verify and fails unless every page verified.
hreport() { # out "extra text"
  local ver lost mis fen err total; total=$(hpages)
  ver=$(field "$T/$1.out" verified) lost=$(field "$T/$1.out" lost) mis=$(field "$T/$1.out" mismatches)
  fen=$(field "$T/$1.out" fenced) err=$(field "$T/$1.out" io_errors)
  echo "$SCEN: ${ver:-0} pages verified, ${lost:-?} lost, ${mis:-?} mismatches, ${fen:-?} from a fenced writer$2"
  [ "${ver:-0}" = "$total" ] && [ "$lost" = 0 ] && [ "$mis" = 0 ] && [ "$fen" = 0 ] && [ "$err" = 0 ] ||
    fail "$(grep history-verify "$T/$1.out"; head -n 12 "$T/$1.err")"
  no_crash
}

# Host 2 attaches the volume (a backend claims it when the guest connects: memx-io info
# does); TF is when that attach completed, by host 2's log: host 1's fence time.
attach2() { # servers host 2 must reach
  host2_up "$@"
  guest 2 info > "$T/info2.out" 2>&1 || fail "host 2 could not attach the volume: $(cat "$T/info2.out"; grep "volume faults" "$T/backd2.log" | tail -3)"
  TF=$(log_time "$T/backd2.log" "loaded from the pool") || fail "host 2 did not log its attach"
}

# Host 1's backend restarted (its old log kept as backd.N.log): it attaches the volume again.
host1_reattach() {
  local n=1
  while [ -e "$T/backd.$n.log" ]; do n=$((n + 1)); done
  no_crash
  kill9 "$PID_backd"
  cp "$T/backd.log" "$T/backd.$n.log"
  rm -f "$T/backd.sock"
  start_backd
  guest 1 info > "$T/info1.out" 2>&1 || fail "host 1 could not attach the volume again: $(cat "$T/info1.out")"
  grep -q "loaded from the pool" "$T/backd.log" || fail "host 1's backend did not load the volume from the pool"
}

# The checker itself: it must see a page overwritten by something else, a
# write older than the last acknowledged one, and a fenced writer's write.
scenario_histcheck() {
  SCEN=histcheck; world_up
  local total; total=$(hpages)
  hw_start 1 1 0; hw_wait 1; hw_acked 1
  hverify 1 c1 --log "$T/hist1.log"
  hreport c1 " (one pass of writer 1)"
  io write --seed 5 --offset 0 --size 64K --qd 4 > "$T/w5.out" 2>&1 || fail "write failed: $(cat "$T/w5.out")"
  hverify 1 c2 --log "$T/hist1.log"
  [ "$(field "$T/c2.out" mismatches)" = 16 ] || fail "16 pages overwritten by a seeded pattern: $(grep history-verify "$T/c2.out")"
  local t2; t2=$(now)
  hw_start 1 2 0; hw_wait 2; hw_acked 2
  hverify 1 c3 --log "$T/hist1.log" --log "$T/hist2.log"
  [ "$(field "$T/c3.out" verified)" = "$total" ] || fail "writer 2 over writer 1: $(grep history-verify "$T/c3.out")"
  hverify 1 c4 --log "$T/hist1.log" --log "$T/hist2.log" --fence "2@$t2"
  [ "$(field "$T/c4.out" fenced)" = "$total" ] || fail "writer 2 fenced before it began: $(grep history-verify "$T/c4.out")"
  # Writer 1's log moved 1000 s later: the pages now hold writes older than its last acknowledged ones.
  awk '$1 == "a" { $4 += 1e12; $5 += 1e12 } { print }' OFMT=%.0f CONVFMT=%.0f "$T/hist1.log" > "$T/hist1-late.log"
  hverify 1 c5 --log "$T/hist1-late.log" --log "$T/hist2.log"
  [ "$(field "$T/c5.out" lost)" = "$total" ] || fail "pages older than the last acknowledged write: $(grep history-verify "$T/c5.out")"
  echo "$SCEN: $total pages verified, 0 lost, 0 mismatches, 0 from a fenced writer; the checker saw 16 overwritten pages," \
    "$total fenced writes and $total older writes where they were made"
}

scenario_etcdnet() {
  SCEN=etcdnet; world_up
  local ns n=0
  for ns in "$(bns)" "$(b2ns)" $(for i in $(seq 0 $((NSRV - 1))); do sns "$i"; done); do
    ip netns exec "$ns" curl -sf -m 2 "http://$ESUB.1:2379/health" | grep -q true || fail "etcd does not answer in $ns"
    n=$((n + 1))
  done
  local regs; regs=$(etcdctl_ get --prefix --keys-only /memx/faults | grep -c "servers/" || true)
  [ "$regs" = $NSRV ] || fail "$regs servers registered in etcd, not $NSRV: $(etcdctl_ get --prefix --keys-only /memx/faults/)"
  etcd_cut "$(bns)"
  ! ip netns exec "$(bns)" curl -sf -m 1 "http://$ESUB.1:2379/health" > /dev/null 2>&1 || fail "etcd_cut left host 1 on etcd"
  sleep 1
  [ "$(live_servers)" = $NSRV ] || fail "etcd_cut cut host 1's data links too: $(ctl pool)"
  etcd_heal "$(bns)"
  ip netns exec "$(bns)" curl -sf -m 2 "http://$ESUB.1:2379/health" > /dev/null || fail "etcd_heal did not bring etcd back"
  ctl status | grep -q "^etcd" || fail "memxctl status shows no etcd line: $(ctl status)"
  echo "$SCEN: etcd answers in $n namespaces, $regs servers registered, one host cut off etcd alone and back;" \
    "$(ctl status | sed -n 's/^etcd *//p' | head -1)"
}

scenario_splitbrain() {
  SCEN=splitbrain; world_up
  hw_start 1 1 14000
  sleep 2
  local tcut; tcut=$(now)
  etcd_cut "$(bns)"                                     # host 1: no etcd,
  ip -n "$(bns)" link set "${TAG}b2" down               # and no server 2
  sleep 0.5
  attach2
  local tf=$TF
  echo "$SCEN: host 2 attached $(awk -v a="$tcut" -v b="$tf" 'BEGIN { printf "%.1f", b - a }') s after the cut" \
    "($(grep -m1 -oE "claimed with epoch [0-9]+ on [0-9]+ memory server\(s\)( \(etcd\))?" "$T/backd2.log"))"
  hw_wait 1
  hw_acked 1
  local late tc; late=$(acks_after 1 "$tf")
  tc=$(log_time "$T/backd2.log" "claimed in etcd under epoch") || fail "host 2 did not log its claim in etcd"
  hverify 2 v2 --log "$T/hist1.log" --fence "1@$tf"
  hreport v2 " (host 2, right after its attach; host 1: $(field "$T/hw1.out" acked) writes acknowledged, the last $(last_ack_before 1 "$tf") s before host 2's attach, $(field "$T/hw1.out" io_errors) failed; $(issued_after 1 "$tc") acknowledged writes issued after host 2's claim in etcd, $(awk -v a="$tc" -v b="$tf" 'BEGIN { printf "%.0f", (b - a) * 1000 }') ms before its attach completed)"
  [ "$late" = 0 ] || fail "host 1 had $late writes acknowledged after host 2's attach"
  # Host 2 writes on; then the links come back and host 1 attaches again over every server.
  hw_start 2 2 3000; hw_wait 2; hw_acked 2
  [ "$(field "$T/hw2.out" io_errors)" = 0 ] || fail "host 2's writes failed: $(cat "$T/hw2.out" "$T/hw2.err")"
  etcd_heal "$(bns)"
  ip -n "$(bns)" link set "${TAG}b2" up
  host1_reattach
  hverify 1 v3 --log "$T/hist1.log" --log "$T/hist2.log" --fence "1@$tf"
  hreport v3 " (third attach, host 1 again over all $NSRV servers, after host 2's writes)"
}

scenario_missedclaim() {
  SCEN=missedclaim; world_up
  hw_start 1 1 10000
  sleep 2
  ip -n "$(b2ns)" link set "${TAG}c2" down               # host 2 cannot reach server 2
  attach2 $((NSRV - 1))
  local tf=$TF
  grep -qE "taken over with [0-9]+ of [0-9]+ memory server" "$T/backd2.log" ||
    fail "host 2 did not wait for the server it could not reach: $(grep -E "volume faults" "$T/backd2.log" | head -5)"
  hw_wait 1
  hw_acked 1
  # Server 2 refuses host 1 from etcd's view when host 1 still writes to it
  # after the claim; host 1 may instead be fenced first by the servers host 2
  # told directly, and then sends server 2 nothing more (a race the history
  # check below does not depend on: no write of host 1 after the claim may
  # show, whichever server fenced it).
  local refused why; refused=$(grep -cE "\(backd-host1\).*refused" "$T/memd2.log" || true)
  if [ "$refused" -gt 0 ]; then
    why="server 2 refused host 1 $refused times: $(grep -m1 -E "\(backd-host1\).*refused" "$T/memd2.log" | cut -d' ' -f4-)"
  else
    grep -q "fenced" "$T/backd.log" || fail "host 1 was neither refused by server 2 nor fenced: $(tail -n 5 "$T/memd2.log")"
    why="host 1 was fenced by the other servers before it wrote to server 2 again"
  fi
  hverify 2 v2 --log "$T/hist1.log" --fence "1@$tf"
  hreport v2 " (host 2, without server 2; $why)"
  # Server 2's own records now count: host 1 attaches again over every server.
  ip -n "$(b2ns)" link set "${TAG}c2" up
  host1_reattach
  hverify 1 v3 --log "$T/hist1.log" --fence "1@$tf"
  hreport v3 " (third attach over all $NSRV servers, server 2's records included)"
}

scenario_stalerecords() {
  SCEN=stalerecords; world_up
  hw_start 1 1 0; hw_wait 1; hw_acked 1
  kill -STOP "$PID_memd2"                               # down, its records kept
  local t0; t0=$(now)
  attach2 $((NSRV - 1))
  local tf=$TF
  hw_start 2 2 4000; hw_wait 2; hw_acked 2
  [ "$(field "$T/hw2.out" io_errors)" = 0 ] || fail "host 2's writes failed: $(cat "$T/hw2.out" "$T/hw2.err")"
  kill -CONT "$PID_memd2"
  for _ in $(seq 150); do [ "$(server_state_on ctl2 2)" = up ] && break; sleep 0.1; done
  [ "$(server_state_on ctl2 2)" = up ] || fail "server 2 did not come back for host 2: $(ctl2 pool)"
  local down; down=$(since "$t0")
  host1_reattach
  hverify 1 v3 --log "$T/hist1.log" --log "$T/hist2.log" --fence "1@$tf"
  hreport v3 " (server 2 stopped ${down} s through host 2's takeover and $(field "$T/hw2.out" acked) writes, then back with its old records; host 1 attached again)"
}

scenario_leaderloss() {
  SCEN=leaderloss; ETCD_MEMBERS=3; world_up
  hw_start 1 1 0; hw_wait 1; hw_acked 1
  host2_up
  local lead t0 tf took newlead; lead=$(etcd_leader)
  [ "$lead" != none ] || fail "no etcd leader among the 3 members"
  # The leader goes just before host 2's guest connects: the claim meets an etcd electing a new one.
  t0=$(now)
  kill9 "${ETCD_PIDS[$lead]}"
  guest 2 info > "$T/info2.out" 2>&1 ||
    fail "the attach failed with the etcd leader killed: $(cat "$T/info2.out"; grep -E "etcd|volume faults" "$T/backd2.log" | tail -5)"
  tf=$(log_time "$T/backd2.log" "loaded from the pool") || fail "host 2 did not log its attach"
  took=$(awk -v a="$t0" -v b="$tf" 'BEGIN { printf "%.1f", b - a }')
  for _ in $(seq 50); do newlead=$(etcd_leader); [ "$newlead" != none ] && break; sleep 0.1; done
  hverify 2 v2 --log "$T/hist1.log" --fence "1@$tf"
  hreport v2 " (member m$lead, the leader, killed as host 2's guest connected; attach ${took} s; new leader m$newlead; $(grep -c "claimed in etcd" "$T/backd2.log" || true) claim(s) in etcd)"
  ETCD_MEMBERS=1
}

# The longest pause between acknowledgements that began in [a, b] (epoch s):
# "PAUSE END" in s (END: when writes resumed).
ack_pause() { # writer a b
  sort -n -k5 "$T/hist$1.log" | awk -v a="$2" -v b="$3" '$1 == "a" { t = $5 / 1e9; if (p && p >= a && p <= b && t - p > m) { m = t - p; e = t } p = t }
    END { printf "%.1f %.3f", m, e }'
}

scenario_leaselost() {
  SCEN=leaselost; world_up
  hw_start 1 1 22000
  sleep 2
  local c1 h1 c2 h2
  c1=$(now); etcd_cut "$(bns)"; sleep 3.2; etcd_heal "$(bns)"; h1=$(now)
  sleep 3
  c2=$(now); etcd_cut "$(bns)"; sleep 8; etcd_heal "$(bns)"; h2=$(now)
  hw_wait 1
  hw_acked 1
  local held lost renewed p1 p2 r1 r2 errs; errs=$(field "$T/hw1.out" io_errors)
  held=$(grep -c "writes held" "$T/backd.log" || true)
  lost=$(grep -c "lease lost" "$T/backd.log" || true)
  renewed=$(grep -c "claim renewed in etcd" "$T/backd.log" || true)
  set -- $(ack_pause 1 "$(awk -v a="$c1" 'BEGIN { printf "%.3f", a - 0.5 }')" "$h1"); p1=$1 r1=$(awk -v a="$2" -v b="$h1" 'BEGIN { printf "%.1f", a - b }')
  set -- $(ack_pause 1 "$(awk -v a="$c2" 'BEGIN { printf "%.3f", a - 0.5 }')" "$h2"); p2=$1 r2=$(awk -v a="$2" -v b="$h2" 'BEGIN { printf "%.1f", a - b }')
  hverify 1 v1 --log "$T/hist1.log"
  hreport v1 " (3.2 s cut: writes paused ${p1} s, resumed ${r1} s after the link came back; 8 s cut: paused ${p2} s, resumed ${r2} s after; \"writes held\" $held times, lease lost $lost, claim renewed $renewed; $errs write errors)"
  [ "$held" -gt 0 ] || fail "the backend never logged its writes held"
  [ "${errs:-1}" = 0 ] || fail "host 1's writes failed: $(head -n 5 "$T/hw1.err")"
}

scenario_membership() {
  SCEN=membership; world_up
  hw_start 1 1 25000
  sleep 2
  local t0 tj td; t0=$(now)
  server_net_up 3
  start_memd 3
  for _ in $(seq 200); do [ "$(server_state 3)" = up ] && break; sleep 0.1; done
  [ "$(server_state 3)" = up ] || fail "the backend did not take server 4 (10.77.3.2): $(ctl pool)"
  tj=$(since "$t0")
  grep -q "memory server 10.77.3.2:7480 joined" "$T/backd.log" || fail "the backend does not log server 4 joining"
  sleep 2
  t0=$(now)
  kill -TERM "$PID_memd1"
  wait_log "$T/memd1.log" "deregistered from etcd" 70 || fail "server 1 did not drain and deregister: $(tail -n 5 "$T/memd1.log")"
  td=$(since "$t0")
  wait "$PID_memd1" || true
  local st
  for _ in $(seq 100); do st=$(server_state 1); [ -z "$st" ] || [ "$st" = gone ] && break; sleep 0.1; done
  local gone; gone=$(since "$t0")
  ctl pool > "$T/pool-after-drain.txt" 2>&1 || true
  [ -z "$st" ] || [ "$st" = gone ] ||
    fail "server 1 deregistered but the backend lists it as $st ${gone} s after SIGTERM: $(grep 10.77.1.2 "$T/pool-after-drain.txt")"
  hw_wait 1; hw_acked 1
  [ "$(field "$T/hw1.out" io_errors)" = 0 ] || fail "guest write errors: $(head -n 5 "$T/hw1.err")"
  ctl_state_is ok 30 || fail "pool not ok after the membership changes: $(ctl pool)"
  local reps; reps=$(ctl pool | awk '$1 == "10.77.3.2:7480" { print $NF }')
  [ "${reps:-0}" -gt 0 ] || fail "server 4 holds no replica: $(ctl pool)"
  hverify 1 v1 --log "$T/hist1.log"
  hreport v1 " (server 4 in use ${tj} s after its start; server 1 drained and deregistered ${td} s after SIGTERM, gone from the pool at ${gone} s; $(field "$T/hw1.out" acked) writes under load, no restart; server 4 holds $reps replicas)"
}

SCENARIOS="$SCENARIOS histcheck"
if [ "$ETCD_MODE" = 1 ]; then
  SCENARIOS="$SCENARIOS etcdnet splitbrain missedclaim stalerecords leaderloss leaselost membership"
fi
