#!/bin/bash
# memx-backd's [cluster] etcd at start-up, as an operator meets it: pointed at
# a dead endpoint it exits 1 at once with one line naming the endpoint (and
# never opens its control socket); with both servers and etcd set it refuses
# with its one-line error (exit 2); against an etcd serving https only with
# client certificates (MEMX_ETCD_TLS=1 tests/etcd.sh) it starts with
# etcd_cacert/etcd_cert/etcd_key, and without etcd_cert it exits 1 naming
# the endpoint.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"
# shellcheck source=tests/etcd.sh
. "${MEMX_SRCDIR:?}/tests/etcd.sh"
# Started from a subshell: world_cleanup waits for the script's children
# before its at-exit hooks run, and etcd is stopped by one of those.
read -r MEMX_ETCD ETCD_PID ETCD_DIR MEMX_ETCD_CACERT MEMX_ETCD_CERT MEMX_ETCD_KEY < <(MEMX_ETCD_TLS=1 \
  etcd_start backd-etcd >&2 &&
  echo "$MEMX_ETCD $ETCD_PID $ETCD_DIR $MEMX_ETCD_CACERT $MEMX_ETCD_CERT $MEMX_ETCD_KEY") || true
world_at_exit etcd_stop
[ -n "${ETCD_PID:-}" ] || it_fail "the TLS etcd did not start"

world_conf servers=1 capacity=64M etcd=no   # this test runs its own etcd
world_start_sim
# Everything but servers: each case adds its own [cluster] lines.
sed 's/^servers = .*//' "$WORLD_CONF" > "$T/base.conf"
with_cluster() {    # FILE LINE...: base.conf with LINEs appended to [cluster]
  local f=$1
  shift
  { echo "[cluster]"; printf '%s\n' "$@"; cat "$T/base.conf"; } > "$f"
}
# BACKD NAME CONF: runs memx-backd to its end (at most 20 s); RC, SECS; output in $T/NAME.out.
backd() {
  local t0=$SECONDS
  RC=0
  timeout 20 "$B/memx-backd" --config "$2" --platform sim --sim-dir "$WORLD_SIM" --domid 0 > "$T/$1.out" 2>&1 || RC=$?
  SECS=$((SECONDS - t0))
}
# one_line NAME TEXT: exactly one line of NAME's output has TEXT, and it is the last.
one_line() {
  if [ "$(grep -cF -- "$2" "$T/$1.out")" != 1 ] || ! tail -n 1 "$T/$1.out" | grep -qF -- "$2"; then
    it_fail "$1: not one (last) line naming $2: $(cat "$T/$1.out")"
  fi
}

# A dead endpoint: exit 1 at once, one line naming it, no control socket.
DEAD=http://127.0.0.1:$(world_free_port)
with_cluster "$T/dead.conf" "etcd = $DEAD"
backd dead "$T/dead.conf"
[ "$RC" = 1 ] || it_fail "memx-backd with a dead etcd exited $RC (want 1): $(cat "$T/dead.out")"
[ "$SECS" -le 5 ] || it_fail "memx-backd took ${SECS}s to give up on a dead etcd"
one_line dead "$DEAD"
[ ! -e "$WORLD_SOCK" ] || it_fail "memx-backd opened its control socket without etcd"

# servers and etcd both set: refused before anything, exit 2, one line.
with_cluster "$T/both.conf" "servers = 127.0.0.1:${WORLD_MEMD_PORTS[0]}" "etcd = $DEAD"
backd both "$T/both.conf"
[ "$RC" = 2 ] || it_fail "memx-backd with servers and etcd exited $RC (want 2): $(cat "$T/both.out")"
[ "$(wc -l < "$T/both.out")" = 1 ] || it_fail "memx-backd with servers and etcd said more than one line: $(cat "$T/both.out")"
grep -q 'servers.*etcd.*exclude each other' "$T/both.out" || it_fail "memx-backd's refusal: $(cat "$T/both.out")"

# TLS without etcd_cert: exit 1, one line naming the endpoint and the missing certificate.
with_cluster "$T/nocert.conf" "etcd = $MEMX_ETCD" "etcd_cacert = $MEMX_ETCD_CACERT"
backd nocert "$T/nocert.conf"
[ "$RC" = 1 ] || it_fail "memx-backd without a client certificate exited $RC (want 1): $(cat "$T/nocert.out")"
one_line nocert "$MEMX_ETCD"
grep -q 'client certificate' "$T/nocert.out" || it_fail "memx-backd's error does not name the missing certificate: $(cat "$T/nocert.out")"

# TLS as configured: it starts, its status says etcd is up, SIGTERM ends it with 0.
with_cluster "$T/tls.conf" "etcd = $MEMX_ETCD" "etcd_cacert = $MEMX_ETCD_CACERT" "etcd_cert = $MEMX_ETCD_CERT" \
  "etcd_key = $MEMX_ETCD_KEY" "etcd_prefix = /memx/it-backd-etcd"
world_spawn backd "$B/memx-backd" --config "$T/tls.conf" --platform sim --sim-dir "$WORLD_SIM" --domid 0
etcd_up() { "$B/memxctl" --socket "$WORLD_SOCK" status 2>/dev/null | grep -q "up: $MEMX_ETCD"; }
it_wait_for "memx-backd's status: etcd up at $MEMX_ETCD" 10 etcd_up
it_stop backd 10
[ "$IT_RC" = 0 ] || it_fail "memx-backd over TLS exited $IT_RC on SIGTERM (want 0)"
it_summary "dead etcd: exit 1 in ${SECS}s naming it; servers+etcd: exit 2; https with client certificates: up"
