# tests/xen/restarts.sh — sourced by scenario.sh (busybox sh, dom0): memx-backd
# restarted under running, swapping guests (issue 16 item 2).
#
# With every guest of $UP swapping: restart_kill kills memx-backd with
# SIGKILL and starts it again (the ring-state resume, backend/xen/ringstate.h),
# restart_upgrade hands over to a new binary with `memxctl upgrade`.  Each is
# judged by real state: the new process logged "resumed its ring" for every
# device, every device's backend node is Connected again, the guest's
# frontend state nodes were never written (xenstore-watch) and are still
# Connected, the guest's console has no blkfront or I/O error and every tick
# since the restart is clean (swap chunks and raw pattern).  The pause is the
# guest's own: the longest gap between two completed 4 KiB O_DIRECT reads of
# its prober (guest-init.sh, "iogap"), against the longest before.
# The restarts run during the guests' first verification pass, which
# scenario.sh's $T-verify then requires to be clean.

start_backd() { # starts memx-backd into $BLOG; 0 once `memxctl status` answers
    "$BACKD" --config $CONF --platform real > $BLOG 2>&1 &
    BPID=$!
    i=0; while [ $i -lt 60 ] && ! "$MEMXCTL" --socket /run/memx/backd.sock status > $L/status.out 2>&1; do
        kill -0 $BPID 2>/dev/null || return 1; sleep 0.5; i=$((i+1)); done
    "$MEMXCTL" --socket /run/memx/backd.sock status > $L/status.out 2>&1
}

# Before a restart: per guest its tick, pass and console length; a watch on
# its frontend's device nodes.
rs_snap() {
    RS_WATCH=
    for t in $UP; do
        at $t
        eval "RS_T_$t=$(lastnum tick) RS_N_$t=$(glog | wc -l)"
        xenstore-watch /local/domain/$D/device/vbd > $L/fewatch-$t.out 2>&1 &
        RS_WATCH="$RS_WATCH $!"
    done
    RS_NDEV=$(( $(echo $UP | wc -w) * 2 ))
    RS_B=$(wc -l < $BLOG)             # the backend log's lines before the restart
}
# Longest iogap of guest $1 in console lines [from, to) (seconds, 0 if none).
gap_max() { glog_of $1 | sed -n "$2,$3p" | sed -n 's/.*MEMX-GUEST: iogap \([0-9.]*\) .*/\1/p' | awk '$1 > m {m = $1} END{printf "%.1f", m + 0}'; }

# After a restart: the judgement.  $1: the backend log (its lines after
# $RS_B are the new process's); $2: what restarted.
rs_judge() {
    # Every device's ring resumed by the new process.
    nl=$L/backd-new.log
    i=0; while [ $i -lt 60 ]; do
        sed -n "$((RS_B + 1)),\$p" $1 > $nl
        # A kill -9's successor resumes each ring from its state file; an
        # upgrade's successor may say so per device as a hand-over line.
        n=$(grep -c 'resumed its ring after a restart' $nl)
        h=$(grep -c 'hand-over: .* serves again' $nl)
        [ "$h" -gt "$n" ] && n=$h
        [ "$n" -ge $RS_NDEV ] && break
        grep -q 'ring state not resumed\|no resumable ring state' $nl && break
        sleep 1; i=$((i+1))
    done
    RS_RESUME=$(awk -v a="$RS_K" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}')
    [ "$n" -ge $RS_NDEV ] || { echo "$n of $RS_NDEV rings resumed by the new backend within 60 s: $(grep -E 'ring state|resum| (warn|error): ' $nl | head -4 | tr '\n' ';')"; return 1; }
    RS_REPLAYED=$(sed -n 's/.*resumed its ring after a restart: \([0-9]*\) request.*/\1/p' $nl | awk '{s+=$1} END{print s+0}')
    ! grep -q 'bad request' $nl || { echo "the new backend read something on a ring as a bad request: $(grep 'bad request' $nl | head -2)"; return 1; }
    RS_DETAIL=
    for t in $UP; do
        at $t
        for dev in $XVDB $XVDC; do
            state_wait $D $dev 4 30 || { echo "backend vbd/$D/$dev state=$(vbd $D $dev state) after the $2"; return 1; }
            fs=$(xenstore-read /local/domain/$D/device/vbd/$dev/state 2>/dev/null)
            [ "$fs" = 4 ] || { echo "memx-$t's frontend vbd/$dev state=$fs after the $2 (want 4)"; return 1; }
        done
        ticks_ok_after "$(eval echo \$RS_T_$t)" 120 > $L/why || { echo "memx-$t: $(cat $L/why)"; return 1; }
    done
    kill $RS_WATCH 2>/dev/null
    for t in $UP; do
        at $t
        # The watch fires once when set (on the watched node); any event on
        # a state node is the frontend moving (blkfront reconnecting, closing).
        fe=$(grep -c '/state$' $L/fewatch-$t.out)
        [ "$fe" = 0 ] || { echo "memx-$t's frontend state nodes changed during the $2: $(grep '/state$' $L/fewatch-$t.out | head -3 | tr '\n' ' ')"; return 1; }
        n0=$(eval echo \$RS_N_$t); n1=$(glog | wc -l)
        kerr=$(glog | sed -n "$n0,\$p" | grep -E 'blkfront|xen-blkfront|I/O error|blk_update_request|Buffer I/O|READFAIL' | head -2)
        [ -z "$kerr" ] || { echo "memx-$t's console after the $2: $kerr"; return 1; }
        others=$(grep -v '/state$' $L/fewatch-$t.out | grep -vc "^/local/domain/$D/device/vbd$")
        RS_DETAIL="$RS_DETAIL $t pause $(gap_max $t $n0 $n1)s (longest gap before: $(gap_max $t 1 $n0)s)"
        [ "$others" = 0 ] || RS_DETAIL="$RS_DETAIL ($others other frontend node events)"
    done
    # The backend node stays Connected: the successor writes no other state
    # over a device it finds Connected (its log names every state it writes).
    sed -n "$((RS_B + 1)),\$p" $1 > $nl
    bs=$(grep -E -- '-> (InitWait|Closing|Closed)' $nl | head -2)
    [ -z "$bs" ] || { echo "the new backend moved a Connected device's node: $bs"; return 1; }
    RS_DETAIL="$RS_DETAIL; $n/$RS_NDEV rings resumed, $RS_REPLAYED request(s) replayed, ${RS_RESUME}s from the $2 to the last resume; backend and frontend nodes stayed Connected"
}

restart_kill() { # SIGKILL memx-backd under the guests of $UP, start it again
    TFG=$UP; GN=; begin backd-kill9
    rs_snap
    old=$BPID
    kill -KILL $old; wait $old 2>/dev/null
    RS_K=$(now)
    n=1; while [ -f $L/backd-$n.log ]; do n=$((n+1)); done
    mv $BLOG $L/backd-$n.log; RS_B=0
    start_backd || { failed "memx-backd did not come back after kill -9: $(tail -3 $BLOG | tr '\n' ';')"; return 1; }
    rs_judge $BLOG "kill -9" > $L/why || { kill $RS_WATCH 2>/dev/null; failed "$(cat $L/why)"; return 1; }
    ok "pid $old killed, $BPID serving:$RS_DETAIL"
}

restart_upgrade() { # memxctl upgrade: a new binary takes over the guests of $UP
    TFG=$UP; GN=
    if ! "$MEMXCTL" --help 2>&1 | grep -q upgrade; then
        echo "MEMX-XEN: backd-upgrade skipped: this memxctl has no upgrade command"; return 0; fi
    begin backd-upgrade
    rs_snap
    old=$BPID
    RS_K=$(now)
    # Re-execs the binary it was started from ($BACKD, the installed one).
    ctl upgrade > $L/upgrade.out 2>&1; urc=$?
    if [ $urc != 0 ]; then
        # memxctl gave up (it waits 30 s): say what the guests and the
        # successor did anyway, then fail.
        if rs_judge $BLOG "upgrade" > $L/why; then st="yet the guests saw:$RS_DETAIL"; else st="and: $(cat $L/why)"; kill $RS_WATCH 2>/dev/null; fi
        failed "memxctl upgrade rc=$urc: $(tail -3 $L/upgrade.out | tr '\n' ';') $st"; return 1
    fi
    # The handover may re-exec in place or start a successor: whichever
    # memx-backd serves the control socket now is the one to judge.
    i=0; while [ $i -lt 60 ] && ! ctl status > $L/status.out 2>&1; do sleep 0.5; i=$((i+1)); done
    BPID=$(pidof memx-backd | tr ' ' '\n' | grep -vx "$old" | head -1)
    [ -n "$BPID" ] || BPID=$old
    rs_judge $BLOG "upgrade" > $L/why || { kill $RS_WATCH 2>/dev/null; failed "$(cat $L/why)"; return 1; }
    pz=$(sed -n 's/.*\(guest I\/O paused [0-9]* ms\).*/\1/p' $L/upgrade.out | tail -1)
    ok "pid $old -> $BPID (memxctl: ${pz:-no pause reported});$RS_DETAIL"
}
