#!/bin/sh
# Guest /init of the two-host test (tests/xen/twohost.sh): the guest's own view
# of its pauses, then the usual workload (guest-init.sh, unchanged).
#
# A background loop reads the guest's clock (/proc/uptime: CLOCK_BOOTTIME,
# which Linux moves on by the time a Xen suspend/resume took, read from the
# hypervisor's wall clock) every 0.1 s and prints
#     MEMX-GAP <n> <ms>ms up=<uptime>
# for every gap of 0.5 s or more: a live migration's stop-and-copy shows as one
# such gap, measured inside the guest.  It forks only usleep.
mount -t proc proc /proc
# A background job's stdin is /dev/null, which must exist first: without
# devtmpfs here ash could not start the loop ("/init: line 0: can't open
# '/dev/null'", run 2026-12-03: no MEMX-GAP line ever, "guest pause 0 ms").
mount -t devtmpfs dev /dev
(
    cs() { read -r up _ < /proc/uptime; c=${up%.*}${up#*.}; while [ "${c#0}" != "$c" ]; do c=${c#0}; done; }
    cs; last=${c:-0}; n=0
    while :; do
        usleep 100000
        cs
        g=$(( (c - last) * 10 )); last=$c
        if [ $g -ge 500 ]; then n=$((n + 1)); echo "MEMX-GAP $n ${g}ms up=$up"; fi
    done
) &
exec /guest-init.sh
