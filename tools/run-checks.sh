#!/bin/bash
# Runs `make check` in each build dir given, then prints every test program's
# CUnit summary and one closing "N passed, N failed" line.
set -u
jobs=$(nproc)
total_pass=0 total_fail=0 rc=0
for b in "$@"; do
  echo "=== make check in $b"
  if ! make -C "$b" -j"$jobs" check; then rc=1; fi
  echo "=== results in $b"
  while IFS= read -r trs; do
    log=${trs%.trs}.log
    res=$(sed -n 's/^:test-result: //p' "$trs")
    name=${trs#"$b"/}; name=${name%.trs}
    cu=$(grep -h '^CUNIT-SUMMARY' "$log" 2>/dev/null | tail -1 | sed 's/CUNIT-SUMMARY //')
    summ=$(grep -h '^SUMMARY:' "$log" 2>/dev/null | tail -1 | sed 's/^SUMMARY: //')
    printf '  %-5s %-45s %s\n' "$res" "$name" "${cu:-$summ}"
    case $res in
      PASS|SKIP|XFAIL) total_pass=$((total_pass + 1)) ;;
      *) total_fail=$((total_fail + 1)); rc=1
         echo "----- tail of $log"; tail -n 40 "$log"; echo "-----" ;;
    esac
  done < <(find "$b/tests" -name '*.trs' | sort)
done
echo "$total_pass passed, $total_fail failed"
exit $rc
