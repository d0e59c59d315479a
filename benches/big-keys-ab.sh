#!/usr/bin/env bash
# Big keys, two Citadel builds and redis-server: server CPU per operation in
# interleaved rounds (each round runs every server on every test, so a
# noisy machine's drift falls on all of them alike), medians and ratios to
# Redis. The tests are big-keys-lib.sh's (ONE collection of BIG elements,
# filled before each run, R = redis-benchmark's __rand_int__ below BIG).
#
# Each server runs alone on core 0 (citadel --threads 1 --fresh, shedding
# off; redis --save ''), redis-benchmark -c 50 -P 16 on core 1. Server CPU
# = its utime + stime over the redis-benchmark run.
#
# Usage: benches/big-keys-ab.sh [ROUNDS] [REQUESTS]   (default 5 100000)
#   BEFORE=PATH AFTER=PATH  the two citadel builds (AFTER defaults to
#                           target/release/citadel; BEFORE is required)
#   BIG=N                   elements (default 50000)
#   TESTS="zadd_big ..."    default: zadd_big zincrby_big zscore_big
#                           hget_big sismember_big
set -uo pipefail
rounds=${1:-5}
requests=${2:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
before=${BEFORE:?BEFORE=path/to/the/earlier/citadel}
after=${AFTER:-$root/target/release/citadel}
BIG=${BIG:-50000}
tests=${TESTS:-zadd_big zincrby_big zscore_big hget_big sismember_big}
# shellcheck source=benches/big-keys-lib.sh
source "$root/benches/big-keys-lib.sh"
dir=$(mktemp -d /dev/shm/citadel-big-ab.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

start() { # server
    local bin
    case $1 in
        before | after)
            bin=$before
            [[ $1 == after ]] && bin=$after
            rm -rf "$dir/cache"*
            taskset -c 0 "$bin" --port "$port" --rpc-port 0 --threads 1 --fresh \
                --cache-file "$dir/cache" --maxmemory 1gb --overload-delay-target-us 0 >/dev/null 2>&1 &
            ;;
        redis) taskset -c 0 redis-server --port "$port" --save '' --appendonly no >/dev/null 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "$1 did not start" >&2
    exit 1
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

declare -A us
for round in $(seq "$rounds"); do
    for t in $tests; do
        read -ra words <<<"$(big_command "$t")"
        for server in before after redis; do
            start "$server"
            fill_big "$port" "$t"
            ticks=$(cpu_ticks "$pid")
            taskset -c 1 redis-benchmark -p "$port" -c 50 -P 16 -n "$requests" -r "$BIG" -q "${words[@]}" >/dev/null
            per_op=$(echo "scale=3; ($(cpu_ticks "$pid") - $ticks) * 1000000 / $(getconf CLK_TCK) / $requests" | bc)
            us[$t,$server]+="$per_op "
            echo "round $round $t $server: $per_op µs/op" >&2
            kill "$pid"
            wait "$pid" 2>/dev/null
            pid=""
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| test | before µs/op | after µs/op | Redis µs/op | before/Redis | after/Redis | after/before |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for t in $tests; do
    b=$(echo "${us[$t,before]}" | median)
    a=$(echo "${us[$t,after]}" | median)
    r=$(echo "${us[$t,redis]}" | median)
    echo "| $t | $b | $a | $r | $(echo "scale=2; $b / $r" | bc)x | $(echo "scale=2; $a / $r" | bc)x | $(echo "scale=2; $a / $b" | bc)x |"
done
echo
echo "Medians of $rounds interleaved rounds of $requests requests; BIG=$BIG; server on core 0, redis-benchmark -c 50 -P 16 on core 1."
