# lib.sh — sourced by the integration tests: builds a private MemX world in
# a temp dir (sim XenStore, N memory servers on free loopback ports,
# memx-backd on the sim platform), creates disks as xl would, and tears it all
# down on exit, whatever happened.  Not a test itself.
#
#   it_start_world [capacity=256M] [servers=3] [replicas=2] [slab=4M]
#   it_create DOMID VDEV TARGET       memx-simxl create (waits for InitWait)
#   it_io DOMID VDEV ARGS...          memx-io as guest DOMID on device VDEV
#   it_alive NAME                     fails the test if a daemon died
#   it_fail MSG                       prints MSG and the logs' tails, exits 1
#   it_summary TEXT                   the "SUMMARY: ..." line the runner shows
set -euo pipefail

B=${MEMX_BUILDDIR:?MEMX_BUILDDIR is not set (run through make check)}
IT_NAME=$(basename "$0" .sh)
T=$(mktemp -d "/tmp/memx-it-$IT_NAME.XXXXXX")
declare -A IT_PID=()
IT_ORDER=()
IT_PORTS=()

it_log_tails() {
  for f in "$T"/*.log; do
    [ -e "$f" ] || continue
    echo "----- tail of $f"
    tail -n 20 "$f"
  done
}

# Stops daemons in reverse start order, each given 5 s to exit on its own,
# so memx-backd closes its devices while XenStore and the pool still run.
it_cleanup() {
  local rc=$? i n p
  for ((i = ${#IT_ORDER[@]} - 1; i >= 0; i--)); do
    n=${IT_ORDER[$i]} p=${IT_PID[$n]}
    [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 50); do it_running "$p" || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    echo "$IT_NAME: FAILED (rc=$rc)"
    it_log_tails
  fi
  rm -rf "$T"
  exit $rc
}
trap it_cleanup EXIT
trap 'exit 130' INT TERM

it_fail() {
  echo "$IT_NAME: FAIL: $*"
  exit 1
}

it_summary() { echo "SUMMARY: $*"; }

# A loopback port nobody listens on and this test has not handed out yet.
it_free_port() {
  local p
  while :; do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
    [[ " ${IT_PORTS[*]} " == *" $p "* ]] && continue
    ss -Htanu 2>/dev/null | awk '{print $5}' | grep -q ":$p\$" && continue
    IT_PORTS+=("$p")
    echo "$p"
    return
  done
}

it_wait_for() { # description, seconds, command...
  local what=$1 secs=$2
  shift 2
  for _ in $(seq $((secs * 20))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  it_fail "$what did not happen within $secs s"
}

it_listening() { ss -Hltn "sport = :$1" | grep -q .; }

# it_spawn NAME CMD...: a daemon, output in $T/NAME.log
it_spawn() {
  local n=$1
  shift
  "$@" > "$T/$n.log" 2>&1 &
  IT_PID[$n]=$!
  IT_ORDER+=("$n")
}

# Running and not a zombie.
it_running() { [ -r "/proc/$1/stat" ] && ! awk '{exit $3 == "Z" ? 0 : 1}' "/proc/$1/stat" 2>/dev/null; }

it_alive() {
  it_running "${IT_PID[$1]}" || it_fail "$1 is not running any more"
}

# it_stop NAME [secs=10]: SIGTERM, wait; sets IT_RC to its exit status (124: still running).
it_stop() {
  local n=$1 secs=${2:-10} p=${IT_PID[$1]}
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq $((secs * 10))); do it_running "$p" || break; sleep 0.1; done
  if it_running "$p"; then IT_RC=124; return 0; fi
  IT_RC=0
  wait "$p" || IT_RC=$?
  IT_PID[$n]=""
}

it_start_world() {
  local cap=${1:-256M} nsrv=${2:-3} repl=${3:-2} slab=${4:-4M}
  local servers="" i
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/cluster.key"
  IT_MEMD_PORTS=()
  for i in $(seq 0 $((nsrv - 1))); do
    IT_MEMD_PORTS+=("$(it_free_port)")
    servers+="${servers:+, }127.0.0.1:${IT_MEMD_PORTS[$i]}"
  done
  cat > "$T/memx.conf" <<CONF
[cluster]
key_file = $T/cluster.key
provider = tcp;ofi_rxm
servers = $servers
replicas = $repl
slab_size = $slab
[backend]
platform = sim
control_socket = $T/backd.sock
log_level = info
[memserver]
capacity = $cap
log_level = info
[sim]
dir = $T/sim
domid = 0
CONF
  it_spawn simxsd "$B/memx-simxsd" --dir "$T/sim"
  it_wait_for "memx-simxsd's socket" 10 test -S "$T/sim/xenstore.sock"
  for i in $(seq 0 $((nsrv - 1))); do
    it_spawn "memd$i" "$B/memx-memd" --config "$T/memx.conf" --listen "127.0.0.1:${IT_MEMD_PORTS[$i]}"
  done
  for i in $(seq 0 $((nsrv - 1))); do
    it_wait_for "memx-memd $i listening on ${IT_MEMD_PORTS[$i]}" 10 it_listening "${IT_MEMD_PORTS[$i]}"
  done
  it_spawn backd "$B/memx-backd" --config "$T/memx.conf" --platform sim --sim-dir "$T/sim" --domid 0
  it_wait_for "memx-backd's control socket" 10 test -S "$T/backd.sock"
}

it_xl() { "$B/memx-simxl" --dir "$T/sim" "$@"; }

it_create() {
  it_xl create --domid "$1" --vdev "$2" --target "$3" >> "$T/simxl.log" 2>&1 ||
    it_fail "memx-simxl create --domid $1 --vdev $2 --target $3 failed"
}

# Device node of a vdev name, as xl numbers them (xvdb = 51728).
it_devid() {
  local letter=${1#xvd}
  echo $(( 202 * 256 + ($(printf '%d' "'$letter") - 97) * 16 ))
}

it_io() {
  local dom=$1 vdev=$2
  shift 2
  "$B/memx-io" --platform sim --sim-dir "$T/sim" --domid "$dom" --device "device/vbd/$(it_devid "$vdev")" "$@"
}

# Field value from memx-io output: it_field FILE NAME -> the number after NAME=
it_field() { sed -n "s/.*[ :]$2=\([0-9]*\).*/\1/p" "$1" | tail -1; }
