#!/bin/bash
# tests/valgrind.sh — every unit-test program under valgrind (make check-valgrind).
#
# Usage: tests/valgrind.sh BUILD_DIR [TEST...]     (default: every tests/unit/test_* program)
#
# Memcheck with --leak-check=full and an error exit code: an invalid read or write, a use of an
# uninitialised value, or a definite/possible leak fails the program.  Only the test process is
# checked (the daemons some tests start, memx-memd and memx-simxsd, run natively).  Integration
# scripts are not run here.  Each program's log is BUILD_DIR/tests/unit/<name>.vg.log.
# Programs in SKIP are left out (say why there); MEMX_VG_SKIP adds names.
#
# Prints one line per program and "valgrind: N clean, N failed, N skipped"; exits 1 on a failure.
set -u
if [ $# -lt 1 ]; then
  echo "usage: $0 BUILD_DIR [TEST...]" >&2
  exit 2
fi
build=$(cd "$1" && pwd) || exit 2
shift
src=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null || { echo "valgrind: not installed (tools/install-deps.sh build)" >&2; exit 1; }

# None today: all 25 programs take 80 s together on a 2-core VM (test_pool, the longest, 26 s).
SKIP="${MEMX_VG_SKIP:-}"

make -C "$build" -j"$(nproc)" check TESTS= >/dev/null ||
  { echo "valgrind: building the tests failed" >&2; exit 1; }
if [ $# -gt 0 ]; then
  progs=("$@")
else
  mapfile -t progs < <(cd "$build" &&
    find tests/unit -maxdepth 1 -type f -name 'test_*' -perm -u+x ! -name '*.*' | sort)
fi
# Tests whose checks are timings (ring polling, a guest thread's storm) skip
# themselves under memcheck: they run in make check.
export MEMX_BUILDDIR=$build MEMX_SRCDIR=$src MEMX_VALGRIND=1
clean=0 failed=0 skipped=0 bad=""
for p in "${progs[@]}"; do
  name=${p##*/}
  case " $SKIP " in *" $name "*) echo "  SKIP  $name"; skipped=$((skipped + 1)); continue ;; esac
  log=$build/tests/unit/$name.vg.log
  start=$(date +%s)
  # 99, not 1: a test that fails exits 1 itself, and the line should say which it was.
  (cd "$build" && valgrind --quiet --error-exitcode=99 --leak-check=full \
     --show-leak-kinds=definite,possible --errors-for-leak-kinds=definite,possible \
     --track-origins=yes --num-callers=30 \
     "./tests/unit/$name") >"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  cu=$(grep -h '^CUNIT-SUMMARY' "$log" | tail -n 1 | sed 's/CUNIT-SUMMARY //')
  if [ $rc -eq 0 ]; then
    printf '  clean %-24s %4ss  %s\n' "$name" "$secs" "$cu"
    clean=$((clean + 1))
  else
    why="exit $rc"
    [ $rc -eq 99 ] && why="valgrind errors"
    printf '  FAIL  %-24s %4ss  %s (%s); log: %s\n' "$name" "$secs" "$cu" "$why" "$log"
    grep -m 3 -A 6 '^==[0-9]*== [A-Z]' "$log" | sed 's/^/        /'
    failed=$((failed + 1))
    bad="$bad $name"
  fi
done
echo "valgrind: $clean clean, $failed failed, $skipped skipped${bad:+ (failed:$bad)}"
[ $failed -eq 0 ]
