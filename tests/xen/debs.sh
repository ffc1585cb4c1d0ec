#!/bin/bash
# tests/xen/debs.sh CACHE — the MemX Debian packages check-xen installs in dom0.
#
# check-xen runs what an operator installs (issue 17), so the dom0 image is
# built from the .deb files of debian/, not from the build tree.  They are
# built by tools/build-debs.sh (dpkg-buildpackage from a clean copy of the
# tree, lintian errors fail) into CACHE/debs-memx/<key>, where <key> hashes
# the names and contents of the tree's files (tracked and new, as
# build-debs.sh copies them).  The harness's own files (tests/xen/) are left
# out of the key: no package holds them and debian/rules runs no test, so
# editing the harness does not rebuild the packages.  Older keys are removed.
# Prints the directory holding the .deb files on stdout; the build's output
# goes to CACHE/build-debs.log.  Exit 1 if the packages cannot be built.
set -euo pipefail
CACHE=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
key=$(cd "$SRC" && git ls-files -co --exclude-standard | grep -v '^tests/xen/' | sort \
      | while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f" && cat "$f"; done | sha256sum | cut -c1-16)
D=$CACHE/debs-memx/$key
if [ ! -f "$D/.complete" ]; then
    rm -rf "$CACHE/debs-memx" && mkdir -p "$D"
    if ! "$SRC/tools/build-debs.sh" "$D" > "$CACHE/build-debs.log" 2>&1; then
        echo "debs.sh: tools/build-debs.sh failed; $CACHE/build-debs.log ends:" >&2
        tail -15 "$CACHE/build-debs.log" >&2
        exit 1
    fi
    touch "$D/.complete"
fi
echo "$D"
