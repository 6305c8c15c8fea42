#!/bin/sh
# make install works: install into a scratch prefix, then build the README
# example against it with pkg-config, statically and shared, and run both.
# Then the same without installing: build/grove-uninstalled.pc, found with
# PKG_CONFIG_PATH=build, links build/lib/libgrove.a in place.
# $1: the build directory.
set -eu
build=$1
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name grove.pc)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig"

# Every public header is installed.
(cd "$top/include" && find . -name '*.h') | while read -r h; do
    test -f "$prefix/include/$h" || { echo "not installed: include/$h"; exit 1; }
done
readelf -d "$libdir/libgrove.so" | grep -q 'SONAME.*libgrove.so.0' ||
    { echo "libgrove.so lacks its SONAME"; exit 1; }

cc -Wall -Wextra -Werror "$top/examples/hello.c" $(pkg-config --cflags --libs grove) \
    -Wl,-rpath,"$libdir" -o "$prefix/hello-shared"
cc -Wall -Wextra -Werror "$top/examples/hello.c" $(pkg-config --cflags grove) \
    "$libdir/libgrove.a" -pthread -lm -lcares -lssl -lcrypto -o "$prefix/hello-static"
# The HTTP module's header, <grove/http.h>, installed beside grove.h.
cc -Wall -Wextra -Werror "$top/examples/http-hello.c" $(pkg-config --cflags --libs grove) \
    -Wl,-rpath,"$libdir" -o "$prefix/http-hello-shared"
# Uninstalled: the flags README.md gives, nothing from the prefix.
flags=$(PKG_CONFIG_PATH="$build" pkg-config --cflags --libs --static grove)
case $flags in
    *"$build/lib/libgrove.a"*"-lcares"*) ;;
    *) echo "grove-uninstalled.pc gave: $flags"; exit 1 ;;
esac
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror "$top/examples/hello.c" $flags -o "$prefix/hello-uninstalled"
for v in shared static uninstalled; do
    out=$("$prefix/hello-$v")
    echo "$out" | grep -q "thread 3 returned 300" || { echo "hello-$v: $out"; exit 1; }
done
# libgrove-patch: a plain POSIX program made cooperative, built with
# pkg-config grove-patch, and the same program under LD_PRELOAD.
cc -Wall -Wextra -Werror -fno-builtin "$top/tests/patch/startup.c" $(pkg-config --cflags --libs grove-patch) \
    -Wl,-rpath,"$libdir" -o "$prefix/startup-linked"
cc -Wall -Wextra -Werror -fno-builtin "$top/tests/patch/startup.c" $(pkg-config --cflags --libs grove) \
    -Wl,-rpath,"$libdir" -o "$prefix/startup-shared"
"$prefix/startup-linked" | grep -q "startup ok" || { echo "startup-linked failed"; exit 1; }
LD_PRELOAD="$libdir/libgrove-patch.so" "$prefix/startup-shared" | grep -q "startup ok" ||
    { echo "startup-shared under LD_PRELOAD failed"; exit 1; }
test -f "$prefix/include/grove/patch.h"
out=$("$prefix/http-hello-shared")
echo "$out" | grep -q "200 hello, /three" || { echo "http-hello-shared: $out"; exit 1; }
# Only the public API is exported from the shared library.
leaked=$(nm -D --defined-only "$libdir/libgrove.so" | awk '{print $3}' | grep -v '^gr_' || true)
[ -z "$leaked" ] || { echo "non-API symbols exported: $leaked"; exit 1; }
echo "install ok"
