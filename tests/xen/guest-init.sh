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
# A prober reads 4 KiB of xvdc with O_DIRECT about four times a second and
# prints every gap longer than 0.6 s between two completed reads ("iogap"):
# the guest-visible I/O pause of a backend restart, measured in the guest.
# MEMX_MODE=userfront: no xen-blkfront at all; libmemxfront (memx-io
# --platform real) drives device/vbd/51728 from userspace instead.
# Lines starting "MEMX-GUEST:" are read by the dom0 scenario; every verdict is
# the word ok or something else (MISMATCH, READFAIL, FAILED).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
G() { echo "MEMX-GUEST: $*"; }
NCH=${MEMX_CHUNKS:-80}       # 1 MiB chunks in tmpfs
PER=${MEMX_PER_TICK:-16}
G "init start uptime=$(cut -d' ' -f1 /proc/uptime)"
if [ "${MEMX_MODE:-}" = userfront ]; then
    # The guest's kernel leaves the vbd alone (no blkfront): the frontend is
    # memx-io through /dev/xen/{xenbus,gntalloc,evtchn}.  It writes seeded
    # pages, reads every one back and checks it.
    # gntalloc's default limit (1024 grants) is below what memx-io grants
    # (run 4: "cannot grant 4096 bounce pages: No space left on device").
    insmod /xen-gntalloc.ko limit=16384
    for m in xen-evtchn xen-privcmd xenfs; do insmod /$m.ko 2>/dev/null; done
    G "userfront devices: $(ls /dev/xen 2>/dev/null | tr '\n' ' ')"
    d=device/vbd/51728
    memx-io --platform real --device $d info > /uf.out 2>&1
    G "userfront info rc=$? $(grep -v '^$' /uf.out | tail -1)"
    memx-io --platform real --device $d verify --size 16M --qd 8 --seed 11 > /uf.out 2>&1
    rc=$?
    grep . /uf.out | tail -4 | sed 's/^/MEMX-GUEST: userfront | /'
    if [ $rc = 0 ]; then G "userfront verify ok $(grep '^verify:' /uf.out | tail -1)"; else G "userfront verify FAILED rc=$rc"; fi
    while true; do sleep 60; done
fi
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
# The prober: builtins only besides dd, so its own cost stays small; reads a
# page beyond the pattern (offsets 2..12 MiB).  Started after the fill, so its
# forks do not compete with the fill in a guest short of memory.
( i=0; while true; do
      dd if=/dev/xvdc of=/dev/null bs=4k count=1 skip=$((512 + i % 2560)) iflag=direct 2>/dev/null || echo "READFAIL"
      read -r u _ < /proc/uptime; echo "$u"; i=$((i+1)); sleep 0.2
  done | awk '$1 == "READFAIL" { print "MEMX-GUEST: probe READFAIL"; fflush(); next }
              { if (p != "" && $1 - p > 0.6) { printf "MEMX-GUEST: iogap %.2f end=%s\n", $1 - p, $1; fflush() } p = $1 }' ) &
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
