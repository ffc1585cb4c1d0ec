#!/bin/bash
# Builds memx-fio.so, the fio external ioengine on libmemxfront.
#
#   frontend/fio/build.sh BUILD_DIR WORK_DIR      -> prints the path of memx-fio.so
#
# Debian ships no fio headers, so the engine is compiled against fio's own
# source tree: the source package of the installed fio version comes from the
# Debian archive (apt-get source, with a private deb-src list so the system's
# apt configuration is untouched), is unpacked under WORK_DIR and configured
# once for config-host.h.  Nothing of it lands in the MemX tree.  With
# MEMX_FIO_SRC set, the tarball is taken from there if present and left there
# after a download.
#
# libmemxfront.a is not position-independent, so its sources (the list is
# read from the configured MemX Makefile) are compiled again with -fPIC and
# hidden visibility: only the `ioengine` symbol fio looks up is exported, and
# nothing in the engine can bind to a like-named symbol of the fio binary.
set -euo pipefail
B=$(cd "${1:?usage: build.sh BUILD_DIR WORK_DIR}" && pwd)
W=${2:?usage: build.sh BUILD_DIR WORK_DIR}
mkdir -p "$W"
W=$(cd "$W" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
CC=${CC:-gcc}

command -v fio >/dev/null || { echo "memx-fio: fio is not installed (apt-get install fio)" >&2; exit 1; }
ver=$(fio --version | sed -n 's/^fio-\([0-9.]*\).*/\1/p')
[ -n "$ver" ] || { echo "memx-fio: cannot tell the installed fio's version" >&2; exit 1; }
FIO=$W/fio-$ver

fetch_fio() {
  local tarball=$W/fio_$ver.orig.tar.gz
  if [ ! -f "$tarball" ] && [ -n "${MEMX_FIO_SRC:-}" ] && [ -f "$MEMX_FIO_SRC/fio_$ver.orig.tar.gz" ]; then
    cp "$MEMX_FIO_SRC/fio_$ver.orig.tar.gz" "$tarball"
  fi
  if [ ! -f "$tarball" ]; then
    local src=/etc/apt/sources.list.d/debian.sources
    [ -f "$src" ] || { echo "memx-fio: $src not found; put fio_$ver.orig.tar.gz in \$MEMX_FIO_SRC" >&2; exit 1; }
    sed 's/^Types: deb$/Types: deb-src/' "$src" > "$W/src.sources"
    mkdir -p "$W/lists/partial"
    local aopt=(-o "Dir::Etc::SourceList=$W/src.sources" -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$W/lists")
    echo "memx-fio: fetching fio $ver source from the Debian archive" >&2
    apt-get -q "${aopt[@]}" update >"$W/apt.log" 2>&1 ||
      { echo "memx-fio: apt-get update (deb-src) failed; see $W/apt.log" >&2; exit 1; }
    (cd "$W" && apt-get -q "${aopt[@]}" source --download-only "fio=$(dpkg-query -W -f='${Version}' fio)" >>"$W/apt.log" 2>&1) ||
      { echo "memx-fio: apt-get source fio failed; see $W/apt.log" >&2; exit 1; }
    [ -f "$tarball" ] || { echo "memx-fio: the archive has no fio_$ver.orig.tar.gz (installed fio is $ver)" >&2; exit 1; }
    # Kept for the next build dir (make check builds twice, make bench once more).
    if [ -n "${MEMX_FIO_SRC:-}" ] && mkdir -p "$MEMX_FIO_SRC" 2>/dev/null; then
      cp "$tarball" "$MEMX_FIO_SRC/.fio_$ver.$$" && mv "$MEMX_FIO_SRC/.fio_$ver.$$" "$MEMX_FIO_SRC/fio_$ver.orig.tar.gz" ||
        rm -f "$MEMX_FIO_SRC/.fio_$ver.$$"
    fi
  fi
  tar xzf "$tarball" -C "$W"
}

if [ ! -f "$FIO/config-host.h" ]; then
  [ -f "$FIO/fio.h" ] || fetch_fio
  echo "memx-fio: configuring fio $ver's tree for config-host.h" >&2
  (cd "$FIO" && ./configure --disable-native >"$W/fio-configure.log" 2>&1) ||
    { echo "memx-fio: fio's configure failed; see $W/fio-configure.log" >&2; exit 1; }
fi

# What libmemxfront.a is made of, as the configured build lists it (read, not
# run: running make here could trigger the build's own regeneration rules).
mkvar() { awk -v v="$1" '{ if (cont) { line = line " " $0 } else line = $0
  cont = sub(/\\$/, "", line); if (!cont && line ~ "^" v " = ") { sub("^" v " = ", "", line); print line; exit } }' "$B/Makefile"; }
srcdir=$(mkvar srcdir)
srcs=$(mkvar libmemxfront_a_SOURCES)
[ -n "$srcs" ] || { echo "memx-fio: $B/Makefile lists no libmemxfront_a_SOURCES (is $B a configured MemX build?)" >&2; exit 1; }
xenflags=$(pkg-config --cflags xenstore xengnttab xenevtchn)
xenlibs=$(pkg-config --libs xenstore xengnttab xenevtchn)
cppflags="-I$B -I$srcdir/lib -I$srcdir/lib/xen -I$srcdir/frontend -D_GNU_SOURCE"

O=$W/obj
mkdir -p "$O"
objs=()
for s in $srcs; do
  case $s in *.c) ;; *) continue ;; esac
  o=$O/$(echo "$s" | tr / _ | sed 's/\.c$/.o/')
  $CC -std=gnu11 $cppflags $xenflags -O2 -fPIC -fvisibility=hidden -c "$srcdir/$s" -o "$o"
  objs+=("$o")
done
$CC -std=gnu11 -O2 -g -fPIC -Wall -Wno-unused-parameter -Wno-sign-compare -Werror \
  -DFIO_EXTERNAL_ENGINE -D_GNU_SOURCE -include "$FIO/config-host.h" -I"$FIO" \
  -c "$HERE/memx-fio.c" -o "$O/memx-fio.o"
$CC -shared -Wl,-Bsymbolic -o "$W/memx-fio.so" "$O/memx-fio.o" "${objs[@]}" $xenlibs
echo "$W/memx-fio.so"
