#!/usr/bin/env bash
# Server CPU time per operation, Citadel vs redis-server, in one run.
#
# Both servers are pinned to core 0 (citadel --threads 1, cache file in /dev/shm;
# redis --save '' --appendonly no), the bundled load generator to core 1. For each of
# SET and GET at pipeline 1 and 16 with 50 connections, `citadel-loadgen compare`
# prefills, then drives each server for a fixed number of requests in alternating
# rounds and reads the server's utime+stime from /proc/<pid>/stat around each run.
# Prints one markdown table of medians and the Citadel/Redis ratios.
#
# Usage: benches/server-cpu.sh [ROUNDS] [REQUESTS_P1] [REQUESTS_P16]
# Env:   CARGO_TARGET_DIR (where the release binaries are built), OUT (result directory),
#        CITADEL (a citadel binary to measure instead of the one built here).
set -euo pipefail

rounds=${1:-3}
n_p1=${2:-500000}
n_p16=${3:-4000000}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$target/server-cpu}
# The compare harness keeps citadel's cache file in its out dir: keep that in RAM.
scratch=$(mktemp -d /dev/shm/citadel-server-cpu.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$out"

(cd "$root" && cargo build --release -q -p citadel-server -p citadel-loadgen)
loadgen=$target/release/citadel-loadgen
citadel=${CITADEL:-$target/release/citadel}

run() { # op ratio pipeline requests
    local dir=$scratch/$1-p$3
    mkdir -p "$dir"
    echo "== $1 pipeline $3: $4 requests x $rounds rounds" >&2
    # compare runs the load on --load-cpu and pins the servers to --server-cpu.
    "$loadgen" compare --citadel "$citadel" --only citadel,redis \
        --server-cpu 0 --load-cpu 1 --server-threads 1 --rounds "$rounds" \
        -c 50 -p "$3" --ratio "$2" -n "$4" --out-dir "$dir" >/dev/null
    cp "$dir/compare.json" "$out/$1-p$3.json"
}

run SET 1:0 1 "$n_p1"
run GET 0:1 1 "$n_p1"
run SET 1:0 16 "$n_p16"
run GET 0:1 16 "$n_p16"

{
    echo "| op | pipeline | server | ops/s | p50 µs | p99 µs | server CPU µs/op | CPU/op Citadel/Redis | p99 Citadel/Redis |"
    echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
    for f in SET-p1 GET-p1 SET-p16 GET-p16; do
        jq -r --arg op "${f%-p*}" --arg p "${f#*-p}" '
          (.summaries | map({(.server): .}) | add) as $s
          | ($s.citadel.server_cpu_per_mops / $s.redis.server_cpu_per_mops) as $cpu
          | ($s.citadel.p99_us / $s.redis.p99_us) as $p99
          | ["citadel", "redis"][] as $k | $s[$k]
          | "| \($op) | \($p) | \($k) | \(.ops_per_sec | round) | \(.p50_us * 10 | round / 10) | \(.p99_us * 10 | round / 10) | \(.server_cpu_per_mops * 100 | round / 100) | "
            + (if $k == "citadel" then "**\($cpu * 100 | round / 100)x** | \($p99 * 100 | round / 100)x |" else " | |" end)
        ' "$out/$f.json"
    done
    echo
    echo "Medians of $rounds alternating rounds; 50 connections, 100k keys, 32-byte values;"
    echo "$n_p1 requests per run at pipeline 1, $n_p16 at pipeline 16; server CPU = utime+stime."
} | tee "$out/table.md"
