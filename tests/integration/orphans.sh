#!/bin/bash
# Orphaned volumes (etcd): a volume no device uses and no backend holds is
# listed by `memxctl volume list --all` as an orphan, and `volume delete`
# frees it from a backend that never loaded it: claimed first (a volume a
# second backend holds is refused, naming that backend), its pages and
# records freed, its etcd keys removed (the name can then be made again with
# another size).  Static servers mode (no etcd) is admin.sh's.
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

ctl() { "$B/memxctl" --socket "$WORLD_SOCK" "$@"; }
it_start_world 64M 3 2 1M
it_create 1 xvdb "memx:it-orph-a:16M"
it_create 2 xvdc "memx:it-orph-b:16M"
it_io 1 xvdb write --seed 1 --offset 0 --size 4M > "$T/wa.out" 2> "$T/wa.log" || it_fail "writing it-orph-a failed"
it_io 2 xvdc write --seed 2 --offset 0 --size 2M > "$T/wb.out" 2> "$T/wb.log" || it_fail "writing it-orph-b failed"
it_xl destroy --domid 1 --vdev xvdb >> "$T/simxl.log" 2>&1 || it_fail "memx-simxl destroy of dom 1 failed"
it_xl destroy --domid 2 --vdev xvdc >> "$T/simxl.log" 2>&1 || it_fail "memx-simxl destroy of dom 2 failed"

# Loaded here and detached: orphans of this backend, in both listings.
ctl --json volume list > "$T/l0.json" || it_fail "volume list failed"
[ "$(jq '[.volumes[] | select(.orphan)] | length' "$T/l0.json")" = 2 ] ||
  it_fail "two detached volumes are not both orphans here: $(cat "$T/l0.json")"

# A backend restart: nothing loaded, the cluster still knows both.
it_stop backd 10
[ "$IT_RC" = 0 ] || it_fail "memx-backd exited $IT_RC on SIGTERM"
world_start_backd
ctl volume list --all > "$T/l1.out" || it_fail "volume list --all failed: $(cat "$T/l1.out")"
cat "$T/l1.out"
ctl --json volume list --all > "$T/l1.json"
for v in it-orph-a it-orph-b; do
  [ "$(jq -r ".volumes[] | select(.name == \"$v\") | \"\(.orphan) \(.loaded) \(.size)\"" "$T/l1.json")" = \
    "true false 16777216" ] || it_fail "$v is not listed as an unloaded 16M orphan: $(cat "$T/l1.json")"
done
grep -q '^2 orphan(s)' "$T/l1.out" || it_fail "the table does not count 2 orphans: $(cat "$T/l1.out")"
[ "$(ctl --json volume list | jq '.volumes | length')" = 0 ] || it_fail "volume list (without --all) shows volumes not loaded here"

# A second backend (its own sim host, same etcd and pool) attaches it-orph-b: in use there.
sed -e "s|^control_socket = .*|control_socket = $T/backd2.sock|" -e "s|^dir = .*|dir = $T/sim2|" \
  -e 's|^\[backend\]|[backend]\nnode_id = backd-two|' "$WORLD_CONF" > "$T/two.conf"
mkdir -p "$T/sim2"
world_spawn simxsd2 "$B/memx-simxsd" --dir "$T/sim2"
it_wait_for "the second sim XenStore" 10 test -S "$T/sim2/xenstore.sock"
world_spawn backd2 "$B/memx-backd" --config "$T/two.conf" --platform sim --sim-dir "$T/sim2" --domid 0
it_wait_for "the second backend's control socket" 10 test -S "$T/backd2.sock"
"$B/memx-simxl" --dir "$T/sim2" create --domid 5 --vdev xvdb --target "memx:it-orph-b:16M" >> "$T/simxl.log" 2>&1 ||
  it_fail "create on the second backend failed"
"$B/memx-io" --platform sim --sim-dir "$T/sim2" --domid 5 --device "device/vbd/$(it_devid xvdb)" \
  read-verify --seed 2 --offset 0 --size 2M > "$T/rb.out" 2> "$T/rb.log" ||
  it_fail "the second backend cannot read it-orph-b: $(cat "$T/rb.out")"
owner_b() { ctl --json volume list --all | jq -r '.volumes[] | select(.name == "it-orph-b") | .owner' | grep -q backd-two; }
it_wait_for "it-orph-b owned by backd-two" 15 owner_b
ctl --json volume list --all > "$T/l2.json"
[ "$(jq -r '.volumes[] | select(.name == "it-orph-b") | .orphan' "$T/l2.json")" = false ] ||
  it_fail "it-orph-b is in use by the second backend yet listed as an orphan: $(cat "$T/l2.json")"
rc=0; ctl volume delete it-orph-b > "$T/db.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q 'in use by backd-two' "$T/db.out" ||
  it_fail "deleting a volume the second backend holds: exit $rc, $(cat "$T/db.out")"
"$B/memx-io" --platform sim --sim-dir "$T/sim2" --domid 5 --device "device/vbd/$(it_devid xvdb)" \
  read-verify --seed 2 --offset 0 --size 2M > "$T/rb2.out" 2> "$T/rb2.log" ||
  it_fail "it-orph-b no longer verifies on its owner after the refused delete: $(cat "$T/rb2.out")"
it_alive backd2

# The orphan: deleted from this backend, which never loaded it.
ctl volume delete it-orph-a > "$T/da.out" 2>&1 || it_fail "deleting the orphan it-orph-a failed: $(cat "$T/da.out")"
grep -q '^volume it-orph-a deleted ([1-9][0-9]* page(s) freed)' "$T/da.out" || it_fail "delete said: $(cat "$T/da.out")"
grep -q 'volume it-orph-a: deleted (orphan, claimed under epoch 2' "$T/backd.log" ||
  it_fail "the backend's log does not record the delete under epoch 2: $(grep it-orph-a "$T/backd.log" | tail -5)"
! grep -q 'it-orph-a: removing it from etcd failed' "$T/backd.log" || it_fail "removing it-orph-a's etcd keys failed"
grep 'it-orph-[ab]' "$T/backd.log" | tail -12
gone() { ! ctl --json volume list --all | jq -e '.volumes[] | select(.name == "it-orph-a")' > /dev/null; }
it_wait_for "it-orph-a gone from etcd" 10 gone
[ "$(ctl --json pool | jq .pages_stored)" = 0 ] || it_fail "pages still stored after the delete: $(ctl --json pool)"
rc=0; ctl volume delete it-orph-a > "$T/da2.out" 2>&1 || rc=$?
[ $rc = 1 ] && grep -q "no volume named 'it-orph-a'" "$T/da2.out" || it_fail "deleting it again: exit $rc, $(cat "$T/da2.out")"
# Its records went too: the name is free again, with another size, and reads as zeros.
it_create 3 xvdb "memx:it-orph-a:8M"
rc=0; it_io 3 xvdb read-verify --seed 1 --offset 0 --size 1M > "$T/ra.out" 2> "$T/ra.log" || rc=$?
[ $rc != 0 ] || it_fail "the recreated it-orph-a still holds the deleted volume's data"
[ "$(ctl --json volume list | jq -r '.volumes[] | select(.name == "it-orph-a") | .size')" = 8388608 ] ||
  it_fail "the recreated it-orph-a is not 8M: $(ctl --json volume list)"
it_alive backd
it_stop backd2 10

it_summary "2 orphans listed after a restart; delete refused for a volume backd-two holds;" \
  "the orphan deleted from a backend that never loaded it ($(sed -n 's/.*(\([0-9]*\) page.*/\1/p' "$T/da.out") pages), name free again"
