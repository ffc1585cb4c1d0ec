#!/bin/sh
# dom0 /init for the real-Xen test (PV dom0, busybox + Debian's Xen 4.17 tools).
# Brings up the Xen control plane, mounts the build dir shared by QEMU over 9p
# on /host and hands over to the scenario staged there by tests/xen/run.sh
# (MEMX_RUN, from the dom0 kernel command line, is its path inside the share).
# Whatever happens, dom0 reboots at the end, which ends QEMU (-no-reboot).
export PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
M() { echo "MEMX-XEN: $* [dom0 uptime $(cut -d' ' -f1 /proc/uptime)]"; }
fatal() { echo "MEMX-STAGE dom0 FAILED - $*"; echo "MEMX-XEN: done failures=1"; sync; reboot -f; }
K=/lib/modules/$(uname -r)/kernel
while read -r m; do insmod "$K/$m.ko" || M "insmod $m failed"; done < /etc/modules-load
mount -t xenfs xenfs /proc/xen || fatal "cannot mount xenfs (not a Xen dom0?)"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 hostshare /host || fatal "9p share hostshare not mounted"
hostname dom0; ifconfig lo 127.0.0.1 up
# Two-host test (tests/xen/twohost.sh): MEMX_IP=<address> on the kernel command
# line puts dom0's NIC on the network joining the two hosts.
[ -n "${MEMX_IP:-}" ] && { ifconfig eth0 "$MEMX_IP" netmask 255.255.255.0 up || M "eth0 $MEMX_IP not configured"; }
mkdir -p /var/run/xenstored /var/lib/xenstored /var/log/xen/console /var/lib/xen /var/run/xen \
    /run/lock /var/lib/xen/dump /run/memx /var/log/memx
xenstored --pid-file /var/run/xenstored.pid
i=0; until xenstore-read -s / >/dev/null 2>&1; do
    sleep 0.1; i=$((i+1)); [ $i -gt 300 ] && fatal "xenstored did not answer within 30 s"; done
xen-init-dom0 >/dev/null || fatal "xen-init-dom0 failed"
xenconsoled --pid-file=/var/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console
xl list >/dev/null || fatal "xl list failed"
S=/host/${MEMX_RUN:-xen-cache/run}/scenario.sh
[ -f "$S" ] || fatal "scenario $S not found on the 9p share"
echo "MEMX-STAGE dom0 ok -"
sh "$S"
sync
reboot -f
