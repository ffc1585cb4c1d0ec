#!/bin/bash
# memx-backd under a Type=notify unit: READY=1 only once it watches XenStore
# and a memory server is up (its STATUS line says so), the watchdog fed from
# the event loop (WATCHDOG_USEC), STOPPING=1 when SIGTERM closes the devices.
# tests/notify-recv stands in for systemd's notify socket.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

name="memx-it-notify-$$"
"$B/tests/notify-recv" "$name" 40 > "$T/notify.out" &
recv=$!
sleep 0.3
world_conf capacity=64M servers=2 replicas=2 slab=4M log=info
world_start_sim
world_start_pool
NOTIFY_SOCKET="@$name" WATCHDOG_USEC=400000 world_start_backd
it_wait_for "READY=1 from memx-backd" 15 grep -q '^READY=1|STATUS=0 device(s), [12] of 2 memory server(s) up' "$T/notify.out"
it_wait_for "the watchdog fed" 5 grep -q '^WATCHDOG=1' "$T/notify.out"
it_create 1 xvdb "memx:it-notify:8M"
it_io 1 xvdb write --size 8M --qd 4 --seed 1 > "$T/io.out" 2> "$T/io.log" || it_fail "the guest's write failed"
it_stop backd
[ "$IT_RC" = 0 ] || it_fail "memx-backd exited $IT_RC on SIGTERM"
it_wait_for "STOPPING=1 from memx-backd" 5 grep -q '^STOPPING=1' "$T/notify.out"
kill "$recv" 2>/dev/null || true
it_summary "memx-backd: $(grep -m1 '^READY=1' "$T/notify.out" | tr '|' ' '); watchdog fed $(grep -c '^WATCHDOG=1' "$T/notify.out") times; STOPPING=1 on SIGTERM"
