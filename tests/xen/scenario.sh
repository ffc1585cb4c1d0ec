#!/bin/sh
# The real-Xen scenario, run by dom0's /init from the 9p share (busybox sh).
#
# Starts two memx-memd and memx-backd (--platform real), then for each guest
# type creates a guest whose disks are MemX volumes (xl.cfg disk lines with
# script=block-memx) and walks it through swap, save/restore, migrate (PVH),
# block-attach/detach and destroy.  Each stage prints
#     MEMX-STAGE <name> ok|FAILED <seconds> [detail]
# judged by real state: xl list, the backend's XenStore state, the guest's own
# markers.  A toolstack command is retried once only when a dom0 process
# segfaulted while it ran (QEMU-TCG flake, see shared/xenlab/REPORT.md §6b) and
# the state it should have produced is absent; every retry prints MEMX-RETRY.
# A MemX failure (backend state, guest data) is never retried.
R=$(cd "$(dirname "$0")" && pwd)
. "$R/env.sh"
export PATH LD_LIBRARY_PATH
L=/var/log/memx                      # dom0 tmpfs; copied to $R/logs at the end
CON=/var/log/xen/console
BLOG=$L/backd.log
FAILS=0; RETRIES=0; SN=; GN=
mkdir -p $L /etc/memx /run/memx /var/lib/xen/save

now() { cut -d' ' -f1 /proc/uptime; }
dur() { awk -v a="$ST" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }
begin() { SN=$1; ST=$(now); echo "MEMX-XEN: stage $SN begins"; }
ok() { echo "MEMX-STAGE $SN ok $(dur)${1:+ $*}"; }
failed() {
    echo "MEMX-STAGE $SN FAILED $(dur) $*"; FAILS=$((FAILS+1))
    echo "MEMX-DUMP-BEGIN $SN"
    if [ -n "$GN" ]; then echo "--- guest $GN console (tail)"; glog | tail -25; fi
    # A failing pool logs once per page: the first complaints name the cause.
    echo "--- memx-backd log: first warnings/errors"; grep -E ' (warn|error): ' $BLOG 2>/dev/null | head -8
    echo "--- memx-backd log: tail"; tail -12 $BLOG 2>/dev/null
    echo "--- memx-memd logs: first warnings/errors"; grep -hE ' (warn|error): ' $L/memd-*.log 2>/dev/null | head -6
    echo "--- xl list"; xl list 2>&1
    echo "--- backend XenStore"; xenstore-ls -f /local/domain/0/backend 2>/dev/null | grep -vE '/(frontend|script|removable|bootable|device-type|specification|discard-enable|dev|type|mode|frontend-id|online)=' | tail -25
    echo "--- dom0 segfaults: $(segfaults)"; dmesg | grep segfault | tail -3
    echo "MEMX-DUMP-END"
    return 1
}
retry_note() { echo "MEMX-RETRY $SN: $*"; }
segfaults() { dmesg | grep -c segfault; }

# ---- guest console and state ----
# Polls run few processes, once a second: every fork in this emulated dom0 is
# a chance for the segfault flake to hit the harness itself.
glogs() { echo "$CON/guest-$GN.log $CON/guest-$GN--incoming.log"; }
glog() { cat $(glogs) 2>/dev/null; }
# Highest N of "MEMX-GUEST: <word> N ...", or 0.
lastnum() { n=$(sed -n "s/.*MEMX-GUEST: $1 \([0-9]*\) .*/\1/p" $(glogs) 2>/dev/null | tail -1); echo "${n:-0}"; }
PANIC="Kernel panic - not syncing"
gwait() { # pattern seconds [bad-pattern]: 0 when seen, 1 on timeout, bad pattern or guest panic
    i=0; while [ $i -lt "$2" ]; do
        grep -qh "$1" $(glogs) 2>/dev/null && return 0
        [ -n "$3" ] && grep -qh "$3" $(glogs) 2>/dev/null && return 1
        grep -qh "$PANIC" $(glogs) 2>/dev/null && { echo "guest kernel panicked"; return 1; }
        sleep 1; i=$((i+1))
    done; return 1
}
domid() { xl domid "$1" 2>/dev/null; }
vbd() { xenstore-read "/local/domain/0/backend/vbd/$1/$2/$3" 2>/dev/null; }
state_wait() { # domid devid state seconds
    i=0; while [ $i -lt "$4" ]; do [ "$(vbd "$1" "$2" state)" = "$3" ] && return 0; sleep 1; i=$((i+1)); done; return 1
}
gone_wait() { # xenstore path seconds
    i=0; while [ $i -lt "$2" ]; do xenstore-exists "$1" 2>/dev/null || return 0; sleep 1; i=$((i+1)); done; return 1
}
# The guest keeps ticking after an operation: wait for a tick newer than $1 and
# require every tick since $1 to be clean.
ticks_ok_after() { # tick seconds
    t=$1
    i=0; while [ "$(lastnum tick)" -le "$t" ]; do
        grep -qh "$PANIC" $(glogs) 2>/dev/null && { echo "guest kernel panicked"; return 1; }
        sleep 1; i=$((i+1)); [ $i -ge "$2" ] && { echo "no guest tick after tick $t within $2 s"; return 1; }
    done
    # One snapshot, counted both ways: the guest keeps writing, and a crashed
    # awk (empty output) must not pass for a clean run.
    set -- $(cat $(glogs) 2>/dev/null | awk -v t="$t" '/MEMX-GUEST: tick /{ n++; if ($3 + 0 <= t || ($4 == "chunks=ok" && $5 == "raw=ok")) g++ } END{print n+0, g+0}')
    [ "${1:-0}" -gt 0 ] && [ "$1" = "${2:-x}" ] && return 0
    echo "guest reported: $(glog | awk -v t="$t" '/MEMX-GUEST: tick /{ if ($3 + 0 > t && ($4 != "chunks=ok" || $5 != "raw=ok")) print }' | head -3)"
    return 1
}
pass_ok_after() { # pass seconds: the next full pass over the swapped chunks is clean
    want=$(($1 + 1))
    gwait "MEMX-GUEST: pass $want " "$2" > $L/gwait.out || { echo "no full verification pass $want within $2 s $(cat $L/gwait.out)"; return 1; }
    glog | grep -q "MEMX-GUEST: pass $want ok" || { echo "pass $want: $(glog | grep "MEMX-GUEST: pass $want ")"; return 1; }
}

# xl with the flake policy.  $1: a shell function telling whether the state the
# command should produce is there; $2: one run before the retry (cleanup).
xlrun() {
    chk=$1; pre=$2; shift 2
    sf0=$(segfaults)
    echo "# $*" >> $L/xl.log
    "$@" > $L/xl.out 2>&1; rc=$?
    cat $L/xl.out >> $L/xl.log
    [ $rc = 0 ] && return 0
    if [ "$(segfaults)" -gt "$sf0" ]; then
        RETRIES=$((RETRIES+1))
        retry_note "'$*' rc=$rc while a dom0 process segfaulted: $(dmesg | grep segfault | tail -1 | cut -c1-120)"
        if $chk; then retry_note "the resulting state is correct; not re-run"; return 0; fi
        retry_note "state not reached; running it once more"
        $pre
        sf0=$(segfaults)
        "$@" > $L/xl.out 2>&1; rc=$?
        cat $L/xl.out >> $L/xl.log
        [ $rc != 0 ] && [ "$(segfaults)" -gt "$sf0" ] && retry_note "segfaulted again (rc=$rc)"
        [ $rc = 0 ] && return 0
    fi
    echo "xl rc=$rc:"; grep -vE 'debug:|progress:' $L/xl.out | tail -12
    return $rc
}
nothing() { :; }
finish() {
    mkdir -p "$R/logs"
    cp $L/*.log $CON/*.log "$R/logs/" 2>/dev/null
    dmesg > "$R/logs/dom0-dmesg.log"
    echo "MEMX-XEN: done failures=$FAILS retries=$RETRIES segfaults=$(segfaults)"
    exit 0
}

# ---------------------------------------------------------------- control run
# CONTROL=blkback: the same guest stages against the kernel's xen-blkback and
# loop devices, to tell a harness or Xen-under-QEMU problem from a MemX one.
if [ "$CONTROL" = blkback ]; then
    K=/lib/modules/$(uname -r)/kernel
    insmod $K/drivers/block/loop.ko; insmod $K/drivers/block/xen-blkback/xen-blkback.ko
    mkdir -p /etc/xen/scripts /vol
    cat > /etc/xen/scripts/block <<'BLK'
#!/bin/sh
[ "$1" = add ] || exit 0
dev=$(xenstore-read "$XENBUS_PATH/params")
xenstore-write "$XENBUS_PATH/physical-device" "$(stat -L -c '%t:%T' "$dev")" "$XENBUS_PATH/physical-device-path" "$dev"
xenstore-write "$XENBUS_PATH/hotplug-status" connected
BLK
    chmod 755 /etc/xen/scripts/block
    disk() { # vdev name:size -> a loop device per volume name, kept across save/restore
        n=${2%%:*}; sz=${2#*:}
        if [ ! -f /vol/$n.dev ]; then
            dd if=/dev/zero of=/vol/$n.img bs=1M count=0 seek=${sz%M} 2>/dev/null
            losetup -f > /vol/$n.dev; losetup "$(cat /vol/$n.dev)" /vol/$n.img
        fi
        echo "'vdev=$1, access=rw, target=$(cat /vol/$n.dev)'"
    }
    ctl() { echo "control run: no memx-backd"; }
    BPID=
else
# ---------------------------------------------------------------- daemons
begin libs
miss=
for b in "$MEMXD" "$BACKD" "$MEMXCTL"; do
    if [ ! -x "$b" ]; then miss="$miss $(basename "$b"):not-built"
    else nf=$(/lib64/ld-linux-x86-64.so.2 --list "$b" 2>&1 | grep 'not found' | awk '{print $1}' | tr '\n' ' ')
         if [ -n "$nf" ]; then miss="$miss $(basename "$b"):[$nf]"
         elif ! "$b" --help > $L/help.out 2>&1; then miss="$miss $(basename "$b"):--help-rc=$?"; fi
    fi
done
if [ -n "$miss" ]; then failed "missing binaries or libraries:$miss"; else ok; fi
if [ -n "$miss" ] || [ "$ONLY" = dom0 ]; then finish; fi

begin memd
"$MEMXCTL" keygen /etc/memx/cluster.key > $L/keygen.out 2>&1 || { failed "memxctl keygen: $(cat $L/keygen.out)"; finish; }
cat > /etc/memx/memx.conf <<CONF
[cluster]
key_file = /etc/memx/cluster.key
provider = tcp;ofi_rxm
servers = 127.0.0.1:7481, 127.0.0.1:7482
replicas = 2
slab_size = 4M
[backend]
platform = real
device_type = vbd
control_socket = /run/memx/backd.sock
log_level = ${BACKD_LOG_LEVEL:-info}
[memserver]
capacity = 384M
CONF
for p in 7481 7482; do
    "$MEMXD" --config /etc/memx/memx.conf --listen 127.0.0.1:$p > $L/memd-$p.log 2>&1 &
    echo $! > /run/memx/memd-$p.pid
done
i=0; while [ $i -lt 40 ]; do
    n=$(netstat -ltn 2>/dev/null | grep -cE '127.0.0.1:748[12] ')
    [ "$n" = 2 ] && break; sleep 0.5; i=$((i+1))
done
if [ "$n" = 2 ]; then ok "2 servers on 127.0.0.1:7481,7482"
else failed "memory servers not listening; logs: $(tail -3 $L/memd-7481.log $L/memd-7482.log)"; finish; fi

begin backd
"$BACKD" --config /etc/memx/memx.conf --platform real > $BLOG 2>&1 &
BPID=$!
i=0; while [ $i -lt 60 ] && ! "$MEMXCTL" --socket /run/memx/backd.sock status > $L/status.out 2>&1; do
    kill -0 $BPID 2>/dev/null || break; sleep 0.5; i=$((i+1)); done
if "$MEMXCTL" --socket /run/memx/backd.sock status > $L/status.out 2>&1; then ok
else failed "memx-backd not serving (pid $BPID $(kill -0 $BPID 2>/dev/null && echo alive || echo exited)): $(tail -3 $L/status.out)"; finish; fi
ctl() { "$MEMXCTL" --socket /run/memx/backd.sock "$@"; }

mkdir -p /etc/xen/scripts
cp "$R/block-memx" /etc/xen/scripts/block-memx && chmod 755 /etc/xen/scripts/block-memx

disk() { echo "'vdev=$1, access=rw, backendtype=phy, script=block-memx, target=memx:$2'"; }
fi

# ---------------------------------------------------------------- guests
mkdir -p /var/lib/xen/images
cp "$KERNEL" /var/lib/xen/images/vmlinuz && cp "$RAMDISK" /var/lib/xen/images/guest-initrd.cpio
KERNEL=/var/lib/xen/images/vmlinuz; RAMDISK=/var/lib/xen/images/guest-initrd.cpio
XVDB=51728; XVDC=51744; XVDD=51760; XVDE=51776

guest() { # pv | pvh ; returns at the first failed stage
    T=$1; GN=memx-$T
    cat > /tmp/$GN.cfg <<CFG
name = "$GN"
type = "$T"
kernel = "$KERNEL"
ramdisk = "$RAMDISK"
extra = "console=hvc0 MEMX_CHUNKS=${GUEST_CHUNKS:-64} MEMX_PER_TICK=16"
memory = ${GUEST_MEM:-128}
vcpus = 1
on_crash = "preserve"
disk = [ $(disk xvdb $GN-swap:64M), $(disk xvdc $GN-data:16M) ]
CFG
    # QEMU-TCG's SVM reports RDTSCP as an RDTSC intercept, which Xen cannot
    # emulate: without these a PVH guest hangs at boot.
    [ $T = pvh ] && printf 'tsc_mode = "native"\ncpuid = "host,rdtscp=0"\n' >> /tmp/$GN.cfg
    tail -n +1 -F $CON/guest-$GN.log > /dev/console 2>&1 &
    TAILS=$!

    begin "$T-create"
    have_dom() { [ -n "$(domid $GN)" ]; }
    drop_dom() { xl destroy $GN >/dev/null 2>&1; sleep 1; }
    xlrun have_dom drop_dom xl create $XL_E /tmp/$GN.cfg || { failed "xl create failed"; return 1; }
    D=$(domid $GN)
    [ -n "$D" ] || { failed "xl create returned 0 but $GN is not in xl list"; return 1; }
    ok "domid $D"

    begin "$T-connect"
    for dev in $XVDB $XVDC; do
        state_wait $D $dev 4 90 || { failed "backend vbd/$D/$dev state=$(vbd $D $dev state) (want 4 Connected)"; return 1; }
    done
    gwait "MEMX-GUEST: xvdc present" 60 "MEMX-GUEST: xvd. MISSING" || { failed "guest does not see xvdb and xvdc"; return 1; }
    ok "vbd/$D/$XVDB and /$XVDC Connected, sectors $(glog | sed -n 's/.*xvdb present sectors=\([0-9]*\).*/\1/p' | tail -1)"

    begin "$T-swapon"
    gwait "MEMX-GUEST: swapon ok" 60 "MEMX-GUEST: swapon FAILED" || { failed "guest: mkswap/swapon /dev/xvdb"; return 1; }
    ok
    echo "MEMX-XEN: [$T] guest $(glog | grep -a 'userspace-frontend devices' | tail -1 | sed 's/.*MEMX-GUEST: //')"

    begin "$T-raw"
    gwait "MEMX-GUEST: raw write ok" 60 "MEMX-GUEST: raw write [A-Z]" || { failed "guest: raw pattern on xvdc: $(glog | grep 'raw write' | tail -1)"; return 1; }
    ok

    begin "$T-swapout"
    gwait "MEMX-GUEST: fill done" 300 || { failed "guest did not finish filling memory"; return 1; }
    used=$(glog | sed -n 's/.*fill done.*swapused=\([0-9]*\)kB.*/\1/p' | tail -1)
    [ "${used:-0}" -ge 8192 ] || { failed "only ${used:-0} kB went to swap"; return 1; }
    ok "$((used / 1024)) MiB in swap"

    begin "$T-verify"
    pass_ok_after 0 300 > $L/why || { failed "$(cat $L/why)"; return 1; }
    ticks_ok_after 0 30 > $L/why || { failed "$(cat $L/why)"; return 1; }
    ok "all ${GUEST_CHUNKS:-64} MiB re-read from swap, raw pattern intact"

    begin "$T-block-attach"
    is_attached() { [ "$(vbd $D $XVDD state)" = 4 ]; }
    xlrun is_attached nothing xl block-attach $GN "$(disk xvdd $GN-hot:8M | tr -d "'")" \
        || { failed "xl block-attach"; return 1; }
    state_wait $D $XVDD 4 60 || { failed "backend vbd/$D/$XVDD state=$(vbd $D $XVDD state)"; return 1; }
    gwait "MEMX-GUEST: xvdd ok" 60 "MEMX-GUEST: xvdd MISMATCH" || { failed "guest: xvdd write/verify"; return 1; }
    ok

    begin "$T-block-detach"
    is_detached() { ! xenstore-exists /local/domain/0/backend/vbd/$D/$XVDD 2>/dev/null; }
    xlrun is_detached nothing xl block-detach $GN xvdd || { failed "xl block-detach"; return 1; }
    gone_wait /local/domain/0/backend/vbd/$D/$XVDD 30 || { failed "backend vbd/$D/$XVDD still there"; return 1; }
    gwait "MEMX-GUEST: xvdd gone" 30 || { failed "guest still sees xvdd"; return 1; }
    ok

    [ "$CONTROL" = blkback ] || {
    begin "$T-bad-target"
    # block-memx (and memx-backd) must refuse a malformed target, and xl must
    # show why.  libxl leaves a refused block-attach's nodes in XenStore; the
    # operator's `xl block-detach` has to clear them.
    t0=$(lastnum tick)
    if xl block-attach $GN "vdev=xvde, access=rw, backendtype=phy, script=block-memx, target=memx:no/such:1Q" > $L/bad-target.log 2>&1; then
        failed "xl accepted target memx:no/such:1Q"; return 1; fi
    why=$(grep -E 'block-memx' $L/bad-target.log | head -1)
    [ -n "$why" ] || { failed "refused, but xl showed no reason from block-memx: $(tail -3 $L/bad-target.log)"; return 1; }
    if xenstore-exists /local/domain/0/backend/vbd/$D/$XVDE 2>/dev/null; then
        xl block-detach $GN xvde >> $L/bad-target.log 2>&1 || echo "MEMX-XEN: xl block-detach of the refused xvde: rc=$?"
        gone_wait /local/domain/0/backend/vbd/$D/$XVDE 30 || { failed "refused device vbd/$D/$XVDE still there after xl block-detach (state $(vbd $D $XVDE state))"; return 1; }
    fi
    ticks_ok_after "$t0" 60 > $L/why || { failed "$(cat $L/why)"; return 1; }
    ok "refused: $(echo "$why" | sed 's/.*block-memx: //' | cut -c1-100)"
    }

    begin "$T-save"
    t0=$(lastnum tick); p0=$(lastnum pass)
    saved() { [ -s /var/lib/xen/save/$GN ] && [ -z "$(domid $GN)" ]; }
    xlrun saved nothing xl save $GN /var/lib/xen/save/$GN || { failed "xl save"; return 1; }
    saved || { failed "after xl save: domain still there or no save file"; return 1; }
    gone_wait /local/domain/0/backend/vbd/$D 30 || { failed "backend devices of domain $D not torn down"; return 1; }
    ok "$(($(stat -c %s /var/lib/xen/save/$GN) / 1048576)) MiB image, domain $D's devices closed"

    begin "$T-restore"
    restored() { [ -n "$(domid $GN)" ]; }
    xlrun restored drop_dom xl restore $XL_E /var/lib/xen/save/$GN || { failed "xl restore"; return 1; }
    D=$(domid $GN)
    [ -n "$D" ] || { failed "restored domain not in xl list"; return 1; }
    for dev in $XVDB $XVDC; do
        state_wait $D $dev 4 90 || { failed "backend vbd/$D/$dev state=$(vbd $D $dev state) after restore"; return 1; }
    done
    ticks_ok_after "$t0" 90 > $L/why || { failed "$(cat $L/why)"; return 1; }
    pass_ok_after "$p0" 240 > $L/why || { failed "$(cat $L/why)"; return 1; }
    rm -f /var/lib/xen/save/$GN
    ok "domid $D, swap and raw data verified after restore"

    if [ $T = pvh ]; then
        begin "$T-migrate"
        t0=$(lastnum tick); p0=$(lastnum pass); D0=$D
        # With -s "" xl runs the host argument through sh as the receiver.
        migrated() { d=$(domid $GN); [ -n "$d" ] && [ "$d" != "$D0" ] && [ -z "$(domid $GN--incoming)" ]; }
        unincoming() { xl destroy $GN--incoming >/dev/null 2>&1; sleep 1; }
        tail -n 0 -F $CON/guest-$GN--incoming.log > /dev/console 2>&1 &
        TAILS="$TAILS $!"
        xlrun migrated unincoming xl migrate -s "" $GN "xl migrate-receive $XL_E" || { failed "xl migrate"; return 1; }
        migrated || { failed "after migrate: $(xl list | tail -n +2 | awk '{print $1"/"$2}' | tr '\n' ' ')"; return 1; }
        D=$(domid $GN)
        gone_wait /local/domain/0/backend/vbd/$D0 30 || { failed "source domain $D0's devices not torn down"; return 1; }
        for dev in $XVDB $XVDC; do
            state_wait $D $dev 4 90 || { failed "backend vbd/$D/$dev state=$(vbd $D $dev state) after migrate"; return 1; }
        done
        ticks_ok_after "$t0" 90 > $L/why || { failed "$(cat $L/why)"; return 1; }
        pass_ok_after "$p0" 240 > $L/why || { failed "$(cat $L/why)"; return 1; }
        ok "domid $D0 -> $D, swap and raw data verified after migrate"
    fi

    begin "$T-destroy"
    destroyed() { [ -z "$(domid $GN)" ]; }
    xlrun destroyed nothing xl destroy $GN || { failed "xl destroy"; return 1; }
    destroyed || { failed "$GN still in xl list"; return 1; }
    gone_wait /local/domain/0/backend/vbd/$D 30 || { failed "backend devices of $D left behind"; return 1; }
    # Released: the volumes are still in the pool but no device owns them
    # (memxctl volumes shows "(detached)"); then the operator deletes them.
    [ "$CONTROL" = blkback ] && { ok; return 0; }
    i=0; n=0; while [ $i -lt 20 ]; do
        if ctl volumes > $L/volumes.out 2>&1; then
            n=$(grep -E "(^| )$GN-(swap|data) " $L/volumes.out | grep -c '(detached)')
            [ "$n" = 2 ] && break
        fi
        sleep 1; i=$((i+1))
    done
    [ "$n" = 2 ] || { failed "memxctl volumes after destroy: $(grep -E "$GN-|memxctl" $L/volumes.out | tr -s ' ' | tr '\n' ';')"; return 1; }
    for v in swap data hot; do
        ctl volume delete $GN-$v >> $L/ctl.log 2>&1 || { failed "memxctl volume delete $GN-$v: $(tail -1 $L/ctl.log)"; return 1; }
    done
    ok "volumes $GN-swap, $GN-data detached, then deleted"
}

for t in $GUESTS; do
    guest $t || { xl destroy memx-$t >/dev/null 2>&1; xl destroy memx-$t--incoming >/dev/null 2>&1; }
    kill $TAILS 2>/dev/null
    GN=
done

[ -n "$BPID" ] || finish
begin backd-stop
kill -TERM $BPID
i=0; while kill -0 $BPID 2>/dev/null && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done
if kill -0 $BPID 2>/dev/null; then failed "memx-backd still running 10 s after SIGTERM"; else ok; fi
for p in 7481 7482; do kill -TERM "$(cat /run/memx/memd-$p.pid)" 2>/dev/null; done
finish
