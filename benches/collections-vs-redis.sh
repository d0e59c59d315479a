#!/usr/bin/env bash
# Collections: server CPU per operation, Citadel vs redis-server, in one run,
# with redis-benchmark's own collection tests (the reference client), and
# memory per element of large collections, side by side.
#
# Both servers run on core 0 (citadel --threads 1; redis --save ''), the load
# on core 1. Server CPU = the server's utime+stime over each test.
#
# Usage: benches/collections-vs-redis.sh [REQUESTS] [ROUNDS] [ELEMENTS]
set -euo pipefail

requests=${1:-200000}
rounds=${2:-3}
elements=${3:-100000}
tests=${TESTS:-lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,lrange_600}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release -q -p citadel-server)
citadel=${CITADEL:-$target/release/citadel}
scratch=$(mktemp -d /dev/shm/citadel-coll-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$scratch"; }
trap cleanup EXIT

redis_port=$((20000 + RANDOM % 10000)); citadel_port=$((redis_port + 1))
taskset -c 0 redis-server --port "$redis_port" --save '' --appendonly no >/dev/null &
pids+=($!); redis_pid=$!
taskset -c 0 "$citadel" --port "$citadel_port" --rpc-port 0 --threads 1 \
    --cache-file "$scratch/cache" --maxmemory 2gb >"$scratch/citadel.log" 2>&1 &
pids+=($!); citadel_pid=$!
for port in "$redis_port" "$citadel_port"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

bench() { # port pid test -> server CPU µs/op
    local before after
    redis-cli -p "$1" flushall >/dev/null
    # The pops and ranges need something to pop and read.
    case $3 in lpop|rpop|lrange_*) taskset -c 1 redis-benchmark -p "$1" -P 16 -n "$requests" -q -t lpush >/dev/null ;;
               spop) taskset -c 1 redis-benchmark -p "$1" -P 16 -n "$requests" -q -t sadd >/dev/null ;;
               zpopmin) taskset -c 1 redis-benchmark -p "$1" -P 16 -n "$requests" -q -t zadd >/dev/null ;; esac
    before=$(cpu_ticks "$2")
    taskset -c 1 redis-benchmark -p "$1" -c 50 -P 16 -n "$requests" -q -t "$3" >/dev/null
    after=$(cpu_ticks "$2")
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
            m=$(printf 'm%015d' "$j")
            case $2 in hash) line+=" $m v" ;; set) line+=" $m" ;; zset) line+=" $j $m" ;; esac
        done
        case $2 in hash) echo "HSET big$line" ;; set) echo "SADD big$line" ;; zset) echo "ZADD big$line" ;; esac
    done | redis-cli -p "$1" >/dev/null
}
usage() { redis-cli -p "$1" memory usage big samples 0; }

declare -A cpu
IFS=, read -ra list <<<"$tests"
for round in $(seq "$rounds"); do
    echo "== round $round" >&2
    for t in "${list[@]}"; do
        cpu[redis,$t]+="$(bench $redis_port $redis_pid "$t") "
        cpu[citadel,$t]+="$(bench $citadel_port $citadel_pid "$t") "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
    echo "| redis-benchmark -t | Redis µs/op | Citadel µs/op | Citadel/Redis |"
    echo "|---|---:|---:|---:|"
    for t in "${list[@]}"; do
        r=$(echo "${cpu[redis,$t]}" | median); c=$(echo "${cpu[citadel,$t]}" | median)
        echo "| $t | $r | $c | **$(echo "scale=2; $c / $r" | bc)x** |"
    done
    echo
    echo "Medians of $rounds rounds of $requests requests; 50 connections, pipeline 16; server on core 0, client on core 1."
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
