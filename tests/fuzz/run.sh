#!/bin/bash
# tests/fuzz/run.sh — builds the libFuzzer targets and runs each for a bounded time (make fuzz).
#
# Usage: tests/fuzz/run.sh BUILD_DIR [SECONDS]      (default 30 s per target)
#        MEMX_FUZZ="xsd ctl" tests/fuzz/run.sh ...   (a subset)
# Seeds: tests/fuzz/mkcorpus.py (ring, xsd, ctl), tests/fuzz/seeds_proto.c (proto), hand-written
# from etcd 3.4's answers in tests/fuzz/corpus/coord/ (coord);
# tests/fuzz/<target>.dict, when there is one, is the target's libFuzzer dictionary.
#
# The targets are built with clang -fsanitize=fuzzer,address,undefined in BUILD_DIR/fuzz, a
# second configuration of the tree (made on first use; the libraries are instrumented too, so
# the fuzzer sees their coverage).  Each target starts from a temporary copy of its seeds in
# tests/fuzz/corpus/<target>/ (BUILD_DIR/fuzz/corpus-<target>.*), so runs never grow the
# repository.  Any crash, leak, UBSan report or hang (-timeout) fails the run; the input that
# did it is kept as
# BUILD_DIR/fuzz/artifacts/<target>/crash-* (or leak-*, timeout-*), with the target's log
# beside it.  Replay one with:  BUILD_DIR/fuzz/tests/fuzz/fuzz_<target> <that file>
#
# Prints one line per target (runs, runs/s, coverage, time) and then
# "fuzz: all N targets clean", or the failing targets; exits 1 on any failure.
set -u
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 BUILD_DIR [SECONDS]" >&2
  exit 2
fi
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1" || exit 2
build=$(cd "$1" && pwd)
secs=${2:-30}
case $secs in ''|*[!0-9]*) echo "$0: SECONDS must be a whole number" >&2; exit 2 ;; esac
fz=$build/fuzz
targets=${MEMX_FUZZ:-ring proto xsd ctl coord}

# What each target may take in one input (libFuzzer's default is the largest seed, or 4096).
max_len() {
  case $1 in
    ring) echo 36869 ;;     # flags + req_prod + the ring page + 8 guest pages
    xsd) echo 16384 ;;      # a few messages of up to XENSTORE_PAYLOAD_MAX each
    ctl) echo 12288 ;;      # room for a line over CTL_LINE_MAX and more lines after it
    *) echo 8192 ;;
  esac
}

if ! command -v clang >/dev/null; then
  echo "fuzz: clang is not installed (tools/install-deps.sh build installs it)" >&2
  exit 1
fi
if [ ! -x "$src/configure" ]; then
  echo "fuzz: $src/configure is missing: run 'make all' first" >&2
  exit 1
fi
mkdir -p "$fz"
if [ ! -f "$fz/Makefile" ]; then
  echo "fuzz: configuring $fz (clang, fuzzer + ASan + UBSan)"
  (cd "$fz" && "$src/configure" --quiet CC=clang \
     CFLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
             -fno-sanitize-recover=undefined" \
     LDFLAGS="-fsanitize=address,undefined") >"$fz/configure.log" 2>&1 || {
    echo "fuzz: configure failed; see $fz/configure.log" >&2
    tail -n 20 "$fz/configure.log" >&2
    exit 1
  }
fi
progs=""
for t in $targets; do progs="$progs tests/fuzz/fuzz_$t"; done
case " $targets " in *" proto "*) progs="$progs tests/fuzz/seeds_proto" ;; esac
if ! make -C "$fz" -j"$(nproc)" $progs >"$fz/build.log" 2>&1; then
  echo "fuzz: building the targets failed; see $fz/build.log" >&2
  grep -E 'error|Error' "$fz/build.log" | head -n 20 >&2
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
n=0 failed=""
for t in $targets; do
  n=$((n + 1))
  bin=$fz/tests/fuzz/fuzz_$t
  art=$fz/artifacts/$t
  log=$fz/artifacts/fuzz_$t.log
  mkdir -p "$art"
  touch "$art/.started"
  # The run's corpus: a copy under the build dir (not /tmp, where other tests' clean-ups of
  # memx-* removed one mid-run), deleted afterwards.
  work=$(mktemp -d "$fz/corpus-$t.XXXXXX")
  [ -d "$src/tests/fuzz/corpus/$t" ] && cp -r "$src/tests/fuzz/corpus/$t/." "$work/"
  # proto's seeds as the encoder writes them today (the checked-in ones may predate a change).
  [ "$t" = proto ] && mkdir -p "$work/now" && "$fz/tests/fuzz/seeds_proto" "$work/now"
  seeds=$(find "$work" -type f | wc -l)
  dict=()
  [ -f "$src/tests/fuzz/$t.dict" ] && dict=(-dict="$src/tests/fuzz/$t.dict")
  start=$(date +%s.%N)
  "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" "${dict[@]}" \
         -print_final_stats=1 -artifact_prefix="$art/" "$work" >"$log" 2>&1
  rc=$?
  end=$(date +%s.%N)
  corpus=$(find "$work" -type f | wc -l)
  rm -rf "$work"
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
  wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", b - a }')
  rate=$(awk -v r="${runs:-0}" -v s="$wall" 'BEGIN { printf "%.0f", (s > 0) ? r / s : r }')
  arts=$(find "$art" -maxdepth 1 -type f ! -name .started -newer "$art/.started" 2>/dev/null | head -n 1)
  if [ $rc -eq 0 ] && [ -z "$arts" ]; then
    printf 'fuzz_%-6s clean: %s runs (%s/s), %s, corpus %s -> %s, %ss\n' "$t" "${runs:-?}" "$rate" \
      "${cov:-cov: ?}" "$seeds" "$corpus" "$wall"
  else
    failed="$failed $t"
    why=$(grep -m1 -E '^CHECK |^==[0-9]+==ERROR|runtime error|ERROR: libFuzzer|SUMMARY' "$log")
    printf 'fuzz_%-6s FAILED (exit %s) after %s runs, %ss: %s\n' "$t" "$rc" "${runs:-?}" "$wall" \
      "${why:-see the log}"
    printf '  input: %s\n  log:   %s\n' "${arts:-(none written)}" "$log"
  fi
done
if [ -z "$failed" ]; then
  echo "fuzz: all $n targets clean"
  exit 0
fi
echo "fuzz: failed:$failed"
exit 1
