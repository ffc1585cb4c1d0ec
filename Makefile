# MemX top-level entry point for a new machine.
#
#   make demo     a local pool (3 memory servers), the backend on the sim platform and a workload
#   make check    unit + integration tests, then the same tests under ASan+UBSan
#
# Everything else is the autotools build in build/ (build-asan/ for the sanitizers);
# this file installs what is missing, configures, and delegates.
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
SRC := $(CURDIR)
AUTOGEN_INPUTS := configure.ac Makefile.am $(wildcard */Makefile.inc */*.inc */*/Makefile.inc tests/*/*.inc)

.PHONY: all deps demo check check-unit check-asan check-xen check-xen-onehost check-xen-twohost check-faults check-valgrind fuzz bench bench-dedup install packages clean distclean

all: $(BUILD)/Makefile
	$(MAKE) -C $(BUILD) -j$(JOBS)

deps:
	@tools/install-deps.sh build

configure: $(AUTOGEN_INPUTS)
	@tools/install-deps.sh build
	@mkdir -p m4
	autoreconf -fi >/dev/null
	@touch configure

$(BUILD)/Makefile: configure
	@mkdir -p $(BUILD)
	cd $(BUILD) && $(SRC)/configure --quiet

$(ASAN_BUILD)/Makefile: configure
	@mkdir -p $(ASAN_BUILD)
	cd $(ASAN_BUILD) && $(SRC)/configure --quiet CC=clang \
	  CFLAGS="-g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined"

demo: all
	@tools/memx-demo.sh $(BUILD)

check-unit: $(BUILD)/Makefile
	@tools/run-checks.sh $(BUILD)

check-asan: $(ASAN_BUILD)/Makefile
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 tools/run-checks.sh $(ASAN_BUILD)

check: $(BUILD)/Makefile $(ASAN_BUILD)/Makefile
	@tools/run-checks.sh $(BUILD) $(ASAN_BUILD)

# Real Xen under QEMU: one host (PV and PVH guests, lifecycle, backend restarts,
# the guest userspace frontend), then two hosts (cross-host live migration both
# ways).  Both run even when the first fails, and a recap of both ends the
# output (CI shows only its tail); CI gates on the whole.
check-xen: all
	@tools/install-deps.sh xen
	@tests/xen/check.sh $(BUILD)

# Each half alone, for working on one.
check-xen-onehost: all
	@tools/install-deps.sh xen
	@tests/xen/run.sh $(BUILD)

check-xen-twohost: all
	@tools/install-deps.sh xen
	@tests/xen/twohost.sh $(BUILD)

fuzz: all
	@tests/fuzz/run.sh $(BUILD)

check-valgrind: all
	@tests/valgrind.sh $(BUILD)

check-faults: all
	@tests/faults/run.sh $(BUILD)

bench: all
	@tools/install-deps.sh bench
	@tools/bench.sh $(BUILD)

bench-dedup: all
	@tools/bench-dedup.sh $(BUILD)

install: all
	$(MAKE) -C $(BUILD) install

# The Debian packages, built from a clean copy (lintian errors fail), installed
# and checked (as root): tools/check-packages.sh.  The .deb files: $(BUILD)/debs.
packages:
	@tools/install-deps.sh deb
	@tools/check-packages.sh $(CURDIR)/$(BUILD)/debs

clean:
	-$(MAKE) -C $(BUILD) clean
	-$(MAKE) -C $(ASAN_BUILD) clean

distclean:
	rm -rf $(BUILD) $(ASAN_BUILD) autom4te.cache build-aux m4 aclocal.m4 configure Makefile.in config.log
