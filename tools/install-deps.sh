#!/bin/sh
# Installs the Debian packages MemX builds, tests and demos with, if any are missing.
# Usage: tools/install-deps.sh [build|xen|bench|deb|all]   (default: build)
set -eu
what=${1:-build}
build="autoconf automake libtool pkg-config make gcc clang libxen-dev libfabric-dev libxxhash-dev libsystemd-dev libmicrohttpd-dev
 libcunit1-dev libinih-dev libsodium-dev libjson-c-dev libcurl4-openssl-dev etcd-server etcd-client curl openssl valgrind iproute2 procps psmisc man-db prometheus jq"
xen="qemu-system-x86 busybox-static cpio kmod xz-utils"
bench="fio nbdkit libnbd-bin gnuplot-nox"
deb="debhelper dpkg-dev lintian"
case $what in
  build) pkgs=$build ;;
  xen) pkgs="$build $xen $deb" ;;   # check-xen installs the packages it builds in dom0
  bench) pkgs="$build $bench" ;;
  deb) pkgs="$build $deb" ;;
  all) pkgs="$build $xen $bench $deb" ;;
  *) echo "install-deps: unknown set '$what' (build, xen, bench, deb, all)" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
  exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null || true
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing >/dev/null
