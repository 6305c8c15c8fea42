#!/bin/sh
# make install works: install into a scratch prefix, then build the README
# example against it with pkg-config, statically and shared, and run both.
# $1: the build directory.
set -eu
build=$1
top=$(cd "$(dirname "$0")/.." && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name grove.pc)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig"

test -f "$prefix/include/grove.h"
test -f "$prefix/include/grove/http.h"
readelf -d "$libdir/libgrove.so" | grep -q 'SONAME.*libgrove.so.0' ||
    { echo "libgrove.so lacks its SONAME"; exit 1; }

cc -Wall -Wextra -Werror "$top/examples/hello.c" $(pkg-config --cflags --libs grove) \
    -Wl,-rpath,"$libdir" -o "$prefix/hello-shared"
cc -Wall -Wextra -Werror "$top/examples/hello.c" $(pkg-config --cflags grove) \
    "$libdir/libgrove.a" -pthread -lm -lcares -o "$prefix/hello-static"
# The HTTP module's header, <grove/http.h>, installed beside grove.h.
cc -Wall -Wextra -Werror "$top/examples/http-hello.c" $(pkg-config --cflags --libs grove) \
    -Wl,-rpath,"$libdir" -o "$prefix/http-hello-shared"
for v in shared static; do
    out=$("$prefix/hello-$v")
    echo "$out" | grep -q "thread 3 returned 300" || { echo "hello-$v: $out"; exit 1; }
done
out=$("$prefix/http-hello-shared")
echo "$out" | grep -q "200 hello, /three" || { echo "http-hello-shared: $out"; exit 1; }
# Only the public API is exported from the shared library.
leaked=$(nm -D --defined-only "$libdir/libgrove.so" | awk '{print $3}' | grep -v '^gr_' || true)
[ -z "$leaked" ] || { echo "non-API symbols exported: $leaked"; exit 1; }
echo "install ok"
