#!/bin/bash
# memx-memd with [cluster] etcd (issue 14): it registers servers/<addr> under
# its lease, and again under a new one when that lease is lost; pointed at a dead etcd it exits 1 naming the endpoint, before
# serving anything; a foreign value under owners/ is reported, not trusted;
# SIGTERM drains (key marked draining, then deleted) and exits 0; after a
# kill -9 the key goes with the lease (etcd_lease_ttl = 5).
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"
# shellcheck source=tests/etcd.sh
. "${MEMX_SRCDIR:?}/tests/etcd.sh"
# Started from a subshell: world_cleanup waits for the script's children
# before its at-exit hooks run, and etcd is stopped by one of those.
read -r MEMX_ETCD ETCD_PID ETCD_DIR < <(etcd_start memd-etcd >&2 && echo "$MEMX_ETCD $ETCD_PID $ETCD_DIR") || true
world_at_exit etcd_stop
[ -n "${ETCD_PID:-}" ] || it_fail "etcd did not start"
export MEMX_ETCD

PFX=/memx/it-memd
world_conf servers=1 capacity=64M log=info etcd=no   # this test runs its own etcd
PORT=${WORLD_MEMD_PORTS[0]}
ADDR=127.0.0.1:$PORT
cp "$WORLD_CONF" "$T/static.conf"
cat >> "$WORLD_CONF" <<CONF
[cluster]
etcd = $MEMX_ETCD
etcd_prefix = $PFX
etcd_lease_ttl = 5
CONF
ectl() { ETCDCTL_API=3 etcdctl --endpoints "$MEMX_ETCD" "$@"; }
key_val() { ectl get --print-value-only "$PFX/servers/$ADDR"; }
key_up() { key_val | grep -q '"state":"up"'; }
key_gone() { [ -z "$(ectl get --keys-only "$PFX/servers/$ADDR")" ]; }
start_memd() { world_spawn "$1" "$B/memx-memd" --config "$2" --listen "$ADDR"; }

# A dead endpoint: exit 1 with one line naming it, and nothing ever listened.
DEAD=http://127.0.0.1:$(world_free_port)
sed "s|^etcd = .*|etcd = $DEAD|" "$WORLD_CONF" > "$T/dead.conf"
rc=0
timeout 20 "$B/memx-memd" --config "$T/dead.conf" --listen "$ADDR" > "$T/dead.log" 2>&1 || rc=$?
[ "$rc" = 1 ] || it_fail "memx-memd with a dead etcd exited $rc (want 1)"
grep -q "$DEAD" "$T/dead.log" || it_fail "memx-memd's error does not name $DEAD: $(cat "$T/dead.log")"
grep -q "serving\|using libfabric" "$T/dead.log" && it_fail "memx-memd opened its endpoint without etcd"

# Registration under a lease.
start_memd memd "$WORLD_CONF"
it_wait_for "servers/$ADDR in etcd" 10 key_up
v=$(key_val)
for f in '"addr":"'"$ADDR"'"' '"capacity":67108864' '"provider":"tcp;ofi_rxm"' '"incarnation":"'; do
  case $v in *"$f"*) ;; *) it_fail "servers/$ADDR = $v lacks $f" ;; esac
done
lease=$(ectl get -w json "$PFX/servers/$ADDR" | sed -n 's/.*"lease":\([0-9]*\).*/\1/p')
[ -n "$lease" ] && [ "$lease" != 0 ] || it_fail "servers/$ADDR is not leased"
ttl=$(ectl lease timetolive "$(printf %x "$lease")" | sed -n 's/.*granted with TTL(\([0-9]*\)s).*/\1/p')
[ "$ttl" = 5 ] || it_fail "its lease's TTL is '$ttl', not 5 (etcd_lease_ttl)"

# The lease lost (revoked behind memd's back): a new lease, the key put again.
ectl lease revoke "$(printf %x "$lease")" >/dev/null
key_relet() {
  local l
  l=$(ectl get -w json "$PFX/servers/$ADDR" | sed -n 's/.*"lease":\([0-9]*\).*/\1/p')
  [ -n "$l" ] && [ "$l" != "$lease" ] && key_up
}
it_wait_for "servers/$ADDR put again under a new lease" 10 key_relet
grep -q 'lease lost' "$T/memd.log" || it_fail "memx-memd did not log the lost lease"

# A foreign value under owners/ is reported with its reason, and memd goes on.
ectl put "$PFX/owners/not-memx" 'hello from elsewhere' >/dev/null
it_wait_for "the foreign owners/ value reported" 5 grep -q 'owners/not-memx.*' "$T/memd.log"
grep 'owners/not-memx' "$T/memd.log" | grep -q 'not trusted' || it_fail "the foreign key's report does not say it is not trusted"
it_alive memd

# SIGTERM: draining, then deregistered, exit 0.
it_stop memd 10
[ "$IT_RC" = 0 ] || it_fail "memx-memd exited $IT_RC on SIGTERM (want 0)"
grep -q 'draining' "$T/memd.log" || it_fail "memx-memd did not say it was draining"
grep -q 'deregistered' "$T/memd.log" || it_fail "memx-memd did not deregister"
key_gone || it_fail "servers/$ADDR still in etcd after SIGTERM: $(key_val)"

# kill -9: the key goes with the lease, within its TTL.
start_memd memd2 "$WORLD_CONF"
it_wait_for "servers/$ADDR in etcd again" 10 key_up
kill -KILL "${WORLD_PID[memd2]}"
wait "${WORLD_PID[memd2]}" 2>/dev/null || true
WORLD_PID[memd2]=""
t0=$(date +%s%N)
it_wait_for "servers/$ADDR gone with its lease" 8 key_gone
ms=$(( ($(date +%s%N) - t0) / 1000000 ))

# Without [cluster] etcd nothing touches etcd.
start_memd memd3 "$T/static.conf"
it_wait_for "static memx-memd listening" 10 world_listening "$PORT"
grep -q etcd "$T/memd3.log" && it_fail "static memx-memd mentions etcd: $(grep etcd "$T/memd3.log")"
it_stop memd3 10
[ "$IT_RC" = 0 ] || it_fail "static memx-memd exited $IT_RC on SIGTERM (want 0)"
it_summary "dead etcd: exit 1 naming it; registered under a 5 s lease; foreign owners/ value reported;" \
  "lost lease: key put again;" \
  "SIGTERM: drained, deregistered, exit 0; kill -9: key gone in ${ms} ms; static mode untouched"
