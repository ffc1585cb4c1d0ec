#!/bin/bash
# tests/faults/run.sh BUILD_DIR — multi-host fault scenarios (make check-faults).
#
# Three memory servers and two backend hosts, each in its own network
# namespace.  Each server namespace has a bridge on 10.77.<i>.0/24 (server
# .2) with a veth to backend host 1 (.1) and one to backend host 2 (.3):
# traffic stays inside the namespaces.  The backends run on the sim platform
# (each with its own XenStore) with memx-io as the guest.  Scenarios, each on
# a fresh world:
#   kill      kill -9 a server while the guest writes
#   linkcut   take a server's link down mid-write, bring it back
#   restart   kill a server, restart it empty; it rejoins and takes copies
#   drain     memxctl pool drain a server, stop it once "drained"
#   backd     kill -9 the backend, start it again: it loads the volume from
#             the pool and the guest finds every page
#   takeover  a second backend host attaches the same volume (as xl migrate
#             does): it sees every page, the first is fenced (its writes are
#             refused, its device is lost) and cannot damage a page
# More scenarios live beside this file, one topic per file (scen-<topic>.sh):
# each defines scenario_<name> functions over the helpers here and appends
# their names to SCENARIOS.  MEMX_FAULTS="a b" runs only those.  The pool
# keeps 2 copies of every slab; a scenario that wants R copies sets
# REPLICAS=R for its world_up (REPLICAS=1 world_up).
# etcd (the default world; MEMX_FAULTS_STATIC=1 for the old static server
# list): one more namespace, $TAG-e, with a bridge on 10.78.0.0/24 where etcd
# listens (10.78.0.1; ETCD_MEMBERS=3 for a world with three members, .1, .4
# and .5) and a veth named etcd0 from every server and backend namespace
# (backend 1 .2, backend 2 .3, server i .10+i), so a test cuts one host off
# etcd alone (etcd_cut NS) and leaves its data links up.  Its data directory is
# on tmpfs (/dev/shm), its lease TTL 5 s; servers register from their --listen.
# Each writes a seeded pattern, then reads every page back and prints
#   <scenario>: N pages verified, 0 lost, 0 mismatches, recovery X.Y s
# (recovery: from the fault until `memxctl pool` reports state ok again).
# A failed scenario does not stop the others (each runs in a subshell); the
# run fails at the end, naming them.  MEMX_FAULTS_KEEP=DIR keeps every
# scenario's logs and files in DIR/<scenario>.  MEMX_FAULTS_BACKEND="key = value"
# adds lines to the backend's [backend] section (e.g. gather_reads = yes).
set -euo pipefail

B=$(cd "${1:?usage: tests/faults/run.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
SIZE=${MEMX_FAULTS_SIZE:-48M}            # written per scenario
NSRV=3
TAG=mxf$$
ETCD_MODE=$([ "${MEMX_FAULTS_STATIC:-0}" = 1 ] && echo 0 || echo 1)
ESUB=10.78.0
ETCD_PIDS=()
GUEST_PIDS=()
T=$(mktemp -d "/tmp/memx-faults.XXXXXX")
PIDS=()
FAILED=0

if [ "$ETCD_MODE" = 1 ] && ! command -v etcd >/dev/null; then
  echo "check-faults: etcd is not installed (tools/install-deps.sh build installs etcd-server; MEMX_FAULTS_STATIC=1 runs without it)"
  exit 2
fi
for bin in memx-memd memx-backd memx-simxsd memx-simxl memx-io memxctl; do
  [ -x "$B/$bin" ] || { echo "check-faults: $B/$bin is missing (build first)"; exit 2; }
done
if [ "$(id -u)" != 0 ] || ! ip netns add "$TAG-probe" 2>/dev/null; then
  echo "check-faults: network namespaces are not available here (needs root and 'ip netns'); nothing was run"
  exit 2
fi
ip netns del "$TAG-probe"

bns() { echo "$TAG-b"; }
b2ns() { echo "$TAG-c"; }
sns() { echo "$TAG-s$1"; }
ens() { echo "$TAG-e"; }

world_down() {
  local p
  # Guest workloads first (timeout passes SIGTERM on: they stop and report), then the daemons.
  for p in "${GUEST_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${GUEST_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  GUEST_PIDS=()
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
  ETCD_PIDS=()
  rm -rf "/dev/shm/$TAG-etcd"
  for ns in $(ip netns list | awk '{print $1}' | grep "^$TAG-" || true); do ip netns del "$ns" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  world_down
  rm -rf "$T"
  exit $rc
}
# The end of one scenario (its subshell's EXIT): its world goes; a failed
# one's logs are shown.  MEMX_FAULTS_KEEP=DIR keeps each scenario's files in DIR/<name>.
scenario_exit() { # name
  local rc=$?
  world_down
  if [ $rc -ne 0 ]; then
    for f in "$T"/*.log; do [ -e "$f" ] && { echo "----- tail of $f"; tail -n 15 "$f"; }; done
  fi
  if [ -n "${MEMX_FAULTS_KEEP:-}" ]; then
    mkdir -p "$MEMX_FAULTS_KEEP" && rm -rf "${MEMX_FAULTS_KEEP:?}/$1" && cp -r "$T" "$MEMX_FAULTS_KEEP/$1"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() { echo "check-faults: $SCEN: FAIL: $*"; FAILED=1; exit 1; }

# etcd's network: a bridge in the etcd namespace, the members' addresses on it.
etcd_net_up() {
  ip netns add "$(ens)"
  ip -n "$(ens)" link set lo up
  ip -n "$(ens)" link add br0 type bridge
  ip -n "$(ens)" addr add "$ESUB.1/24" dev br0
  if [ "${ETCD_MEMBERS:-1}" = 3 ]; then
    ip -n "$(ens)" addr add "$ESUB.4/24" dev br0
    ip -n "$(ens)" addr add "$ESUB.5/24" dev br0
  fi
  ip -n "$(ens)" link set br0 up
}
# A host's link to etcd: etcd0 in its namespace (address $ESUB.<n>), the
# other end on the etcd bridge.
etcd_link() { # ns n
  ip link add etcd0 netns "$1" type veth peer name "e$2" netns "$(ens)"
  ip -n "$1" addr add "$ESUB.$2/24" dev etcd0
  ip -n "$1" link set etcd0 up
  ip -n "$(ens)" link set "e$2" master br0 up
}
etcd_cut() { ip -n "$1" link set etcd0 down; }   # ns: that host loses etcd, and nothing else
etcd_heal() { ip -n "$1" link set etcd0 up; }
etcd_ip() { case $1 in 0) echo "$ESUB.1" ;; 1) echo "$ESUB.4" ;; 2) echo "$ESUB.5" ;; esac; }
etcd_endpoints() {
  local m out=""
  for m in $(seq 0 $((${ETCD_MEMBERS:-1} - 1))); do out="$out${out:+,}http://$(etcd_ip "$m"):2379"; done
  echo "$out"
}

# etcd: ETCD_MEMBERS (1 or 3) members in the etcd namespace, data on tmpfs.
etcd_start_member() { # m
  local m=$1 cluster="" k
  for k in $(seq 0 $((${ETCD_MEMBERS:-1} - 1))); do cluster="$cluster${cluster:+,}m$k=http://$(etcd_ip "$k"):2380"; done
  mkdir -p "/dev/shm/$TAG-etcd"
  ip netns exec "$(ens)" etcd --name "m$m" --data-dir "/dev/shm/$TAG-etcd/m$m" \
    --listen-client-urls "http://$(etcd_ip "$m"):2379" --advertise-client-urls "http://$(etcd_ip "$m"):2379" \
    --listen-peer-urls "http://$(etcd_ip "$m"):2380" --initial-advertise-peer-urls "http://$(etcd_ip "$m"):2380" \
    --initial-cluster "$cluster" --initial-cluster-token "$TAG" --initial-cluster-state new \
    --heartbeat-interval 100 --election-timeout 1000 --log-level warn > "$T/etcd$m.log" 2>&1 &
  PIDS+=($!)
  ETCD_PIDS[$m]=$!
}
etcdctl_() { ip netns exec "$(ens)" env ETCDCTL_API=3 etcdctl --endpoints "$(etcd_endpoints)" --command-timeout 3s "$@"; }
etcd_up() {
  local m
  for m in $(seq 0 $((${ETCD_MEMBERS:-1} - 1))); do etcd_start_member "$m"; done
  for _ in $(seq 100); do etcdctl_ endpoint health > /dev/null 2>&1 && return; sleep 0.1; done
  fail "etcd did not start: $(tail -n 5 "$T"/etcd*.log)"
}
# The member that leads now (0, 1 or 2).
etcd_leader() {
  local m
  for m in $(seq 0 $((${ETCD_MEMBERS:-1} - 1))); do
    ip netns exec "$(ens)" env ETCDCTL_API=3 etcdctl --endpoints "http://$(etcd_ip "$m"):2379" --command-timeout 2s \
      endpoint status -w json 2>/dev/null | jq -e '.[0].Status.leader == .[0].Status.header.member_id' > /dev/null &&
      { echo "$m"; return; }
  done
  echo none
}
# etcd's received client bytes (gRPC, the JSON gateway's included), summed over members.
etcd_rx_bytes() {
  local m sum=0 v
  for m in $(seq 0 $((${ETCD_MEMBERS:-1} - 1))); do
    v=$(ip netns exec "$(ens)" curl -s -m 2 "http://$(etcd_ip "$m"):2379/metrics" |
        awk '/^etcd_network_client_grpc_received_bytes_total/ { print $2 }')
    sum=$(awk -v a="$sum" -v b="${v:-0}" 'BEGIN { printf "%.0f", a + b }')
  done
  echo "$sum"
}

# Network: two backend namespaces, one per server with a bridge; a veth
# pair from each backend to each server's bridge (and, etcd mode, each to etcd).
net_up() {
  ip netns add "$(bns)"
  ip netns add "$(b2ns)"
  ip -n "$(bns)" link set lo up
  ip -n "$(b2ns)" link set lo up
  if [ "$ETCD_MODE" = 1 ]; then
    etcd_net_up
    etcd_link "$(bns)" 2
    etcd_link "$(b2ns)" 3
  fi
  for i in $(seq 0 $((NSRV - 1))); do server_net_up "$i"; done
}
# Server i's namespace: its bridge (10.77.i.2), a veth to each backend (and to etcd).
server_net_up() { # i
  local i=$1
  ip netns add "$(sns "$i")"
  ip -n "$(sns "$i")" link set lo up
  [ "$ETCD_MODE" = 1 ] && etcd_link "$(sns "$i")" $((10 + i))
  ip -n "$(sns "$i")" link add br0 type bridge
  ip -n "$(sns "$i")" addr add "10.77.$i.2/24" dev br0
  ip -n "$(sns "$i")" link set br0 up
  ip link add "${TAG}b$i" netns "$(bns)" type veth peer name "${TAG}s$i" netns "$(sns "$i")"
  ip link add "${TAG}c$i" netns "$(b2ns)" type veth peer name "${TAG}t$i" netns "$(sns "$i")"
  ip -n "$(bns)" addr add "10.77.$i.1/24" dev "${TAG}b$i"
  ip -n "$(b2ns)" addr add "10.77.$i.3/24" dev "${TAG}c$i"
  ip -n "$(bns)" link set "${TAG}b$i" up
  ip -n "$(b2ns)" link set "${TAG}c$i" up
  ip -n "$(sns "$i")" link set "${TAG}s$i" master br0 up
  ip -n "$(sns "$i")" link set "${TAG}t$i" master br0 up
}

spawn() { # name ns cmd...
  local n=$1 ns=$2
  shift 2
  ip netns exec "$ns" "$@" > "$T/$n.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$n=$!"
}

start_memd() { # i
  spawn "memd$1" "$(sns "$1")" "$B/memx-memd" --config "$T/memx.conf" --listen "10.77.$1.2:7480"
  for _ in $(seq 100); do
    if grep -q serving "$T/memd$1.log" 2>/dev/null; then
      # etcd mode: up once its key is in etcd (a backend learns of it from there).
      [ "$ETCD_MODE" = 0 ] || grep -q "registered in etcd" "$T/memd$1.log" && return
    fi
    sleep 0.1
  done
  fail "memx-memd $1 did not start$([ "$ETCD_MODE" = 1 ] && echo " (or did not register in etcd)")"
}

world_up() {
  world_down
  rm -rf "$T"/*
  net_up
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/cluster.key"
  local members
  if [ "$ETCD_MODE" = 1 ]; then
    etcd_up
    members="etcd = $(etcd_endpoints)
etcd_prefix = /memx/faults
etcd_lease_ttl = 5"
  else
    members="servers = 10.77.0.2:7480, 10.77.1.2:7480, 10.77.2.2:7480"
  fi
  cat > "$T/memx.conf" <<CONF
[cluster]
key_file = $T/cluster.key
provider = tcp;ofi_rxm
$members
replicas = ${REPLICAS:-2}
slab_size = 1M
[backend]
platform = sim
control_socket = $T/backd.sock
node_id = backd-host1
log_level = info
${MEMX_FAULTS_BACKEND:-}
[memserver]
capacity = 256M
log_level = info
[sim]
dir = $T/sim
domid = 0
CONF
  sed -e "s|$T/backd.sock|$T/backd2.sock|" -e "s|backd-host1|backd-host2|" -e "s|dir = $T/sim|dir = $T/sim2|" \
    "$T/memx.conf" > "$T/memx2.conf"
  spawn simxsd "$(bns)" "$B/memx-simxsd" --dir "$T/sim"
  for _ in $(seq 100); do [ -S "$T/sim/xenstore.sock" ] && break; sleep 0.1; done
  for i in $(seq 0 $((NSRV - 1))); do start_memd "$i"; done
  start_backd
  ip netns exec "$(bns)" "$B/memx-simxl" --dir "$T/sim" create --domid 1 --vdev xvdb \
    --target "memx:faults:$SIZE" >> "$T/simxl.log" 2>&1 || fail "memx-simxl create failed"
}

start_backd() {
  spawn backd "$(bns)" "$B/memx-backd" --config "$T/memx.conf" --platform sim --sim-dir "$T/sim" --domid 0
  for _ in $(seq 100); do [ -S "$T/backd.sock" ] && break; sleep 0.1; done
  ctl_state_is ok 10 || true
  for _ in $(seq 100); do [ "$(live_servers)" = $NSRV ] && break; sleep 0.1; done
  [ "$(live_servers)" = $NSRV ] || fail "the backend did not reach all $NSRV servers"
}

# Backend host 2: its own XenStore, backend and guest device for the same
# volume.  host2_up [N]: N servers must be up for it (default all).
host2_up() {
  host2_backd_up "${1:-$NSRV}"
  host2_attach || fail "memx-simxl create on host 2 failed"
}
host2_backd_up() { # servers it must reach
  spawn simxsd2 "$(b2ns)" "$B/memx-simxsd" --dir "$T/sim2"
  for _ in $(seq 100); do [ -S "$T/sim2/xenstore.sock" ] && break; sleep 0.1; done
  spawn backd2 "$(b2ns)" "$B/memx-backd" --config "$T/memx2.conf" --platform sim --sim-dir "$T/sim2" --domid 0
  for _ in $(seq 100); do [ -S "$T/backd2.sock" ] && break; sleep 0.1; done
  for _ in $(seq 100); do
    [ "$(ip netns exec "$(b2ns)" "$B/memxctl" --socket "$T/backd2.sock" --json pool 2>/dev/null |
        grep -c '"state": *"up"')" = "$1" ] && break
    sleep 0.1
  done
}
# Host 2's guest device: the attach (its backend claims the volume).
host2_attach() {
  ip netns exec "$(b2ns)" "$B/memx-simxl" --dir "$T/sim2" create --domid 1 --vdev xvdb \
    --target "memx:faults:$SIZE" >> "$T/simxl2.log" 2>&1
}
io2() { ip netns exec "$(b2ns)" "$B/memx-io" --platform sim --sim-dir "$T/sim2" --domid 1 --device device/vbd/51728 "$@"; }

ctl() { ip netns exec "$(bns)" "$B/memxctl" --socket "$T/backd.sock" "$@"; }
pool_json() { ctl --json pool 2>/dev/null || echo '{}'; }
pool_state() { pool_json | sed -n 's/.*"state": *"\([a-z ]*\)",* *$/\1/p' | tail -1; }
live_servers() { pool_json | grep -c '"state": *"up"' || true; }
server_state() { # i
  pool_json | tr -d '\n' | sed 's/{/\n{/g' | grep "10.77.$1.2:7480" | cut -d'}' -f1 |
    sed -n 's/.*"state": *"\([a-z]*\)".*/\1/p' | head -1
}
ctl_state_is() { # state secs
  for _ in $(seq $(($2 * 10))); do [ "$(pool_state)" = "$1" ] && return 0; sleep 0.1; done
  return 1
}

io() { ip netns exec "$(bns)" "$B/memx-io" --platform sim --sim-dir "$T/sim" --domid 1 --device device/vbd/51728 "$@"; }
field() { sed -n "s/.*[ :]$2=\([0-9]*\).*/\1/p" "$1" | tail -1; }

# Writes the seeded pattern in the background; returns at once.
write_start() { io write --seed "$1" --offset 0 --size "$SIZE" --qd 16 > "$T/write.out" 2> "$T/write.log" & WRITER=$!; }
write_wait() {
  wait "$WRITER" || { cat "$T/write.out"; fail "the guest's write failed"; }
  [ "$(field "$T/write.out" io_errors)" = 0 ] || fail "guest write errors: $(cat "$T/write.out")"
}
# Waits until the writer has written about a third of the volume.
write_midway() {
  local want=$(( $(numfmt --from=iec "$SIZE") / 4096 / 3 )) n
  for _ in $(seq 300); do
    n=$(ctl --json pool 2>/dev/null | sed -n 's/.*"writes": *\([0-9]*\).*/\1/p' | head -1)
    [ "${n:-0}" -ge "$want" ] && return
    sleep 0.05
  done
}

verify_report() { # seed t_fault
  local recov
  ctl_state_is ok 60 || fail "pool still not healthy 60 s after the fault: $(ctl pool)"
  recov=$(awk -v a="$2" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  io read-verify --seed "$1" --offset 0 --size "$SIZE" --qd 16 > "$T/verify.out" 2> "$T/verify.log" || true
  local total=$(( $(numfmt --from=iec "$SIZE") / 4096 )) ver mis err
  ver=$(field "$T/verify.out" verified) mis=$(field "$T/verify.out" mismatches) err=$(field "$T/verify.out" io_errors)
  ver=${ver:-0} mis=${mis:-0} err=${err:-0}
  echo "$SCEN: $ver pages verified, $((total - ver - mis)) lost, $mis mismatches, recovery ${recov} s (pool ok again; $err read errors)"
  [ "$ver" = "$total" ] && [ "$mis" = 0 ] && [ "$err" = 0 ] || fail "$(cat "$T/verify.out")"
}

# kill -9, and reap it quietly (bash would report the job as "Killed", which
# reads like a failure in the log although it is the scenario itself).
kill9() { kill -KILL "$1"; wait "$1" 2>/dev/null || true; }

scenario_kill() {
  SCEN=kill; world_up
  write_start 101; write_midway
  local t0; t0=$(date +%s.%N)
  kill9 "$PID_memd1"
  write_wait
  verify_report 101 "$t0"
}

scenario_linkcut() {
  SCEN=linkcut; world_up
  write_start 202; write_midway
  local t0; t0=$(date +%s.%N)
  ip -n "$(sns 2)" link set "${TAG}s2" down
  write_wait
  ctl_state_is ok 60 || fail "no recovery while the link is down: $(ctl pool)"
  ip -n "$(sns 2)" link set "${TAG}s2" up
  for _ in $(seq 200); do [ "$(server_state 2)" = up ] && break; sleep 0.1; done
  [ "$(server_state 2)" = up ] || fail "server 2 did not come back after its link did"
  verify_report 202 "$t0"
}

scenario_restart() {
  SCEN=restart; world_up
  write_start 303; write_midway
  local t0; t0=$(date +%s.%N)
  kill9 "$PID_memd0"
  write_wait
  # The backend must have seen the death before the restart: a restart it
  # never noticed left the copies the restart lost uncounted, the pool "ok"
  # meanwhile, and the kill of server 1 below was then a double fault (the
  # pages "lost" with gather_reads = yes in an earlier session's runs).
  for _ in $(seq 100); do [ "$(server_state 0)" != up ] && break; sleep 0.1; done
  [ "$(server_state 0)" != up ] || fail "the backend never saw server 0 die"
  start_memd 0
  for _ in $(seq 200); do [ "$(server_state 0)" = up ] && break; sleep 0.1; done
  [ "$(server_state 0)" = up ] || fail "restarted server 0 did not rejoin"
  verify_report 303 "$t0"
  # It rejoined empty and takes slabs: with one more server gone, nothing is lost.
  kill9 "$PID_memd1"
  sleep 1
  io read-verify --seed 303 --offset 0 --size "$SIZE" --qd 16 > "$T/verify2.out" 2>&1 || true
  [ "$(field "$T/verify2.out" mismatches)" = 0 ] && [ "$(field "$T/verify2.out" io_errors)" = 0 ] ||
    fail "after the rejoin, losing server 1 lost data: $(cat "$T/verify2.out")"
}

scenario_drain() {
  SCEN=drain; world_up
  io write --seed 404 --offset 0 --size "$SIZE" --qd 16 > "$T/write.out" 2> "$T/write.log" || fail "write failed"
  local t0; t0=$(date +%s.%N)
  ctl pool drain 10.77.1.2:7480 > /dev/null || fail "memxctl pool drain failed"
  for _ in $(seq 600); do [ "$(server_state 1)" = drained ] && break; sleep 0.1; done
  [ "$(server_state 1)" = drained ] || fail "server 1 not drained: $(ctl pool)"
  kill9 "$PID_memd1"
  sleep 1
  [ "$(pool_state)" = ok ] || fail "stopping a drained server degraded the pool: $(ctl pool)"
  verify_report 404 "$t0"
}

scenario_backd() {
  SCEN=backd; world_up
  io write --seed 606 --offset 0 --size "$SIZE" --qd 16 > "$T/write.out" 2> "$T/write.log" || fail "write failed"
  local t0; t0=$(date +%s.%N)
  kill9 "$PID_backd"
  rm -f "$T/backd.sock"
  start_backd
  verify_report 606 "$t0"
  grep -q "volume faults: loaded from the pool" "$T/backd.log" || fail "the restarted backend did not load the volume from the pool"
}

scenario_takeover() {
  SCEN=takeover; world_up
  io write --seed 707 --offset 0 --size "$SIZE" --qd 16 > "$T/write.out" 2> "$T/write.log" || fail "write failed"
  host2_up
  local t0 total; t0=$(date +%s.%N)
  total=$(( $(numfmt --from=iec "$SIZE") / 4096 ))
  io2 read-verify --seed 707 --offset 0 --size "$SIZE" --qd 16 > "$T/verify2.out" 2>&1 || true
  [ "$(field "$T/verify2.out" verified)" = "$total" ] && [ "$(field "$T/verify2.out" mismatches)" = 0 ] ||
    fail "host 2 does not see the volume host 1 wrote: $(cat "$T/verify2.out")"
  local took; took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  # Host 1 is fenced: its writes are refused and its device is lost.
  io write --seed 708 --offset 0 --size 1M --qd 4 > "$T/zombie.out" 2>&1 || true
  [ "$(field "$T/zombie.out" io_errors)" != 0 ] || grep -qi "error\|fail" "$T/zombie.out" ||
    fail "the fenced backend's write was not refused: $(cat "$T/zombie.out")"
  grep -q "fenced" "$T/backd.log" || fail "backend 1 does not report the volume fenced"
  grep -q "another backend" "$T/backd.log" || fail "backend 1 does not say why the device is lost"
  # And it changed nothing host 2 reads; host 2 writes on.
  io2 write --seed 709 --offset 0 --size 1M --qd 4 > "$T/w2.out" 2>&1 || fail "host 2 cannot write: $(cat "$T/w2.out")"
  io2 read-verify --seed 709 --offset 0 --size 1M --qd 4 > "$T/v2a.out" 2>&1 || true
  io2 read-verify --seed 707 --offset 1M --size $(( $(numfmt --from=iec "$SIZE") - 1048576 )) --qd 16 > "$T/v2b.out" 2>&1 || true
  local ver mis
  ver=$(( $(field "$T/v2a.out" verified) + $(field "$T/v2b.out" verified) ))
  mis=$(( $(field "$T/v2a.out" mismatches) + $(field "$T/v2b.out" mismatches) ))
  echo "$SCEN: $ver pages verified, $((total - ver - mis)) lost, $mis mismatches, attach on host 2 ${took} s (host 1 fenced, its writes refused)"
  [ "$ver" = "$total" ] && [ "$mis" = 0 ] || fail "$(cat "$T/v2a.out" "$T/v2b.out")"
}

SCENARIOS="kill linkcut restart drain backd takeover"
for f in "$SRC"/tests/faults/scen-*.sh; do
  [ -e "$f" ] || continue
  # shellcheck source=/dev/null
  . "$f"
done
echo "check-faults: $NSRV memory servers + 2 backend hosts in network namespaces, $SIZE per scenario," \
  "$([ "$ETCD_MODE" = 1 ] && echo "membership and ownership in etcd" || echo "static server list (MEMX_FAULTS_STATIC=1)")"
FAILS="" NRUN=0
for s in ${MEMX_FAULTS:-$SCENARIOS}; do
  set +e
  ( set -e; trap "scenario_exit $s" EXIT; trap 'exit 130' INT TERM; "scenario_$s" )
  rc=$?
  set -e
  [ $rc = 130 ] && exit 130
  [ $rc = 0 ] || FAILS="$FAILS $s"
  NRUN=$((NRUN + 1))
done
world_down
if [ -n "$FAILS" ]; then
  echo "check-faults: $(echo $FAILS | wc -w) of $NRUN scenarios FAILED:$FAILS"
  exit 1
fi
echo "check-faults: all $NRUN scenarios passed"
