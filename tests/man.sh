#!/bin/sh
# The man pages say what the code does: groff has nothing to warn about in
# any of them, every key lib/config.c accepts is in memx.conf(5), every
# command `memxctl --help` lists is in memxctl(8), and every option of each
# daemon's --help is in its page.  Fails naming what is missing.
set -u
S=${MEMX_SRCDIR:?}
B=${MEMX_BUILDDIR:?}
bad=0
miss() { echo "man: $*"; bad=1; }
command -v man >/dev/null || { echo "man: man is not installed (tools/install-deps.sh installs man-db)"; exit 1; }
for f in "$S"/man/*.[58]; do
  w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$f" 2>&1 >/dev/null)
  [ -z "$w" ] || miss "$(basename "$f"): $w"
done
# Keys: the config table's lines are { "section", "key", ...
keys=$(sed -n 's/^    { "\([a-z]*\)", "\([a-z_]*\)".*/\1 \2/p' "$S/lib/config.c")
[ -n "$keys" ] || miss "no keys found in lib/config.c (its table changed shape?)"
echo "$keys" | while read -r sec key; do
  grep -q "^\.SH \[$sec\]" "$S/man/memx.conf.5" || { echo "man: memx.conf(5) has no [$sec] section"; exit 1; }
  grep -q "$key" "$S/man/memx.conf.5" || { echo "man: memx.conf(5) does not document [$sec] $key"; exit 1; }
done || bad=1
# memxctl commands: the first word of each indented line under "Commands:".
cmds=$("$B/memxctl" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' | sort -u)
[ -n "$cmds" ] || miss "memxctl --help lists no commands"
for c in $cmds; do
  grep -q "^\.B.* $c\|^\.B $c\|^\.BI \"$c\|^\.B $c " "$S/man/memxctl.8" || grep -q "^\.B[I]* \"*$c" "$S/man/memxctl.8" ||
    miss "memxctl(8) does not document the command '$c'"
done
for d in memx-backd memx-memd; do
  for o in $("$B/$d" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" "$S/man/$d.8" || miss "$d(8) does not document $o"
  done
done
[ $bad = 0 ] && echo "man: 5 pages clean; every config key, memxctl command and daemon option documented"
exit $bad
