#!/bin/sh
# tests/xen/twohost-recv.sh — the receiving end of the two-host test's
# migration channel (twohost-port.sh).  Started in the background on the
# destination before the source's `xl migrate` (the driver waits until
# /run/memx/mig-recv says "waiting"); opens the port and waits for the
# sender's first line:
#   MEMX-MIG-GO xl migrate-receive ...   exec'd with the port as its stdin
#                                        and stdout (the stream, then xl's replies)
#   MEMX-MIG-SINK <bytes>                that many bytes are read and dropped,
#                                        then "MEMX-MIG-SUNK" is sent back
# Anything else on the port before that line (nothing, normally) is logged
# and skipped.  Only `xl migrate-receive` is run: the port leads to the other
# test host and nowhere else.
R=$(cd "$(dirname "$0")" && pwd)
. "$R/env.sh"
. "$R/twohost-port.sh"
export PATH LD_LIBRARY_PATH
L=$R/logs
st() { echo "$1" > /run/memx/mig-recv; echo "[$(cut -d' ' -f1 /proc/uptime)] $1" >> $L/recv.log; }
mig_port || { st "no virtio-serial port memx.mig"; exit 1; }
exec 3<> "$PORT"
st "waiting on $PORT"
while IFS= read -r line <&3; do
    case $line in
        "MEMX-MIG-GO xl migrate-receive"*|"MEMX-MIG-GO xl "*" migrate-receive"*)
            req=${line#MEMX-MIG-GO }; st "running: $req"
            # shellcheck disable=SC2086
            exec $req <&3 >&3 2>> $L/migrate-receive.log ;;
        "MEMX-MIG-SINK "*)
            n=${line#MEMX-MIG-SINK }; head -c "$n" <&3 > /dev/null
            printf 'MEMX-MIG-SUNK\n' >&3; st "sunk $n bytes"; exit 0 ;;
        *) echo "skipped on $PORT: $(echo "$line" | cut -c1-80)" >> $L/recv.log ;;
    esac
done
st "port $PORT closed"
