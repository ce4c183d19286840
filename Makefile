# causalkv — this Makefile only wraps CMake (the one source of truth for the
# build) and installs missing Debian packages. See README.md.

BUILD_DIR      ?= build
ASAN_BUILD_DIR ?= build-asan
BUILD_TYPE     ?= RelWithDebInfo
JOBS           ?= $(shell nproc 2>/dev/null || echo 2)
# The sanitizer build runs the simulator ~30x slower: fewer seeds there
# (the normal build runs 1,000 with 3 nodes and 500 with 5).
ASAN_SIM_SEEDS ?= 300

# Everything the build, the tests and `make run` need on Debian 12.
DEB_PACKAGES := build-essential cmake pkg-config clang-format \
                libuv1-dev libflatbuffers-dev flatbuffers-compiler \
                libcli11-dev libcriterion-dev libsystemd-dev libssl-dev libjemalloc-dev \
                systemd iproute2 procps groff-base

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

PREFIX ?= /usr/local

.PHONY: all deps build asan test test-fast run demo bench bench-micro bench-durability bench-group-commit fuzz \
        install uninstall \
        format format-check clean

all: build

# Installs only what is missing, so it is quick when everything is there.
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Order-only on deps: under `make -j` CMake must not configure while apt is
# still installing what it looks for.
$(BUILD_DIR)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

$(ASAN_BUILD_DIR)/CMakeCache.txt: | deps
	cmake -S . -B $(ASAN_BUILD_DIR) -DCMAKE_BUILD_TYPE=Debug -DKV_SANITIZE=ON

# ASan + UBSan build of the tests labelled "sanitize" (core, simulator,
# checker, wire); `make test` runs them.
asan: deps $(ASAN_BUILD_DIR)/CMakeCache.txt
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS) --target sanitize-tests

# Criterion runs each binary's tests in parallel already, so ctest runs one
# binary at a time (never ctest -j on top of it). --verbose keeps each
# binary's Criterion summary line in the log.
CTEST := ctest --output-on-failure --verbose

test: build asan
	cd $(BUILD_DIR) && $(CTEST)
	cd $(ASAN_BUILD_DIR) && SIM_SEEDS=$(ASAN_SIM_SEEDS) $(CTEST) -L sanitize

test-fast: build
	cd $(BUILD_DIR) && $(CTEST)

run: build
	@if [ -x $(BUILD_DIR)/daemon/kvd ]; then \
	  exec ./scripts/run-cluster.sh $(BUILD_DIR); \
	else \
	  echo "make run: the daemon (kvd) is not built yet; see the open issue for it."; \
	fi

demo: build
	@./scripts/demo.sh $(BUILD_DIR)

# kvd against Redis and a bare libuv loop on this machine (see bench/README.md).
BENCH_PACKAGES := redis-server redis-tools gnuplot-nox python3

bench: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(BENCH_PACKAGES)"
	bench/compare.sh --build $(BUILD_DIR)

# Put throughput per fsync policy, recovery of 1M records, catch-up time.
bench-durability: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="python3"
	bench/durability.sh --build $(BUILD_DIR)

# --fsync always: put throughput and fdatasync/s as the load grows.
bench-group-commit: build
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="python3 linux-perf"
	bench/group_commit.sh --build $(BUILD_DIR)

bench-micro: build
	cmake --build $(BUILD_DIR) -j $(JOBS) --target bench_micro
	$(BUILD_DIR)/bench/bench_micro

# Honours PREFIX and DESTDIR. Uninstall needs the same DESTDIR as install.
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD_DIR) --prefix "$(PREFIX)"

uninstall:
	DESTDIR="$(DESTDIR)" cmake -DKV_MANIFEST=$(BUILD_DIR)/install_manifest.txt -P cmake/install.cmake

# libFuzzer targets (clang), each for FUZZ_SECONDS; see fuzz/README.md.
# `make test` replays their checked-in corpora with the normal compiler.
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang libclang-rt-14-dev

fuzz:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(DEB_PACKAGES) $(FUZZ_PACKAGES)"
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

FORMAT_FILES = $(shell git ls-files '*.h' '*.cc' '*.c' 2>/dev/null)

format:
	clang-format -i $(FORMAT_FILES)

format-check: deps
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR)
