#!/bin/sh
# CI's package stage (run as root): builds the Debian packages from a clean
# copy of the tree (tools/build-debs.sh: lintian errors fail), installs them
# with apt as an operator would, and checks what got installed: the conffile,
# the units (systemd-analyze verify), the hotplug script where libxl looks,
# every man page (groff warnings fail), and that every installed program
# runs.  The packages stay installed (make check-xen's dom0 can use them).
# Usage: tools/check-packages.sh [OUTDIR]
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d /tmp/memx-debs.XXXXXX)}
fail() { echo "check-packages: FAILED: $*"; exit 1; }
"$src/tools/build-debs.sh" "$out" || fail "building the packages"
cd "$out" || fail "no $out"
debs=$(ls memx-*.deb | grep -v dbgsym | sed 's|^|./|')
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --reinstall $debs >apt.log 2>&1 ||
  { tail -20 apt.log; fail "apt-get install of $debs"; }
dpkg-query -W -f='${Conffiles}\n' memx-common | grep -q ' /etc/memx/memx.conf ' ||
  fail "/etc/memx/memx.conf is not memx-common's conffile"
[ -x /etc/xen/scripts/block-memx ] || fail "block-memx is not in /etc/xen/scripts"
for u in memx-backd memx-memd; do
  [ -f "/lib/systemd/system/$u.service" ] || fail "$u.service not installed"
done
systemd-analyze verify /lib/systemd/system/memx-backd.service /lib/systemd/system/memx-memd.service ||
  fail "systemd-analyze verify"
for p in memx-backd memx-memd memxctl block-memx memx.conf; do
  f=$(man -w "$p") || fail "man page $p not installed"
  w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$f" 2>&1 >/dev/null)
  [ -z "$w" ] || fail "man $p: $w"
done
for b in /usr/sbin/memx-backd /usr/sbin/memx-memd /usr/bin/memxctl /usr/bin/memx-io; do
  "$b" --help >/dev/null 2>&1 || fail "$b --help"
done
echo "check-packages: $(echo $debs | wc -w) packages built, lintian-clean of errors, installed and checked (units, conffile, hotplug script, man pages, programs)"
