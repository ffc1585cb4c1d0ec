#!/bin/bash
# tests/xen/twohost.sh BUILD — MemX across two real Xen hosts (make check-xen-twohost).
#
# Boots two QEMU instances (TCG) of the check-xen images, host A and host B,
# joined by a QEMU socket network on the host's loopback (A listens on
# 127.0.0.1:PORT, B connects; nothing leaves the machine).  Each dom0 gets a
# virtio NIC and a static address (MEMX_IP on its kernel command line: A
# 10.99.0.1, B 10.99.0.2), one memx-memd and memx-backd --platform real with
# both memory servers in its config (replicas 2).  tests/xen/scenario-twohost.sh
# runs in both dom0s; A drives: a PVH guest swapping on MemX is live-migrated
# A -> B and back with `xl migrate` over twohost-xfer.sh instead of ssh: the
# stream crosses a virtio-serial port in each dom0 whose QEMU chardevs are
# joined on loopback (A's listens on MPORT, B's connects), far faster than
# busybox nc over the emulated NIC.  Both dom0 images hold the MemX Debian
# packages built from this tree (tests/xen/debs.sh, as run.sh); both QEMUs
# share BUILD over 9p for the scenario, guest images and logs; each has its
# own run and log directory under BUILD/xen-cache/twohost/.  Prints one line per stage; exit 0 only when every
# stage of both hosts passed.  Run from the repository root.
#
# Environment (all optional):
#   XEN_CPU      QEMU -cpu model, default qemu64,+svm,+npt (see run.sh)
#   XEN_MEM      memory per QEMU, default 2G
#   XEN_SMP      vCPUs per QEMU, default 1: with 2, four TCG vCPU threads on a
#                2-core machine booted and ran each dom0 about twice as slowly
#   TWOHOST_GUEST_MEM, TWOHOST_GUEST_CHUNKS  the guest's RAM (MiB, default 128; 80 ran out of memory at boot)
#                and its tmpfs fill (1 MiB chunks, default 56): less than
#                check-xen's 64, so less swap traffic crosses the emulated
#                network between the hosts
#   XEN_TIMEOUT  seconds for host A's QEMU, default 1800
#   XEN_BOOT_TIMEOUT seconds for both dom0s to boot, default 300: a dom0 that
#                hangs at boot (before MemX runs) is retried once, printed
#   XEN_XL_E     1 (default): xl create -e (no monitoring child); 0: xl's default
#   XEN_BACKD_LOG_LEVEL, XEN_XEN_ARGS, XEN_PVH_CPUID, KVER: as for run.sh
#   TWOHOST_PORT loopback TCP port of the socket network, default: a free one
#   TWOHOST_MIG_PORT loopback TCP port joining the migration channel, default: a free one
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: tests/xen/twohost.sh BUILD-DIR" >&2; exit 2; }
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "twohost.sh: build dir '$1' not found" >&2; exit 2; }
CACHE=$BUILD/xen-cache
TH=$CACHE/twohost
T0=$(date +%s.%N)
since() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}'; }
stage() { printf '%-22s %s\n' "$1" "$2"; }

for t in qemu-system-x86_64 cpio dpkg-deb dpkg-buildpackage lintian apt-get depmod ss; do
    command -v $t >/dev/null || { echo "twohost.sh: $t missing (tools/install-deps.sh xen installs it)" >&2; exit 2; }
done
mkdir -p "$CACHE"
# The MemX packages, installed in both dom0 images (as run.sh does).
DEBS=$("$SRC/tests/xen/debs.sh" "$CACHE") || { stage debs "FAILED $(since)"; exit 1; }
stage debs "ok $(since) $(cd "$DEBS" && ls ./*.deb | sed 's|^./||' | tr '\n' ' ')"
if ! "$SRC/tests/xen/build-images.sh" "$CACHE" "$DEBS" > "$CACHE/build-images.log" 2>&1; then
    stage images "FAILED $(since)"; tail -15 "$CACHE/build-images.log"; exit 1
fi
stage images "ok $(since)"

# One run directory per host, both in the share; the cluster key is common.
rm -rf "$TH" && mkdir -p "$TH/a" "$TH/b"
"$CACHE/memx/memx-backend/usr/bin/memxctl" keygen "$TH/cluster.key" > "$TH/keygen.log" 2>&1 || { stage keygen "FAILED: $(cat "$TH/keygen.log")"; exit 1; }
if [ "${XEN_XL_E:-1}" = 1 ]; then XL_E=-e; else XL_E=; fi
IP_A=10.99.0.1; IP_B=10.99.0.2
for h in a b; do
    # dom0-init.sh runs the run directory's scenario.sh.
    cp "$SRC/tests/xen/scenario-twohost.sh" "$TH/$h/scenario.sh"
    cp "$SRC/tests/xen/twohost-peer.sh" "$SRC/tests/xen/twohost-xfer.sh" "$SRC/tests/xen/twohost-recv.sh" "$SRC/tests/xen/twohost-port.sh" "$SRC/tests/xen/tf-in-xen.sh" "$TH/$h/"
    if [ $h = a ]; then me=$IP_A; peer=$IP_B; pr=b; else me=$IP_B; peer=$IP_A; pr=a; fi
    cat > "$TH/$h/env.sh" <<ENV
PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu
MEMXD=/usr/sbin/memx-memd
BACKD=/usr/sbin/memx-backd
MEMXCTL=/usr/bin/memxctl
KERNEL=/host/xen-cache/vmlinuz
RAMDISK=/host/xen-cache/guest-initrd-twohost.cpio
ROLE=$h
PEER_ROLE=$pr
MY_IP=$me
PEER_IP=$peer
IP_A=$IP_A
IP_B=$IP_B
MEMD_PORT=7481
CMD_PORT=7400
SH=/host/xen-cache/twohost
XL_E="$XL_E"
BACKD_LOG_LEVEL="${XEN_BACKD_LOG_LEVEL:-info}"
PEER_WAIT=${XEN_TIMEOUT:-1800}
GUEST_MEM=${TWOHOST_GUEST_MEM:-128}
PVH_CPUID="${XEN_PVH_CPUID:-host,rdtscp=0}"
GUEST_CHUNKS=${TWOHOST_GUEST_CHUNKS:-56}
ENV
done

# A free loopback port for the socket network, unless given.
PORT=${TWOHOST_PORT:-}
if [ -z "$PORT" ]; then
    for p in $(shuf -i 20000-40000 -n 20); do ss -Htln "sport = :$p" | grep -q . || { PORT=$p; break; }; done
fi
[ -n "$PORT" ] || { echo "twohost.sh: no free loopback port found" >&2; exit 2; }
# The migration channel: a virtio-serial port (memx.mig) in each dom0, the two
# QEMUs' chardevs joined over loopback (A listens, B connects).  xl's stream
# goes there (twohost-xfer.sh, twohost-recv.sh), not over the emulated NIC.
MPORT=${TWOHOST_MIG_PORT:-}
if [ -z "$MPORT" ]; then
    for p in $(shuf -i 20000-40000 -n 20); do [ "$p" != "$PORT" ] && ! ss -Htln "sport = :$p" | grep -q . && { MPORT=$p; break; }; done
fi
[ -n "$MPORT" ] || { echo "twohost.sh: no free loopback port found for the migration channel" >&2; exit 2; }

CPU=${XEN_CPU:-qemu64,+svm,+npt}; MEM=${XEN_MEM:-2G}; SMP=${XEN_SMP:-1}
XEN_ARGS="dom0_mem=1280M,max:1280M dom0_max_vcpus=$SMP console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all ${XEN_XEN_ARGS:-}"
echo "qemu: 2 x (-cpu $CPU -m $MEM -smp $SMP), socket network 127.0.0.1:$PORT, migration channel 127.0.0.1:$MPORT; serial logs $TH/serial-{a,b}.log"

# qemu HOST NETDEV MAC IP: one host; its serial lines timestamped (seconds since
# T0, the same clock for both hosts) into serial-HOST.log, stage lines and
# failure dumps printed as they come.
qemu() {
    local h=$1 netdev=$2 mac=$3 ip=$4 chardev=$5
    timeout "${XEN_TIMEOUT:-1800}" qemu-system-x86_64 -accel tcg -cpu "$CPU" -m "$MEM" -smp "$SMP" \
        -display none -monitor none -serial stdio -no-reboot -pidfile "$TH/qemu-$h.pid" \
        -netdev "socket,id=n0,$netdev" -device "virtio-net-pci,netdev=n0,mac=$mac" \
        -chardev "socket,id=mig,host=127.0.0.1,port=$MPORT,$chardev" \
        -device virtio-serial-pci,id=vser0 -device virtserialport,bus=vser0.0,chardev=mig,name=memx.mig \
        -virtfs "local,path=$BUILD,mount_tag=hostshare,security_model=none,id=hostshare" \
        -kernel "$CACHE/xen" -append "$XEN_ARGS" \
        -initrd "$CACHE/vmlinuz console=hvc0 earlyprintk=xen MEMX_RUN=xen-cache/twohost/$h MEMX_IP=$ip,$CACHE/dom0-initrd.cpio" \
        </dev/null 2>&1 \
      | perl -MTime::HiRes=time -e '
            $| = 1; ($log, $h, $t0) = @ARGV; open(LOG, ">", $log) or die "$log: $!"; LOG->autoflush(1);
            while (<STDIN>) {
                s/\r//g; $t = time - $t0;
                printf LOG "[%8.2f] %s", $t, $_;
                if (/MEMX-STAGE (\S+) (ok|FAILED|retried) (\S+)\s*(.*)/) {
                    $d = $3 eq "-" ? "-" : $3; $n = $1; $n = "$h-$n" if $n eq "dom0";
                    printf "%-22s %-6s %7s  %s\n", $n, $2, $d, $4;
                } elsif (/MEMX-CLOCK (\d+)\.(\d+)/) {
                    # dom0 clock minus the host clock (one clock for both
                    # hosts); the serial line is late by well under a second.
                    printf LOG "MEMX-CLOCK-OFFSET %.0f ms\n", ($1 + $2 / 1e6 - time) * 1000;
                }
                elsif (/MEMX-DUMP-BEGIN/) { $dump = 1; }
                elsif (/MEMX-DUMP-END/) { $dump = 0; }
                elsif ($dump) { print "    | $h: $_"; }
                elsif (/MEMX-XEN: done (.*)/) { print "dom0 $h: $1\n"; }
                elsif (/MEMX-XEN: (?!stage )(.*)/) { print "  note $h: $1\n"; }
            }' "$TH/serial-$h.log" "$h" "$T0"
    return "${PIPESTATUS[0]}"
}

# Both hosts, once.  Returns 3 when a dom0 did not boot within
# XEN_BOOT_TIMEOUT (default 300 s): seen under heavy host load, a dom0 kernel
# stopping during its own boot, before any MemX process exists.
pair() {
    qemu a "listen=127.0.0.1:$PORT" 52:54:00:99:00:01 $IP_A server=on,wait=off &
    QA=$!
    # B connects only once A's QEMU listens.
    i=0; until ss -Htln "sport = :$PORT" | grep -q .; do
        sleep 0.2; i=$((i+1))
        if [ $i -gt 150 ] || ! kill -0 $QA 2>/dev/null; then echo "twohost.sh: host A's QEMU never listened on 127.0.0.1:$PORT" >&2; wait $QA; exit 1; fi
    done
    qemu b "connect=127.0.0.1:$PORT" 52:54:00:99:00:02 $IP_B reconnect=1 &
    QB=$!
    local dl=$((SECONDS + ${XEN_BOOT_TIMEOUT:-300})) h hung=
    while kill -0 $QA 2>/dev/null; do
        grep -aq 'MEMX-STAGE dom0' "$TH/serial-a.log" && grep -aq 'MEMX-STAGE dom0' "$TH/serial-b.log" && break
        if [ $SECONDS -ge $dl ]; then
            for h in a b; do
                grep -aq 'MEMX-STAGE dom0' "$TH/serial-$h.log" && continue
                hung="$hung $h"
                echo "  retry: dom0 of host $h did not boot within ${XEN_BOOT_TIMEOUT:-300} s; its serial log ends: $(tail -1 "$TH/serial-$h.log" | cut -c1-100)"
            done
            for h in a b; do [ -s "$TH/qemu-$h.pid" ] && kill "$(cat "$TH/qemu-$h.pid")" 2>/dev/null; done
            wait $QA $QB
            return 3
        fi
        sleep 2
    done
    wait $QA; qa=$?
    # B ends when A tells it to; give it a minute for that, then stop its QEMU.
    i=0; while kill -0 $QB 2>/dev/null && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done
    if kill -0 $QB 2>/dev/null; then
        echo "twohost.sh: host B still running 60 s after host A ended: stopping its QEMU"
        [ -s "$TH/qemu-b.pid" ] && kill "$(cat "$TH/qemu-b.pid")" 2>/dev/null
    fi
    wait $QB; qb=$?
    return 0
}
# keep WHY: this try's serial logs and scenario logs are kept beside the next try's.
keep() { for h in a b; do mv "$TH/serial-$h.log" "$TH/serial-$h.$1.log"; rm -rf "$TH/$h/logs.$1"; mv "$TH/$h/logs" "$TH/$h/logs.$1" 2>/dev/null; done; }
qa=; qb=; tries=1
pair
if [ $? = 3 ]; then
    keep boot-hang
    echo "  retry: booting both hosts once more (the hang came before any MemX process ran)"
    tries=2
    pair || { stage boot "FAILED $(since): a dom0 hung at boot twice"; exit 1; }
fi
# A whole run again only where host A's scenario proved the guest's triple
# fault the emulator's (both backends and the guest clean: its stage says
# "retried") and no stage of either host failed: once on that, a second time
# only with proof MemX had no part (proven=1: the vCPU held Xen's own state,
# or the guest died at boot before its blkfront connected).
rerun_ok() {
    grep -aq 'MEMX-XEN: done failures=0 .*rerun=1' "$TH/serial-a.log" \
        && ! grep -aq 'MEMX-STAGE [^ ]* FAILED' "$TH/serial-a.log" "$TH/serial-b.log" || return 1
    [ $tries = 1 ] && return 0
    [ $tries = 2 ] && grep -aq 'MEMX-XEN: done .*proven=1' "$TH/serial-a.log" || return 1
    # A third try fits CI's 90 minutes only after two short ones.
    [ $SECONDS -lt "${XEN_RERUN_BUDGET:-900}" ] && return 0
    echo "  (no third try: ${SECONDS} s spent, over XEN_RERUN_BUDGET=${XEN_RERUN_BUDGET:-900})"; return 1
}
while rerun_ok; do
    keep triple-fault-$tries
    echo "  retry: the guest triple-faulted with both backends clean (the emulator): booting both hosts and running everything again (try $((tries + 1)))"
    tries=$((tries + 1))
    pair || { stage boot "FAILED $(since): a dom0 hung at boot on the rerun"; exit 1; }
done

# The guest measures its pause across hosts on their Xen clocks, each from
# its QEMU's RTC: their offset bounds that measurement.
off() { grep -a 'MEMX-CLOCK-OFFSET' "$TH/serial-$1.log" | tail -1 | awk '{print $2}'; }
oa=$(off a); ob=$(off b)
[ -n "$oa" ] && [ -n "$ob" ] && echo "clocks: dom0 B - dom0 A = $((ob - oa)) ms (each against the host clock, read over the serial line)"

fails=0; bad=
for h in a b; do
    if ! grep -aq 'MEMX-XEN: done' "$TH/serial-$h.log"; then
        bad="$bad $h"
        [ $h = a ] && q=$qa || q=$qb
        [ "$q" = 124 ] && why="timed out after ${XEN_TIMEOUT:-1800} s" || why="QEMU exited $q"
        stage "harness-$h" "FAILED $(since): host $h's scenario did not finish ($why); serial log tail:"
        grep -av 'MEMX-GUEST: tick\|MEMX-GAP' "$TH/serial-$h.log" | tail -20 | sed 's/^/    | /'
    fi
    fails=$((fails + $(grep -ac 'MEMX-STAGE [^ ]* FAILED' "$TH/serial-$h.log")))
done
# A proven triple fault on the last try is no pass: the migrations did not run.
grep -aq 'MEMX-XEN: done .*rerun=1' "$TH/serial-a.log" && { bad="$bad a"; stage triple-fault "FAILED $(since): the guest triple-faulted on the last try too (emulator; see the dump above)"; }
tf=$(cat "$TH"/a/logs*/xen.log "$TH"/b/logs*/xen.log 2>/dev/null | grep -ac ' d[1-9][0-9]*v[0-9]* Triple fault')
if [ -n "$bad" ] || [ "$fails" -gt 0 ]; then
    echo "check-xen-twohost: $fails stage(s) FAILED in $(since), tries=$tries triple-faults=$tf; logs in $TH/{a,b}/logs and $TH/serial-{a,b}.log"
    exit 1
fi
echo "check-xen-twohost: all stages ok in $(since), tries=$tries triple-faults=$tf"
