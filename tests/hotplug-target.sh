#!/bin/sh
# The hotplug script's target check (xl-config/block-memx check_target)
# accepts and refuses what it should, options included, so that a disk line
# memx-backd takes is never stopped at the script (and a bad one is, with a
# reason).  The function is taken out of the script as it ships.
set -u
S=${MEMX_SRCDIR:?}
eval "$(sed -n '/^check_size() {/,/^}/p; /^check_target() {/,/^}/p' "$S/xl-config/block-memx")"
bad=0
ok() { why=$(check_target "$1") || { echo "hotplug-target: '$1' refused: $why"; bad=1; }; }
no() {
  if why=$(check_target "$1"); then echo "hotplug-target: '$1' accepted"; bad=1
  elif ! echo "$why" | grep -q -- "$2"; then echo "hotplug-target: '$1': '$why' lacks '$2'"; bad=1; fi
}
ok memx:vm1:8G
ok memx:vm1:8G:dedup=no
ok memx:vm1:8G:quota=2G
ok memx:vm1:8G:dedup=yes:quota=4096
ok memx:a.b_c-D:512M:quota=64K
no memx:vm1:8G:quota= "quota '' is not a number"
no memx:vm1:8G:quota=0 "quota is zero"
no memx:vm1:8G:quota=1000 "quota '1000' is not a multiple of 4096"
no memx:vm1:8G:quota=2X "quota '2X' is not a number"
no memx:vm1:8G:quota "unknown option 'quota'"
no memx:vm1:8G:cache=yes "unknown option 'cache=yes'"
no memx:vm1:8G: "empty option"
no memx:vm1:0 "size is zero"
no "memx:vm 1:8G" "volume name"
[ $bad = 0 ] && echo "hotplug-target: 14 targets checked"
exit $bad
