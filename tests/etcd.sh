#!/bin/bash
# tests/etcd.sh — a throw-away single-member etcd on loopback, for tests.
#
# Sourced:     . tests/etcd.sh; trap etcd_stop EXIT; etcd_start [name]
#              -> exports MEMX_ETCD (its client URL), ETCD_PID, ETCD_DIR
# Standalone:  tests/etcd.sh run CMD...   runs CMD with MEMX_ETCD set and returns its status
#
# Ports are picked free at random on 127.0.0.1 (parallel tests don't collide); the data
# directory is a temp dir removed by etcd_stop.  etcd_start fails (status 1, a line on
# stderr) when etcd is not installed or does not answer within 5 s: a test that needs etcd
# must fail then, never skip.

etcd_free_port() {      # a port nothing listens on now (the kernel's pick, then released)
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' \
        2>/dev/null || echo $((20000 + RANDOM % 40000))    # etcd_start retries a taken one
}

etcd_start() {
    local name=${1:-memx} cport pport i
    if ! command -v etcd >/dev/null; then
        echo "etcd.sh: etcd is not installed (tools/install-deps.sh build installs etcd-server)" >&2
        return 1
    fi
    ETCD_DIR=$(mktemp -d /tmp/memx-etcd.XXXXXX) || return 1
    for i in 1 2 3; do
        cport=$(etcd_free_port) && pport=$(etcd_free_port) || return 1
        [ "$cport" != "$pport" ] || continue
        MEMX_ETCD=http://127.0.0.1:$cport
        etcd --name "$name" --data-dir "$ETCD_DIR/data" \
            --listen-client-urls "$MEMX_ETCD" --advertise-client-urls "$MEMX_ETCD" \
            --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "$name=http://127.0.0.1:$pport" --log-level error \
            >"$ETCD_DIR/etcd.log" 2>&1 &
        ETCD_PID=$!
        export MEMX_ETCD ETCD_PID ETCD_DIR
        for _ in $(seq 50); do
            if curl -sf -m 1 -X POST -d '{}' "$MEMX_ETCD/v3/maintenance/status" >/dev/null 2>&1; then
                return 0
            fi
            kill -0 "$ETCD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill "$ETCD_PID" 2>/dev/null; wait "$ETCD_PID" 2>/dev/null
        rm -rf "$ETCD_DIR/data"     # a port taken between the pick and the bind: try others
    done
    echo "etcd.sh: etcd did not answer on $MEMX_ETCD within 5 s; its log:" >&2
    tail -n 5 "$ETCD_DIR/etcd.log" >&2
    rm -rf "$ETCD_DIR"
    unset ETCD_PID
    return 1
}

etcd_stop() {
    if [ -n "${ETCD_PID:-}" ]; then
        kill "$ETCD_PID" 2>/dev/null
        kill -CONT "$ETCD_PID" 2>/dev/null     # a test may have left it frozen (SIGSTOP)
        wait "$ETCD_PID" 2>/dev/null
        unset ETCD_PID
    fi
    [ -n "${ETCD_DIR:-}" ] && rm -rf "$ETCD_DIR"
    unset ETCD_DIR
    return 0
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    if [ "${1:-}" != run ] || [ $# -lt 2 ]; then
        echo "usage: $0 run CMD [ARGS...]" >&2
        exit 2
    fi
    shift
    trap etcd_stop EXIT
    trap 'exit 130' INT TERM
    etcd_start || exit 1
    "$@"
    exit $?
fi
