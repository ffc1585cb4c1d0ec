#!/bin/sh
# The two-host scenario (tests/xen/twohost.sh), run by each dom0's /init from
# the 9p share (busybox sh).  ROLE (env.sh) says which host this is.
#
# Both hosts run the MemX packages installed in their dom0 image: one
# memx-memd on their network address, memx-backd --platform real with both
# servers in its config (replicas 2, so every page
# has a copy on each host) and a command port (nc -ll -e twohost-peer.sh).
# Host A then drives everything: it runs commands on B over that port, creates
# the PVH guest (swap + raw data disk on MemX) on A, lets it swap, live-migrates
# it to B with `xl migrate -s twohost-xfer.sh` in place of ssh (the stream
# over the virtio-serial channel between the QEMUs to twohost-recv.sh, started
# on the destination first), checks it there, and migrates it back.  B only
# serves until A tells it the test is over.
# Each stage prints  MEMX-STAGE <name> ok|FAILED <seconds> [detail],  judged by
# real state: xl list and XenStore on both hosts, both backends' devices and
# logs, and the guest's own markers (its ticks, full verification passes and
# the pauses guest-gap.sh saw).  One thing only ends the run early for a
# rerun: the guest triple-faulted (Xen's log on either host says so: the
# emulator, tests/xen/README.md) while both backends and the guest were clean;
# the stage then says "retried" and twohost.sh boots both hosts once more.
R=$(cd "$(dirname "$0")" && pwd)
. "$R/env.sh"
. "$R/tf-in-xen.sh"
export PATH LD_LIBRARY_PATH
L=/tmp/w                             # scratch
G=$R/logs                            # this host's logs, on the share as they are written
PG=$SH/$PEER_ROLE/logs               # the peer's
CON=/var/log/xen/console
BLOG=$G/backd.log
GN=memx-pvh
FAILS=0; SN=; PEER_UP=; TRIPLES=0; RERUN=0; PROVEN=0; TF_WHY=
mkdir -p $L $G /etc/memx /run/memx /var/lib/xen/images /etc/xen/scripts

now() { cut -d' ' -f1 /proc/uptime; }
dur() { awk -v a="$ST" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }
begin() { SN=$1; ST=$(now); echo "MEMX-XEN: stage $SN begins"; }
ok() { echo "MEMX-STAGE $SN ok $(dur)${1:+ $*}"; }
failed() {
    if tf_judge; then echo "MEMX-STAGE $SN retried $(dur) $* [$TF_WHY]"; return 1; fi
    [ -n "$TF_WHY" ] && set -- "$*" "[$TF_WHY]"
    echo "MEMX-STAGE $SN FAILED $(dur) $*"; FAILS=$((FAILS+1))
    echo "MEMX-DUMP-BEGIN $SN"
    echo "--- guest console (tail, both hosts; I/O errors: $(glog | grep -c "$GUEST_IO_ERR"), first: $(glog | grep -m1 "$GUEST_IO_ERR")"
    glog | grep -v -e 'MEMX-GAP' -e "$GUEST_IO_ERR" -e 'Write-error on swap' -e 'callbacks suppressed' | tail -12
    echo "--- $ROLE memx-backd log: first warnings/errors"; grep -E ' (warn|error): ' $BLOG 2>/dev/null | head -6
    echo "--- $ROLE memx-backd log: servers down, pool errors, failed guest I/O (first)"; grep -E 'down \(|no memory server|failed: ' $BLOG 2>/dev/null | head -5
    echo "--- $ROLE memx-backd log: tail"; tail -10 $BLOG 2>/dev/null
    echo "--- $ROLE xl list"; xl list 2>&1
    if [ "$ROLE" = a ] && [ -n "$PEER_UP" ]; then
        echo "--- b memx-backd log: first warnings/errors"; grep -E ' (warn|error): ' $PG/backd.log | head -6
        echo "--- b memx-backd log: tail"; tail -10 $PG/backd.log
        echo "--- b xl list"; rb "xl list"
        echo "--- b migrate-receive"; tail -8 $PG/migrate-receive.log 2>/dev/null
    fi
    echo "--- $ROLE dom0 segfaults: $(dmesg | grep -c segfault)"
    echo "MEMX-DUMP-END"
    return 1
}
finish() {
    cp $CON/*.log $G/ 2>/dev/null
    dmesg > $G/dom0-dmesg.log
    xl dmesg -c >> $XLOG 2>/dev/null; kill $XDRAIN 2>/dev/null
    echo "MEMX-XEN: done failures=$FAILS triple-faults=$TRIPLES rerun=$RERUN proven=$PROVEN segfaults=$(dmesg | grep -c segfault)"
    exit 0
}
ctl() { "$MEMXCTL" --socket /run/memx/backd.sock "$@"; }
vbd() { xenstore-read "/local/domain/0/backend/vbd/$1/$2/$3" 2>/dev/null; }
# Run a command on the peer over its command port; its output on stdout, its
# exit status as ours (255: no answer).
RBN=0
rb() {
    RBN=$((RBN+1)); o=$L/rb.$RBN
    printf '%s\n' "$*" | nc -w 10 "$PEER_IP" "$CMD_PORT" > $o 2>&1
    rc=$(sed -n 's/^MEMX-RC \([0-9]*\)$/\1/p' $o | tail -1)
    grep -v '^MEMX-RC ' $o; rm -f $o
    return "${rc:-255}"
}

# Run a command on host $1 (here, or over the command port).
on() { h=$1; shift; if [ "$h" = "$ROLE" ]; then ( eval "$*" ); else rb "$*"; fi; }
# The domid of the guest on host $1, or nothing: xl's complaint that there
# is no such domain (stderr, which the command port returns too) is not one.
domid_on() { d=$(on $1 "xl domid $GN 2>/dev/null"); case $d in ''|*[!0-9]*) ;; *) echo "$d";; esac; }

# ---- the guest, wherever it runs: this host's console logs plus the peer's
# copy on the share (console-<role>.log, written by the peer's tail).
glog() { cat $CON/guest-$GN.log $CON/guest-$GN--incoming.log "$SH/console-$PEER_ROLE.log" 2>/dev/null; }
# Highest N of "MEMX-GUEST: <word> N ..." (or "MEMX-GAP N"), or 0.
lastnum() { n=$(glog | sed -n "s/.*MEMX-GUEST: $1 \([0-9]*\) .*/\1/p" | sort -n | tail -1); echo "${n:-0}"; }
lastgap() { n=$(glog | sed -n 's/.*MEMX-GAP \([0-9]*\) .*/\1/p' | sort -n | tail -1); echo "${n:-0}"; }
# Waits are by the clock: on a loaded machine every poll of this emulated
# dom0 is slow, so counting polls would stretch them.
deadline() { awk -v a="$(now)" -v s="$1" 'BEGIN{printf "%.0f", a + s}'; }
before() { awk -v d="$1" -v n="$(now)" 'BEGIN{exit !(n < d)}'; }
PANIC="Kernel panic - not syncing"
GUEST_IO_ERR="I/O error, dev xvd"
guest_broken() { # a panic, a failed I/O on a MemX disk or a triple fault, named; 1 if none
    tf_lines | head -1 > $L/broken.out
    [ -s $L/broken.out ] && { echo "Xen: $(cat $L/broken.out)"; return 0; }
    glog | grep -m1 -e "$PANIC" -e "$GUEST_IO_ERR" > $L/broken.out || return 1
    echo "guest: $(cat $L/broken.out)"
}

# ---- the PVH triple fault (the emulator's, tests/xen/README.md) ----
# Each host drains Xen's console ring into its logs on the share every 3 s, so
# host A sees the guest's triple fault on either host.  A host runs no domain
# but dom0 and this guest (or its incoming copy), so any d<N> with N > 0 is it.
XLOG=$G/xen.log
( while true; do xl dmesg -c >> $XLOG 2>/dev/null; sleep 3; done ) &
XDRAIN=$!
TF_RE=' d[1-9][0-9]*v[0-9]* Triple fault'
tf_lines() { grep -ah "$TF_RE" $XLOG $PG/xen.log 2>/dev/null; }
# Failed guest requests of the guest's volumes in one host's `memxctl --json
# stats` (on stdin; pretty-printed, so one volume object per line once the
# newlines are gone).
vol_errors() { tr -d '\n' | tr '{}' '\n\n' | grep "\"$GN-" | sed -n 's/.*"errors": *\([0-9]*\).*/\1/p' | awk '{s+=$1} END{print s+0}'; }
# Called by failed() on host A: 0 when the guest triple-faulted and neither
# backend failed one of its requests or logged an error for its volumes, and
# the guest saw no I/O error or bad data before the fault: then the run is
# the emulator's to rerun (RERUN=1; PROVEN=1 when Xen's dump shows the vCPU
# holding Xen's own state, tf_in_xen, or the guest died at boot before its
# blkfront connected: twohost.sh reruns once on the first,
# twice only with the second, and keeps count).  Prints the
# evidence either way; TF_WHY says what was found.  The migration's own
# warnings (a source told another backend took the volume) are shown, not
# judged: they are the fencing the test wants.
tf_judge() {
    TF_WHY=
    [ "$ROLE" = a ] || return 1
    xl dmesg -c >> $XLOG 2>/dev/null
    [ -n "$PEER_UP" ] && rb 'xl dmesg -c >> $L/xen.log' > /dev/null 2>&1
    tf_lines > $L/tf.out
    [ -s $L/tf.out ] || return 1
    TRIPLES=$((TRIPLES+1))
    echo "MEMX-DUMP-BEGIN $SN"
    echo "--- Xen: the guest's triple fault"
    for f in $XLOG $PG/xen.log; do
        grep -aq "$TF_RE" "$f" 2>/dev/null || continue
        echo "  ($f)"; grep -a -A14 "$TF_RE" "$f" | head -20
    done
    for h in a b; do
        d=$(domid_on $h)
        [ -n "$d" ] && { echo "--- xenctx on $h, domain $d (the guest's registers)"; on $h "timeout 20 xenctx -a $d 0 2>&1 | head -24"; }
    done
    ea=$(ctl --json stats 2>&1 | vol_errors); eb=0
    [ -n "$PEER_UP" ] && eb=$(rb "ctl --json stats" 2>&1 | vol_errors)
    echo "--- failed requests of $GN's volumes: A $ea, B $eb"
    bad=$(grep -h ' error: ' $BLOG $PG/backd.log 2>/dev/null | grep "$GN-" | head -4)
    echo "--- memx-backd errors for $GN: ${bad:-none}; warnings: $(grep -h ' warn: ' $BLOG $PG/backd.log 2>/dev/null | grep -c "$GN-")"
    grep -h ' warn: ' $BLOG $PG/backd.log 2>/dev/null | grep "$GN-" | head -3
    gbad=$(glog | grep -E "MEMX-GUEST: .*(MISMATCH|READFAIL|FAILED)|$GUEST_IO_ERR|$PANIC" | head -3)
    echo "--- guest markers of trouble before the fault: ${gbad:-none}"
    sig=$(for f in $XLOG $PG/xen.log; do grep -a -A14 "$TF_RE" "$f" 2>/dev/null; done | tf_in_xen)
    if [ -z "$sig" ] && [ "$SN" = pvh-create -o "$SN" = pvh-connect ] && ! glog | grep -q 'blkfront: xvd'; then
        sig="the guest died before MemX served it (no blkfront line on its console)"; fi
    echo "--- proof beyond clean backends: ${sig:-none}"
    echo "MEMX-DUMP-END"
    if [ "$ea" != 0 ] || [ "$eb" != 0 ] || [ -n "$bad" ] || [ -n "$gbad" ]; then
        TF_WHY="triple fault, but a backend or the guest was not clean (failed requests A $ea, B $eb): not rerun"; return 1; fi
    TF_WHY="triple fault (emulator: both backends clean, no guest I/O error or bad data${sig:+; $sig}): both hosts rerun"
    RERUN=1; [ -n "$sig" ] && PROVEN=1
    return 0
}
gwait() { # pattern seconds [bad-pattern]
    dl=$(deadline "$2"); while before "$dl"; do
        glog | grep -q "$1" && return 0
        [ -n "$3" ] && glog | grep -q "$3" && return 1
        guest_broken && return 1
        sleep 1
    done; return 1
}
ticks_ok_after() { # tick seconds: a tick newer than $1 came, and every tick since $1 is clean
    t=$1; dl=$(deadline "$2")
    while [ "$(lastnum tick)" -le "$t" ]; do
        guest_broken && return 1
        before "$dl" || { echo "no guest tick after tick $t within $2 s"; return 1; }
        sleep 1
    done
    guest_broken && return 1
    set -- $(glog | awk -v t="$t" '/MEMX-GUEST: tick /{ n++; if ($3 + 0 <= t || ($4 == "chunks=ok" && $5 == "raw=ok")) g++ } END{print n+0, g+0}')
    [ "${1:-0}" -gt 0 ] && [ "$1" = "${2:-x}" ] && return 0
    echo "guest reported: $(glog | awk -v t="$t" '/MEMX-GUEST: tick /{ if ($3 + 0 > t && ($4 != "chunks=ok" || $5 != "raw=ok")) print }' | head -3)"
    return 1
}
pass_ok_after() { # pass seconds: the next full pass over the swapped chunks is clean
    want=$(($1 + 1))
    gwait "MEMX-GUEST: pass $want " "$2" > $L/gwait.out || { echo "no full verification pass $want within $2 s $(cat $L/gwait.out)"; return 1; }
    glog | grep -q "MEMX-GUEST: pass $want ok" || { echo "pass $want: $(glog | grep "MEMX-GUEST: pass $want " | head -1)"; return 1; }
}
# The longest pause the guest saw in gap lines ($1, $2]: "<ms> (<n> pauses >= 0.5 s)".
pause_between() {
    glog | awk -v lo="$1" -v hi="$2" '/MEMX-GAP [0-9]+ [0-9]+ms/{ for (i = 1; i < NF; i++) if ($i == "MEMX-GAP") break;
        s = $(i+1) + 0; ms = $(i+2) + 0; if (s > lo && s <= hi && !(s in seen)) { seen[s] = 1; n++; if (ms > m) m = ms } }
        END{ printf "%d ms (%d pauses >= 0.5 s)", m, n }'
}

# ---------------------------------------------------------------- both hosts
begin $ROLE-libs
# The packages' installed files (build-images.sh put them in the dom0 image).
miss=
for f in /etc/memx/memx.conf /etc/xen/scripts/block-memx /etc/memx-check/installed; do
    [ -f "$f" ] || miss="$miss $f:not-installed"; done
for b in "$MEMXD" "$BACKD" "$MEMXCTL"; do
    if [ ! -x "$b" ]; then miss="$miss $b:not-installed"
    elif ! "$b" --help > $L/help.out 2>&1; then miss="$miss $(basename "$b"):--help-rc=$?"; fi
done
if [ -n "$miss" ]; then failed "missing binaries or libraries:$miss"; finish; fi
ok "installed: $(tr ' ' '=' < /etc/memx-check/installed | tr '\n' ' ')"

begin $ROLE-net
i=0; while [ $i -lt 60 ] && ! ping -c 1 -W 2 "$PEER_IP" > $L/ping.out 2>&1; do sleep 1; i=$((i+1)); done
if grep -q ' 0% packet loss' $L/ping.out; then ok "eth0 $MY_IP, peer $PEER_IP: $(grep -o 'time=[0-9.]* ms' $L/ping.out | head -1)"
else failed "peer $PEER_IP unreachable from $MY_IP: $(ifconfig eth0 2>&1 | head -2 | tr '\n' ' ') $(tail -2 $L/ping.out)"; finish; fi

# Both dom0 clocks come from their QEMU's RTC; twohost.sh compares each with
# the host's clock as this line goes by on the serial port.
adjtimex | awk '/tv_sec/{s=$2} /tv_usec/{u=$2} END{printf "MEMX-CLOCK %d.%06d\n", s, u}'

begin $ROLE-memd
cp "$SH/cluster.key" /etc/memx/cluster.key && chmod 600 /etc/memx/cluster.key
# The test's own config, given with --config; the package's memx.conf stays as installed.
CONF=/etc/memx/check-xen.conf
cat > $CONF <<CONF
[cluster]
key_file = /etc/memx/cluster.key
provider = tcp;ofi_rxm
servers = $IP_A:$MEMD_PORT, $IP_B:$MEMD_PORT
replicas = 2
slab_size = 4M
[backend]
platform = real
device_type = vbd
node_id = backd@host-$ROLE
control_socket = /run/memx/backd.sock
log_level = ${BACKD_LOG_LEVEL:-info}
[memserver]
capacity = 256M
CONF
"$MEMXD" --config $CONF --listen "$MY_IP:$MEMD_PORT" > $G/memd.log 2>&1 &
MPID=$!
i=0; while [ $i -lt 40 ] && ! netstat -ltn 2>/dev/null | grep -q "$MY_IP:$MEMD_PORT "; do sleep 0.5; i=$((i+1)); done
if netstat -ltn 2>/dev/null | grep -q "$MY_IP:$MEMD_PORT "; then ok "$MY_IP:$MEMD_PORT"
else failed "memory server not listening: $(tail -3 $G/memd.log)"; finish; fi

begin $ROLE-backd
"$BACKD" --config $CONF --platform real > $BLOG 2>&1 &
BPID=$!
i=0; while [ $i -lt 60 ] && ! ctl status > $L/status.out 2>&1; do kill -0 $BPID 2>/dev/null || break; sleep 0.5; i=$((i+1)); done
if ctl status > $L/status.out 2>&1; then ok "node backd@host-$ROLE"
else failed "memx-backd not serving: $(tail -3 $L/status.out)"; finish; fi

cp "$KERNEL" /var/lib/xen/images/vmlinuz && cp "$RAMDISK" /var/lib/xen/images/guest-initrd.cpio
# This host's guest console, to the serial log and to the share for the peer.
: > "$SH/console-$ROLE.log"
tail -n +1 -F $CON/guest-$GN.log $CON/guest-$GN--incoming.log 2>/dev/null | tee -a "$SH/console-$ROLE.log" > /dev/console &
begin $ROLE-listen
nc -ll -p "$CMD_PORT" -e "$R/twohost-peer.sh" 2>> $G/peer.log &
i=0; while [ $i -lt 20 ] && ! netstat -ltn 2>/dev/null | grep -q ":$CMD_PORT "; do sleep 0.5; i=$((i+1)); done
if netstat -ltn 2>/dev/null | grep -q ":$CMD_PORT "; then ok "command port $CMD_PORT"
else failed "nc -ll -p $CMD_PORT not listening"; finish; fi

stop_daemons() {
    begin $ROLE-backd-stop
    kill -TERM $BPID
    i=0; while kill -0 $BPID 2>/dev/null && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
    if kill -0 $BPID 2>/dev/null; then failed "memx-backd still running 10 s after SIGTERM"; else ok; fi
    kill -TERM $MPID 2>/dev/null
}

# ---------------------------------------------------------------- host B
if [ "$ROLE" = b ]; then
    # A ends the test with `touch /run/memx/twohost-done` over the command port.
    i=0; while [ ! -f /run/memx/twohost-done ] && [ $i -lt "${PEER_WAIT:-1500}" ]; do sleep 1; i=$((i+1)); done
    [ -f /run/memx/twohost-done ] || echo "MEMX-XEN: host A never said done; stopping after ${PEER_WAIT:-1500} s"
    stop_daemons
    finish
fi

# ---------------------------------------------------------------- host A
end_b() { [ -n "$PEER_UP" ] && rb "touch /run/memx/twohost-done" > /dev/null; }
bail() { xl destroy $GN >/dev/null 2>&1; [ -n "$PEER_UP" ] && rb "xl destroy $GN; xl destroy $GN--incoming" >/dev/null 2>&1; end_b; stop_daemons; finish; }

begin peer
i=0; while [ $i -lt 120 ] && ! rb "ctl status" > $L/peer-status.out 2>&1; do sleep 1; i=$((i+1)); done
rb "ctl status" > $L/peer-status.out 2>&1 || { failed "host B's command port or backend does not answer: $(tail -2 $L/peer-status.out)"; bail; }
PEER_UP=1
ok "host B answers"

begin pool
# Both backends reach both memory servers.
dl=$(deadline 300); while :; do
    na=$(ctl pool 2>&1 | grep -cE "^($IP_A|$IP_B):$MEMD_PORT .* up ")
    nb=$(rb "ctl pool" 2>&1 | grep -cE "^($IP_A|$IP_B):$MEMD_PORT .* up ")
    [ "$na" = 2 ] && [ "$nb" = 2 ] && break
    before "$dl" || break
    sleep 5
done
if [ "$na" = 2 ] && [ "$nb" = 2 ]; then ok "backends on A and B: 2 of 2 servers up"
else failed "servers up: A sees $na, B sees $nb: A: $(ctl pool 2>&1 | head -3 | tr '\n' ';') B: $(rb 'ctl pool' 2>&1 | head -3 | tr '\n' ';')"; bail; fi

# The migration channel (twohost-port.sh): start the receiver on host $1 and
# wait until it holds its port open; 1 (with the reason) if it does not.
recv_start() {
    on $1 "rm -f /run/memx/mig-recv; \$R/twohost-recv.sh < /dev/null > /dev/null 2>&1 & echo \$! > /run/memx/mig-recv.pid" > /dev/null 2>&1
    dl=$(deadline 30); while before "$dl"; do
        case $(on $1 "cat /run/memx/mig-recv 2>/dev/null") in waiting*) return 0;; esac
        sleep 1
    done
    echo "host $1's twohost-recv.sh not waiting on its port: $(on $1 'cat /run/memx/mig-recv 2>&1; tail -2 $R/logs/recv.log 2>&1' | tr '\n' ' ')"
    return 1
}
recv_stop() { on $1 "kill \$(cat /run/memx/mig-recv.pid 2>/dev/null) 2>/dev/null" > /dev/null 2>&1; }

begin link
# What a stream from A's dom0 to B's can get: 4 MiB through busybox nc over
# the emulated network (the command port's path), and 16 MiB over the
# virtio-serial channel the migrations use.
t1=$(now)
if { echo sink; dd if=/dev/zero bs=64k count=64 2>/dev/null; } | nc "$PEER_IP" "$CMD_PORT" > $L/sink.out 2>&1; then
    netr=$(awk -v a="$t1" -v b="$(now)" 'BEGIN{printf "nc over the network: 4 MiB in %.1f s, %.2f MiB/s", b - a, 4 / (b - a)}')
    if recv_start b > $L/why; then
        t1=$(now)
        if timeout 300 "$R/twohost-xfer.sh" --sink 16 > $L/sink.out 2>&1; then
            ok "$netr; virtio-serial: $(awk -v a="$t1" -v b="$(now)" 'BEGIN{printf "16 MiB in %.1f s, %.2f MiB/s", b - a, 16 / (b - a)}')"
        else recv_stop b; failed "16 MiB over the virtio-serial channel: $(cat $L/sink.out) (B: $(rb 'cat /run/memx/mig-recv'))"; bail; fi
    else failed "$(cat $L/why)"; bail; fi
else failed "nc to $PEER_IP:$CMD_PORT: $(cat $L/sink.out)"; fi

XVDB=51728; XVDC=51744
disk() { echo "'vdev=$1, access=rw, backendtype=phy, script=block-memx, target=memx:$2'"; }
cat > /tmp/$GN.cfg <<CFG
name = "$GN"
type = "pvh"
kernel = "/var/lib/xen/images/vmlinuz"
ramdisk = "/var/lib/xen/images/guest-initrd.cpio"
extra = "console=hvc0 MEMX_CHUNKS=${GUEST_CHUNKS:-64} MEMX_PER_TICK=16"
memory = ${GUEST_MEM:-128}
vcpus = 1
on_crash = "preserve"
disk = [ $(disk xvdb $GN-swap:64M), $(disk xvdc $GN-data:16M) ]
tsc_mode = "native"
cpuid = "$PVH_CPUID"
CFG

begin pvh-create
xl create $XL_E /tmp/$GN.cfg > $G/xl-create.log 2>&1 || { failed "xl create: $(grep -vE 'debug:|progress:' $G/xl-create.log | tail -5)"; bail; }
D=$(xl domid $GN 2>/dev/null)
[ -n "$D" ] || { failed "$GN not in xl list after xl create"; bail; }
ok "on A, domid $D"

begin pvh-connect
for dev in $XVDB $XVDC; do
    i=0; while [ $i -lt 90 ] && [ "$(vbd $D $dev state)" != 4 ]; do sleep 1; i=$((i+1)); done
    [ "$(vbd $D $dev state)" = 4 ] || { failed "A backend vbd/$D/$dev state=$(vbd $D $dev state) (want 4)"; bail; }
done
gwait "MEMX-GUEST: swapon ok" 90 "MEMX-GUEST: swapon FAILED\|MEMX-GUEST: xvd. MISSING" > $L/why || { failed "guest: disks or swapon $(cat $L/why)"; bail; }
gwait "MEMX-GUEST: raw write ok" 60 "MEMX-GUEST: raw write [A-Z]" > $L/why || { failed "guest: raw pattern on xvdc $(cat $L/why)"; bail; }
ok "xvdb swap on, xvdc raw pattern written"

begin pvh-swapout
gwait "MEMX-GUEST: fill done" 300 > $L/why || { failed "guest did not finish filling memory $(cat $L/why)"; bail; }
used=$(glog | sed -n 's/.*fill done.*swapused=\([0-9]*\)kB.*/\1/p' | tail -1)
[ "${used:-0}" -ge 8192 ] || { failed "only ${used:-0} kB went to swap"; bail; }
ok "$((used / 1024)) MiB in swap"

begin pvh-verify
pass_ok_after 0 300 > $L/why || { failed "$(cat $L/why)"; bail; }
ticks_ok_after 0 30 > $L/why || { failed "$(cat $L/why)"; bail; }
ok "all ${GUEST_CHUNKS:-64} MiB re-read from swap on A, raw pattern intact"

# Epochs this host's log shows for a volume: "E1 E2 ...".
epochs() { sed -n "s/.*volume $1: claimed with epoch \([0-9]*\) .*/\1/p" "$2" | tr '\n' ' '; }
# migrate FROM TO: the guest leaves FROM's dom0 and runs on TO's.
# Each command runs on the host named (here, or over the command port); every
# check names that host.
migrate() {
    F=$1; T=$2; TIP=$3
    begin migrate-$F$T
    t0=$(lastnum tick); p0=$(lastnum pass)
    DF=$(domid_on $F)
    [ -n "$DF" ] || { failed "$GN not running on $F"; return 1; }
    on $F "ctl devices" > $L/devs-before.out 2>&1
    recv_start $T > $L/why || { failed "$(cat $L/why)"; return 1; }
    # xl runs "twohost-xfer.sh <host> xl migrate-receive ..." and speaks the
    # migration protocol over its stdin/stdout: the virtio-serial channel to
    # the receiver just started on $T.  Bounded: a stalled channel fails the
    # stage instead of running into the QEMU timeout.
    tm=$(now); gm=$(lastgap)
    on $F "timeout 900 xl migrate -e -s \$R/twohost-xfer.sh $GN $TIP > $SH/$F/logs/xl-migrate-$F$T.log 2>&1; rc=\$?; grep -vE 'debug:|progress:' $SH/$F/logs/xl-migrate-$F$T.log | tail -4; exit \$rc" > $L/mig.out 2>&1 \
        || { recv_stop $T; failed "xl migrate on $F to $TIP: $(tr '\n' ' ' < $L/mig.out) (receiver on $T: $(on $T 'cat /run/memx/mig-recv; tail -4 $R/logs/migrate-receive.log' | tr '\n' ' '))"; return 1; }
    MS=$(awk -v a="$tm" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}')
    DT=$(domid_on $T)
    [ -n "$DT" ] || { failed "after xl migrate: $GN not running on $T ($T: $(on $T 'xl list' | tail -n +2 | awk '{print $1"/"$2}' | tr '\n' ' '))"; return 1; }
    [ -z "$(domid_on $F)" ] || { failed "$GN still on $F after migrating"; return 1; }
    # Destination: devices connected, volumes attached by name there.
    for dev in $XVDB $XVDC; do
        on $T "i=0; while [ \$i -lt 90 ] && [ \"\$(vbd $DT $dev state)\" != 4 ]; do sleep 1; i=\$((i+1)); done; vbd $DT $dev state" > $L/st.out 2>&1
        [ "$(cat $L/st.out)" = 4 ] || { failed "$T backend vbd/$DT/$dev state=$(cat $L/st.out) (want 4)"; return 1; }
    done
    # The guest prints its pause once it runs again on $T; its console line
    # takes a moment to get here.  Pauses up to now are the migration's; the
    # longest one before it began is the emulator's noise, for comparison.
    sleep 3; g1=$(lastgap)
    PZ="guest pause $(pause_between "$gm" "$g1") during xl migrate and reconnect, longest before: $(pause_between 0 "$gm" | sed 's/ (.*//')"
    on $T "ctl devices" > $L/devs-$T.out 2>&1
    for v in swap data; do
        grep -qE "^ *$DT .* $GN-$v " $L/devs-$T.out || { failed "$T memxctl devices has no $GN-$v for domain $DT: $(tr -s ' ' < $L/devs-$T.out | tr '\n' ';')"; return 1; }
    done
    cp $SH/$T/logs/backd.log $L/blog-$T.out; cp $SH/$F/logs/backd.log $L/blog-$F.out
    ef=$(epochs $GN-swap $L/blog-$F.out); et=$(epochs $GN-swap $L/blog-$T.out)
    lf=${ef% }; lf=${lf##* }; lt=${et% }; lt=${lt##* }
    [ -n "$lt" ] && [ -n "$lf" ] && [ "$lt" -gt "$lf" ] || { failed "$GN-swap: $T's claim epochs [$et] not above $F's [$ef]"; return 1; }
    # Source: the domain's devices gone, and its backend holds nothing of the volumes.
    on $F "i=0; while [ \$i -lt 30 ] && xenstore-exists /local/domain/0/backend/vbd/$DF; do sleep 1; i=\$((i+1)); done; xenstore-exists /local/domain/0/backend/vbd/$DF && echo left" > $L/gone.out 2>&1
    [ -s $L/gone.out ] && { failed "$F: backend/vbd/$DF still in XenStore"; return 1; }
    i=0; while [ $i -lt 20 ]; do
        on $F "ctl devices" > $L/devs-$F.out 2>&1
        grep -q "$GN-" $L/devs-$F.out || break
        sleep 1; i=$((i+1))
    done
    grep -q "$GN-" $L/devs-$F.out && { failed "$F memxctl devices still shows: $(grep "$GN-" $L/devs-$F.out | tr -s ' ' | tr '\n' ';')"; return 1; }
    on $F "ctl volumes" > $L/vols-$F.out 2>&1
    grep -E "^$GN-(swap|data) " $L/vols-$F.out | grep -qv '(detached)' && { failed "$F memxctl volumes still owns: $(grep -E "^$GN-" $L/vols-$F.out | tr -s ' ' | tr '\n' ';')"; return 1; }
    fenced=$(grep -ch 'fenced off volume' $SH/$F/logs/memd.log 2>/dev/null)
    # Guest: every tick since clean, then a full pass over the swapped chunks.
    ticks_ok_after "$t0" 120 > $L/why || { failed "$(cat $L/why)"; return 1; }
    pass_ok_after "$p0" 300 > $L/why || { failed "$(cat $L/why)"; return 1; }
    ok "domid $DF on $F -> $DT on $T, xl migrate $MS; $PZ; $GN-swap epoch $lf -> $lt, $F holds no device of it; all swapped pages and the raw pattern verified on $T"
    echo "MEMX-XEN: migrate-$F$T: $F's memd refused $F's old-epoch records ${fenced:-?} time(s); $T's log: $(grep -E "volume $GN-(swap|data): (claimed|loaded)" $L/blog-$T.out | tail -4 | sed 's/.*volume /volume /' | tr '\n' ';')"
}

migrate a b "$IP_B" || bail
migrate b a "$IP_A" || bail

begin pvh-destroy
D=$(xl domid $GN 2>/dev/null)
xl destroy $GN > $G/xl-destroy.log 2>&1 || { failed "xl destroy: $(tail -3 $G/xl-destroy.log)"; bail; }
i=0; while [ $i -lt 30 ] && xenstore-exists /local/domain/0/backend/vbd/$D 2>/dev/null; do sleep 1; i=$((i+1)); done
xenstore-exists /local/domain/0/backend/vbd/$D 2>/dev/null && { failed "backend devices of $D left behind"; bail; }
i=0; n=0; while [ $i -lt 20 ]; do
    ctl volumes > $L/volumes.out 2>&1 && n=$(grep -E "^$GN-(swap|data) " $L/volumes.out | grep -c '(detached)')
    [ "$n" = 2 ] && break; sleep 1; i=$((i+1))
done
[ "$n" = 2 ] || { failed "memxctl volumes after destroy: $(grep -E "$GN-" $L/volumes.out | tr -s ' ' | tr '\n' ';')"; bail; }
for v in swap data; do ctl volume delete $GN-$v >> $G/ctl.log 2>&1 || { failed "memxctl volume delete $GN-$v: $(tail -1 $G/ctl.log)"; bail; }; done
ok "volumes detached, then deleted"

end_b
stop_daemons
finish
