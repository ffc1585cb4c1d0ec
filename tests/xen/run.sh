#!/bin/bash
# tests/xen/run.sh BUILD — MemX on a real Xen hypervisor (make check-xen).
#
# Builds the MemX Debian packages from this tree (tests/xen/debs.sh, cached
# under BUILD/xen-cache/debs-memx by the tree's content) and installs them in
# the dom0 image, so dom0 runs what an operator installs: /usr/sbin/memx-backd,
# /usr/sbin/memx-memd, /usr/bin/memxctl, /etc/xen/scripts/block-memx and
# /etc/memx/memx.conf of the packages.  Boots Debian's Xen 4.17 and a Linux PV
# dom0 under QEMU (TCG), shares BUILD into dom0 over 9p (the scenario, guest
# images and logs only), and runs tests/xen/scenario.sh there: two memx-memd and memx-backd --platform real,
# then PV and PVH guests with MemX disks from xl.cfg disk lines through swap,
# save/restore, migrate (PVH), block-attach/detach and destroy.
# Prints one line per stage with its time and ok/FAILED; a failed stage is
# followed by the tail of the guest console and of the backend log.  Exit 0
# only when every stage passed.  Run from the repository root.
#
# Environment (all optional):
#   XEN_GUESTS   guest types, default "pv pvh"
#   XEN_RESTARTS 0: skip the backend restarts (kill -9, memxctl upgrade) under the guests
#   XEN_USERFRONT 0: skip the guest userspace frontend (libmemxfront) stage
#   XEN_CPU      QEMU -cpu model, default qemu64,+svm,+npt.  With max,-smap (the
#                xenlab recipe; plain max crashes PV dom0) short-lived dom0
#                processes segfault during guest I/O and lifecycle operations
#                (9 in one control run) and every stage runs slower; with
#                qemu64,+svm,+npt none did.  SVM+NPT keep PVH guests possible.
#   XEN_ACCEL    QEMU -accel, default tcg (tcg,thread=single: one host thread for every vCPU)
#   XEN_MEM      QEMU memory, default 3G
#   XEN_SMP      vCPUs (Xen's CPUs, and dom0's), default 1: with 2, PVH guests
#                triple-faulted at boot in 6 of 8 soak boots, with 1 in 0 of 8
#                (2026-12-04, tests/xen/README.md "The PVH triple fault")
#   XEN_TIMEOUT  seconds for the whole QEMU run, default 1800 (a quiet 2-core
#                machine needs ~300 s; a loaded one took over 900 s)
#   XEN_XL_E     1 (default): xl create/restore/migrate-receive -e, so no xl
#                monitoring child is forked; 0: xl's default
#   XEN_ONLY     dom0: boot dom0, check the binaries' libraries, stop
#   XEN_CONTROL  blkback: run the guest stages against the kernel's xen-blkback
#                and loop devices instead of MemX (tells harness/Xen trouble
#                from MemX trouble; not part of make check-xen)
#   XEN_SOAK     N: the PV guest up and swapping, then the PVH guest brought up
#                (boot .. swap filled, then XEN_SOAK_TICKS clean guest ticks,
#                default 0; a PVH tick under swap takes ~80 s here) and
#                thrown away N times, one soak-<i> line each, its triple faults
#                counted (for trying XEN_CPU / XEN_ACCEL / XEN_XEN_ARGS /
#                XEN_PVH_CPUS against them; not part of make check-xen)
#   XEN_PVH_CPUS the PVH guest's xl.cfg cpus= (pin its vCPU), default unpinned
#   XEN_PVH_CPUID the PVH guest's xl.cfg cpuid=, default host,rdtscp=0 (see scenario.sh)
#   XEN_XEN_ARGS extra words for the Xen command line
#   KVER         Debian kernel ABI to boot, default 6.1.0-50-amd64
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: tests/xen/run.sh BUILD-DIR" >&2; exit 2; }
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "run.sh: build dir '$1' not found" >&2; exit 2; }
CACHE=$BUILD/xen-cache
RUN=$CACHE/run
LOG=$CACHE/serial.log
T0=$(date +%s.%N)
since() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1fs", b-a}'; }
stage() { printf '%-22s %s\n' "$1" "$2"; }

for t in qemu-system-x86_64 cpio dpkg-deb dpkg-buildpackage lintian apt-get depmod; do
    command -v $t >/dev/null || { echo "run.sh: $t missing (tools/install-deps.sh xen installs it)" >&2; exit 2; }
done

mkdir -p "$CACHE"
# The packages under test (built once per tree content), then the images.
DEBS=$("$SRC/tests/xen/debs.sh" "$CACHE") || { stage debs "FAILED $(since)"; exit 1; }
stage debs "ok $(since) $(cd "$DEBS" && ls ./*.deb | sed 's|^./||' | tr '\n' ' ')"
if ! "$SRC/tests/xen/build-images.sh" "$CACHE" "$DEBS" > "$CACHE/build-images.log" 2>&1; then
    stage images "FAILED $(since)"; tail -15 "$CACHE/build-images.log"; exit 1
fi
stage images "ok $(since)"

# Stage the run: the scenario and where dom0 finds things (the share is
# BUILD, mounted on /host in dom0; the memx programs are the packages'
# installed files in the dom0 image).
rm -rf "$RUN" && mkdir -p "$RUN"
cp "$SRC/tests/xen/scenario.sh" "$SRC/tests/xen/restarts.sh" "$SRC/tests/xen/tf-in-xen.sh" "$RUN/"
if [ "${XEN_XL_E:-1}" = 1 ]; then XL_E=-e; else XL_E=; fi
cat > "$RUN/env.sh" <<ENV
PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu
MEMXD=/usr/sbin/memx-memd
BACKD=/usr/sbin/memx-backd
MEMXCTL=/usr/bin/memxctl
KERNEL=/host/xen-cache/vmlinuz
RAMDISK=/host/xen-cache/guest-initrd.cpio
GUESTS="${XEN_GUESTS:-pv pvh}"
RESTARTS="${XEN_RESTARTS:-1}"
USERFRONT="${XEN_USERFRONT:-1}"
XL_E="$XL_E"
ONLY="${XEN_ONLY:-}"
CONTROL="${XEN_CONTROL:-}"
SOAK="${XEN_SOAK:-}"
SOAK_TICKS="${XEN_SOAK_TICKS:-0}"
PVH_CPUS="${XEN_PVH_CPUS:-}"
PVH_CPUID="${XEN_PVH_CPUID:-host,rdtscp=0}"
BACKD_LOG_LEVEL="${XEN_BACKD_LOG_LEVEL:-info}"
ENV

XEN_ARGS="dom0_mem=1280M,max:1280M dom0_max_vcpus=${XEN_SMP:-1} console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all ${XEN_XEN_ARGS:-}"
DOM0_ARGS="console=hvc0 earlyprintk=xen MEMX_RUN=xen-cache/run"
echo "qemu: -accel ${XEN_ACCEL:-tcg} -cpu ${XEN_CPU:-qemu64,+svm,+npt} -m ${XEN_MEM:-3G} -smp ${XEN_SMP:-1}, xl ${XL_E:-without -e}${XEN_XEN_ARGS:+, xen +\"$XEN_XEN_ARGS\"}; serial log $LOG"

# The filter timestamps every serial line into the log and prints stage lines,
# retries and failure dumps as they happen.
timeout "${XEN_TIMEOUT:-1800}" qemu-system-x86_64 -accel "${XEN_ACCEL:-tcg}" -cpu "${XEN_CPU:-qemu64,+svm,+npt}" \
    -m "${XEN_MEM:-3G}" -smp "${XEN_SMP:-1}" -display none -monitor none -serial stdio -no-reboot \
    -virtfs "local,path=$BUILD,mount_tag=hostshare,security_model=none,id=hostshare" \
    -kernel "$CACHE/xen" -append "$XEN_ARGS" \
    -initrd "$CACHE/vmlinuz $DOM0_ARGS,$CACHE/dom0-initrd.cpio" </dev/null 2>&1 \
  | perl -MTime::HiRes=time -e '
        $| = 1; $t0 = time; open(LOG, ">", $ARGV[0]) or die "$ARGV[0]: $!"; LOG->autoflush(1);
        while (<STDIN>) {
            s/\r//g; $t = time - $t0;
            printf LOG "[%8.2f] %s", $t, $_;
            if (/MEMX-STAGE (\S+) (ok|FAILED|retried) (\S+)\s*(.*)/) {
                $d = $3 eq "-" ? sprintf("%.1fs", $t) : $3;
                printf "%-22s %-6s %7s  %s\n", $1, $2, $d, $4;
            } elsif (/MEMX-RETRY (.*)/) { print "  retry: $1\n"; }
            elsif (/MEMX-(DUMP|TRIPLE)-BEGIN/) { $dump = 1; }
            elsif (/MEMX-(DUMP|TRIPLE)-END/) { $dump = 0; }
            elsif ($dump) { print "    | $_"; }
            elsif (/MEMX-XEN: done (.*)/) { print "dom0: $1\n"; }
            elsif (/MEMX-XEN: (?!stage )(.*)/) { print "  note: $1\n"; }
        }' "$LOG"
qrc=${PIPESTATUS[0]}

done_line=$(grep -a 'MEMX-XEN: done' "$LOG" | tail -1)
fails=$(grep -ac 'MEMX-STAGE [^ ]* FAILED' "$LOG")
if [ -z "$done_line" ]; then
    [ "$qrc" = 124 ] && why="timed out after ${XEN_TIMEOUT:-1800} s" || why="QEMU exited $qrc"
    stage harness "FAILED $(since): the scenario did not finish ($why); serial log tail:"
    grep -av 'MEMX-GUEST: tick' "$LOG" | tail -25 | sed 's/^/    | /'
    exit 1
fi
# retries: toolstack commands re-run after a dom0 segfault plus guest
# scenarios rerun after a proven emulator triple fault (each printed above).
counts=$(echo "$done_line" | grep -o 'retries=[0-9]* triple-faults=[0-9]* segfaults=[0-9]*')
if [ "$fails" -gt 0 ]; then
    echo "check-xen: $fails stage(s) FAILED in $(since), ${counts:-retries=?}; logs in $RUN/logs and $LOG"
    exit 1
fi
echo "check-xen: all stages ok in $(since), ${counts:-retries=?}"
