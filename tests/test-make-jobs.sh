#!/bin/sh
# make -j1 and JOBS=1 limit the build; make -jN shares make's jobserver
# with the build. The top-level Makefile runs with a stand-in `cmake` first
# on PATH that records how it was asked to build (and whether it can reach
# the jobserver), so nothing is compiled.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A make running this test (make test) must not leak its flags in.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES JOBS

cat >"$tmp/cmake" <<'STUB'
#!/bin/sh
case " $* " in *" --build "*) ;; *) exit 0 ;; esac
# A jobserver is usable when its pipe is open here (make 4.3: R,W fds) or
# its fifo exists (make 4.4: fifo:PATH).
auth=$(echo " ${MAKEFLAGS:-} " | sed -n 's/.* --jobserver-auth=\([^ ]*\) .*/\1/p')
case $auth in
    fifo:*) [ -p "${auth#fifo:}" ] && auth=usable ;;
    *,*) [ -e "/proc/$$/fd/${auth%,*}" ] && auth=usable ;;
esac
shift 2 # --build dir
echo "[$*] ${auth:-none}" >"$STUB_LOG"
STUB
chmod +x "$tmp/cmake"
export PATH="$tmp:$PATH" STUB_LOG="$tmp/log"

fail=0
check() { # expected line, then the make command line
    want=$1
    shift
    rm -f "$tmp/log"
    "$@" -s -C "$top" build >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
    got=$(cat "$tmp/log" 2>/dev/null || echo "no cmake --build")
    if [ "$got" = "$want" ]; then
        echo "ok   $*: $got"
    else
        echo "FAIL $*: cmake --build got '$got', want '$want'"
        fail=1
    fi
}

check "[-j $(nproc)] none" make
check "[-j 1] none" make -j1
check "[-j 1] none" env JOBS=1 make
check "[-j 1] none" make JOBS=1
check "[] usable" make -j3
check "[-j 2] none" make -j3 JOBS=2
exit $fail
