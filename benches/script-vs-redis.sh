#!/usr/bin/env bash
# EVALSHA server CPU per call, Citadel vs redis-server, in one run.
#
# Each server runs pinned to core 0 (citadel --threads 1, cache file in
# /dev/shm, admission off: a saturated core must not shed the scripts; redis
# --save '' --appendonly no), redis-benchmark (the reference
# client) pinned to core 1, 50 connections, 100k keys. Two one-key scripts,
# loaded with SCRIPT LOAD on each server:
#   set: return redis.call('SET', KEYS[1], ARGV[1])
#   get: return redis.call('GET', KEYS[1])
# each at pipeline 1 and 16 (set runs first in a round, so get finds keys).
# Every server is measured in every round (order rotating); server CPU =
# utime+stime from /proc/<pid>/stat around the client run. Prints a markdown
# table of medians, each server's CPU per call as a ratio to redis-server's.
#
# Usage: benches/script-vs-redis.sh [ROUNDS] [CALLS_P1] [CALLS_P16]
# Env:   SERVERS  space-separated name=binary pairs; a binary named
#                 redis-server runs as Redis, anything else as citadel
#                 (default: "citadel=target/release/citadel redis=redis-server";
#                 give two citadel builds to compare before/after).
#        OUT      result directory (default target/script-vs-redis).
set -euo pipefail

rounds=${1:-3}
n_p1=${2:-200000}
n_p16=${3:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$target/script-vs-redis}
servers=${SERVERS:-"citadel=$target/release/citadel redis=redis-server"}
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing (apt-get install redis-tools)" >&2; exit 1; }
[ -n "${SERVERS:-}" ] || (cd "$root" && cargo build --release -q -p citadel-server)
mkdir -p "$out"
: >"$out/samples.tsv"

scratch=$(mktemp -d /dev/shm/citadel-script-bench.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT

declare -A body=(
    [set]="return redis.call('SET', KEYS[1], ARGV[1])"
    [get]="return redis.call('GET', KEYS[1])"
)

start_server() { # name binary port
    if [ "$(basename "$2")" = redis-server ]; then
        taskset -c 0 "$2" --port "$3" --save '' --appendonly no >/dev/null 2>&1 &
    else
        taskset -c 0 "$2" --port "$3" --rpc-port 0 --threads 1 \
            --cache-file "$scratch/$1.cache" --maxmemory 512mb \
            --overload-delay-target-us 0 >"$scratch/$1.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 200); do redis-cli -p "$3" ping >/dev/null 2>&1 && return; sleep 0.05; done
    echo "$1 did not start" >&2
    exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() { # name port script pipeline calls -> appends a sample
    local sha before after
    sha=$(redis-cli -p "$2" script load "${body[$3]}")
    before=$(cpu_ticks "$pid")
    taskset -c 1 redis-benchmark -p "$2" -c 50 -P "$4" -n "$5" -r 100000 -q \
        EVALSHA "$sha" 1 "key:__rand_int__" "value-of-32-bytes-xxxxxxxxxxxxxx" >/dev/null
    after=$(cpu_ticks "$pid")
    # Ticks are 10 ms: µs per call = ticks * 10000 / calls.
    printf '%s\t%s\tp%s\t%s\n' "$1" "$3" "$4" \
        "$(echo "scale=4; ($after - $before) * 10000 / $5" | bc)" >>"$out/samples.tsv"
}

read -r -a pairs <<<"$servers"
for round in $(seq "$rounds"); do
    n=${#pairs[@]}
    for k in $(seq 0 $((n - 1))); do
        IFS== read -r name bin <<<"${pairs[$(((k + round) % n))]}"
        echo "== round $round: $name" >&2
        port=$((20000 + RANDOM % 20000))
        start_server "$name" "$bin" "$port"
        for script in set get; do
            measure "$name" "$port" "$script" 1 "$n_p1"
            measure "$name" "$port" "$script" 16 "$n_p16"
        done
        kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    done
done

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sample() { awk -F'\t' -v s="$1" -v w="$2" -v p="$3" '$1==s && $2==w && $3==p {print $4}' "$out/samples.tsv" | median; }
{
    echo "| script | pipeline | server | server CPU µs/call | vs redis |"
    echo "|---|---:|---|---:|---:|"
    for w in set get; do
        for p in p1 p16; do
            r=$(sample redis $w $p)
            for pair in "${pairs[@]}"; do
                name=${pair%%=*}
                c=$(sample "$name" $w $p)
                echo "| $w | ${p#p} | $name | $c | $(echo "scale=2; $c / $r" | bc)x |"
            done
        done
    done
    echo
    echo "Medians of $rounds rounds; redis-benchmark -c 50 -r 100000, $n_p1 calls at"
    echo "pipeline 1, $n_p16 at pipeline 16; server on core 0, client on core 1."
} | tee "$out/table.md"
