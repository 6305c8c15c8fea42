#!/bin/sh
# Run one patch test program with the peers servers.sh started.
# Usage: run.sh ENVFILE [--preload LIB] PROGRAM ARGS...
# ENVFILE (written by servers.sh start) holds the peers' addresses; when
# it is missing the tests needing a peer skip themselves (or fail under
# make test, GROVE_MAKE_TEST=1). --preload runs PROGRAM with LD_PRELOAD=LIB.
set -eu
envfile=$1
shift
if [ -f "$envfile" ]; then
    set -a
    . "$envfile"
    set +a
fi
if [ "${1:-}" = --preload ]; then
    export LD_PRELOAD="$2"
    shift 2
fi
exec "$@"
