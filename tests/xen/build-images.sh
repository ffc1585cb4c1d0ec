#!/bin/bash
# build-images.sh CACHE DEBDIR — the boot artefacts for the real-Xen test.
#
# From Debian bookworm packages (apt-get download + dpkg-deb -x, cached in
# CACHE/debs and CACHE/root; nothing is installed on the host) it builds:
#   CACHE/xen                 the hypervisor (multiboot ELF)
#   CACHE/vmlinuz             one Linux kernel for dom0 and the guests
#   CACHE/guest-initrd.cpio   busybox + xen-blkfront + tests/xen/guest-init.sh
#   CACHE/dom0-initrd.cpio    busybox + xl/xenstored/xenconsoled + Xen libs +
#                             9p modules + tests/xen/dom0-init.sh
# The MemX packages in DEBDIR (tests/xen/debs.sh builds them from debian/) are
# installed the way dpkg would lay them out: `dpkg-deb -x` of memx-common,
# memx-backend and memx-memd into the dom0 root, then what their postinst and
# units would do (/etc/memx mode 0750, the RuntimeDirectory /run/memx); the
# installed versions are listed in dom0's /etc/memx-check/installed.  The
# guest gets memx-io from memx-tools.  Every installed ELF gets its shared
# libraries copied in, resolved with ldd on this host (the same Debian 12
# userland the packages were built on).  xen-blkback is deliberately left out of
# the image's boot modules: it would claim every backend/vbd node before
# memx-backd sees it (only the XEN_CONTROL=blkback run loads it).
set -euo pipefail
CACHE=$1; DEBDIR=${2:?usage: build-images.sh CACHE DEBDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
XENV=4.17
# The kernel the recipe in shared/xenlab was measured with; if the archive has
# dropped it, take the one linux-image-amd64 currently depends on.
KVER=${KVER:-6.1.0-50-amd64}
mkdir -p "$CACHE/debs"
cd "$CACHE"

pkgs="xen-hypervisor-$XENV-amd64 xen-utils-$XENV xen-utils-common xenstore-utils libxenmisc$XENV
 libxenstore4 libxengnttab1 libxenevtchn1 libxencall1 libxenforeignmemory1 libxendevicemodel1
 libxentoolcore1 libxentoollog1 libxenhypfs1 libyajl2"
if [ ! -f root/.complete ] || [ ! -d "root/lib/modules/$KVER" ]; then
    if ! apt-cache show "linux-image-$KVER-unsigned" >/dev/null 2>&1; then
        KVER=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: linux-image-\(.*-amd64\)$/\1/p' | head -1)
        [ -n "$KVER" ] || { echo "build-images: cannot find a Debian linux-image package" >&2; exit 1; }
    fi
    echo "build-images: downloading Xen $XENV and linux-image-$KVER packages into $CACHE/debs"
    rm -rf root debs/*.deb
    # apt's _apt user cannot write into an arbitrary build dir; download as the caller.
    (cd debs && apt-get -q -o APT::Sandbox::User=root download $pkgs "linux-image-$KVER-unsigned" >/dev/null)
    mkdir -p root
    for d in debs/*.deb; do dpkg-deb -x "$d" root; done
    depmod -b root "$KVER"
    echo "$KVER" > root/.complete
fi
KVER=$(cat root/.complete)
X=$CACHE/root
KM=$X/lib/modules/$KVER/kernel
zcat "$X/boot/xen-$XENV-amd64.gz" > xen
cp "$X/boot/vmlinuz-$KVER" vmlinuz
# The MemX packages, one root each, fresh every run (the debs may have changed).
rm -rf memx && mkdir memx
for p in memx-common memx-backend memx-memd memx-tools; do
    deb=$(ls "$DEBDIR"/${p}_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "build-images: no ${p}_*.deb in $DEBDIR" >&2; exit 1; }
    mkdir "memx/$p"; dpkg-deb -x "$deb" "memx/$p"
    [ $p = memx-tools ] || echo "$p $(dpkg-deb -f "$deb" Version)" >> memx/installed   # dom0's; memx-tools is the guest's
done
BB=/bin/busybox
[ -x $BB ] || { echo "build-images: /bin/busybox missing (apt-get install busybox-static)" >&2; exit 1; }

# ---------- guest initramfs ----------
rm -rf g && mkdir -p g/bin g/sbin g/usr/bin g/usr/sbin g/proc g/sys g/dev g/tmp
cp $BB g/bin/busybox
for a in $($BB --list-full); do [ -e "g/$a" ] || ln -s /bin/busybox "g/$a"; done
cp "$KM/drivers/block/xen-blkfront.ko" g/
# Probed only: can a guest's userspace be a blkif frontend (libmemxfront)?
for m in xen-evtchn xen-gntalloc xen-privcmd xenfs/xenfs; do cp "$KM/drivers/xen/$m.ko" g/; done
# memx-io as memx-tools installs it, for the guest's own userspace frontend
# (MEMX_MODE=userfront), with the host libraries it links.
for e in memx/memx-tools/usr/bin/memx-io; do
    [ -f "$e" ] || continue
    mkdir -p g/lib/x86_64-linux-gnu g/lib64
    cp "$e" g/bin/
    ldd "$e" | awk '/=> \//{print $3}' | while read -r lib; do cp -L "$lib" g/lib/x86_64-linux-gnu/; done
    cp -L /lib64/ld-linux-x86-64.so.2 g/lib64/
    # glibc dlopen()s it for pthread_cancel (run 4: memx-io aborted without it).
    cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 g/lib/x86_64-linux-gnu/
done
cp "$HERE/guest-init.sh" g/init
chmod 755 g/init
(cd g && find . | cpio -o -H newc --quiet) > guest-initrd.cpio

# ---------- two-host test (tests/xen/twohost.sh): guest image ----------
# The same guest with /init a wrapper that starts tests/xen/guest-gap.sh (the
# guest's own view of its pauses, for the migration downtime) and then runs
# guest-init.sh unchanged as /guest-init.sh.
cp "$HERE/guest-init.sh" g/guest-init.sh
cp "$HERE/guest-gap.sh" g/init
chmod 755 g/init g/guest-init.sh
(cd g && find . | cpio -o -H newc --quiet) > guest-initrd-twohost.cpio
# ---------- end of the two-host block ----------

# ---------- dom0 initramfs ----------
rm -rf d && mkdir -p d/bin d/sbin d/usr/bin d/usr/sbin d/proc d/sys d/dev d/tmp d/run d/var/log \
    d/var/lib d/etc/xen/scripts d/usr/lib/xen-$XENV/bin d/usr/lib/x86_64-linux-gnu \
    d/lib/x86_64-linux-gnu d/lib64 d/root d/host
ln -s ../run d/var/run
cp $BB d/bin/busybox
for a in $($BB --list-full); do [ -e "d/$a" ] || ln -s /bin/busybox "d/$a"; done
for b in xl xenstored xenconsoled xenconsole libxl-save-helper xen-init-dom0 lsevtchn xen-diag xenstore-control xenctx; do
    cp "$X/usr/lib/xen-$XENV/bin/$b" "d/usr/lib/xen-$XENV/bin/"
done
cp -a "$X/usr/bin/xenstore" d/usr/bin/
for b in chmod exists list ls read rm watch write; do ln -sf xenstore "d/usr/bin/xenstore-$b"; done
cp -a "$X"/usr/lib/x86_64-linux-gnu/*.so* d/usr/lib/x86_64-linux-gnu/
# Host libraries (same Debian 12 userland) for the Xen tools and the memx
# binaries; the packaged Xen libraries win over the host's copies.
# The packages as installed (memx-tools only in the guest, above).
for p in memx-common memx-backend memx-memd; do cp -a "memx/$p/." d/; done
chmod 0750 d/etc/memx                 # memx-common.postinst
mkdir -p d/run/memx                   # the units' RuntimeDirectory=memx
mkdir -p d/etc/memx-check && cp memx/installed d/etc/memx-check/installed
elfs="d/usr/lib/xen-$XENV/bin/* d/usr/bin/xenstore d/usr/sbin/memx-* d/usr/bin/memxctl"
# shellcheck disable=SC2086
for e in $elfs; do LD_LIBRARY_PATH=$X/usr/lib/x86_64-linux-gnu ldd "$e" 2>/dev/null | awk '/=> \//{print $3}'; done \
  | sort -u | while read -r lib; do
    case $lib in "$X"/*) continue;; esac
    [ -e "d/usr/lib/x86_64-linux-gnu/$(basename "$lib")" ] || cp -L "$lib" d/lib/x86_64-linux-gnu/
done
cp -L /lib64/ld-linux-x86-64.so.2 d/lib64/
# glibc dlopen()s libgcc_s for pthread_cancel: without it every xl aborts (rc 134) at exit.
cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 d/lib/x86_64-linux-gnu/
mods="drivers/xen/xen-evtchn drivers/xen/xen-privcmd drivers/xen/xenfs/xenfs drivers/xen/xen-gntdev
 drivers/xen/xen-gntalloc drivers/virtio/virtio drivers/virtio/virtio_ring drivers/virtio/virtio_pci_legacy_dev
 drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/9p/9pnet net/9p/9pnet_virtio
 fs/netfs/netfs fs/fscache/fscache fs/9p/9p"
# Only for the control run (XEN_CONTROL=blkback), never loaded otherwise.
ctl_mods="drivers/block/loop drivers/block/xen-blkback/xen-blkback"
# ---------- two-host test (tests/xen/twohost.sh): dom0's NIC ----------
# virtio-net for the QEMU socket network joining two hosts' dom0s (MEMX_IP on
# the dom0 command line configures it, see dom0-init.sh).  Loaded in every run:
# with no NIC (check-xen's single QEMU) the driver finds nothing.
mods="$mods net/core/failover drivers/net/net_failover drivers/net/virtio_net"
# virtio-serial: the migration stream's channel between the two QEMUs
# (twohost-xfer.sh, twohost-recv.sh), a /dev/vport*p* port named memx.mig.
mods="$mods drivers/char/virtio_console"
# ---------- end of the two-host block ----------
for m in $mods $ctl_mods; do
    mkdir -p "d/lib/modules/$KVER/kernel/$(dirname "$m")"
    cp "$KM/$m.ko" "d/lib/modules/$KVER/kernel/$m.ko"
done
echo "$mods" | tr -s ' \n' '\n\n' | grep . > d/etc/modules-load
printf 'autoballoon="off"\nrun_hotplug_scripts=1\n' > d/etc/xen/xl.conf
printf 'root:x:0:0:root:/root:/bin/sh\n' > d/etc/passwd
printf '127.0.0.1 localhost dom0\n' > d/etc/hosts
echo dom0 > d/etc/hostname
cp "$HERE/dom0-init.sh" d/init
chmod 755 d/init
(cd d && find . | cpio -o -H newc --quiet) > dom0-initrd.cpio
