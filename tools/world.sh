# world.sh — sourced, not run: a private MemX world on this machine for the
# demo, the benchmarks and the integration tests (sim XenStore, N memory
# servers on free loopback ports, memx-backd on the sim platform), in a temp
# dir that is torn down on exit whatever happened.
#
#   world_init NAME [TAG]        temp dir /tmp/memx-TAG.XXXXXX (TAG = NAME), traps;
#                                NAME prefixes the messages.  Call it first.
#   world_spawn NAME CMD...      a daemon in the background, output in $WORLD_DIR/NAME.log
#   world_stop NAME [SECS=10]    SIGTERM and wait; WORLD_RC = its exit status (124: still running)
#   world_running PID            running and not a zombie
#   world_free_port              a loopback port nobody listens on, not handed out before
#   world_listening PORT         something listens on TCP PORT
#   world_wait_for WHAT SECS CMD...  polls CMD for SECS s; says "WHAT did not happen", returns 1
#   world_fail MSG               "NAME: FAIL: MSG", exit 1
#   world_at_exit FUNC           FUNC runs on exit after the daemons stopped, before the dir goes
#   world_conf [servers=3] [capacity=256M] [replicas=2] [slab=4M] [log=LEVEL] [ring_poll_us=N] [gather_reads=yes|no]
#              [etcd=yes|no]     a cluster key and $WORLD_CONF for that pool (log unset: defaults);
#                                etcd=yes (the default): a single-member etcd on loopback is the
#                                source of truth (servers register there), no: the static list
#   world_start_etcd             etcd, if world_conf asked for it (etcd.log); world_start_pool
#                                calls it
#   world_start_sim              memx-simxsd                      (log: simxsd.log)
#   world_start_pool             the memory servers of world_conf (memd0.log, memd1.log, ...)
#   world_start_backd            memx-backd on the sim platform   (backd.log)
#
# Needs B (the build dir holding the binaries) for world_conf and world_start_*.
# Sets: WORLD_NAME, WORLD_DIR, WORLD_CONF ($WORLD_DIR/memx.conf), WORLD_SIM
# (the sim dir), WORLD_SOCK (memx-backd's control socket), WORLD_MEMD_PORTS
# (one port per server), WORLD_PID[NAME] (a spawned daemon's PID), WORLD_ETCD
# (etcd's client URL, empty without etcd).
#
# On exit the daemons stop in reverse start order, each given 5 s to exit on
# SIGTERM before SIGKILL (memx-backd closes its devices while XenStore and the
# pool still run); on failure "NAME: FAILED (rc=N); logs:" and the last
# WORLD_TAIL_LINES (15) lines of every $WORLD_DIR/*.log go to stderr.
#
# Typical use (tools/memx-demo.sh):
#   B=build; . tools/world.sh; world_init demo
#   world_conf servers=3 capacity=384M; world_start_sim; world_start_pool; world_start_backd
# shellcheck shell=bash disable=SC2034

declare -gA WORLD_PID=()
WORLD_ORDER=()
WORLD_AT_EXIT=()
WORLD_MEMD_PORTS=()
WORLD_TAIL_LINES=${WORLD_TAIL_LINES:-15}

world_init() {
  WORLD_NAME=$1
  WORLD_DIR=$(mktemp -d "/tmp/memx-${2:-$1}.XXXXXX")
  WORLD_CONF=$WORLD_DIR/memx.conf
  WORLD_SIM=$WORLD_DIR/sim
  WORLD_SOCK=$WORLD_DIR/backd.sock
  : > "$WORLD_DIR/ports"
  trap world_cleanup EXIT
  trap 'exit 130' INT TERM
}

world_cleanup() {
  local rc=$? i n p f
  for ((i = ${#WORLD_ORDER[@]} - 1; i >= 0; i--)); do
    n=${WORLD_ORDER[$i]} p=${WORLD_PID[$n]}
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 100); do world_running "$p" || break; sleep 0.05; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "$WORLD_NAME: FAILED (rc=$rc); logs:" >&2
    for f in "$WORLD_DIR"/*.log; do
      [ -e "$f" ] && { echo "--- $f" >&2; tail -n "$WORLD_TAIL_LINES" "$f" >&2; }
    done
  fi
  for f in "${WORLD_AT_EXIT[@]}"; do "$f" || true; done
  rm -rf "$WORLD_DIR"
  exit $rc
}

world_at_exit() { WORLD_AT_EXIT+=("$1"); }

world_fail() {
  echo "$WORLD_NAME: FAIL: $*" >&2
  exit 1
}

world_spawn() {
  local n=$1
  shift
  "$@" > "$WORLD_DIR/$n.log" 2>&1 &
  WORLD_PID[$n]=$!
  WORLD_ORDER+=("$n")
}

world_running() { [ -r "/proc/$1/stat" ] && ! awk '{exit $3 == "Z" ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }

world_stop() {
  local n=$1 secs=${2:-10} p=${WORLD_PID[$1]}
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq $((secs * 10))); do world_running "$p" || break; sleep 0.1; done
  if world_running "$p"; then WORLD_RC=124; return 0; fi
  WORLD_RC=0
  wait "$p" || WORLD_RC=$?
  WORLD_PID[$n]=""
}

# Random rather than bound-and-released, and recorded in $WORLD_DIR/ports
# (it runs in $(...) subshells) so two calls never hand out the same port.
world_free_port() {
  local p
  while :; do
    # Below the kernel's ephemeral range (32768-60999 on Debian), so an
    # outgoing connection made between this check and the bind cannot take it.
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    grep -qx "$p" "$WORLD_DIR/ports" && continue
    ss -Htanu 2>/dev/null | awk '{print $5}' | grep -q ":$p\$" && continue
    echo "$p" >> "$WORLD_DIR/ports"
    echo "$p"
    return
  done
}

world_listening() { ss -Hltn "sport = :$1" | grep -q .; }

world_wait_for() {
  local what=$1 secs=$2
  shift 2
  for _ in $(seq $((secs * 20))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "$WORLD_NAME: $what did not happen within $secs s" >&2
  return 1
}

world_conf() {
  local nsrv=3 cap=256M repl=2 slab=4M log="" poll="" gather="" a servers="" i etcd=${MEMX_WORLD_ETCD:-yes}
  for a in "$@"; do
    case $a in
      servers=*) nsrv=${a#*=} ;;
      capacity=*) cap=${a#*=} ;;
      replicas=*) repl=${a#*=} ;;
      slab=*) slab=${a#*=} ;;
      log=*) log=${a#*=} ;;
      ring_poll_us=*) poll=${a#*=} ;;
      gather_reads=*) gather=${a#*=} ;;
      etcd=*) etcd=${a#*=} ;;
      *) world_fail "world_conf: unknown argument $a" ;;
    esac
  done
  "${B:?}/memxctl" keygen "$WORLD_DIR/cluster.key" >/dev/null
  WORLD_MEMD_PORTS=()
  for ((i = 0; i < nsrv; i++)); do
    WORLD_MEMD_PORTS+=("$(world_free_port)")
    servers+="${servers:+, }127.0.0.1:${WORLD_MEMD_PORTS[$i]}"
  done
  WORLD_ETCD=""
  if [ "$etcd" = yes ]; then
    WORLD_ETCD_PEER=$(world_free_port)
    WORLD_ETCD="http://127.0.0.1:$(world_free_port)"
    servers=""
  fi
  cat > "$WORLD_CONF" <<CONF
[cluster]
key_file = $WORLD_DIR/cluster.key
provider = tcp;ofi_rxm
servers = $servers
${WORLD_ETCD:+etcd = $WORLD_ETCD}
${WORLD_ETCD:+etcd_prefix = /memx/$WORLD_NAME}
${WORLD_ETCD:+etcd_lease_ttl = 5}
replicas = $repl
slab_size = $slab
[backend]
platform = sim
control_socket = $WORLD_SOCK
${log:+log_level = $log}
${poll:+ring_poll_us = $poll}
${gather:+gather_reads = $gather}
[memserver]
capacity = $cap
${log:+log_level = $log}
[sim]
dir = $WORLD_SIM
domid = 0
CONF
  mkdir -p "$WORLD_SIM"
}

world_start_sim() {
  world_spawn simxsd "${B:?}/memx-simxsd" --dir "$WORLD_SIM"
  world_wait_for "memx-simxsd's socket" 10 test -S "$WORLD_SIM/xenstore.sock" || exit 1
}

world_start_etcd() {
  [ -n "$WORLD_ETCD" ] && [ -z "${WORLD_PID[etcd]:-}" ] || return 0
  command -v etcd >/dev/null || world_fail "etcd is not installed (tools/install-deps.sh installs etcd-server)"
  local peer="http://127.0.0.1:$WORLD_ETCD_PEER"
  world_spawn etcd etcd --name memx-world --data-dir "$WORLD_DIR/etcd" --listen-client-urls "$WORLD_ETCD" \
    --advertise-client-urls "$WORLD_ETCD" --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "memx-world=$peer"
  world_wait_for "etcd answering at $WORLD_ETCD" 15 curl -sf "$WORLD_ETCD/health" || exit 1
}

world_start_pool() {
  local i
  world_start_etcd
  for i in "${!WORLD_MEMD_PORTS[@]}"; do
    world_spawn "memd$i" "${B:?}/memx-memd" --config "$WORLD_CONF" --listen "127.0.0.1:${WORLD_MEMD_PORTS[$i]}"
  done
  for i in "${!WORLD_MEMD_PORTS[@]}"; do
    world_wait_for "memx-memd $i listening on ${WORLD_MEMD_PORTS[$i]}" 10 world_listening "${WORLD_MEMD_PORTS[$i]}" ||
      exit 1
  done
}

world_start_backd() {
  world_spawn backd "${B:?}/memx-backd" --config "$WORLD_CONF" --platform sim --sim-dir "$WORLD_SIM" --domid 0
  world_wait_for "memx-backd's control socket" 10 test -S "$WORLD_SOCK" || exit 1
}
