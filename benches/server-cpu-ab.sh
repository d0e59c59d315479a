#!/usr/bin/env bash
# Server CPU time per operation of several servers, in one run, with two
# clients: redis-benchmark (the reference: what users run) and the bundled
# citadel-loadgen. Used to compare two Citadel builds (before/after a change)
# with redis-server beside them.
#
# Each server runs pinned to core 0 (citadel --threads 1, cache file in
# /dev/shm; redis --save '' --appendonly no), each client pinned to core 1.
# For SET and GET at pipeline 1 and 16, 50 connections, 100k keys, 32-byte
# values, every server is measured in every round (order rotating between
# rounds), reading the server's utime+stime from /proc/<pid>/stat around each
# client run. Prints a markdown table of medians, with each server's CPU per
# op and p99 as a ratio to redis-server's.
#
# Usage: benches/server-cpu-ab.sh [ROUNDS] [REQUESTS_P1] [REQUESTS_P16]
# Env:   SERVERS   space-separated name=binary pairs; a binary named
#                  redis-server is run as Redis, anything else as citadel.
#                  Default: "citadel=target/release/citadel redis=redis-server".
#        CLIENTS   "redis-benchmark loadgen" (default), or one of them.
#        OUT       result directory (default target/server-cpu-ab).
set -euo pipefail

rounds=${1:-3}
n_p1=${2:-300000}
n_p16=${3:-3000000}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$target/server-cpu-ab}
servers=${SERVERS:-"citadel=$target/release/citadel redis=redis-server"}
clients=${CLIENTS:-"redis-benchmark loadgen"}
loadgen=$target/release/citadel-loadgen
mkdir -p "$out"
: >"$out/samples.tsv"
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing (apt-get install redis-tools)" >&2; exit 1; }
[ -x "$loadgen" ] || (cd "$root" && cargo build --release -q -p citadel-loadgen)

scratch=$(mktemp -d /dev/shm/citadel-cpu-ab.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

start_server() { # name binary port
    local bin=$2 port=$3
    if [ "$(basename "$bin")" = redis-server ]; then
        taskset -c 0 "$bin" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no >"$scratch/$1.log" 2>&1 &
    else
        taskset -c 0 "$bin" --port "$port" --threads 1 --maxmemory 256mb --fresh \
            --cache-file "$scratch/$1-$port.cache" >"$scratch/$1.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$1 did not start: $(cat "$scratch/$1.log")" >&2
    exit 1
}

# One client run: prints "ops_per_sec p99_us".
drive() { # client op pipeline requests port
    local client=$1 op=$2 p=$3 n=$4 port=$5
    if [ "$client" = redis-benchmark ]; then
        taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$n" -P "$p" -r 100000 -d 32 \
            -t "$op" --csv 2>/dev/null | awk -F, 'NR==2 {gsub(/"/,""); print $2, $7 * 1000}'
    else
        local ratio=1:0 json=$scratch/lg.json
        [ "$op" = get ] && ratio=0:1
        taskset -c 1 "$loadgen" -s "127.0.0.1:$port" -t 1 -c 50 -p "$p" --ratio "$ratio" \
            --keys 100000 --value-size 32 -n "$n" --json "$json" >/dev/null 2>&1
        python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["ops_per_sec"], j["latency_us"]["all"]["p99"])' "$json"
    fi
}

measure() { # name binary round
    local name=$1 bin=$2 round=$3 port
    port=$(free_port)
    start_server "$name" "$bin" "$port"
    # Prefill every key once, so GETs hit.
    taskset -c 1 redis-benchmark -p "$port" -c 50 -n 100000 -P 16 -r 100000 -d 32 -t set -q >/dev/null 2>&1
    for client in $clients; do
        for p in 1 16; do
            local n=$n_p1
            [ "$p" = 16 ] && n=$n_p16
            for op in set get; do
                local before after res
                before=$(cpu_ticks "$pid")
                res=$(drive "$client" "$op" "$p" "$n" "$port")
                after=$(cpu_ticks "$pid")
                # clock ticks (100 Hz) -> microseconds per op
                local us
                us=$(echo "scale=4; ($after - $before) * 10000 / $n" | bc)
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$client" "$op" "$p" "$name" "$us" "$res" \
                    >>"$out/samples.tsv"
                echo "round $round $client $op p$p $name: ${us} us/op (ops/s p99_us: $res)" >&2
            done
        done
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
}

read -r -a list <<<"$servers"
for round in $(seq "$rounds"); do
    # Rotate the order each round so no server always runs first.
    k=$(( (round - 1) % ${#list[@]} ))
    for i in $(seq 0 $(( ${#list[@]} - 1 ))); do
        entry=${list[$(( (i + k) % ${#list[@]} ))]}
        measure "${entry%%=*}" "${entry#*=}" "$round"
    done
done

python3 - "$out/samples.tsv" "$servers" <<'PY' | tee "$out/table.md"
import sys, statistics as st
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    rnd, client, op, p, name, us, ops, p99 = line.split()
    rows[(client, op, int(p), name)].append((float(us), float(ops), float(p99)))
names = [e.split("=", 1)[0] for e in sys.argv[2].split()]
ref = "redis" if "redis" in names else names[-1]
print(f"| client | op | pipeline | server | CPU µs/op | ops/s | p99 µs | CPU/op vs {ref} | p99 vs {ref} |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|")
for client in ("redis-benchmark", "loadgen"):
    for p in (1, 16):
        for op in ("set", "get"):
            med = {}
            for n in names:
                s = rows.get((client, op, p, n))
                if s:
                    med[n] = tuple(st.median(x[i] for x in s) for i in range(3))
            for n, (us, ops, p99) in med.items():
                r = med.get(ref)
                rc = f"{us / r[0]:.2f}x" if r and r[0] else ""
                rp = f"{p99 / r[2]:.2f}x" if r and r[2] else ""
                print(f"| {client} | {op.upper()} | {p} | {n} | {us:.2f} | {ops:.0f} | {p99:.0f} | {rc} | {rp} |")
print()
print("Medians of rounds; 50 connections, 100k keys, 32-byte values; server CPU = utime+stime.")
PY
