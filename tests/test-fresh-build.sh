#!/bin/sh
# `make` on a machine without the test packages: configure and build as the
# Makefile's release build does, with Criterion hidden from pkg-config (a
# PKG_CONFIG_LIBDIR of links to every .pc file but criterion.pc). CMake must
# skip the tests with its one-line note and build the library, the tools,
# the examples and the benchmarks. Then, as `make test` does after
# installing Criterion, a re-configure of the same tree finds the tests.
# $1: scratch directory (emptied).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$1
rm -rf "$dir"
mkdir -p "$dir/pc"
trap 'rm -rf "$dir"' EXIT
unset PKG_CONFIG_PATH MAKEFLAGS MFLAGS MAKELEVEL

# Earlier directories win, as in pkg-config's own search.
IFS=:
for d in $(pkg-config --variable pc_path pkg-config); do
    for pc in "$d"/*.pc; do
        name=$(basename "$pc")
        [ -e "$pc" ] && [ "$name" != criterion.pc ] && [ ! -e "$dir/pc/$name" ] &&
            ln -s "$pc" "$dir/pc/$name"
    done
done
unset IFS
if PKG_CONFIG_LIBDIR="$dir/pc" pkg-config --exists criterion; then
    echo "Criterion is still visible"; exit 1
fi

fail() { echo "FAIL: $*"; exit 1; }
PKG_CONFIG_LIBDIR="$dir/pc" nice cmake -S "$top" -B "$dir/b" -DGROVE_WERROR=ON \
    -DCMAKE_BUILD_TYPE=Release >"$dir/configure.out" 2>&1 ||
    { cat "$dir/configure.out"; fail "configure"; }
notes=$(grep -c "grove: tests skipped: Criterion not found" "$dir/configure.out" || true)
[ "$notes" = 1 ] || { cat "$dir/configure.out"; fail "the note appears $notes times, not once"; }
nice cmake --build "$dir/b" -j "$(nproc)" >"$dir/build.out" 2>&1 ||
    { tail -40 "$dir/build.out"; fail "build"; }

bin=$dir/b/bin
want="$dir/b/lib/libgrove.a $dir/b/lib/libgrove.so"
for src in "$top"/examples/*.c; do want="$want $bin/$(basename "$src" .c)"; done
for d in "$top"/tools/*/; do want="$want $bin/$(basename "$d")"; done
for src in "$top"/bench/*/*.c; do want="$want $bin/grove-$(basename "$src" .c | tr _ -)"; done
for f in $want; do
    [ -s "$f" ] || fail "not built: ${f#"$dir"/b/}"
done
! ls "$bin"/test_* >/dev/null 2>&1 || fail "tests were built without Criterion"
"$bin/hello" | grep -q "thread 3 returned 300" || fail "bin/hello does not run"
echo "built without Criterion: $(echo "$want" | wc -w) files"

# Criterion back: the same tree now configures the tests.
cmake "$dir/b" >"$dir/configure2.out" 2>&1 || { cat "$dir/configure2.out"; fail "re-configure"; }
! grep -q "tests skipped" "$dir/configure2.out" || fail "tests still skipped with Criterion"
n=$(cd "$dir/b" && ctest -N | sed -n 's/^Total Tests: //p')
[ "${n:-0}" -gt 0 ] || fail "no tests after Criterion came back"
echo "re-configured with Criterion: $n tests"
