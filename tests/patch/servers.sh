#!/bin/sh
# The peers of the patch tests, on loopback, in throw-away directories:
#   servers.sh start DIR   start redis-server and PostgreSQL (a temporary
#                          cluster run by the unprivileged user postgres,
#                          through runuser), each on a random free port, and
#                          write DIR/env with their addresses
#   servers.sh stop DIR    stop both and remove DIR
# CTest runs start and stop as a fixture around the tests that need them
# (stop runs even when tests fail); every server is also started under
# timeout(1), so none outlives a killed test run by more than 15 minutes.
# A peer that is not installed is left out of DIR/env (its tests skip,
# except under make test, GROVE_MAKE_TEST=1, where this fails instead).
set -u
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd) # absolute: redis-server changes directory before opening its log
log() { echo "servers.sh: $*" >&2; }

free_port() { # a random port nothing listens on
    while :; do
        p=$(( $(od -An -N2 -tu2 /dev/urandom) % 20000 + 30000 ))
        [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && { echo "$p"; return; }
    done
}

missing() { # what, package
    if [ -n "${GROVE_MAKE_TEST:-}" ]; then
        log "$1 is missing (Debian package $2; make test installs it)"
        exit 1
    fi
    log "$1 is missing (Debian package $2): its tests will be skipped"
}

start_redis() {
    command -v redis-server >/dev/null || { missing redis-server redis-server; return; }
    port=$(free_port)
    mkdir -p "$dir/redis"
    timeout -s KILL 900 redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$dir/redis" --logfile "$dir/redis/log" --daemonize no >/dev/null 2>&1 &
    echo $! >"$dir/redis.pid"
    for _ in $(seq 100); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG || { log "redis-server did not start"; exit 1; }
    {
        echo "GROVE_TEST_REDIS_PORT=$port"
        echo "GROVE_TEST_REDIS_SERVER=$(command -v redis-server)"
    } >>"$dir/env"
}

start_postgres() {
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -z "$bin" ] || ! id postgres >/dev/null 2>&1; then
        missing PostgreSQL postgresql
        return
    fi
    port=$(free_port)
    pg=$dir/pg
    mkdir -p "$pg/sock"
    chown -R postgres "$pg"
    # PostgreSQL refuses to run as root: as the postgres user (no shell
    # function here, whose saved descriptors would keep our output open).
    as_pg=""
    [ "$(id -u)" = 0 ] && as_pg="runuser -u postgres --"
    $as_pg "$bin/initdb" -D "$pg/data" -A trust -U postgres -E UTF8 --no-sync >"$pg/initdb.log" 2>&1 ||
        { log "initdb failed: $(tail -3 "$pg/initdb.log")"; exit 1; }
    $as_pg timeout -s QUIT 900 "$bin/postgres" -D "$pg/data" -c listen_addresses=127.0.0.1 \
        -c port="$port" -c unix_socket_directories="$pg/sock" -c max_connections=200 \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c shared_buffers=32MB >"$pg/log" 2>&1 &
    echo $! >"$dir/pg.pid"
    for _ in $(seq 200); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
        sleep 0.1
    done
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { log "postgres did not start: $(tail -3 "$pg/log")"; exit 1; }
    {
        echo "GROVE_TEST_PG_PORT=$port"
        echo "GROVE_TEST_PG_SOCKDIR=$pg/sock"
    } >>"$dir/env"
}

stop_pid() { # the pid in file $1: TERM, then KILL after 5 s
    [ -f "$1" ] || return 0
    p=$(cat "$1")
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do
        kill -0 "$p" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null
    return 0
}

stop_all() {
    # The postmaster itself (runuser and timeout in front of it pass no
    # signal on): INT is its fast shutdown, KILL after 5 s.
    pm=$dir/pg/data/postmaster.pid
    if [ -f "$pm" ]; then
        p=$(head -1 "$pm")
        kill -INT "$p" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null
    fi
    stop_pid "$dir/pg.pid"
    stop_pid "$dir/redis.pid"
}

case "$cmd" in
start)
    stop_all # a previous run's, if it was cut short
    rm -rf "$dir"
    mkdir -p "$dir"
    : >"$dir/env"
    trap 'stop_all' INT TERM
    start_redis
    start_postgres
    log "started: $(tr '\n' ' ' <"$dir/env")"
    ;;
stop)
    stop_all
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
