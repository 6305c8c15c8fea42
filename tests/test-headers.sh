#!/bin/sh
# Every public header (include/grove.h, include/grove/*.h) compiles on its
# own, warning-free: as C99 with -pedantic; as C11 with no feature macros
# (_POSIX_C_SOURCE, _GNU_SOURCE), as a strict program includes it; and as
# C++, where every GR_API function must have C linkage (extern "C"): a C++
# object taking their addresses must refer to them by their C names.
# $1: the C compiler, $2: the C++ compiler, $3: scratch directory.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cc=$1 cxx=$2 tmp=$3
mkdir -p "$tmp"
strict="-Wall -Wextra -Werror"
fail=0

try() { # what, then the compiler command line (reads the unit on stdin)
    what=$1
    shift
    if out=$("$@" 2>&1); then
        echo "ok   $what"
    else
        echo "FAIL $what: $*"; echo "$out"; fail=1
    fi
}

# GR_API functions declared in a header, declarations joined to one line.
api_functions() {
    awk '/^GR_API/ { d = $0; while (d !~ /;/ && (getline l) > 0) d = d " " l; print d }' "$1" |
        sed -n 's/^GR_API[^(]*[^A-Za-z0-9_(]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p'
}

for path in "$top"/include/grove.h "$top"/include/grove/*.h; do
    [ -e "$path" ] || continue
    h=${path#"$top"/include/}
    unit="#include <$h>"
    echo "$unit" | try "$h: C99 -pedantic" \
        "$cc" -std=c99 -pedantic $strict -I"$top/include" -fsyntax-only -x c -
    echo "$unit" | try "$h: C11, no feature macros" \
        "$cc" -std=c11 -pedantic $strict -U_GNU_SOURCE -U_POSIX_C_SOURCE -U_DEFAULT_SOURCE \
        -I"$top/include" -fsyntax-only -x c -
    echo "$unit" | try "$h: C++" "$cxx" -x c++ -fsyntax-only $strict -I"$top/include" -

    fns=$(api_functions "$path")
    [ -n "$fns" ] || continue
    obj="$tmp/$(echo "$h" | tr / _).o"
    {
        echo "$unit"
        echo "void (*grove_probe[])() = {"
        for f in $fns; do echo "    reinterpret_cast<void (*)()>(&$f),"; done
        echo "};"
    } | try "$h: C++ takes the address of $(echo "$fns" | wc -l) functions" \
        "$cxx" -x c++ -c $strict -I"$top/include" -o "$obj" -
    [ -e "$obj" ] || continue
    nm -u "$obj" | awk '{print $2}' >"$obj.undef"
    mangled=$(grep '^_Z.*gr_' "$obj.undef" || true)
    if [ -n "$mangled" ]; then
        echo "FAIL $h: functions with C++ linkage (extern \"C\" missing): $mangled"; fail=1
    fi
    missing=$(echo "$fns" | grep -vxF -f "$obj.undef" || true)
    if [ -n "$missing" ]; then
        echo "FAIL $h: not referenced by their C names:" $missing; fail=1
    fi
done
exit $fail
