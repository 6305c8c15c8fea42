#!/bin/sh
# Run every example the docs show, each bounded in time. An example says
# how it is checked in comment lines of its own source:
#   /* example-args: --port 0 */          arguments (optional)
#   /* example-expect: some output */     a substring its output must contain
#   /* example-run: scripts/x.sh */       a script that drives it instead
#                                          (gets the binary's path; exit 0 = ok)
# $1: the directory of binaries.
set -u
bin=$1
top=$(cd "$(dirname "$0")/.." && pwd)
fail=0

marker() { # file, name -> the marker's values, one per line
    sed -n "s|.*/\* example-$2: \(.*\) \*/.*|\1|p" "$1"
}

for src in "$top"/examples/*.c; do
    name=$(basename "$src" .c)
    runner=$(marker "$src" run)
    if [ -n "$runner" ]; then
        if timeout 120 sh "$top/$runner" "$bin/$name"; then
            echo "ok   $name ($runner)"
        else
            echo "FAIL $name: $runner failed"; fail=1
        fi
        continue
    fi
    args=$(marker "$src" args)
    # shellcheck disable=SC2086
    out=$(timeout 30 "$bin/$name" $args 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL $name: exit $rc"; echo "$out"; fail=1; continue
    fi
    ok=1
    while IFS= read -r want; do
        [ -z "$want" ] && continue
        case $out in
            *"$want"*) ;;
            *) echo "FAIL $name: output lacks '$want'"; ok=0 ;;
        esac
    done <<EOT
$(marker "$src" expect)
EOT
    if [ $ok -eq 1 ]; then echo "ok   $name"; else echo "$out"; fail=1; fi
done
exit $fail
