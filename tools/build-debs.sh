#!/bin/sh
# Builds the Debian packages (debian/) from a clean copy of the tree's files
# (tracked and new, never build output) and checks them with lintian: an
# error fails.  Usage: tools/build-debs.sh OUTDIR   (the .deb files land there)
set -eu
out=${1:?usage: tools/build-debs.sh OUTDIR}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d /tmp/memx-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir "$work/memx"
(cd "$src" && git ls-files -co --exclude-standard -z | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$work/memx"
cd "$work/memx"
echo "build-debs: dpkg-buildpackage -us -uc -b in $work/memx"
dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; echo "build-debs: dpkg-buildpackage failed"; exit 1; }
cd "$work"
rc=0
lintian --fail-on error ./*.changes >"$work/lintian.log" 2>&1 || rc=$?
cat "$work/lintian.log"
[ $rc = 0 ] || { echo "build-debs: lintian found errors"; exit 1; }
cp ./*.deb "$out/"
echo "build-debs: $(ls ./*.deb | wc -l) packages in $out, lintian: no errors ($(grep -c '^W:' "$work/lintian.log" || true) warnings)"
