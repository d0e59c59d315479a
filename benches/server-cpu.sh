#!/usr/bin/env bash
# Server CPU time per operation of several servers, in one run, with two
# clients side by side: redis-benchmark (the reference: what users run) and
# the bundled citadel-loadgen in --lockstep mode (it writes like
# redis-benchmark: a connection's next pipeline goes out, in one write and one
# syscall, only once every reply of the previous one arrived).
#
# Each server runs pinned to core 0 (citadel --threads 1, cache file in
# /dev/shm; redis --save '' --appendonly no), each client pinned to core 1.
# For SET and GET at pipeline 1 and 16, 50 connections, 100k keys (KEYS), 32-byte
# values, every server is measured in every round (order rotating between
# rounds), reading the server's utime and stime from /proc/<pid>/stat around
# each client run. Besides Citadel and Redis it measures the floor servers
# (benches/src/bin/floor_server.rs: read, count the commands, answer $-1 to
# each; epoll and io_uring variants): what a request costs with no parsing and
# no cache. Prints a markdown table of medians, each server's CPU per op and
# p99 as a ratio to redis-server's, and Citadel's user-space CPU per op above
# each floor (hardware cycle counters are not available in this VM, so
# user time stands in for cycles:u).
#
# Usage: benches/server-cpu.sh [ROUNDS] [REQUESTS_P1] [REQUESTS_P16]
# Env:   SERVERS   space-separated name=binary pairs; a binary named
#                  redis-server runs as Redis, floor-epoll / floor-uring as the
#                  floor server's variants, anything else as citadel. Default:
#                  "citadel=target/release/citadel redis=redis-server
#                   floor-epoll=floor-epoll floor-uring=floor-uring".
#        CLIENTS   any of "redis-benchmark loadgen-lockstep loadgen" (the last:
#                  the loadgen's default, pipelines topped up as replies
#                  arrive); default "redis-benchmark loadgen-lockstep".
#        OPS       redis-benchmark test names (-t), default "set get" (the
#                  loadgen clients know only set and get);  PIPELINES  default "1 16".
#        KEYS      the key space (redis-benchmark -r, loadgen --keys), default
#                  100000; the prefill writes as many SETs (about 63% of the
#                  keys: GETs of the rest miss, as in redis-benchmark's own
#                  random keys).
#        OUT       result directory (default target/server-cpu).
#        CACHE_DIRS "NAME=DIR ...": a named citadel's cache file goes in DIR
#                  instead of the scratch dir in /dev/shm, e.g. a tmpfs
#                  mounted huge=within_size (README, Performance: huge
#                  pages), to measure it side by side with one in /dev/shm
#                  (SERVERS="citadel=... huge=..." CACHE_DIRS="huge=/mnt/hc").
#        FIFO      set: servers and clients run SCHED_FIFO (chrt -f 1), so a
#                  busy shared machine measures like a quiet one.
set -euo pipefail

rounds=${1:-3}
n_p1=${2:-300000}
n_p16=${3:-3000000}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$target/server-cpu}
servers=${SERVERS:-"citadel=$target/release/citadel redis=redis-server floor-epoll=floor-epoll floor-uring=floor-uring"}
clients=${CLIENTS:-"redis-benchmark loadgen-lockstep"}
ops=${OPS:-"set get"}
pipelines=${PIPELINES:-"1 16"}
keys=${KEYS:-100000}
loadgen=$target/release/citadel-loadgen
floor=$target/release/floor-server
mkdir -p "$out"
: >"$out/samples.tsv"
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing (apt-get install redis-tools)" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || (cd "$root" && cargo build --release -q -p citadel-server -p citadel-loadgen &&
    cargo build --release -q -p citadel-benches --bin floor-server)

# shellcheck source=benches/cpu-bench-lib.sh
source "$root/benches/cpu-bench-lib.sh"
bench_scratch citadel-server-cpu

start_server() { # name binary port: the floor servers, or redis/citadel
    case "$(basename "$2")" in
    floor-epoll) $fifo taskset -c 0 "$floor" --port "$3" >"$scratch/$1.log" 2>&1 & ;;
    floor-uring) $fifo taskset -c 0 "$floor" --port "$3" --uring >"$scratch/$1.log" 2>&1 & ;;
    *) start_pinned "$@"; return ;;
    esac
    pid=$!
    wait_ping "$1" "$3"
}

# One client run: prints "ops_per_sec p99_us".
drive() { # client op pipeline requests port server
    local client=$1 op=$2 p=$3 n=$4 port=$5 server=$6
    if [ "$client" = redis-benchmark ]; then
        $fifo taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$n" -P "$p" -r "$keys" -d 32 \
            -t "$op" --csv 2>/dev/null | awk -F, 'NR==2 {gsub(/"/,""); print $2, $7 * 1000}'
    else
        local ratio=1:0 json=$scratch/lg.json mode=() errors=0
        [ "$op" = get ] && ratio=0:1
        [ "$client" = loadgen-lockstep ] && mode=(--lockstep)
        # The floor servers answer $-1 to SET too: not an error worth stopping for.
        [[ $server = floor-* ]] && errors=1
        $fifo taskset -c 1 "$loadgen" -s "127.0.0.1:$port" -t 1 -c 50 -p "$p" --ratio "$ratio" \
            "${mode[@]}" --max-errors "$errors" --keys "$keys" --value-size 32 -n "$n" --json "$json" \
            >/dev/null 2>&1
        python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["ops_per_sec"], j["latency_us"]["all"]["p99"])' "$json"
    fi
}

measure() { # name binary round
    local name=$1 bin=$2 round=$3 port
    port=$(free_port)
    start_server "$name" "$bin" "$port"
    # Prefill: as many random SETs as keys, so most GETs hit.
    taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$keys" -P 16 -r "$keys" -d 32 -t set -q >/dev/null 2>&1
    for client in $clients; do
        for p in $pipelines; do
            local n=$n_p1
            [ "$p" = 16 ] && n=$n_p16
            for op in $ops; do
                local before after res us user
                before=$(cpu_ticks "$pid")
                res=$(drive "$client" "$op" "$p" "$n" "$port" "$(basename "$bin")")
                after=$(cpu_ticks "$pid")
                # clock ticks (100 Hz) -> microseconds per op: all, then user space only
                read -r us user < <(echo "$before $after" |
                    awk -v n="$n" '{printf "%.4f %.4f\n", ($3 + $4 - $1 - $2) * 10000 / n, ($3 - $1) * 10000 / n}')
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$client" "$op" "$p" "$name" "$us" "$user" "$res" \
                    >>"$out/samples.tsv"
                echo "round $round $client $op p$p $name: ${us} us/op, user ${user} (ops/s p99_us: $res)" >&2
            done
        done
    done
    stop_pinned
}

every_round "$rounds" measure

python3 - "$out/samples.tsv" "$servers" "$rounds" "$keys" "$ops" <<'PY' | tee "$out/table.md"
import sys, statistics as st
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    rnd, client, op, p, name, us, user, ops, p99 = line.split()
    rows[(client, op, int(p), name)].append((float(us), float(user), float(ops), float(p99)))
names = [e.split("=", 1)[0] for e in sys.argv[2].split()]
floors = [n for n in names if n.startswith("floor")]
ref = "redis" if "redis" in names else names[-1]
print(f"| client | op | P | server | CPU µs/op | user µs/op | ops/s | p99 µs | CPU/op vs {ref} | p99 vs {ref} |"
      + "".join(f" user µs/op above {f} |" for f in floors))
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(floors))
for client in ("redis-benchmark", "loadgen-lockstep", "loadgen"):
    for p in (1, 16):
        for op in sys.argv[5].split():
            med = {}
            for n in names:
                s = rows.get((client, op, p, n))
                if s:
                    med[n] = tuple(st.median(x[i] for x in s) for i in range(4))
            r = med.get(ref)
            for n, (us, user, ops, p99) in med.items():
                rc = f"**{us / r[0]:.2f}x**" if r and r[0] else ""
                rp = f"{p99 / r[3]:.2f}x" if r and r[3] else ""
                above = "".join(
                    f" {user - med[f][1]:+.3f} |" if f in med and n not in floors else " |" for f in floors)
                print(f"| {client} | {op.upper()} | {p} | {n} | {us:.3f} | {user:.3f} | {ops:.0f} | {p99:.0f} | {rc} | {rp} |" + above)
print()
print(f"Medians of {sys.argv[3]} rounds; 50 connections, {int(sys.argv[4]):,} keys, 32-byte values; "
      "server CPU = utime+stime from /proc/<pid>/stat (10 ms ticks).")
PY
