#!/bin/sh
# Cross-compile the context-switch self-check for aarch64 and run it under
# qemu-user, at -O0 and -O2. $1: a scratch directory.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/grove-aarch64}
mkdir -p "$out"
cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
command -v "$cc" >/dev/null || { echo "missing $cc: run scripts/deps.sh test"; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "missing qemu-aarch64: run scripts/deps.sh test"; exit 1; }
for opt in -O0 -O2; do
    "$cc" $opt -Wall -Wextra -Werror -I "$top/src/arch" \
        "$top/tests/arch/ctx_selfcheck.c" "$top/src/arch/ctx_aarch64.S" "$top/src/arch/ctx_aarch64.c" \
        -o "$out/ctx_selfcheck$opt" -lm
    qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/ctx_selfcheck$opt"
done
