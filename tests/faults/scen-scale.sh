# tests/faults/scen-scale.sh — the cluster grown to 32 memory servers and 4
# backend hosts (issue 14), sourced by run.sh (its helpers, SCENARIOS).
#
#   scale   (etcd mode) 4 backend hosts, each in its own namespace with its
#           own XenStore; the memory servers, 64M each, are processes in one
#           namespace, one address each on its bridge (10.77.100.10+k), added
#           8 at a time: 8, 16, 32 (MEMX_SCALE_STEPS).  At each size every
#           backend attaches a volume of its own (memx:s<host>-<n>:8M) and
#           writes it, all four at once.  Reported per size: the attach time
#           (simxl create to the guest connected, per host: mean and max), how
#           soon every backend had the new servers, etcd's client traffic
#           (gRPC bytes received and sent, the JSON gateway's included, over 5
#           idle seconds: heartbeats, freshness checks, watches), and each
#           backend's RSS.  Then every volume is read back and verified.
# It runs by default (80 s on the 2-core box) where the memory is there: each
# backend's RSS grows by about 36 MiB per memory server (ofi_rxm's queues,
# sized for what MemX keeps in flight: lib/net/fabric.c; it was 100 MiB
# before), so with less than 8 GiB available it says it did not run.

SCALE_HOSTS=4
SCALE_VOL=8M

hns() { echo "$TAG-h$1"; }
srvns() { echo "$TAG-S"; }
scale_ip() { echo "10.77.100.$((10 + $1))"; }
ctlh() { local h=$1; shift; ip netns exec "$(hns "$h")" "$B/memxctl" --socket "$T/backd-h$h.sock" "$@"; }
ioh() { local h=$1; shift; ip netns exec "$(hns "$h")" "$B/memx-io" --platform sim --sim-dir "$T/sim-h$h" --domid 1 "$@"; }
liveh() { ctlh "$1" --json pool 2>/dev/null | grep -c '"state": *"up"' || true; }
vdev_of() { echo "xvd$(echo bcdefgh | cut -c$(($1 + 1)))"; }
dev_of() { echo $((51728 + 16 * $1)); }     # xvdb, xvdc, ...: 202 * 256 + 16 * n

scale_net_up() {
  etcd_net_up
  ip netns add "$(srvns)"
  ip -n "$(srvns)" link set lo up
  ip -n "$(srvns)" link add br0 type bridge
  ip -n "$(srvns)" link set br0 up
  etcd_link "$(srvns)" 100
  local h
  for h in $(seq 0 $((SCALE_HOSTS - 1))); do
    ip netns add "$(hns "$h")"
    ip -n "$(hns "$h")" link set lo up
    etcd_link "$(hns "$h")" $((20 + h))
    ip link add "${TAG}h$h" netns "$(hns "$h")" type veth peer name "${TAG}H$h" netns "$(srvns)"
    ip -n "$(hns "$h")" addr add "10.77.100.$((200 + h))/24" dev "${TAG}h$h"
    ip -n "$(hns "$h")" link set "${TAG}h$h" up
    ip -n "$(srvns)" link set "${TAG}H$h" master br0 up
  done
}

scale_conf() { # host
  cat > "$T/scale-h$1.conf" <<CONF
[cluster]
key_file = $T/cluster.key
provider = tcp;ofi_rxm
etcd = $(etcd_endpoints)
etcd_prefix = /memx/scale
etcd_lease_ttl = 5
replicas = 2
slab_size = 1M
[backend]
platform = sim
control_socket = $T/backd-h$1.sock
node_id = backd-scale$1
log_level = info
[memserver]
capacity = 64M
log_level = info
[sim]
dir = $T/sim-h$1
domid = 0
CONF
}

scale_memd() { # k
  ip -n "$(srvns)" addr add "$(scale_ip "$1")/24" dev br0
  spawn "smemd$1" "$(srvns)" "$B/memx-memd" --config "$T/scale-h0.conf" --listen "$(scale_ip "$1"):7480"
}
scale_memd_wait() { # k
  for _ in $(seq 100); do grep -q "registered in etcd" "$T/smemd$1.log" 2>/dev/null && return; sleep 0.1; done
  fail "memory server $1 ($(scale_ip "$1")) did not register in etcd: $(tail -n 3 "$T/smemd$1.log")"
}

scale_backd() { # host
  local h=$1
  spawn "ssimxsd$h" "$(hns "$h")" "$B/memx-simxsd" --dir "$T/sim-h$h"
  for _ in $(seq 100); do [ -S "$T/sim-h$h/xenstore.sock" ] && break; sleep 0.1; done
  spawn "sbackd$h" "$(hns "$h")" "$B/memx-backd" --config "$T/scale-h$h.conf" --platform sim --sim-dir "$T/sim-h$h" --domid 0
  for _ in $(seq 100); do [ -S "$T/backd-h$h.sock" ] && break; sleep 0.1; done
  [ -S "$T/backd-h$h.sock" ] || fail "backend host $h did not start: $(tail -n 3 "$T/sbackd$h.log")"
}

rss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }
etcd_tx_bytes() {
  ip netns exec "$(ens)" curl -s -m 2 "http://$ESUB.1:2379/metrics" |
    awk '/^etcd_network_client_grpc_sent_bytes_total/ { print $2 }' | awk '{ printf "%.0f", $1 }'
}

scenario_scale() {
  SCEN=scale
  [ "$ETCD_MODE" = 1 ] || fail "scale needs etcd (unset MEMX_FAULTS_STATIC)"
  local avail; avail=$(awk '/^MemAvailable/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
  if [ "$avail" -lt 8 ]; then
    echo "$SCEN: NOT RUN: $avail GiB available, 8 GiB needed (4 backends of about 1.2 GiB RSS at 32 servers)"
    return 0
  fi
  world_down
  rm -rf "${T:?}"/*
  scale_net_up
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/cluster.key"
  etcd_up
  local h k=0 step=0 n
  for h in $(seq 0 $((SCALE_HOSTS - 1))); do scale_conf "$h"; done
  for h in $(seq 0 $((SCALE_HOSTS - 1))); do scale_backd "$h"; done
  for n in ${MEMX_SCALE_STEPS:-8 16 32}; do
    local t0 tseen rx0 tx0 rx1 tx1 rxs txs att="" hs rss="" pids=()
    while [ "$k" -lt "$n" ]; do scale_memd "$k"; k=$((k + 1)); done
    for h in $(seq 0 $((k - 1))); do scale_memd_wait "$h"; done
    t0=$(now)
    for h in $(seq 0 $((SCALE_HOSTS - 1))); do
      for _ in $(seq 300); do [ "$(liveh "$h")" = "$n" ] && break; sleep 0.1; done
      [ "$(liveh "$h")" = "$n" ] || fail "backend host $h has $(liveh "$h") of $n servers up: $(ctlh "$h" pool | tail -n 5)"
    done
    tseen=$(since "$t0")
    rx0=$(etcd_rx_bytes) tx0=$(etcd_tx_bytes)
    for h in $(seq 0 $((SCALE_HOSTS - 1))); do
      t0=$(now)
      ip netns exec "$(hns "$h")" "$B/memx-simxl" --dir "$T/sim-h$h" create --domid 1 --vdev "$(vdev_of $step)" \
        --target "memx:s$h-$n:$SCALE_VOL" >> "$T/ssimxl$h.log" 2>&1 || fail "memx-simxl create on host $h failed"
      ioh "$h" --device "device/vbd/$(dev_of $step)" info > "$T/sinfo$h-$n.out" 2>&1 ||
        fail "host $h could not attach s$h-$n: $(cat "$T/sinfo$h-$n.out")"
      att="$att $(since "$t0")"
    done
    for h in $(seq 0 $((SCALE_HOSTS - 1))); do
      ioh "$h" --device "device/vbd/$(dev_of $step)" write --seed $((n * 10 + h)) --offset 0 --size "$SCALE_VOL" --qd 16 \
        > "$T/swrite$h-$n.out" 2>&1 &
      pids+=($!)
    done
    for h in "${pids[@]}"; do wait "$h" || fail "a write at $n servers failed: $(cat "$T"/swrite*-"$n".out | grep -v "^memx-io:")"; done
    rx1=$(etcd_rx_bytes) tx1=$(etcd_tx_bytes)
    sleep 5
    rxs=$(( ($(etcd_rx_bytes) - rx1) / 5 )) txs=$(( ($(etcd_tx_bytes) - tx1) / 5 ))
    for h in $(seq 0 $((SCALE_HOSTS - 1))); do eval "rss=\"\$rss \$(rss_mib \$PID_sbackd$h)\""; done
    hs=$(echo "$att" | awk '{ for (i = 1; i <= NF; i++) { s += $i; if ($i > m) m = $i } printf "mean %.2f s, max %.2f s", s / NF, m }')
    echo "$SCEN: $n servers, $SCALE_HOSTS backends: attach $hs; every backend had the servers ${tseen} s after the last registered;" \
      "etcd idle $((rxs / 1024)) KiB/s in, $((txs / 1024)) KiB/s out; attach+write $(( (rx1 - rx0) / 1024 )) KiB in," \
      "$(( (tx1 - tx0) / 1024 )) KiB out; backend RSS$(echo "$rss" | sed 's/ /, /g; s/^,//') MiB"
    step=$((step + 1))
  done
  # Every volume at every size reads back.
  local ver=0 mis=0 err=0 total=0 s v
  step=0
  for n in ${MEMX_SCALE_STEPS:-8 16 32}; do
    for h in $(seq 0 $((SCALE_HOSTS - 1))); do
      ioh "$h" --device "device/vbd/$(dev_of $step)" read-verify --seed $((n * 10 + h)) --offset 0 --size "$SCALE_VOL" \
        --qd 16 > "$T/sverify.out" 2>&1 || true
      v=$(field "$T/sverify.out" verified); ver=$((ver + ${v:-0}))
      v=$(field "$T/sverify.out" mismatches); mis=$((mis + ${v:-0}))
      v=$(field "$T/sverify.out" io_errors); err=$((err + ${v:-1}))
      total=$((total + $(numfmt --from=iec "$SCALE_VOL") / 4096))
    done
    step=$((step + 1))
  done
  echo "$SCEN: $ver pages verified, $((total - ver - mis)) lost, $mis mismatches ($((step * SCALE_HOSTS)) volumes on $k servers; $err read errors)"
  [ "$ver" = "$total" ] && [ "$mis" = 0 ] && [ "$err" = 0 ] || fail "$(cat "$T/sverify.out")"
}

if [ "$ETCD_MODE" = 1 ]; then
  SCENARIOS="$SCENARIOS scale"
fi
