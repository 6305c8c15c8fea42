#!/bin/sh
# Run every example the docs show, each bounded in time, and check its
# output where the output is deterministic. $1: the directory of binaries.
set -eu
bin=$1
fail=0

run() { # name, expected-substring, args...
    name=$1; want=$2; shift 2
    out=$(timeout 30 "$bin/$name" "$@" 2>&1) || { echo "FAIL $name: exit $?"; echo "$out"; fail=1; return; }
    case $out in
        *"$want"*) echo "ok   $name" ;;
        *) echo "FAIL $name: output lacks '$want'"; echo "$out"; fail=1 ;;
    esac
}

run hello "thread 3 returned 300"
run cancel "main: limit expired: yes"
run cancel "worker: cleaned up"
run cross-thread "got 9 from a pthread"
exit $fail
