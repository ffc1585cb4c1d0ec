#!/bin/sh
# tests/xen/tf-in-xen-test.sh — make check: tf_in_xen on the dumps Xen really
# printed (2026-12-04).  It must name a vCPU left at Xen's own cs:rip after
# VMRUN, which lets a guest be rerun a second time, and must stay silent for
# one in guest text (the PIT loop, a migrate), which must not.
. "$(dirname "$0")/tf-in-xen.sh"
fail=0
check() { # want dump-line
    got=$(printf '%s\n' "(XEN) d3v0 Triple fault - invoking HVM shutdown action 1" "$2" "(XEN) RFLAGS: 0000000000000246   CONTEXT: hvm guest (d3v0)" | tf_in_xen)
    case "$1:$got" in
        yes:*e008:ffff82d0402044a5*|no:) echo "ok: $2";;
        *) echo "FAIL: $2 -> '${got}' (want $1)"; fail=1;;
    esac
}
check yes '(XEN) RIP:    e008:[<ffff82d0402044a5>]'
check no  '(XEN) RIP:    0010:[<ffffffff8103dd9c>]'
check no  '(XEN) RIP:    0010:[<ffffffff819eb937>]'
# Xen's selector with a guest-kernel address, or a guest selector in Xen's
# range, is not the signature: both halves must hold.
check no  '(XEN) RIP:    e008:[<ffffffff8103dd9c>]'
check no  '(XEN) RIP:    0010:[<ffff82d0402044a5>]'
exit $fail
