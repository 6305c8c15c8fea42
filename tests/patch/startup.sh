#!/bin/sh
# libgrove-patch at start-up: startup (its own allocator reading a file
# before any constructor) linked with -lgrove-patch, and startup-plain
# (libgrove.so) under LD_PRELOAD with jemalloc ahead of libgrove-patch,
# when jemalloc is installed (make test installs libjemalloc2).
# Usage: startup.sh BINDIR LIBDIR
set -u
bin=$1
lib=$2
fail=0
check() { # name, command...
    name=$1
    shift
    out=$(timeout 30 "$@" 2>&1)
    case "$out" in
        *"startup ok"*) echo "ok   $name" ;;
        *) echo "FAIL $name: $out"; fail=1 ;;
    esac
}
check "own allocator, -lgrove-patch" "$bin/patch-startup"
check "own allocator, LD_PRELOAD" env LD_PRELOAD="$lib/libgrove-patch.so" "$bin/patch-startup-preload"
jemalloc=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1)
if [ -n "$jemalloc" ]; then
    check "jemalloc first, LD_PRELOAD" env LD_PRELOAD="$jemalloc $lib/libgrove-patch.so" \
        "$bin/patch-startup-plain"
    check "jemalloc first, -lgrove-patch" env LD_PRELOAD="$jemalloc" "$bin/patch-startup-linked"
elif [ -n "${GROVE_MAKE_TEST:-}" ]; then
    echo "FAIL jemalloc (libjemalloc2) is not installed"; fail=1
else
    echo "skip jemalloc: libjemalloc2 is not installed"
fi
exit $fail
