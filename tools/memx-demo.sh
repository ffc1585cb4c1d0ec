#!/bin/bash
# make demo: MemX's main job on one machine, no hypervisor needed.
#
# Starts a local pool (a single-member etcd and 3 memory servers on loopback,
# which register in etcd), memx-backd on the sim platform (it finds them there), creates a guest disk the way xl does, and runs a workload through
# the userspace blkif frontend (the same protocol xen-blkfront speaks):
# random 4 KiB writes with zero pages, flushes and discards, then reads every
# page back and verifies it.  Prints what happened and stops everything.
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
SIZE=${MEMX_DEMO_SIZE:-256M}
# shellcheck source=tools/world.sh
. "$(dirname "$0")/world.sh"
world_init demo
D=$WORLD_DIR

world_conf servers=3 capacity=384M replicas=2 slab=4M
echo "demo: starting etcd, the sim XenStore, 3 memory servers and memx-backd in $D"
world_start_sim
world_start_pool
world_start_backd
echo "demo: the memory servers registered in etcd ($WORLD_ETCD) and the backend found them there (memxctl status)"
"$B/memxctl" --socket "$D/backd.sock" status

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

echo
echo "demo: what etcd holds for this MemX cluster (membership, the volume's epoch and owner, the slab directory)"
ETCDCTL_API=3 etcdctl --endpoints "$WORLD_ETCD" get --prefix "/memx/$WORLD_NAME/" |
  paste - - | sed 's|^/memx/'"$WORLD_NAME"'/||' | awk -F'\t' '{ k[$1] = $2 } END {
    n = 0; for (x in k) if (x ~ /^slabs\//) n++; else print "  " x "  " k[x]; print "  slabs/...  " n " slab(s)" }' | sort

"$B/memx-simxl" --dir "$D/sim" destroy --domid 1 --vdev xvdb

verified=$(sed -n 's/.*verified=\([0-9]*\).*/\1/p' "$D/io.out" | tail -1)
mism=$(sed -n 's/.*mismatches=\([0-9]*\).*/\1/p' "$D/io.out" | tail -1)
[ -n "$verified" ] && [ -n "$mism" ] || { echo "demo: memx-io printed no result line" >&2; exit 1; }
echo "demo: $verified pages verified, $mism mismatches"
[ "$mism" = 0 ]
