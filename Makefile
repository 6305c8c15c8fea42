# grove: the commands the README gives. CMake does the building; this file
# only names the builds and runs them.
#   make          release build into build/ (binaries in build/bin/)
#   make test     every test, in three builds: release (assembly switch),
#                 ucontext fallback, and AddressSanitizer+UBSan; then the
#                 thread tests in a fourth, ThreadSanitizer (build-tsan)
#   make bench    the experiment: grove vs threads vs gevent, Paste, nginx
#                 (docs/experiment.md); QUICK=1 for a reduced sweep,
#                 BENCH=all to run the other benchmarks after it
#   make format   clang-format the C sources (scripts/format.sh)
#   make install  PREFIX=/usr/local by default

PREFIX ?= /usr/local
# Parallel jobs: JOBS if set (per build); else make's own -j: under -jN the
# builds take their jobs from make's jobserver, N in all however many builds
# run at once (make -j2 test), and make -j1 builds one file at a time;
# without -j, one per core.
JOBS ?=
NPROC := $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
QUICK ?= 0
BENCH ?= experiment

all: build

deps-build:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-bench:
	@scripts/deps.sh bench

# MAKEFLAGS holds -jN and the jobserver only once a recipe runs, so these
# are expanded there. Its first word holds the one-letter flags (n: -n).
jobserver = $(filter --jobserver%,$(MAKEFLAGS))
dry_run = $(findstring n,$(filter-out -%,$(firstword $(MAKEFLAGS))))
jobs = $(or $(patsubst -j%,%,$(filter -j%,$(MAKEFLAGS))),$(NPROC))
# '+' hands the jobserver to cmake's make (not under -n: '+' would run it).
cmake_build = $(if $(JOBS),MAKEFLAGS= cmake --build $(1) -j $(JOBS),$(if \
	$(jobserver),$(if $(dry_run),,+)cmake --build $(1),MAKEFLAGS= cmake --build $(1) -j $(jobs)))

# $(1): directory, $(2): extra cmake flags
define configure
	cmake -S . -B $(1) -DGROVE_WERROR=ON $(2) $(CMAKE_FLAGS) >/dev/null
	$(call cmake_build,$(1))
endef

build: deps-build
	$(call configure,build,-DCMAKE_BUILD_TYPE=Release)

# The ucontext build also checks that the sources are clang-formatted
# (clang-format is in the test packages; plain `make` needs none of it).
build-ucontext: deps-test
	$(call configure,build-ucontext,-DCMAKE_BUILD_TYPE=Release -DGROVE_CONTEXT=ucontext -DGROVE_FORMAT_CHECK=ON)

build-asan: deps-test
	$(call configure,build-asan,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGROVE_SANITIZE=ON)

# The library and the thread tests only (tests/CMakeLists.txt says which).
build-tsan: deps-test
	$(call configure,build-tsan,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DGROVE_TSAN=ON)

# GROVE_MAKE_TEST=1: everything the tests need is installed, so a test
# whose peer is missing fails instead of skipping itself.
test: deps-test build build-ucontext build-asan build-tsan
	cd build && GROVE_MAKE_TEST=1 ctest --output-on-failure
	cd build-ucontext && GROVE_MAKE_TEST=1 ctest --output-on-failure
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allow_user_segv_handler=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 GROVE_MAKE_TEST=1 ctest --output-on-failure
	cd build-tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 GROVE_MAKE_TEST=1 \
		ctest --output-on-failure

bench: deps-bench build
	QUICK=$(QUICK) BENCH=$(BENCH) scripts/bench.sh

# clang-format every C source in place (scripts/format.sh; --check to test).
format:
	scripts/format.sh

install: build
	cmake --install build --prefix $(PREFIX)

clean:
	rm -rf build build-ucontext build-asan build-tsan

.PHONY: all build build-ucontext build-asan build-tsan test bench format install clean deps-build deps-test deps-bench
