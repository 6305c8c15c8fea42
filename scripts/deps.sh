#!/bin/sh
# Install the Debian packages a make target needs, when they are missing.
# Usage: scripts/deps.sh build|test|bench
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -eu

build="cmake gcc make pkg-config libc6-dev libc-ares-dev libssl-dev node-llhttp"
test="$build libcriterion-dev g++ clang-format gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user curl apache2-utils clang libclang-rt-14-dev python3 gnuplot-nox iproute2 redis-server redis-tools postgresql libpq-dev libhiredis-dev libcurl4-openssl-dev openssl libjemalloc2"
# (redis-server ... libjemalloc2: libgrove-patch's tests, tests/patch: real client
# libraries, their servers, and an allocator that reads files at start-up.)
# The experiment's peers and tools (bench/experiment): ab, wrk, nginx,
# gnuplot, and gevent and Paste for Debian's /usr/bin/python3.
bench="$build libboost-context-dev apache2-utils wrk nginx-light curl openssl iproute2 gnuplot-nox python3 python3-gevent python3-paste"

case "${1:-build}" in
    build) want=$build ;;
    test) want=$test ;;
    bench) want=$bench ;;
    *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" != 0 ]; then
    echo "grove needs these Debian packages:$missing" >&2
    echo "run as root: apt-get update && $cmd" >&2
    exit 1
fi
echo "grove: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; update once, then install.
apt-get update -q >/dev/null || true
$cmd >/dev/null || { apt-get update -q && $cmd; }
