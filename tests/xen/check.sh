#!/bin/bash
# tests/xen/check.sh BUILD — make check-xen: the one-host run (run.sh), then the
# two-host run (twohost.sh), the second even when the first failed.
#
# Why a recap: CI keeps only the tail of what a run printed, and the one-host
# run's failure scrolls away under the two-host run's 30-odd lines (stop 22's CI
# said only "check-xen: FAILED").  So each half's output is kept in
# BUILD/xen-cache/check-{onehost,twohost}.out, and the last lines repeat, per
# half, its failed and retried stages and its closing line (the failed half
# last).  Exit 0 only when both halves passed.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: tests/xen/check.sh BUILD-DIR" >&2; exit 2; }
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "check.sh: build dir '$1' not found" >&2; exit 2; }
mkdir -p "$BUILD/xen-cache"
ONE=$BUILD/xen-cache/check-onehost.out TWO=$BUILD/xen-cache/check-twohost.out

"$SRC/tests/xen/run.sh" "$BUILD" 2>&1 | tee "$ONE"; rc1=${PIPESTATUS[0]}
"$SRC/tests/xen/twohost.sh" "$BUILD" 2>&1 | tee "$TWO"; rc2=${PIPESTATUS[0]}

recap() { # name rc file: a few lines, since CI shows only about 25
    local what=ok; [ "$2" = 0 ] || what="FAILED (exit $2)"
    echo "--- $1: $what"
    grep -aE '^[^ ]+ +(FAILED|retried) |^  retry: ' "$3" | head -8 | cut -c1-240
    grep -aE '^check-xen(-twohost)?: |^(run|twohost)\.sh: ' "$3" | tail -2 | cut -c1-240
}
echo
echo "=== check-xen recap (whole output: $ONE, $TWO; a failure's dumps are there)"
# The failed half last, nearest the end CI shows.
if [ "$rc1" != 0 ] && [ "$rc2" = 0 ]; then
    recap "two hosts" "$rc2" "$TWO"; recap "one host" "$rc1" "$ONE"
else
    recap "one host" "$rc1" "$ONE"; recap "two hosts" "$rc2" "$TWO"
fi
if [ "$rc1" = 0 ] && [ "$rc2" = 0 ]; then echo "check-xen: one host and two hosts ok"; exit 0; fi
echo "check-xen: FAILED:$([ "$rc1" = 0 ] || echo -n ' one host')$([ "$rc2" = 0 ] || echo -n ' two hosts')"
exit 1
