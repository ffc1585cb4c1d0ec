#!/bin/bash
# make bench-dedup: page de-duplication on a VM-creation workload.
#
# Starts 2 memory servers on loopback (replicas = 2) and runs memx-dedupbench:
# 8 guests whose memory is a real kernel, its modules and a root filesystem's
# libraries (each guest in its own page order) plus a unique fraction and zero
# pages, booting together, then churning; de-duplication on and off alternate
# against the same pool.  Ends in a line "dedup savings NN.N%".
#
# The image comes from MEMX_IMAGE_ROOT, else the Debian root tests/xen builds
# (<build>/xen-cache/root), else this machine (/boot, /usr/lib, /lib/modules).
# MEMX_DEDUP_ARGS passes options through (e.g. "--guest-size 64M --guests 16").
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
D=$(mktemp -d /tmp/memx-bench-dedup.XXXXXX)
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $rc -ne 0 ]; then
    echo "bench-dedup: FAILED (rc=$rc); logs:" >&2
    for f in "$D"/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
  fi
  rm -rf "$D"
  exit $rc
}
trap cleanup EXIT INT TERM

root=${MEMX_IMAGE_ROOT:-}
if [ -z "$root" ]; then
  if [ -d "$B/xen-cache/root/lib/modules" ]; then root=$B/xen-cache/root; else root=/; fi
fi
paths=()
for p in "$root"/boot/vmlinuz-* "$root"/usr/lib/x86_64-linux-gnu "$root"/lib/modules/*/kernel; do  # each takes an equal share of what is left
  [ -e "$p" ] && paths+=("$p")
done
[ ${#paths[@]} -gt 0 ] || { echo "bench-dedup: no kernel, modules or libraries under $root (set MEMX_IMAGE_ROOT)" >&2; exit 1; }
echo "bench-dedup: guest image from: ${paths[*]}"
[ -e "$root/boot" ] && ! ls "$root"/boot/vmlinuz-* >/dev/null 2>&1 && echo "bench-dedup: (no kernel image under $root/boot)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$B/memxctl" keygen "$D/cluster.key" >/dev/null
ports=($(free_port) $(free_port))
cat > "$D/memx.conf" <<CONF
[cluster]
key_file = $D/cluster.key
provider = tcp;ofi_rxm
servers = 127.0.0.1:${ports[0]}, 127.0.0.1:${ports[1]}
replicas = 2
slab_size = 4M
[memserver]
capacity = ${MEMX_DEDUP_CAPACITY:-768M}
CONF
for i in 0 1; do
  "$B/memx-memd" --config "$D/memx.conf" --listen "127.0.0.1:${ports[$i]}" > "$D/memd$i.log" 2>&1 & pids+=($!)
done
# shellcheck disable=SC2086
"$B/memx-dedupbench" --config "$D/memx.conf" ${MEMX_DEDUP_ARGS:-} "${paths[@]}"
