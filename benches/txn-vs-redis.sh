#!/usr/bin/env bash
# Transactions and scripts: server CPU per operation, Citadel vs redis-server,
# in one run, plus WATCH's false-abort rate on 1M uniformly accessed keys.
#
# Both servers run on core 0 (citadel --threads 1; redis --save ''), the load
# on core 1; admission off (a saturated core must not shed the load). redis-benchmark (the reference client) drives EVALSHA of a
# 2-key script; it cannot send MULTI...EXEC sequences, so `txn-load` (benches/
# src/bin/txn_load.rs) drives MULTI + 3 SETs + EXEC, and EVALSHA again beside
# redis-benchmark. Server CPU = the server's utime+stime over the run.
#
# Usage: benches/txn-vs-redis.sh [SECONDS] [ROUNDS]
set -euo pipefail

seconds=${1:-5}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release -q -p citadel-server -p citadel-benches --bin txn-load)
citadel=${CITADEL:-$target/release/citadel}
load=$target/release/txn-load
scratch=$(mktemp -d /dev/shm/citadel-txn-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$scratch"; }
trap cleanup EXIT

redis_port=$((20000 + RANDOM % 10000)); citadel_port=$((redis_port + 1))
taskset -c 0 redis-server --port "$redis_port" --save '' --appendonly no >/dev/null &
pids+=($!); redis_pid=$!
taskset -c 0 "$citadel" --port "$citadel_port" --rpc-port 0 --threads 1 \
    --cache-file "$scratch/cache" --maxmemory 512mb --overload-delay-target-us 0 >"$scratch/citadel.log" 2>&1 &
pids+=($!); citadel_pid=$!
for port in "$redis_port" "$citadel_port"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

script='redis.call("SET", KEYS[1], ARGV[1]); return redis.call("INCR", KEYS[2])'
sha_of() { redis-cli -p "$1" script load "$script"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# redis-benchmark: EVALSHA over random keys; prints server CPU µs/op.
bench_evalsha() { # port pid
    local sha n=400000 before after
    sha=$(sha_of "$1")
    before=$(cpu_ticks "$2")
    taskset -c 1 redis-benchmark -p "$1" -c 50 -P 16 -n "$n" -r 1000000 -q \
        EVALSHA "$sha" 2 "k:__rand_int__" "c:__rand_int__" v >/dev/null
    after=$(cpu_ticks "$2")
    echo "scale=3; ($after - $before) * 10000 / $n" | bc
}

txn_load() { # port pid mode [sha]
    taskset -c 1 "$load" --port "$1" --pid "$2" --mode "$3" --sha "${4:-}" \
        --seconds "$seconds" --conns 50 --depth 16 | jq -r .server_cpu_us_per_op
}

declare -A cpu
for round in $(seq "$rounds"); do
    echo "== round $round" >&2
    for server in redis citadel; do
        if [ $server = redis ]; then port=$redis_port pid=$redis_pid; else port=$citadel_port pid=$citadel_pid; fi
        cpu[$server,evalsha-rb]+="$(bench_evalsha $port $pid) "
        cpu[$server,evalsha]+="$(txn_load $port $pid evalsha "$(sha_of $port)") "
        cpu[$server,multi]+="$(txn_load $port $pid multi) "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
    echo "| workload | client | Redis µs/op | Citadel µs/op | Citadel/Redis |"
    echo "|---|---|---:|---:|---:|"
    for w in evalsha-rb:redis-benchmark:"EVALSHA 2 keys" evalsha:txn-load:"EVALSHA 2 keys" multi:txn-load:"MULTI + 3 SET + EXEC"; do
        IFS=: read -r key client label <<<"$w"
        r=$(echo "${cpu[redis,$key]}" | median); c=$(echo "${cpu[citadel,$key]}" | median)
        echo "| $label | $client | $r | $c | **$(echo "scale=2; $c / $r" | bc)x** |"
    done
    echo
    echo "Medians of $rounds rounds; 50 connections, pipeline 16, 1M-key space, server on core 0, client on core 1."
} | tee "$scratch/table.md"

echo "== WATCH false aborts (citadel, 1M keys, uniform)" >&2
kill "$citadel_pid"; wait "$citadel_pid" 2>/dev/null || true
"$citadel" --port "$citadel_port" --rpc-port 0 --threads 2 --cache-file "$scratch/cache2" \
    --maxmemory 512mb --overload-delay-target-us 0 >"$scratch/citadel2.log" 2>&1 &
pids+=($!); citadel_pid=$!
for _ in $(seq 100); do redis-cli -p "$citadel_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
"$load" --port "$citadel_port" --pid "$citadel_pid" --mode multi --seconds 3 --keys 1000000 >/dev/null
"$load" --port "$citadel_port" --pid "$citadel_pid" --mode watch --seconds "$seconds" \
    --conns 32 --keys 1000000
