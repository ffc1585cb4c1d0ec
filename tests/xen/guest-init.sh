#!/bin/sh
# Guest /init for the real-Xen test: the stock xen-blkfront against MemX disks.
#   xvdb  swap.  tmpfs is filled with random chunks beyond the guest's RAM so
#         pages go out to swap; every tick re-reads MEMX_PER_TICK chunks (which
#         swaps them back in and pushes others out) and checks each against the
#         md5 taken when it was written.  A "pass" is every chunk checked once.
#   xvdc  raw device: a random pattern written at two offsets with O_DIRECT,
#         re-read and compared on every tick.
#   xvdd  hot-plugged by `xl block-attach` while the guest runs: written and
#         verified once, then left alone so `xl block-detach` can take it away.
# Lines starting "MEMX-GUEST:" are read by the dom0 scenario; every verdict is
# the word ok or something else (MISMATCH, READFAIL, FAILED).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
G() { echo "MEMX-GUEST: $*"; }
NCH=${MEMX_CHUNKS:-80}       # 1 MiB chunks in tmpfs
PER=${MEMX_PER_TICK:-16}
G "init start uptime=$(cut -d' ' -f1 /proc/uptime)"
insmod /xen-blkfront.ko && G "blkfront loaded"
i=0; while [ $i -lt 100 ] && ! { [ -b /dev/xvdb ] && [ -b /dev/xvdc ]; }; do sleep 0.2; i=$((i+1)); done
for d in xvdb xvdc; do
    if [ -b /dev/$d ]; then G "$d present sectors=$(cat /sys/block/$d/size)"; else G "$d MISSING"; fi
done
if mkswap /dev/xvdb >/dev/null && swapon /dev/xvdb; then G "swapon ok"; else G "swapon FAILED"; fi
# What a userspace frontend (libmemxfront) would need in a domU: evtchn,
# gntalloc and the xenbus device.
for m in xen-evtchn xen-gntalloc xen-privcmd xenfs; do insmod /$m.ko 2>/dev/null; done
G "userspace-frontend devices: $(ls /dev/xen 2>/dev/null | tr '\n' ' ')"
swapused() { awk '$1=="/dev/xvdb"{print $4}' /proc/swaps; }

# --- raw pattern on xvdc: 1 MiB at offset 0 and at offset 12 MiB ---
dd if=/dev/urandom of=/pat bs=64k count=16 2>/dev/null
PAT=$(md5sum < /pat | cut -d' ' -f1)
rawcheck() {
    r=ok
    for off in 0 192; do
        got=$(dd if=/dev/xvdc bs=64k count=16 skip=$off iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
        [ "$got" = "$PAT" ] || { [ "$got" = d41d8cd98f00b204e9800998ecf8427e ] && r=READFAIL || r=MISMATCH; }
    done
    echo $r
}
w=ok
for off in 0 192; do dd if=/pat of=/dev/xvdc bs=64k seek=$off oflag=direct conv=fsync 2>/dev/null || w=FAILED; done
[ $w = ok ] && w=$(rawcheck)
G "raw write $w"

# --- memory pressure: random chunks in tmpfs, beyond RAM ---
mkdir -p /t && mount -t tmpfs -o size=400m tmpfs /t
: > /sums
i=0; while [ $i -lt "$NCH" ]; do
    dd if=/dev/urandom of=/t/c$i bs=64k count=16 2>/dev/null
    echo "$(md5sum < /t/c$i | cut -d' ' -f1)" >> /sums
    i=$((i+1))
done
G "fill done chunks=$NCH swapused=$(swapused)kB"
G "ready uptime=$(cut -d' ' -f1 /proc/uptime)"

n=0; cur=0; pass=1; pst=ok; hot=none
while true; do
    n=$((n+1)); cst=ok; k=0
    while [ $k -lt "$PER" ]; do
        want=$(sed -n "$((cur+1))p" /sums)
        got=$(md5sum < /t/c$cur 2>/dev/null | cut -d' ' -f1)
        [ "$got" = "$want" ] || { cst=MISMATCH; G "chunk $cur MISMATCH got=$got want=$want"; }
        cur=$((cur+1)); k=$((k+1))
        [ $cst = ok ] || pst=MISMATCH
        if [ $cur -ge "$NCH" ]; then G "pass $pass $pst"; pass=$((pass+1)); cur=0; pst=ok; fi
    done
    # hot-plugged disk: verify once, then keep our hands off it
    if [ $hot = none ] && [ -b /dev/xvdd ]; then
        dd if=/dev/urandom of=/hpat bs=64k count=8 2>/dev/null
        hw=$(md5sum < /hpat | cut -d' ' -f1)
        dd if=/hpat of=/dev/xvdd bs=64k seek=3 oflag=direct conv=fsync 2>/dev/null
        hg=$(dd if=/dev/xvdd bs=64k count=8 skip=3 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
        if [ "$hg" = "$hw" ]; then G "xvdd ok sectors=$(cat /sys/block/xvdd/size)"; else G "xvdd MISMATCH"; fi
        hot=seen
    elif [ $hot = seen ] && ! [ -b /dev/xvdd ]; then
        G "xvdd gone"; hot=none
    fi
    G "tick $n chunks=$cst raw=$(rawcheck) swapused=$(swapused)kB uptime=$(cut -d' ' -f1 /proc/uptime)"
    sleep 1
done
