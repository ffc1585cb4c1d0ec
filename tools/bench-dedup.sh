#!/bin/bash
# make bench-dedup: page de-duplication on a VM-creation workload.
#
# Starts 2 memory servers on loopback (replicas = 2) and runs memx-dedupbench:
# 8 guests whose memory is a real kernel (decompressed, as it sits in a
# guest's memory), its modules and a root filesystem's libraries (each guest
# in its own page order) plus a unique fraction and zero pages, booting
# together, then churning; de-duplication on and off alternate against the
# same pool, 5 rounds, medians.  Ends in the line "dedup savings NN.N%": the
# savings after boot, the 8-guest image workload the target is set for; the
# steady-state (churn) figures are printed, labelled, just above it.
#
# The image comes from MEMX_IMAGE_ROOT, else the Debian root tests/xen builds
# (<build>/xen-cache/root), else this machine (/boot, /usr/lib, /lib/modules).
# MEMX_DEDUP_ARGS passes options through (e.g. "--guest-size 64M --guests 16").
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
# shellcheck source=tools/world.sh
. "$(dirname "$0")/world.sh"
world_init bench-dedup
D=$WORLD_DIR

root=${MEMX_IMAGE_ROOT:-}
if [ -z "$root" ]; then
  if [ -d "$B/xen-cache/root/lib/modules" ]; then root=$B/xen-cache/root; else root=/; fi
fi
# The kernel as a guest holds it: the bzImage's payload decompressed (the
# compressed file's pages would be nothing like the guest's).
unpack_kernel() {
  local k=$1 out=$2 magic cmd off
  for m in "xz:\xfd7zXZ\x00" "zstd:\x28\xb5\x2f\xfd" "gzip:\x1f\x8b\x08"; do
    cmd=${m%%:*}; magic=${m#*:}
    command -v "$cmd" >/dev/null || continue
    off=$(LC_ALL=C grep -obUaP "$magic" "$k" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -n "$off" ] || continue
    tail -c +$((off + 1)) "$k" | "$cmd" -dc 2>/dev/null > "$out" || true
    [ -s "$out" ] && return 0
  done
  return 1
}
paths=()
for p in "$root"/boot/vmlinuz-*; do
  [ -e "$p" ] || continue
  if unpack_kernel "$p" "$D/vmlinux"; then paths+=("$D/vmlinux"); else
    echo "bench-dedup: cannot decompress $p; using its compressed pages"; paths+=("$p"); fi
  break
done
# The root filesystem's share: what a booted Debian guest has mapped (libc,
# systemd's and the daemons' libraries, a shell, an interpreter), not the
# first files of /usr/lib in alphabetical order.  From the image root if it
# has them (the tests/xen root holds only Xen's and the kernel's packages),
# else from this machine.
rootfs_list() {
  local r
  for r in "$root" /; do
    : > "$D/rootfs.list"
    for n in libc.so.6 ld-linux-x86-64.so.2 libm.so.6 libsystemd.so.0 libudev.so.1 libselinux.so.1 libcrypto.so.3 \
             libssl.so.3 libz.so.1 liblzma.so.5 libzstd.so.1 liblz4.so.1 libgcrypt.so.20 libgpg-error.so.0 libcap.so.2 \
             libmount.so.1 libblkid.so.1 libpam.so.0 libkmod.so.2 libdbus-1.so.3 libexpat.so.1 libtinfo.so.6 \
             libreadline.so.8 libpcre2-8.so.0 libacl.so.1 libattr.so.1 libaudit.so.1 libcrypt.so.1 libresolv.so.2 \
             libnss_files.so.2 libstdc++.so.6 libgcc_s.so.1; do
      for d in "$r"/usr/lib/x86_64-linux-gnu "$r"/lib/x86_64-linux-gnu; do
        [ -e "$d/$n" ] && { readlink -f "$d/$n" >> "$D/rootfs.list"; break; }
      done
    done
    for b in usr/bin/bash usr/lib/systemd/systemd usr/sbin/sshd usr/bin/python3; do
      [ -e "$r/$b" ] && readlink -f "$r/$b" >> "$D/rootfs.list"
    done
    [ "$(wc -l < "$D/rootfs.list")" -ge 20 ] && { echo "$r"; return 0; }
  done
  return 1
}
if rroot=$(rootfs_list); then
  echo "bench-dedup: root filesystem pages: $(wc -l < "$D/rootfs.list") libraries and programs from $rroot"
  paths+=("@$D/rootfs.list")
fi
for p in "$root"/lib/modules/*/kernel; do  # each PATH takes an equal share of what is left
  [ -e "$p" ] && paths+=("$p")
done
[ ${#paths[@]} -gt 0 ] || { echo "bench-dedup: no kernel, modules or libraries under $root (set MEMX_IMAGE_ROOT)" >&2; exit 1; }
echo "bench-dedup: guest image from: ${paths[*]}"
[ -e "$root/boot" ] && ! ls "$root"/boot/vmlinuz-* >/dev/null 2>&1 && echo "bench-dedup: (no kernel image under $root/boot)"

world_conf servers=2 capacity="${MEMX_DEDUP_CAPACITY:-768M}" replicas=2 slab=4M
world_start_pool
# shellcheck disable=SC2086
"$B/memx-dedupbench" --config "$WORLD_CONF" ${MEMX_DEDUP_ARGS:-} "${paths[@]}"
