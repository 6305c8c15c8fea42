#!/bin/sh
# clang-format (the checked-in .clang-format) over grove's own C sources:
# src, include, tests, tools, examples, bench and fuzz. Generated code is
# written under the build directories and third-party code (llhttp, c-ares)
# comes from the system, so neither is in these folders.
# Usage: scripts/format.sh           reformat the files in place
#        scripts/format.sh --check   change nothing; list the files that
#                                    differ and fail if there are any
# CLANG_FORMAT names the binary (default clang-format; Debian's
# clang-format package, which `make test` installs).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
fmt=${CLANG_FORMAT:-clang-format}
dirs="src include tests tools examples bench fuzz"

case "${1:-}" in
    "") check=0 ;;
    --check) check=1 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac
command -v "$fmt" >/dev/null ||
    { echo "$0: $fmt not found (Debian package clang-format)" >&2; exit 1; }

# The tracked files in a checkout (never a stray build output); every file
# in an unpacked tarball.
# shellcheck disable=SC2086
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files -- $dirs | grep '\.[ch]$' || true)
else
    files=$(find $dirs -name '*.[ch]' | sort)
fi

if [ $check = 0 ]; then
    # shellcheck disable=SC2086
    [ -z "$files" ] || "$fmt" -i $files
    exit 0
fi
# One process for all files: --dry-run reports each place that differs.
# shellcheck disable=SC2086
bad=$("$fmt" --dry-run $files 2>&1 |
    sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: [a-z]*: code should be clang-formatted.*/\1/p' | sort -u)
total=$(echo "$files" | wc -w)
if [ -n "$bad" ]; then
    echo "$bad" | sed 's/^/not formatted: /'
    echo "$(echo "$bad" | wc -l) of $total files differ from $("$fmt" --version)"
    echo "run scripts/format.sh (or make format) to fix them"
    exit 1
fi
echo "$total files formatted"
