# tests/xen/twohost-port.sh — sourced (busybox sh, dom0): mig_port sets PORT to
# the device of this dom0's virtio-serial port named memx.mig (twohost.sh
# joins the two QEMUs' ports over a loopback chardev socket), or returns 1.
# The migration stream crosses that channel instead of the emulated network:
# through busybox nc over virtio-net it moved about 0.25 MiB/s.
# A virtio-serial port has no connections and no end of file, and the guest
# kernel drops what arrives while nothing holds the port open, so both ends
# agree by lines on it: the receiver (twohost-recv.sh) opens its port first
# and waits for "MEMX-MIG-GO <command>" (or "MEMX-MIG-SINK <bytes>"); the
# sender opens its own port, starts reading it, and only then sends that line.
mig_port() {
    PORT=
    for n in /sys/class/virtio-ports/*/name; do
        [ -f "$n" ] && [ "$(cat "$n")" = memx.mig ] || continue
        d=${n%/name}; PORT=/dev/${d##*/}
    done
    [ -n "$PORT" ] && [ -c "$PORT" ]
}
