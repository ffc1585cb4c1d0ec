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
#
# TLS:  MEMX_ETCD_TLS=1 (set before etcd_start, or around `run`) makes it serve https only,
# demanding client certificates: openssl makes, in ETCD_DIR/tls, a CA, a server certificate
# for IP 127.0.0.1 and a client certificate, both signed by it, and another CA that signed
# neither; exported as MEMX_ETCD_CACERT, MEMX_ETCD_CERT, MEMX_ETCD_KEY, MEMX_ETCD_OTHER_CA.
# Without openssl etcd_start fails, as without etcd.

etcd_free_port() {      # a port nothing listens on now (the kernel's pick, then released)
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' \
        2>/dev/null || echo $((20000 + RANDOM % 40000))    # etcd_start retries a taken one
}

etcd_tls_certs() {     # DIR: the CA, the two certificates and the other CA (EC keys: quick)
    local d=$1 ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes" ca who
    mkdir -p "$d" || return 1
    for ca in ca other-ca; do
        # shellcheck disable=SC2086
        openssl req -x509 $ec -keyout "$d/$ca-key.pem" -out "$d/$ca.pem" -days 2 -subj "/CN=memx test $ca" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign || return 1
    done
    # clientAuth too: etcd's own JSON gateway dials etcd with the server certificate.
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' > "$d/server.ext"
    printf 'extendedKeyUsage=clientAuth\n' > "$d/client.ext"
    for who in server client; do
        # shellcheck disable=SC2086
        openssl req $ec -keyout "$d/$who-key.pem" -out "$d/$who.csr" -subj "/CN=memx test $who" &&
            openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -set_serial "$RANDOM$RANDOM" \
                -days 2 -extfile "$d/$who.ext" -out "$d/$who.pem" || return 1
    done
    MEMX_ETCD_CACERT=$d/ca.pem MEMX_ETCD_CERT=$d/client.pem MEMX_ETCD_KEY=$d/client-key.pem
    MEMX_ETCD_OTHER_CA=$d/other-ca.pem
    export MEMX_ETCD_CACERT MEMX_ETCD_CERT MEMX_ETCD_KEY MEMX_ETCD_OTHER_CA
}

etcd_start() {
    local name=${1:-memx} cport pport i scheme=http tls=() probe=()
    if ! command -v etcd >/dev/null; then
        echo "etcd.sh: etcd is not installed (tools/install-deps.sh build installs etcd-server)" >&2
        return 1
    fi
    ETCD_DIR=$(mktemp -d /tmp/memx-etcd.XXXXXX) || return 1
    if [ "${MEMX_ETCD_TLS:-0}" = 1 ]; then
        if ! command -v openssl >/dev/null; then
            echo "etcd.sh: openssl is not installed (tools/install-deps.sh build installs it)" >&2
            rm -rf "$ETCD_DIR"
            return 1
        fi
        if ! etcd_tls_certs "$ETCD_DIR/tls" 2>"$ETCD_DIR/openssl.log"; then
            echo "etcd.sh: openssl could not make the test certificates:" >&2
            tail -n 5 "$ETCD_DIR/openssl.log" >&2
            rm -rf "$ETCD_DIR"
            return 1
        fi
        scheme=https
        tls=(--client-cert-auth --trusted-ca-file "$MEMX_ETCD_CACERT"
             --cert-file "$ETCD_DIR/tls/server.pem" --key-file "$ETCD_DIR/tls/server-key.pem")
        probe=(--cacert "$MEMX_ETCD_CACERT" --cert "$MEMX_ETCD_CERT" --key "$MEMX_ETCD_KEY")
    fi
    for i in 1 2 3; do
        cport=$(etcd_free_port) && pport=$(etcd_free_port) || return 1
        [ "$cport" != "$pport" ] || continue
        MEMX_ETCD=$scheme://127.0.0.1:$cport
        etcd --name "$name" --data-dir "$ETCD_DIR/data" "${tls[@]}" \
            --listen-client-urls "$MEMX_ETCD" --advertise-client-urls "$MEMX_ETCD" \
            --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
            --initial-cluster "$name=http://127.0.0.1:$pport" --log-level error \
            >"$ETCD_DIR/etcd.log" 2>&1 &
        ETCD_PID=$!
        export MEMX_ETCD ETCD_PID ETCD_DIR
        for _ in $(seq 50); do
            if curl -sf -m 1 "${probe[@]}" -X POST -d '{}' "$MEMX_ETCD/v3/maintenance/status" >/dev/null 2>&1; then
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
