#!/bin/sh
# make bench: the micro-benchmarks (the experiment joins them later).
set -eu
cd "$(dirname "$0")/.."
build/bin/grove-micro "$@"
