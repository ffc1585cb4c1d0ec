#!/bin/bash
# make bench: MemX beside nbdkit-memory beside the bare transport, in one run.
#
#   tools/bench.sh [BUILD_DIR=build]
#
# Same machine, same run, same disk size:
#   memx     fio through memx-fio.so (libmemxfront) -> memx-backd on the sim
#            platform -> 2 memx-memd on loopback, provider tcp;ofi_rxm
#   nbdkit   fio's nbd engine (libnbd) -> nbdkit memory, TCP on loopback
#   floor    memx-netbench: 4 KiB fab_read / fab_send+ack on the same provider
# Each job runs MEMX_BENCH_REPS times (default 3), memx and nbdkit alternating,
# for MEMX_BENCH_RUNTIME seconds (default 5); the report shows medians with the
# spread across runs.  Results, the table and the plot go to BENCHMARKS.md and
# bench/*.png in the source tree (MEMX_BENCH_OUT to write them elsewhere); raw
# fio JSON stays in MEMX_BENCH_KEEP if set.  MEMX_BENCH_JOBS="rr4k_qd1 rr4k_qd32"
# runs only the jobs named (for quick before/after comparisons);
# MEMX_BENCH_RING_POLL_US and MEMX_BENCH_GATHER_READS set the backend's
# ring_poll_us and gather_reads (50 and yes here; the backend's own defaults are
# 0 and no: memx.conf.example says why).
# A benchmark, not a test: nothing in make check runs it.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-build}" && pwd)
SIZE=${MEMX_BENCH_SIZE:-512M}
REPS=${MEMX_BENCH_REPS:-3}
RUNTIME=${MEMX_BENCH_RUNTIME:-5}
REPLICAS=${MEMX_BENCH_REPLICAS:-2}
OUT=${MEMX_BENCH_OUT:-$SRC}
ONLY=${MEMX_BENCH_JOBS:-}
# shellcheck source=tools/world.sh
. "$SRC/tools/world.sh"
world_init bench
D=$WORLD_DIR
R=$D/results
mkdir -p "$R"
keep() {
  if [ -n "${MEMX_BENCH_KEEP:-}" ]; then mkdir -p "$MEMX_BENCH_KEEP" && cp -r "$R" "$D"/*.log "$MEMX_BENCH_KEEP"/; fi
}
world_at_exit keep

# utime+stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

for p in fio nbdkit gnuplot python3; do
  command -v $p >/dev/null || { echo "bench: $p is not installed (tools/install-deps.sh bench)" >&2; exit 1; }
done
fio --enghelp 2>/dev/null | grep -qw nbd || { echo "bench: this fio has no nbd engine" >&2; exit 1; }
for p in memx-simxsd memx-memd memx-backd memx-simxl memxctl memx-netbench; do
  [ -x "$B/$p" ] || { echo "bench: $B/$p is missing (make -C $B)" >&2; exit 1; }
done

echo "bench: building the fio engine (fio's source tree in $B/bench-fio)"
ENGINE=$(MEMX_FIO_SRC=${MEMX_FIO_SRC:-/tmp/fiosrc} "$SRC/frontend/fio/build.sh" "$B" "$B/bench-fio")

# ---- the MemX world: sim XenStore, 2 memory servers, the backend ----
bytes=$(numfmt --from=iec "$SIZE")
world_conf servers=2 capacity=$(( (bytes * REPLICAS / 2) + 64 * 1024 * 1024 )) replicas="$REPLICAS" slab=4M log=warn \
  ring_poll_us="${MEMX_BENCH_RING_POLL_US:-50}" gather_reads="${MEMX_BENCH_GATHER_READS:-yes}"
world_start_sim
world_start_pool
MEMD0=${WORLD_PID[memd0]} MEMD1=${WORLD_PID[memd1]}
world_start_backd
BACKD=${WORLD_PID[backd]}
"$B/memx-simxl" --dir "$D/sim" create --domid 1 --vdev xvdb --target "memx:bench:$SIZE" >> "$D/simxl.log" 2>&1

# ---- nbdkit memory, same size, TCP on loopback ----
pn=$(world_free_port)
world_spawn nbdkit nbdkit --foreground --exit-with-parent -i 127.0.0.1 -p "$pn" memory "$SIZE"
NBDKIT=${WORLD_PID[nbdkit]}
world_wait_for "nbdkit on $pn" 10 world_listening "$pn"

MEMX_ENGINE=(--ioengine="external:$ENGINE" --platform=sim --sim_dir="$D/sim" --domid=1 --device=device/vbd/51728)
NBD_ENGINE=(--ioengine=nbd --uri="nbd://127.0.0.1:$pn/")

# fio_run TARGET NAME OUT fio-args...: one fio run, server CPU sampled around it.
fio_run() {
  local target=$1 name=$2 out=$3 srv pool_a pool_b a b; shift 3
  local eng
  if [ "$target" = memx ]; then eng=("${MEMX_ENGINE[@]}"); srv=$BACKD; else eng=("${NBD_ENGINE[@]}"); srv=$NBDKIT; fi
  a=$(cpu_ticks "$srv")
  pool_a=$(( $(cpu_ticks "$MEMD0") + $(cpu_ticks "$MEMD1") ))
  fio --name="$name" "${eng[@]}" --output-format=json --output="$out.json" "$@" > "$out.err" 2>&1 ||
    { echo "bench: fio $name against $target failed:" >&2; cat "$out.err" >&2; return 1; }
  b=$(cpu_ticks "$srv")
  pool_b=$(( $(cpu_ticks "$MEMD0") + $(cpu_ticks "$MEMD1") ))
  [ "$target" = memx ] || pool_b=$pool_a
  echo "$(getconf CLK_TCK) $((b - a)) $((pool_b - pool_a))" > "$out.cpu"
}

echo "bench: the floor: memx-netbench (tcp;ofi_rxm, 4 KiB, loopback)"
"$B/memx-netbench" --port "$(world_free_port)" --seconds 2 | tee "$R/netbench.txt"

echo "bench: filling both $SIZE disks with incompressible data (reads must reach the servers)"
for t in memx nbdkit; do
  fio_run $t fill "$R/fill-$t" --rw=write --bs=64k --iodepth=8 --size="$SIZE"
done

JOBS=(
  "rr4k_qd1   --rw=randread  --bs=4k  --iodepth=1"
  "rr4k_qd32  --rw=randread  --bs=4k  --iodepth=32"
  "rw4k_qd1   --rw=randwrite --bs=4k  --iodepth=1"
  "rw4k_qd32  --rw=randwrite --bs=4k  --iodepth=32"
  "seqr64k    --rw=read      --bs=64k --iodepth=8"
  "seqw64k    --rw=write     --bs=64k --iodepth=8"
  "swapmix    --rw=randrw    --rwmixread=60 --bssplit=4k/75:32k/25 --iodepth=16"
)
echo "bench: ${#JOBS[@]} jobs x $REPS runs x 2 targets, ${RUNTIME}s each"
for rep in $(seq "$REPS"); do
  for j in "${JOBS[@]}"; do
    read -r name args <<< "$j"
    [ -z "$ONLY" ] || [[ " $ONLY " == *" $name "* ]] || continue
    for t in memx nbdkit; do
      # shellcheck disable=SC2086
      fio_run $t "$name" "$R/$t.$name.$rep" $args --time_based --runtime="$RUNTIME" \
        --norandommap --randrepeat=0
      printf '.'
    done
  done
done
echo
"$B/memxctl" --socket "$D/backd.sock" stats > "$R/memxctl-stats.txt" 2>&1 || true
uptime > "$R/load.txt"

python3 "$SRC/bench/report.py" --results "$R" --out "$OUT" --size "$SIZE" --replicas "$REPLICAS" \
  --runtime "$RUNTIME" --reps "$REPS"
