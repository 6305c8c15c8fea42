# What the example drivers share; each sources it with
#   . "$(dirname "$0")/lib.sh"
# POSIX sh, and set -u safe.

# retry CMD...: run CMD every 50 ms until it succeeds, for up to 10 s.
# Returns CMD's last status.
retry() {
    for _ in $(seq 1 200); do
        "$@" && return 0
        sleep 0.05
    done
    return 1
}

# port_in FILE SED: set port to what `sed -n SED FILE` prints (the port a
# program announced in its output); true once it printed something.
port_in() {
    port=$(sed -n "$2" "$1")
    [ -n "$port" ]
}

# terminate PID: send it SIGTERM and wait for it; rc is its exit status.
terminate() {
    kill -TERM "$1"
    wait "$1"
    rc=$?
}
