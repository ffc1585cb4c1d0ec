# tests/xen/tf-in-xen.sh — sourced by both scenarios (busybox sh in dom0).
#
# tf_in_xen reads Xen's dump of a triple-faulted vCPU (its "RIP: cs:[<rip>]"
# line, on stdin) and prints the proof that the emulator, not the guest or
# MemX, broke it: the saved state holds Xen's own code selector e008 and a RIP
# in the range Linux reserves for the hypervisor (ffff8000_00000000 to
# ffff87ff_ffffffff), where no guest kernel runs.  Every such fault seen here
# stood at the instruction after Xen's own VMRUN with rax its VMCB: QEMU's
# emulated VMRUN gave the guest the host's registers (tests/xen/README.md).
# Prints nothing when the dump does not show it.
tf_in_xen() {
    sed -n 's/.*RIP: *\(e008\):\[<\(ffff8[0-7][0-9a-f]*\)>\].*/cs:rip \1:\2 is in Xen, not the guest (the emulated VMRUN)/p' | head -1
}
