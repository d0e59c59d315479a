# Sourced by the benches that read a pinned server's CPU time from /proc
# (server-cpu.sh, big-values.sh): each server runs alone on core 0, the
# client on core 1, and every server is measured in every round.
#
#   bench_scratch NAME         makes $scratch (a directory in /dev/shm); on
#                              exit $pid (the running server) is killed and
#                              $scratch removed
#   free_port                  prints a free TCP port on 127.0.0.1
#   cpu_ticks PID              prints its utime and stime (clock ticks)
#   start_pinned NAME BIN PORT starts redis-server (no persistence) or
#                              citadel (--threads 1, 256 MB fresh cache in
#                              $scratch, no load shedding: every measured
#                              request does its work) on core 0; sets $pid
#                              (CACHE_DIRS="NAME=DIR ..." puts a named
#                              server's cache file in DIR instead, e.g. a
#                              tmpfs mounted huge=within_size: README,
#                              Performance, huge pages)
#   wait_ping NAME PORT        waits until it answers PING (exits if not)
#   stop_pinned                stops the server $pid names
#   $fifo                      "chrt -f 1" when FIFO is set, else empty: put
#                              before a pinned command (unquoted) to run it
#                              SCHED_FIFO, ahead of whatever else shares the
#                              machine (a quiet core pair on a busy host)
#   every_round ROUNDS FN      calls FN NAME BIN ROUND for each entry of
#                              $servers (name=binary), rotating the order
#                              each round so no server always runs first

fifo=${FIFO:+chrt -f 1}

bench_scratch() {
    scratch=$(mktemp -d "/dev/shm/$1.XXXXXX")
    pid=""
    trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$scratch"' EXIT
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

cache_dir_of() { # name -> the directory its cache file goes in
    local entry
    for entry in ${CACHE_DIRS:-}; do
        [ "${entry%%=*}" = "$1" ] && { echo "${entry#*=}"; return; }
    done
    echo "$scratch"
}

start_pinned() { # name binary port
    local bin=$2 port=$3
    if [ "$(basename "$bin")" = redis-server ]; then
        $fifo taskset -c 0 "$bin" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no >"$scratch/$1.log" 2>&1 &
    else
        cache_file=$(cache_dir_of "$1")/$1-$port.cache
        $fifo taskset -c 0 "$bin" --port "$port" --threads 1 --maxmemory 256mb --fresh \
            --overload-delay-target-us 0 \
            --cache-file "$cache_file" >"$scratch/$1.log" 2>&1 &
    fi
    pid=$!
    wait_ping "$1" "$port"
}

wait_ping() { # name port
    for _ in $(seq 100); do
        redis-cli -p "$2" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$1 did not start: $(cat "$scratch/$1.log")" >&2
    exit 1
}

stop_pinned() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    # A cache file outside $scratch (CACHE_DIRS) is not removed with it.
    [ -n "${cache_file:-}" ] && rm -rf "$cache_file" "$cache_file".*
    cache_file=""
}

every_round() { # rounds fn
    local list round k i entry
    read -r -a list <<<"$servers"
    for round in $(seq "$1"); do
        k=$(( (round - 1) % ${#list[@]} ))
        for i in $(seq 0 $(( ${#list[@]} - 1 ))); do
            entry=${list[$(( (i + k) % ${#list[@]} ))]}
            "$2" "${entry%%=*}" "${entry#*=}" "$round"
        done
    done
}
