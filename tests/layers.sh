#!/bin/bash
# layers.sh — each directory of MemX is one library that includes only the
# headers of the layers below it.  Fails, naming file, line and rule, when a
# file reaches across: the blkif code into the pool or the transport, the pool
# into the Xen seam or the volume layer, anything but lib/xen into libxen*,
# anything but the transport (lib/net/fabric*) into libfabric, a directory into another's
# private headers (*_int.h).
#
# Usage: tests/layers.sh [TREE]   (default: the source tree, $MEMX_SRCDIR or ..)
#        layers.sh --self-test   (checks that a violation is caught)
set -u

# dir: the directories whose headers it may include (its own always).  The
# order is the layering, bottom up.  A file belongs to the longest listed
# directory that is a prefix of its path.
RULES='
lib:
lib/xen: lib
lib/net: lib
lib/coord: lib
backend/pool: lib lib/net
backend/volume: lib lib/net lib/coord backend/pool
backend/xen: lib lib/xen backend/volume
backend: lib lib/xen lib/net lib/coord backend/pool backend/volume backend/xen
memserver: lib lib/net lib/coord
frontend: lib lib/xen
'
# dir: headers of the allowed layers it still may not include (a layer's
# internals that its API does not need).
DENY='
backend/volume: fabric.h auth.h
backend/xen: volmeta.h dedup.h pagemap.h pageref.h
'
# <system headers> and the only directories that may include them.
SYSTEM='
xenstore.h xengnttab.h xenevtchn.h xenctrl.h xenforeignmemory.h: lib/xen
rdma/: lib/net
'

rules_for() {   # dir -> allowed dirs (own included)
    local d=$1
    printf '%s\n' "$RULES" | awk -F': *' -v d="$d" '$1 == d { print d " " $2 }'
}

dir_of() {      # path relative to the tree -> its layer dir (longest listed prefix), or empty
    local f=$1 best="" d
    while IFS=: read -r d _; do
        [ -n "$d" ] || continue
        case $f in "$d"/*) [ ${#d} -gt ${#best} ] && best=$d ;; esac
    done <<<"$RULES"
    printf '%s' "$best"
}

check_tree() {
    local tree=$1 bad=0 f rel dir hdr where line sys pat dirs deny
    declare -A home=()
    # Where each header lives (by name: the tree includes headers without a path).
    while IFS= read -r f; do
        rel=${f#"$tree"/}
        hdr=${rel##*/}
        if [ -n "${home[$hdr]:-}" ] && [ "${home[$hdr]}" != "$(dir_of "$rel")" ]; then
            echo "layers: header name $hdr is in two layers (${home[$hdr]} and $(dir_of "$rel"))"
            bad=1
        fi
        home[$hdr]=$(dir_of "$rel")
    done < <(find "$tree/lib" "$tree/backend" "$tree/memserver" "$tree/frontend" -name '*.h' 2>/dev/null)

    while IFS= read -r f; do
        rel=${f#"$tree"/}
        dir=$(dir_of "$rel")
        [ -n "$dir" ] || continue
        dirs=" $(rules_for "$dir") "
        deny=" $(printf '%s\n' "$DENY" | awk -F': *' -v d="$dir" '$1 == d { print $2 }') "
        while IFS=: read -r line hdr; do
            hdr=${hdr#*\"}; hdr=${hdr%%\"*}
            where=${home[${hdr##*/}]:-}
            [ -n "$where" ] || continue         # a generated or tools/tests header
            if [[ "$dirs" != *" $where "* ]]; then
                echo "layers: $rel:$line: $dir may not include $hdr (from $where; $dir sees only:${dirs% })"
                bad=1
            elif [ "$where" != "$dir" ] && [[ $hdr == *_int.h ]]; then
                echo "layers: $rel:$line: $hdr is private to $where"
                bad=1
            elif [[ "$deny" == *" ${hdr##*/} "* ]]; then
                echo "layers: $rel:$line: $dir may not include $hdr (internal to $where)"
                bad=1
            fi
        done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
        while IFS=: read -r line hdr; do
            hdr=${hdr#*<}; hdr=${hdr%%>*}
            while IFS=: read -r pat sys; do
                [ -n "$pat" ] || continue
                for p in $pat; do
                    case $hdr in
                        "$p"*)
                            if [[ " $sys " != *" $dir "* ]]; then
                                echo "layers: $rel:$line: only$sys may include <$hdr>"
                                bad=1
                            fi ;;
                    esac
                done
            done <<<"$SYSTEM"
        done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*<' "$f")
    done < <(find "$tree/lib" "$tree/backend" "$tree/memserver" "$tree/frontend" -name '*.[ch]' 2>/dev/null | sort)
    # Nothing above the transport calls libfabric.
    while IFS= read -r f; do
        rel=${f#"$tree"/}
        case $rel in lib/net/fabric.c|lib/net/fabric_*.[ch]) continue ;; esac
        if grep -nE '\bfi_[a-z_]+\(' "$f" | grep -v '^\s*[0-9]*:\s*\*\|//' | grep -q .; then
            echo "layers: $rel calls libfabric (fi_*) directly: only lib/net/fabric*.c may"
            bad=1
        fi
    done < <(find "$tree/backend" "$tree/memserver" "$tree/frontend" "$tree/lib" -name '*.[ch]' 2>/dev/null)
    return $bad
}

self_test() {
    local t rc
    t=$(mktemp -d /tmp/memx-layers.XXXXXX) || exit 1
    trap 'rm -rf "$t"' RETURN
    mkdir -p "$t/lib/net" "$t/lib/xen" "$t/backend/xen" "$t/backend/pool" "$t/backend/volume"
    echo '#include "log.h"' >"$t/lib/net/fabric.h"
    : >"$t/lib/log.h"; : >"$t/backend/pool/pool.h"; : >"$t/backend/pool/pool_int.h"
    : >"$t/backend/volume/volume.h"
    echo '#include "volume.h"' >"$t/backend/xen/vbd.c"
    check_tree "$t" >/dev/null || { echo "layers: self-test: a clean tree failed"; return 1; }
    echo '#include "pool.h"' >>"$t/backend/xen/vbd.c"             # blkif -> pool
    check_tree "$t" >/dev/null && { echo "layers: self-test: blkif including pool.h passed"; return 1; }
    printf '#include "volume.h"\n' >"$t/backend/xen/vbd.c"
    echo '#include "volume.h"' >"$t/backend/pool/pread.c"          # pool -> volume
    check_tree "$t" >/dev/null && { echo "layers: self-test: the pool including volume.h passed"; return 1; }
    rm "$t/backend/pool/pread.c"
    echo '#include "pool_int.h"' >"$t/backend/volume/volume.c"     # a private header
    check_tree "$t" >/dev/null && { echo "layers: self-test: a private header passed"; return 1; }
    rm "$t/backend/volume/volume.c"
    echo '#include <xenstore.h>' >"$t/backend/pool/x.c"            # libxen outside lib/xen
    check_tree "$t" >/dev/null && { echo "layers: self-test: <xenstore.h> in the pool passed"; return 1; }
    rm "$t/backend/pool/x.c"
    echo 'int f(void) { return fi_close(0); }' >"$t/backend/pool/y.c"  # libfabric above fabric.c
    check_tree "$t" >/dev/null && { echo "layers: self-test: fi_* in the pool passed"; return 1; }
    rm "$t/backend/pool/y.c"
    rc=0
    check_tree "$t" >/dev/null || rc=1
    [ $rc = 0 ] || echo "layers: self-test: the tree did not come back clean"
    return $rc
}

if [ "${1:-}" = --self-test ]; then
    self_test && echo "layers: self-test ok"
    exit $?
fi
tree=${1:-${MEMX_SRCDIR:-$(dirname "$0")/..}}
self_test || { echo "SUMMARY: layering self-test failed"; exit 1; }
if check_tree "$tree"; then
    echo "SUMMARY: every file includes only the layers below it"
    exit 0
fi
echo "SUMMARY: layering violations (see above)"
exit 1
