#!/bin/bash
# make bench: MemX beside nbdkit-memory beside the bare transport, in one run.
#
#   tools/bench.sh [BUILD_DIR=build]
#
# Same machine, same run, same disk size:
#   memx     fio through memx-fio.so (libmemxfront) -> memx-backd on the sim
#            platform -> 2 memx-memd on loopback, provider tcp;ofi_rxm, with the
#            configuration MemX ships (nothing in [backend] overridden)
#   nbdkit   fio's nbd engine (libnbd) -> nbdkit memory, TCP on loopback
#   floor    memx-netbench: 4 KiB fab_read / fab_send+ack on the same provider
#   memx8    a second MemX world beside the first, with 8 memory servers, for
#            the write QD1 job: a write's cost must not grow with the cluster
#   memx+    (MEMX_BENCH_OPTIN set) a third world with those [backend] settings,
#            for the QD1/QD32 jobs, shown beside the headline (shipped) figures
# Each job runs MEMX_BENCH_REPS times (default 3), the targets alternating
# within a repetition (memx, nbdkit, then the other worlds), for
# MEMX_BENCH_RUNTIME seconds (default 5) on a MEMX_BENCH_SIZE disk (512M).
# MEMX_BENCH_QUICK=1 is a smoke run (128M, 2 reps of 2 s: about 2 minutes).
# The report shows medians with the spread across runs, the transport traffic
# per request of every MemX job (memxctl stats before and after it), and the
# `ratio` line: every target of issue 15 with its spread.
#
# Results, the table and the plot go to BENCHMARKS.md and bench/*.png in the
# source tree (MEMX_BENCH_OUT to write them elsewhere); raw fio JSON stays in
# MEMX_BENCH_KEEP if set.  MEMX_BENCH_JOBS="rr4k_qd1 rr4k_qd32" runs only the
# jobs named (for quick before/after comparisons).  MEMX_BENCH_RING_POLL_US and
# MEMX_BENCH_GATHER_READS override the backend's ring_poll_us and gather_reads
# in the headline world (for A/B runs; the report then says the figures are not
# the shipped defaults).  MEMX_BENCH_OPTIN="ring_poll_us=50 gather_reads=yes"
# adds the memx+ world, and MEMX_BENCH_OPTIN_BUILD=DIR runs it from another
# build's binaries (an A/B of two trees in one run: the fio engine stays this
# build's); MEMX_BENCH_SERVERS8=0 skips the memx8 world.
# A benchmark, not a test: nothing in make check runs it.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-build}" && pwd)
if [ -n "${MEMX_BENCH_QUICK:-}" ]; then
  : "${MEMX_BENCH_SIZE:=128M}" "${MEMX_BENCH_REPS:=2}" "${MEMX_BENCH_RUNTIME:=2}"
fi
SIZE=${MEMX_BENCH_SIZE:-512M}
REPS=${MEMX_BENCH_REPS:-3}
RUNTIME=${MEMX_BENCH_RUNTIME:-5}
REPLICAS=${MEMX_BENCH_REPLICAS:-2}
OUT=${MEMX_BENCH_OUT:-$SRC}
ONLY=${MEMX_BENCH_JOBS:-}
OPTIN=${MEMX_BENCH_OPTIN:-}
SERVERS8=${MEMX_BENCH_SERVERS8:-8}
# Set when this script runs itself as one of the side worlds (sub_start).
SUB=${MEMX_BENCH_SUB:-}

JOBS=(
  "rr4k_qd1   --rw=randread  --bs=4k  --iodepth=1"
  "rr4k_qd32  --rw=randread  --bs=4k  --iodepth=32"
  "rw4k_qd1   --rw=randwrite --bs=4k  --iodepth=1"
  "rw4k_qd32  --rw=randwrite --bs=4k  --iodepth=32"
  "seqr64k    --rw=read      --bs=64k --iodepth=8"
  "seqw64k    --rw=write     --bs=64k --iodepth=8"
  "swapmix    --rw=randrw    --rwmixread=60 --bssplit=4k/75:32k/25 --iodepth=16"
)
# Which jobs the side worlds run.
JOBS8="rw4k_qd1"
JOBS_OPTIN="rr4k_qd1 rr4k_qd32 rw4k_qd1 rw4k_qd32"

# shellcheck source=tools/world.sh
. "$SRC/tools/world.sh"
world_init "bench${SUB:+-${SUB%% *}}"
D=$WORLD_DIR
R=${MEMX_BENCH_RESULTS:-$D/results}
mkdir -p "$R"
keep() {
  if [ -n "${MEMX_BENCH_KEEP:-}" ] && [ -z "$SUB" ]; then
    mkdir -p "$MEMX_BENCH_KEEP" && cp -r "$R" "$D"/*.log "$MEMX_BENCH_KEEP"/
  fi
}
world_at_exit keep

# utime+stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
memd_ticks() {
  local n t=0
  for n in "${!WORLD_PID[@]}"; do
    [[ $n == memd* ]] && [ -n "${WORLD_PID[$n]}" ] && t=$((t + $(cpu_ticks "${WORLD_PID[$n]}")))
  done
  echo "$t"
}

if [ -z "$SUB" ]; then
  for p in fio nbdkit gnuplot python3; do
    command -v $p >/dev/null || { echo "bench: $p is not installed (tools/install-deps.sh bench)" >&2; exit 1; }
  done
  fio --enghelp 2>/dev/null | grep -qw nbd || { echo "bench: this fio has no nbd engine" >&2; exit 1; }
  for p in memx-simxsd memx-memd memx-backd memx-simxl memxctl memx-netbench; do
    [ -x "$B/$p" ] || { echo "bench: $B/$p is missing (make -C $B)" >&2; exit 1; }
  done
  echo "bench: building the fio engine (fio's source tree in $B/bench-fio)"
  ENGINE=$(MEMX_FIO_SRC=${MEMX_FIO_SRC:-/tmp/fiosrc} "$SRC/frontend/fio/build.sh" "$B" "$B/bench-fio")
else
  ENGINE=$MEMX_BENCH_ENGINE
fi

# ---- a MemX world: sim XenStore, N memory servers, the backend ----
# The headline world runs the shipped [backend] defaults: only what the
# environment asks for is written to its memx.conf.
bytes=$(numfmt --from=iec "$SIZE")
nsrv=2 label=memx conf=()
if [ -z "$SUB" ]; then
  [ -z "${MEMX_BENCH_RING_POLL_US:-}" ] || conf+=("ring_poll_us=$MEMX_BENCH_RING_POLL_US")
  [ -z "${MEMX_BENCH_GATHER_READS:-}" ] || conf+=("gather_reads=$MEMX_BENCH_GATHER_READS")
else
  read -r label nsrv sub_conf <<< "$SUB"
  # shellcheck disable=SC2206
  conf=($sub_conf)
fi
# Each server is given room for its share of the replicas and 64 MiB.
world_conf servers="$nsrv" capacity=$(( bytes * REPLICAS / nsrv + 64 * 1024 * 1024 )) replicas="$REPLICAS" \
  slab=4M log=warn "${conf[@]}"
world_start_sim
world_start_pool
world_start_backd
BACKD=${WORLD_PID[backd]}
"$B/memx-simxl" --dir "$D/sim" create --domid 1 --vdev xvdb --target "memx:bench:$SIZE" >> "$D/simxl.log" 2>&1

MEMX_ENGINE=(--ioengine="external:$ENGINE" --platform=sim --sim_dir="$D/sim" --domid=1 --device=device/vbd/51728)

# fio_run TARGET NAME OUT fio-args...: one fio run, server CPU sampled around
# it, and for MemX the backend's stats (transport traffic) before and after.
fio_run() {
  local target=$1 name=$2 out=$3 srv pool_a pool_b a b; shift 3
  local eng
  if [ "$target" = nbdkit ]; then eng=("${NBD_ENGINE[@]}"); srv=$NBDKIT; else eng=("${MEMX_ENGINE[@]}"); srv=$BACKD; fi
  [ "$target" = nbdkit ] || "$B/memxctl" --socket "$WORLD_SOCK" --json stats > "$out.stats0" 2>/dev/null || true
  a=$(cpu_ticks "$srv")
  pool_a=$(memd_ticks)
  fio --name="$name" "${eng[@]}" --output-format=json --output="$out.json" "$@" > "$out.err" 2>&1 ||
    { echo "bench: fio $name against $target failed:" >&2; cat "$out.err" >&2; return 1; }
  b=$(cpu_ticks "$srv")
  pool_b=$(memd_ticks)
  [ "$target" != nbdkit ] || pool_b=$pool_a
  [ "$target" = nbdkit ] || "$B/memxctl" --socket "$WORLD_SOCK" --json stats > "$out.stats1" 2>/dev/null || true
  echo "$(getconf CLK_TCK) $((b - a)) $((pool_b - pool_a))" > "$out.cpu"
}

job_args() {
  local j name args
  for j in "${JOBS[@]}"; do
    read -r name args <<< "$j"
    [ "$name" = "$1" ] && { echo "$args"; return; }
  done
}

# ---- a side world (MEMX_BENCH_SUB="LABEL NSERVERS [key=value ...]") ----
# Filled, then it runs one job per line read from its command fifo and
# answers on its done fifo, so its runs interleave with the headline world's
# (paired runs: the machine's load drifts).  It sleeps, costing nothing,
# between runs.
if [ -n "$SUB" ]; then
  fio_run "$label" fill "$R/fill-$label" --rw=write --bs=64k --iodepth=8 --size="$SIZE"
  exec 3> "$MEMX_BENCH_DONE"
  echo ready >&3
  while read -r name rep; do
    [ "$name" = quit ] && break
    # shellcheck disable=SC2046
    if fio_run "$label" "$name" "$R/$label.$name.$rep" $(job_args "$name") --time_based --runtime="$RUNTIME" \
        --norandommap --randrepeat=0; then echo ok >&3; else echo failed >&3; fi
  done < "$MEMX_BENCH_CMD"
  exit 0
fi

# sub_start LABEL NSERVERS [key=value ...]: a side world in the background.
# Both fifos are opened read-write here, which never blocks (Linux), so a side
# world that dies shows as a timeout rather than a hang.
declare -A SUB_CMD=() SUB_DONE=()
sub_start() {
  local label=$1 cmd=$D/$1.cmd done=$D/$1.done cfd dfd ans=""
  mkfifo "$cmd" "$done"
  exec {cfd}<> "$cmd" {dfd}<> "$done"
  SUB_CMD[$label]=$cfd SUB_DONE[$label]=$dfd
  local build=$B
  [ "$label" != memx+ ] || build=${MEMX_BENCH_OPTIN_BUILD:-$B}
  world_spawn "world-$label" env MEMX_BENCH_SUB="$*" MEMX_BENCH_RESULTS="$R" MEMX_BENCH_ENGINE="$ENGINE" \
    MEMX_BENCH_CMD="$cmd" MEMX_BENCH_DONE="$done" MEMX_BENCH_SIZE="$SIZE" MEMX_BENCH_RUNTIME="$RUNTIME" \
    MEMX_BENCH_REPLICAS="$REPLICAS" MEMX_BENCH_QUICK= "$0" "$build"
  read -r -t 600 ans <&"$dfd" || true
  [ "$ans" = ready ] || world_fail "the $label world did not come up (see its log)"
}
sub_run() {
  local ans=""
  echo "$2 $3" >&"${SUB_CMD[$1]}"
  read -r -t $((RUNTIME * 5 + 120)) ans <&"${SUB_DONE[$1]}" || true
  [ "$ans" = ok ] || world_fail "the $1 world's $2 run failed (see its log)"
}
# It stops its own daemons on the way out; SIGTERM only if it does not.
sub_stop() {
  local p=${WORLD_PID[world-$1]}
  echo "quit 0" >&"${SUB_CMD[$1]}"
  for _ in $(seq 600); do world_running "$p" || break; sleep 0.1; done
  world_stop "world-$1" 30
}

# ---- nbdkit memory, same size, TCP on loopback ----
pn=$(world_free_port)
world_spawn nbdkit nbdkit --foreground --exit-with-parent -i 127.0.0.1 -p "$pn" memory "$SIZE"
NBDKIT=${WORLD_PID[nbdkit]}
world_wait_for "nbdkit on $pn" 10 world_listening "$pn"
NBD_ENGINE=(--ioengine=nbd --uri="nbd://127.0.0.1:$pn/")

wanted() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }
any_wanted() {
  local j
  for j in "$@"; do wanted "$j" && return 0; done
  return 1
}
SIDES=()
# shellcheck disable=SC2086
if [ "$SERVERS8" != 0 ] && any_wanted $JOBS8; then
  echo "bench: starting the memx8 world ($SERVERS8 memory servers)"
  sub_start memx8 "$SERVERS8"
  SIDES+=(memx8)
fi
# shellcheck disable=SC2086
if [ -n "$OPTIN" ] && any_wanted $JOBS_OPTIN; then
  echo "bench: starting the memx+ world ($OPTIN${MEMX_BENCH_OPTIN_BUILD:+, from $MEMX_BENCH_OPTIN_BUILD})"
  sub_start memx+ 2 "$OPTIN"
  SIDES+=(memx+)
fi

echo "bench: the floor: memx-netbench (tcp;ofi_rxm, 4 KiB, loopback)"
"$B/memx-netbench" --port "$(world_free_port)" --seconds 2 | tee "$R/netbench.txt"

echo "bench: filling both $SIZE disks with incompressible data (reads must reach the servers)"
for t in memx nbdkit; do
  fio_run $t fill "$R/fill-$t" --rw=write --bs=64k --iodepth=8 --size="$SIZE"
done

echo "bench: ${#JOBS[@]} jobs x $REPS runs x 2 targets (and ${SIDES[*]:-no side worlds}), ${RUNTIME}s each"
for rep in $(seq "$REPS"); do
  for j in "${JOBS[@]}"; do
    read -r name args <<< "$j"
    wanted "$name" || continue
    for t in memx nbdkit; do
      # shellcheck disable=SC2086
      fio_run $t "$name" "$R/$t.$name.$rep" $args --time_based --runtime="$RUNTIME" \
        --norandommap --randrepeat=0
      printf '.'
    done
    for s in "${SIDES[@]}"; do
      if { [ "$s" = memx8 ] && [[ " $JOBS8 " == *" $name "* ]]; } ||
         { [ "$s" = memx+ ] && [[ " $JOBS_OPTIN " == *" $name "* ]]; }; then
        sub_run "$s" "$name" "$rep"
        printf '.'
      fi
    done
  done
done
echo
for s in "${SIDES[@]}"; do sub_stop "$s"; done
"$B/memxctl" --socket "$D/backd.sock" stats > "$R/memxctl-stats.txt" 2>&1 || true
uptime > "$R/load.txt"
# What the headline world ran with, for the report.
sed -n '/^\[backend\]/,/^\[/p' "$WORLD_CONF" | grep -E '^(ring_poll_us|gather_reads)' > "$R/conf.txt" || true

python3 "$SRC/bench/report.py" --results "$R" --out "$OUT" --size "$SIZE" --replicas "$REPLICAS" \
  --runtime "$RUNTIME" --reps "$REPS" --servers8 "$SERVERS8" --optin "$OPTIN"
