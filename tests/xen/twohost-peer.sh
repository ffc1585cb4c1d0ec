#!/bin/sh
# tests/xen/twohost-peer.sh — one request on a two-host dom0's command port.
#
# scenario-twohost.sh runs `nc -ll -p CMD_PORT -e twohost-peer.sh`: busybox nc
# forks this per connection, with the connection as stdin and stdout.  The
# first line is the request:
#   sink                        the rest of the connection is read and dropped
#   anything else               run by sh with the scenario's helpers (ctl,
#                               vbd); its output, then "MEMX-RC <status>"
# The migration stream does not come this way (it crosses the virtio-serial
# channel, twohost-recv.sh).  The port is on the two QEMUs' private socket
# network and only this test uses it: there is no authentication.
R=$(cd "$(dirname "$0")" && pwd)
. "$R/env.sh"
export PATH LD_LIBRARY_PATH
L=$R/logs
IFS= read -r req || exit 1
echo "[$(cut -d' ' -f1 /proc/uptime)] $req" >> $L/peer-requests.log
case $req in
    sink)   # the link's throughput (scenario-twohost.sh, stage link)
        exec cat > /dev/null ;;
esac
ctl() { "$MEMXCTL" --socket /run/memx/backd.sock "$@"; }
vbd() { xenstore-read "/local/domain/0/backend/vbd/$1/$2/$3" 2>/dev/null; }
( eval "$req" ) < /dev/null 2>&1
echo "MEMX-RC $?"
