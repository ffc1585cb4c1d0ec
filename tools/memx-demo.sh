#!/bin/bash
# make demo: MemX's main job on one machine, no hypervisor needed.
#
# Starts a local pool (3 memory servers on loopback), memx-backd on the sim
# platform, creates a guest disk the way xl does, and runs a workload through
# the userspace blkif frontend (the same protocol xen-blkfront speaks):
# random 4 KiB writes with zero pages, flushes and discards, then reads every
# page back and verifies it.  Prints what happened and stops everything.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
SIZE=${MEMX_DEMO_SIZE:-256M}
D=$(mktemp -d /tmp/memx-demo.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "demo: FAILED (rc=$rc); logs:" >&2
    for f in "$D"/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
  fi
  rm -rf "$D"
  exit $rc
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # path, seconds
  for _ in $(seq $(( $2 * 10 ))); do [ -e "$1" ] && return 0; sleep 0.1; done
  echo "demo: $1 did not appear within $2 s" >&2; return 1
}

"$B/memxctl" keygen "$D/cluster.key" >/dev/null
ports=($(free_port) $(free_port) $(free_port))
cat > "$D/memx.conf" <<CONF
[cluster]
key_file = $D/cluster.key
provider = tcp;ofi_rxm
servers = 127.0.0.1:${ports[0]}, 127.0.0.1:${ports[1]}, 127.0.0.1:${ports[2]}
replicas = 2
slab_size = 4M
[backend]
platform = sim
control_socket = $D/backd.sock
[memserver]
capacity = 384M
[sim]
dir = $D/sim
CONF
mkdir -p "$D/sim"

echo "demo: starting the sim XenStore, 3 memory servers and memx-backd in $D"
"$B/memx-simxsd" --dir "$D/sim" > "$D/simxsd.log" 2>&1 & pids+=($!)
wait_for "$D/sim/xenstore.sock" 10
for i in 0 1 2; do
  "$B/memx-memd" --config "$D/memx.conf" --listen "127.0.0.1:${ports[$i]}" > "$D/memd$i.log" 2>&1 & pids+=($!)
done
"$B/memx-backd" --config "$D/memx.conf" --platform sim --domid 0 > "$D/backd.log" 2>&1 & pids+=($!)
wait_for "$D/backd.sock" 10

echo "demo: toolstack creates guest 1's disk xvdb = memx:demo-swap:$SIZE (as xl would)"
"$B/memx-simxl" --dir "$D/sim" create --domid 1 --vdev xvdb --target "memx:demo-swap:$SIZE"

echo "demo: guest 1 writes every page of xvdb (20% zero pages, flush every 512 writes, 5% discarded), then verifies"
"$B/memx-io" --platform sim --sim-dir "$D/sim" --domid 1 --device device/vbd/51728 \
  verify --size "$SIZE" --qd 32 --seed 2026 --zero-fraction 0.2 --discard-fraction 0.05 --flush-every 512 \
  | tee "$D/io.out"

echo
echo "demo: what the backend saw (memxctl stats / pool)"
"$B/memxctl" --socket "$D/backd.sock" stats
"$B/memxctl" --socket "$D/backd.sock" pool

"$B/memx-simxl" --dir "$D/sim" destroy --domid 1 --vdev xvdb

verified=$(sed -n 's/.*verified=\([0-9]*\).*/\1/p' "$D/io.out" | tail -1)
mism=$(sed -n 's/.*mismatches=\([0-9]*\).*/\1/p' "$D/io.out" | tail -1)
[ -n "$verified" ] && [ -n "$mism" ] || { echo "demo: memx-io printed no result line" >&2; exit 1; }
echo "demo: $verified pages verified, $mism mismatches"
[ "$mism" = 0 ]
