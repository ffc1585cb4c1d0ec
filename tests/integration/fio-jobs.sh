#!/bin/bash
# fio as users run it (issue 15 item 5): several jobs of one fio run on ONE
# MemX disk through the memx-fio engine, with fio's defaults otherwise.
#  (1) fork mode (fio's default): 4 randwrite jobs with verify=crc32c, each in
#      its own 4 MiB region (numjobs=4, offset_increment), beside a randread
#      job: 5 jobs on the backend's 4 queues, so two jobs share a queue.
#  (2) thread=1 and the engine's queues=1: a verify_only job re-reads what
#      job 1 of run (1) wrote while a writer writes and verifies a new region,
#      both on one one-page queue (32 slots) with iodepth 24 each, so each job
#      finds the queue full of the other's requests.
# Every job must end with err=0 and fio must exit 0 (a verify mismatch is an
# error of its job).  Skipped (exit 77) without fio.
if ! command -v fio >/dev/null; then
  echo "fio-jobs: SKIP: fio is not installed (tools/install-deps.sh bench)"
  exit 77
fi
# The engine is compiled into the build dir, before the world starts so a
# skip leaves nothing behind.  fio's source tree is unpacked and configured
# once per build dir, its tarball fetched from the Debian archive once per
# machine into MEMX_FIO_SRC, as make bench does; a machine that cannot reach
# the archive skips (as without fio), any other build failure fails.
mkdir -p "${MEMX_BUILDDIR:?}/fio-engine"
blog=$MEMX_BUILDDIR/fio-engine/build.log
if ! ENGINE=$(MEMX_FIO_SRC=${MEMX_FIO_SRC:-/tmp/fiosrc} "${MEMX_SRCDIR:?}/frontend/fio/build.sh" "$MEMX_BUILDDIR" \
  "$MEMX_BUILDDIR/fio-engine" 2> "$blog"); then
  cat "$blog" >&2
  if grep -q 'apt-get .*failed' "$blog"; then
    echo "fio-jobs: SKIP: fio's source could not be fetched (put fio_<version>.orig.tar.gz in \$MEMX_FIO_SRC)"
    exit 77
  fi
  echo "fio-jobs: FAIL: building memx-fio.so failed" >&2
  exit 1
fi
. "$MEMX_SRCDIR/tests/integration/lib.sh"

it_start_world 256M
it_create 1 xvdb "memx:it-fio:64M"

# run_fio NAME JOBFILE: fio must exit 0 and every one of its jobs report err= 0.
run_fio() {
  local name=$1 jobs=$2 rc=0 n bad
  timeout -k 5 60 fio --output="$T/$name.out" "$jobs" > "$T/$name.err" 2>&1 || rc=$?
  n=$(grep -c 'groupid=.*err= *0:' "$T/$name.out" || true)
  bad=$(grep -E 'err= *[1-9]' "$T/$name.out" || true)
  if [ "$rc" != 0 ] || [ -n "$bad" ] || [ "$n" != "$3" ]; then
    cat "$T/$name.err" "$T/$name.out" >&2
    it_fail "fio $name: exit $rc, $n of $3 jobs without error${bad:+; $bad}"
  fi
  grep -q 'verify' "$T/$name.err" && { cat "$T/$name.err" >&2; it_fail "fio $name reported a verify problem"; }
  it_alive backd
}

cat > "$T/common.fio" <<EOF
[global]
ioengine=external:$ENGINE
platform=sim
sim_dir=$T/sim
domid=1
device=device/vbd/51728
bs=4k
iodepth=8
size=4M
memx_log=info
EOF

{ cat "$T/common.fio"; cat <<EOF
[writers]
rw=randwrite
verify=crc32c
numjobs=4
offset_increment=4M
[reader]
rw=randread
offset=16M
EOF
} > "$T/fork.fio"
run_fio fork "$T/fork.fio" 5
# One connection for all five (the other one is setup's size probe), on 4 queues.
n=$(grep -c ': connected to ' "$T/fork.err" || true)
[ "$n" = 2 ] || { cat "$T/fork.err" >&2; it_fail "fork run: $n connections to the disk, want 2 (probe + shared)"; }
grep -q '4 queue(s)' "$T/fork.err" || { cat "$T/fork.err" >&2; it_fail "fork run: the shared connection has not 4 queues"; }
q=$(sed -n 's/.* uses queue \([0-9]*\) of 4 .*/\1/p' "$T/fork.err" | sort -u | tr -d '\n')
[ "$q" = 0123 ] || { cat "$T/fork.err" >&2; it_fail "fork run: jobs used queues '$q', want each of 0123"; }

# verify_only replays the writer's offsets and seeds: the job stands first, as
# job 1 of run (1) did.
{ cat "$T/common.fio"; cat <<EOF
thread=1
queues=1
ring_order=0
iodepth=24
[writers]
rw=randwrite
verify=crc32c
verify_only=1
[writer]
rw=randwrite
verify=crc32c
offset=32M
EOF
} > "$T/thread.fio"
run_fio thread "$T/thread.fio" 2

w=$(sed -n 's/.*WRITE: bw=.*io=\([^ ,]*\).*/\1/p' "$T/fork.out" | head -1)
it_summary "fork mode: 4 randwrite+crc32c jobs and a reader on one disk (5 jobs, 4 queues), ${w:-?} written," \
  "verified; thread mode: verify_only beside a writer on one queue; every job err=0"
