# lib.sh — sourced by the integration tests: builds a private MemX world in
# a temp dir (sim XenStore, N memory servers on free loopback ports,
# memx-backd on the sim platform), creates disks as xl would, and tears it all
# down on exit, whatever happened.  Not a test itself.  The plumbing is
# tools/world.sh (world_* functions, WORLD_* variables; usable directly);
# $B is the build dir, $T the world's temp dir (daemon logs: $T/NAME.log).
#
#   it_start_world [capacity=256M] [servers=3] [replicas=2] [slab=4M]
#   it_create DOMID VDEV TARGET       memx-simxl create (waits for InitWait)
#   it_io DOMID VDEV ARGS...          memx-io as guest DOMID on device VDEV
#   it_alive NAME                     fails the test if a daemon died
#   it_stop NAME [SECS=10]            SIGTERM, wait; IT_RC = its exit status (124: still running)
#   it_wait_for WHAT SECS CMD...      fails the test unless CMD succeeds within SECS s
#   it_fail MSG                       prints MSG and the logs' tails, exits 1
#   it_summary TEXT                   the "SUMMARY: ..." line the runner shows
set -euo pipefail

B=${MEMX_BUILDDIR:?MEMX_BUILDDIR is not set (run through make check)}
IT_NAME=$(basename "$0" .sh)
# shellcheck source=tools/world.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../tools/world.sh"
WORLD_TAIL_LINES=20
world_init "$IT_NAME" "it-$IT_NAME"
T=$WORLD_DIR

it_fail() { world_fail "$@"; }
it_summary() { echo "SUMMARY: $*"; }
it_wait_for() { world_wait_for "$@" || exit 1; }
it_running() { world_running "$@"; }
it_alive() { world_running "${WORLD_PID[$1]}" || it_fail "$1 is not running any more"; }

# it_stop NAME [secs=10]: SIGTERM, wait; sets IT_RC to its exit status (124: still running).
it_stop() {
  world_stop "$@"
  # shellcheck disable=SC2034  # read by the tests
  IT_RC=$WORLD_RC
}

it_start_world() {
  world_conf capacity="${1:-256M}" servers="${2:-3}" replicas="${3:-2}" slab="${4:-4M}" log=info
  world_start_sim
  world_start_pool
  world_start_backd
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
