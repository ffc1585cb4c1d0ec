#!/bin/bash
# An operator's controls on a running memx-backd (static server list):
# volume list (--all needs etcd, and says so), memxctl health (Nagios-style codes and named conditions: ok, near_full,
# server_down), the guest's name beside its domid in the log, log-level at run time, reload (memxctl and SIGHUP): the log
# level and nearfull applied, a memory server added to the list used at once,
# a key that needs a restart named as such, a broken file changing nothing.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

ctl() { "$B/memxctl" --socket "$T/backd.sock" "$@"; }
world_conf capacity=16M servers=3 replicas=2 slab=1M log=info etcd=no
printf '[backend]\ncontrol_socket_ro = %s\n' "$T/backd-ro.sock" >> "$WORLD_CONF"
world_start_sim
world_start_pool
world_start_backd
it_create 1 xvdb "memx:it-admin:16M"
it_wait_for "every memory server up" 15 world_all_live

rc=0; ctl health > "$T/h1.out" || rc=$?

[ $rc = 0 ] && grep -q '^MEMX OK - ' "$T/h1.out" || it_fail "health on a healthy world: exit $rc, $(cat "$T/h1.out")"

# The read-only socket (a monitoring agent's): health and stats answered, changes refused.
[ "$(stat -c %a "$T/backd-ro.sock")" = 666 ] || it_fail "read-only socket mode $(stat -c %a "$T/backd-ro.sock"), not 666"
"$B/memxctl" --socket "$T/backd-ro.sock" health | grep -q '^MEMX OK - ' || it_fail "health on the read-only socket"
"$B/memxctl" --socket "$T/backd-ro.sock" --json stats | jq -e '.volumes' > /dev/null || it_fail "stats on the read-only socket"
rc=0; "$B/memxctl" --socket "$T/backd-ro.sock" log-level debug > "$T/ro.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'refused on the read-only socket' "$T/ro.out" || it_fail "log-level on the read-only socket: exit $rc, $(cat "$T/ro.out")"

# Static servers mode: volume list shows what is loaded here (nothing yet); --all needs etcd and says so.
ctl --json volume list | jq -e '.volumes | length == 0' > /dev/null ||
  it_fail "volume list before any device connected: $(ctl --json volume list)"   # attached at connect
rc=0; ctl volume list --all > "$T/vla.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'volume list --all needs etcd' "$T/vla.out" || it_fail "volume list --all without etcd: exit $rc, $(cat "$T/vla.out")"
rc=0; ctl volume delete elsewhere > "$T/vd.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'without etcd this backend can delete only the volumes it has loaded' "$T/vd.out" ||
  it_fail "volume delete of an unknown volume without etcd: exit $rc, $(cat "$T/vd.out")"

ctl log-level debug > "$T/ll.out" || it_fail "memxctl log-level debug failed"
grep -q 'log level debug (was info)' "$T/ll.out" || it_fail "log-level: $(cat "$T/ll.out")"
rc=0; ctl log-level loud 2> "$T/ll2.err" || rc=$?
[ $rc = 1 ] || it_fail "log-level loud was not refused (exit $rc)"

# reload: nearfull down to 50 %, the log level back to info; max_queues needs a restart.
printf '[cluster]\nnearfull = 50\n[backend]\nlog_level = info\nmax_queues = 2\n' >> "$WORLD_CONF"
ctl reload > "$T/r1.out" || it_fail "memxctl reload failed: $(cat "$T/r1.out")"
grep -q '^applied:.*\[cluster\] nearfull' "$T/r1.out" || it_fail "reload did not apply nearfull: $(cat "$T/r1.out")"
grep -q 'needs a restart.*\[backend\] max_queues' "$T/r1.out" || it_fail "reload did not name max_queues: $(cat "$T/r1.out")"
# 14 MiB on 48 MiB of servers with 2 replicas: past 50 %.
it_io 1 xvdb write --size 14M --qd 8 --seed 4 > "$T/io.out" 2> "$T/io.log" || it_fail "the guest's write failed"
grep -q 'vbd 1/51728: .* -> Connected (volume it-admin, .*, guest sim-guest-1)' "$T/backd.log" ||
  it_fail "the Connected line does not name the guest: $(grep -- '-> Connected' "$T/backd.log" | head -1)"
rc=0; ctl health > "$T/h2.out" || rc=$?
[ $rc = 1 ] && grep -q 'near_full: the pool is [0-9]*% full (nearfull 50%)' "$T/h2.out" ||
  it_fail "health past nearfull: exit $rc, $(cat "$T/h2.out")"
it_wait_for "the nearfull warning in the log" 10 grep -q 'nearfull 50%' "$T/backd.log"

# A broken file changes nothing; the backend serves on.
cp "$WORLD_CONF" "$T/good.conf"
printf '[backend]\nmax_queues = 99\n' >> "$WORLD_CONF"
rc=0; ctl reload > "$T/r2.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'nothing changed' "$T/r2.out" || it_fail "a broken reload: exit $rc, $(cat "$T/r2.out")"
grep -q 'max_queues' "$T/backd.log" || it_fail "the log does not say what is wrong with the file"
cp "$T/good.conf" "$WORLD_CONF"
it_alive backd

# A memory server added to the list, by SIGHUP.
P4=$(world_free_port)
world_spawn memd3 "$B/memx-memd" --config "$WORLD_CONF" --listen "127.0.0.1:$P4"
it_wait_for "the 4th memx-memd listening" 10 world_listening "$P4"
list=$(sed -n 's/^servers = //p' "$T/good.conf" | head -1)
printf '[cluster]\nservers = %s, 127.0.0.1:%s\n' "$list" "$P4" >> "$WORLD_CONF"
kill -HUP "${WORLD_PID[backd]}"
it_wait_for "the reload's log line" 10 grep -q 'reload: memory server 127.0.0.1:'"$P4"' added' "$T/backd.log"
it_wait_for "the 4th server up" 15 bash -c "'$B/memxctl' --socket '$T/backd.sock' --json pool | grep -A3 '127.0.0.1:$P4' | grep -q '\"up\"'"

# A server killed: degraded, named.
kill -9 "${WORLD_PID[memd0]}"
it_wait_for "health naming the dead server" 20 bash -c "'$B/memxctl' --socket '$T/backd.sock' health | grep -q 'server_down: memd 127.0.0.1:${WORLD_MEMD_PORTS[0]} is'"
rc=0; ctl health > "$T/h3.out" || rc=$?
[ $rc -ge 1 ] || it_fail "health with a server dead exited $rc"
it_alive backd
rc=0; "$B/memxctl" --socket "$T/nobody.sock" health > "$T/h4.out" || rc=$?
[ $rc = 3 ] && grep -q '^MEMX UNKNOWN' "$T/h4.out" || it_fail "health without a backend: exit $rc, $(cat "$T/h4.out")"
it_summary "health: OK, then $(head -c 80 "$T/h2.out")..., then server_down; log-level; reload applied nearfull/log_level, named max_queues, refused a broken file; a server added by SIGHUP"
