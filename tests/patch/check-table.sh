#!/bin/sh
# The one table of interposed calls (src/patch/table.h) against what is
# made from it or must match it:
#   - libgrove-patch.so exports exactly the table's names, grove's public
#     gr_ API and the gr_patch_ calls, nothing else;
#   - docs/patching.md's list is the one table_gen --doc writes (to mend
#     it: tests/patch/check-table.sh BUILD --write-doc);
#   - the -D_FORTIFY_SOURCE=2 and -D_FILE_OFFSET_BITS=64 test programs do
#     call the entry points those builds are meant to reach.
# Usage: check-table.sh BUILD [--write-doc]
set -u
build=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
doc=$top/docs/patching.md
gen=$build/bin/grove-patch-table
so=$build/lib/libgrove-patch.so
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$gen" --doc >"$tmp/doc"
if [ "${2:-}" = --write-doc ]; then
    awk -v gen="$tmp/doc" '
        /<!-- patch-table begin -->/ { print; while ((getline l < gen) > 0) print l; skip = 1; next }
        /<!-- patch-table end -->/ { skip = 0 }
        !skip' "$doc" >"$tmp/new" && cp "$tmp/new" "$doc"
    echo "wrote the table into $doc"
    exit 0
fi

# Exports.
"$gen" --names | sort >"$tmp/table"
nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^gr_' | sort >"$tmp/libc"
if ! cmp -s "$tmp/table" "$tmp/libc"; then
    echo "FAIL libgrove-patch.so's libc names differ from the table (< table, > .so):"
    diff "$tmp/table" "$tmp/libc" | grep '^[<>]'
    fail=1
fi
nm -D --defined-only "$so" | awk '{print $3}' | grep '^gr_' | grep -v '^gr_patch_' | sort >"$tmp/gr"
nm -D --defined-only "$build/lib/libgrove.so" | awk '{print $3}' | sort >"$tmp/grove"
if ! cmp -s "$tmp/gr" "$tmp/grove"; then
    echo "FAIL libgrove-patch.so's gr_ API differs from libgrove.so's:"
    diff "$tmp/grove" "$tmp/gr" | grep '^[<>]'
    fail=1
fi
for f in gr_patch_parse gr_patch_set gr_patch_families gr_patch_original gr_patch_cooperative; do
    nm -D --defined-only "$so" | grep -q " $f\$" || { echo "FAIL $f is not exported"; fail=1; }
done

# The doc.
sed -n '/<!-- patch-table begin -->/,/<!-- patch-table end -->/p' "$doc" | sed '1d;$d' >"$tmp/indoc"
if ! cmp -s "$tmp/doc" "$tmp/indoc"; then
    echo "FAIL docs/patching.md's list differs from the table (< table, > doc):"
    diff "$tmp/doc" "$tmp/indoc" | grep '^[<>]'
    fail=1
fi

# The variants reach the entry points they are built for.
need() { # binary, symbols...
    b=$build/bin/$1
    shift
    [ -x "$b" ] || return 0
    for s in "$@"; do
        nm -D "$b" | grep -q " U $s\$" || { echo "FAIL $(basename "$b") does not call $s"; fail=1; }
    done
}
need test_patch_io_fortify __read_chk __recv_chk __recvfrom_chk __poll_chk __ppoll_chk
need test_patch_io_fob64 fcntl64 sendfile64

[ $fail = 0 ] && echo "table, exports, doc and variants agree ($(wc -l <"$tmp/table") calls)"
exit $fail
