#!/bin/bash
# (c) A full pool: 3 memory servers of 16 MiB with 2 replicas hold about
# 24 MiB.  Writing far more than that must fail with write errors, never
# crash, and leave what was written before intact; memxctl health says
# pool_full (code 2) while writes are refused, pool counts them, and a slab
# placed with fewer replicas than configured is never silent (a "degraded"
# warning in the log and a degraded condition in health).
. "${MEMX_SRCDIR:?}/tests/integration/lib.sh"

it_start_world 16M 3 2 1M
it_create 1 xvdb "memx:it-full:128M"

it_io 1 xvdb write --seed 1 --offset 0 --size 8M > "$T/w1.out" 2> "$T/w1.log" ||
  { cat "$T/w1.out"; it_fail "the first 8 MiB did not fit"; }
rc=0
it_io 1 xvdb write --seed 2 --offset 8M --size 96M > "$T/w2.out" 2> "$T/w2.log" || rc=$?
cat "$T/w2.out"
[ "$rc" = 1 ] || it_fail "writing 96 MiB into a full pool gave exit status $rc, not 1 (write errors)"
errs=$(it_field "$T/w2.out" io_errors)
[ "${errs:-0}" -gt 0 ] || it_fail "no write errors reported for a full pool"
it_alive backd
rc=0; "$B/memxctl" --socket "$WORLD_SOCK" health > "$T/h.out" || rc=$?
cat "$T/h.out"
[ "$rc" = 2 ] && grep -q 'pool_full: no memory server has room for another slab: [1-9][0-9]* page write(s) failed with ENOSPC' \
  "$T/h.out" || it_fail "health on a full pool: exit $rc, $(cat "$T/h.out")"
nospace=$("$B/memxctl" --socket "$WORLD_SOCK" --json pool | jq .nospace_writes)
[ "${nospace:-0}" -gt 0 ] || it_fail "memxctl pool counts no ENOSPC writes on a full pool"
grep -q 'no memory server has room for another slab: pool full' "$T/backd.log" || it_fail "the pool-full warning is not in the log"
if grep -q 'degraded: slab' "$T/backd.log"; then
  grep -q 'degraded: .* slab(s) have fewer copies than replicas' "$T/h.out" ||
    it_fail "a slab was placed with fewer replicas, yet health does not say degraded: $(cat "$T/h.out")"
fi

it_io 1 xvdb read-verify --seed 1 --offset 0 --size 8M > "$T/r1.out" 2> "$T/r1.log" ||
  { cat "$T/r1.out"; it_fail "data written before the pool filled no longer verifies"; }
cat "$T/r1.out"
it_alive backd
for i in 0 1 2; do it_alive "memd$i"; done
it_summary "pool full after $(it_field "$T/w2.out" written) pages: $errs write errors;" \
  "earlier $(it_field "$T/r1.out" verified) pages verified, 0 mismatches; health pool_full, $nospace ENOSPC writes; daemons alive"
