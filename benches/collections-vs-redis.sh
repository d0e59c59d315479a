#!/usr/bin/env bash
# Collections: server CPU per operation, Citadel vs redis-server, in one run,
# driven by two clients: redis-benchmark's own collection tests (the reference
# client) and the bundled load generator's operations of the same names
# (citadel-loadgen --ops TEST, which sends the same commands); then memory per
# element of large collections, side by side.
#
# Both servers run on core 0 (citadel --threads 1; redis --save ''), the load
# on core 1; both clients use 50 connections, pipeline 16, 3-byte values.
# Server CPU = the server's utime+stime over each test. Before a pop or range
# test the key is filled by redis-benchmark (-t lpush, sadd or zadd, REQUESTS
# requests) for both clients alike. redis-benchmark's lrange_N runs an LPUSH
# pass of REQUESTS first and that is inside its measurement; the loadgen's
# lrange_N is LRANGEs only.
#
# Usage: benches/collections-vs-redis.sh [REQUESTS] [ROUNDS] [ELEMENTS]
#   TESTS=lpush,sadd,...  the tests (default: all eleven)
#   RANDOM_ELEMENTS=N     SADD/HSET/ZADD draw element:N from N elements
#                         (redis-benchmark -r N, citadel-loadgen --elements N);
#                         default: redis-benchmark's one fixed element, both clients
#   BIG=N                 also the big-key tests (benches/big-keys-lib.sh:
#                         zadd_big, zrank_big, zrange_big ... hget_big,
#                         sismember_big) on ONE collection of N elements
#                         filled before each test, R = redis-benchmark's
#                         __rand_int__ below N; redis-benchmark client only
#                         (TESTS= may list just these)
#   MEMORY=0              skip the memory-per-element table
#   CITADEL_FLAGS=...     extra citadel flags (default: overload shedding off,
#                         --overload-delay-target-us 0)
#   CITADEL=PATH LOADGEN=PATH  binaries (default: the workspace's release builds)
set -euo pipefail
shopt -s inherit_errexit

requests=${1:-200000}
rounds=${2:-3}
elements=${3:-100000}
tests=${TESTS:-lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_600}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release -q -p citadel-server -p citadel-loadgen)
citadel=${CITADEL:-$target/release/citadel}
loadgen=${LOADGEN:-$target/release/citadel-loadgen}
random_elements=${RANDOM_ELEMENTS:-}
# Overload shedding off: a CPU measurement wants every request served.
citadel_flags=${CITADEL_FLAGS---overload-delay-target-us 0}
rb_random=(); lg_random=()
if [[ -n $random_elements ]]; then
    rb_random=(-r "$random_elements"); lg_random=(--elements "$random_elements")
fi
scratch=$(mktemp -d /dev/shm/citadel-coll-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$scratch"; }
trap cleanup EXIT

redis_port=$((20000 + RANDOM % 10000)); citadel_port=$((redis_port + 1))
taskset -c 0 redis-server --port "$redis_port" --save '' --appendonly no >/dev/null &
pids+=($!); redis_pid=$!
taskset -c 0 "$citadel" --port "$citadel_port" --rpc-port 0 --threads 1 \
    --cache-file "$scratch/cache" --maxmemory 2gb $citadel_flags >"$scratch/citadel.log" 2>&1 &
pids+=($!); citadel_pid=$!
for port in "$redis_port" "$citadel_port"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# One test with one client: the same commands, connections and pipeline.
run_client() { # client port test
    case $1 in
        redis-benchmark) taskset -c 1 redis-benchmark -p "$2" -c 50 -P 16 -n "$requests" \
                             "${rb_random[@]}" -q -t "$3" >/dev/null ;;
        loadgen) taskset -c 1 "$loadgen" -s "127.0.0.1:$2" -t 1 -c 50 -p 16 -d 3 \
                     -n "$requests" "${lg_random[@]}" --ops "$3" -q >/dev/null ;;
    esac
}

# shellcheck source=benches/big-keys-lib.sh
source "$root/benches/big-keys-lib.sh"

bench() { # client port pid test -> server CPU µs/op
    local before after fill=""
    redis-cli -p "$2" flushall >/dev/null
    if [[ $4 == *_big ]]; then
        fill_big "$2" "$4"
        before=$(cpu_ticks "$3")
        # shellcheck disable=SC2046 # the command's words
        taskset -c 1 redis-benchmark -p "$2" -c 50 -P 16 -n "$requests" -r "$BIG" -q \
            $(big_command "$4") >/dev/null
        after=$(cpu_ticks "$3")
        echo "scale=3; ($after - $before) * 10000 / $requests" | bc
        return
    fi
    # The pops and ranges need something to pop and read.
    case $4 in lpop|rpop|lrange_*) fill=lpush ;; spop) fill=sadd ;; zpopmin) fill=zadd ;; esac
    if [[ -n $fill ]]; then
        taskset -c 1 redis-benchmark -p "$2" -P 16 -n "$requests" "${rb_random[@]}" -q -t "$fill" >/dev/null
    fi
    before=$(cpu_ticks "$3")
    run_client "$1" "$2" "$4"
    after=$(cpu_ticks "$3")
    echo "scale=3; ($after - $before) * 10000 / $requests" | bc
}

# Memory per element: one collection of $elements 16-byte members, filled
# 1,000 per command; bytes = MEMORY USAGE of the key (SAMPLES 0: all of
# it) / elements. (Citadel's used_memory counts whole segments, which
# include the superseded copies a log-structured store frees later.)
fill() { # port type
    local batch=1000 i j line
    for ((i = 0; i < elements; i += batch)); do
        line=""
        for ((j = i; j < i + batch && j < elements; j++)); do
            printf -v m 'm%015d' "$j"
            case $2 in hash) line+=" $m v" ;; set) line+=" $m" ;; zset) line+=" $j $m" ;; esac
        done
        case $2 in hash) echo "HSET big$line" ;; set) echo "SADD big$line" ;; zset) echo "ZADD big$line" ;; esac
    done | redis-cli -p "$1" >/dev/null
}
usage() { redis-cli -p "$1" memory usage big samples 0; }

clients=(redis-benchmark loadgen)
declare -A cpu
IFS=, read -ra list <<<"$tests"
for round in $(seq "$rounds"); do
    echo "== round $round" >&2
    for t in "${list[@]}"; do
        for client in "${clients[@]}"; do
            [[ $t == *_big && $client != redis-benchmark ]] && continue
            for server in redis citadel; do
                port=${server}_port pid=${server}_pid
                us=$(bench "$client" "${!port}" "${!pid}" "$t")
                cpu[$client,$server,$t]+="$us "
                echo "$t $client $server: $us µs/op" >&2
            done
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cells() { # client test -> "| Redis | Citadel | ratio "
    local r c
    r=$(echo "${cpu[$1,redis,$2]}" | median); c=$(echo "${cpu[$1,citadel,$2]}" | median)
    echo "| $r | $c | **$(echo "scale=2; $c / $r" | bc)x** "
}
{
    echo "Server CPU µs/op (median of $rounds rounds of $requests requests), by client:"
    echo
    echo "| test | redis-benchmark: Redis | Citadel | Citadel/Redis | loadgen: Redis | Citadel | Citadel/Redis |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for t in "${list[@]}"; do
        if [[ $t == *_big ]]; then
            echo "| $t ($BIG members) $(cells redis-benchmark "$t")| | | |"
        else
            echo "| $t $(cells redis-benchmark "$t")$(cells loadgen "$t")|"
        fi
    done
    echo
    echo "50 connections, pipeline 16, 3-byte values; server on core 0, client on core 1;" \
        "elements: ${random_elements:-one fixed element (no -r)}." \
        "redis-benchmark's lrange_N includes the LPUSH pass it runs first."
    [[ ${MEMORY:-1} == 0 ]] && exit 0
    echo
    echo "| $elements 16-byte members | Redis bytes/element | Citadel bytes/element |"
    echo "|---|---:|---:|"
    for type in hash set zset; do
        for port in $redis_port $citadel_port; do
            redis-cli -p "$port" flushall >/dev/null
            fill "$port" "$type"
            echo "scale=1; $(usage "$port") / $elements" | bc
        done | paste -sd' ' | awk -v t="$type" '{print "| " t " | " $1 " | " $2 " |"}'
    done
} | tee "$scratch/table.md"
