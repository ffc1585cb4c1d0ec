#!/bin/sh
# tests/xen/twohost-xfer.sh HOST CMD... — the `xl migrate -s` transport of the
# two-host test, in place of ssh.  xl runs `twohost-xfer.sh HOST xl
# migrate-receive ...` and speaks the migration protocol over our stdin and
# stdout; we send CMD as the first line to HOST's command port, where
# twohost-peer.sh runs it on the rest of the connection.  busybox nc half-closes
# the connection when xl closes our stdin and exits when the receiver closes
# its end, so both sides see the end of the stream.
R=$(cd "$(dirname "$0")" && pwd)
. "$R/env.sh"
host=$1; shift
echo "[$(cut -d' ' -f1 /proc/uptime)] to $host: $*" >> "$R/logs/xfer.log"
{ printf '%s\n' "$*"; exec cat; } | exec nc "$host" "$CMD_PORT"
