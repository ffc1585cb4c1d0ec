#!/bin/sh
# tests/xen/twohost-xfer.sh HOST CMD... — the `xl migrate -s` transport of the
# two-host test, in place of ssh.  xl runs `twohost-xfer.sh HOST xl
# migrate-receive ...` and speaks the migration protocol over our stdin and
# stdout.  We carry both directions over the virtio-serial port memx.mig
# (twohost-port.sh): open it, start copying what comes from the peer to xl,
# send "MEMX-MIG-GO CMD" (the peer's twohost-recv.sh, already waiting, execs
# CMD on its port), then copy xl's stream to the port.  xl exits once the
# receiver reported the domain running; our stdin then ends and the reader is
# stopped, so nothing on this host reads the port afterwards (the next
# migration comes the other way).  HOST only names the peer in the log: the
# port leads to the one peer there is.
#   twohost-xfer.sh --sink MIB   sends MIB MiB of zeros the same way (the
#                                peer's twohost-recv.sh drops them and acks),
#                                for the link stage's throughput
R=$(cd "$(dirname "$0")" && pwd)
. "$R/env.sh"
. "$R/twohost-port.sh"
mig_port || { echo "twohost-xfer: no virtio-serial port memx.mig in this dom0" >&2; exit 1; }
exec 3<> "$PORT"
if [ "$1" = --sink ]; then
    printf 'MEMX-MIG-SINK %d\n' $(($2 * 1048576)) >&3
    dd if=/dev/zero bs=64k count=$(($2 * 16)) >&3 2>/dev/null
    IFS= read -r ack <&3
    [ "$ack" = MEMX-MIG-SUNK ] || { echo "twohost-xfer: sink: the peer answered '$ack'" >&2; exit 1; }
    exit 0
fi
host=$1; shift
echo "[$(cut -d' ' -f1 /proc/uptime)] to $host over $PORT: $*" >> "$R/logs/xfer.log"
cat <&3 &
rp=$!
printf 'MEMX-MIG-GO %s\n' "$*" >&3
cat >&3
kill $rp 2>/dev/null
echo "[$(cut -d' ' -f1 /proc/uptime)] to $host: stream ended" >> "$R/logs/xfer.log"
