#!/usr/bin/env bash
# Citadel's RPC front door against its RESP one, on one server, in one run.
#
# One citadel (--threads 1, pinned to core 0, cache file in /dev/shm) serves RESP on
# TCP and a Unix socket and RPC on TCP (--rpc-port), a Unix socket (--rpc-unixsocket)
# and shared memory (--shm-socket). Every client runs pinned to core 1. For GET and SET at depth 1
# and 16 (50 connections, 100k keys, 32-byte values, keys prefilled), each cell runs
# for DUR and reads the server's utime+stime from /proc/<pid>/stat around the client:
#
#   redis-benchmark       RESP, TCP, -P depth (sends depth commands, waits for all)
#   loadgen resp          RESP, TCP and Unix, --pipeline depth (a sliding window)
#   loadgen rpc           RPC, TCP, Unix and shm, --pipeline depth (one op per frame)
#   loadgen rpc batch     RPC, TCP, Unix and shm, depth 16 only: --batch 16 (one frame
#                         of 16 ops in flight, like redis-benchmark -P 16)
#
# Over shm each connection is a request/reply ring pair; while shm traffic flows the
# server busy-polls its core (it stays attentive ~100 µs after each request) and the
# load generator spins for replies, so both sides' CPU per op includes that polling.
#
# Then round-trip GET latency at concurrency 1 (one connection, no pipelining) with
# 64-byte and 100 KB values, RESP and RPC, TCP and Unix socket, and RPC over shm.
#
# Prints two markdown tables: throughput (ops/s, server CPU µs/op, the load
# generator's ops per client CPU-second, and the RPC/RESP ratio of server CPU per op
# against loadgen RESP on the same transport and against redis-benchmark) and latency.
#
# The machine may be noisy: with ROUNDS > 1 every cell runs once per round (clients in
# alternating order) and the tables show medians.
#
# Usage: benches/rpc-vs-resp.sh [DUR_SECONDS] [ROUNDS]   (default 3 s, 1 round)
# Env:   REQ_P1, REQ_P16  redis-benchmark requests per cell (default 200000, 2000000)
#        OUT              result directory (default target/rpc-vs-resp)
#        NO_BUILD=1       use the release binaries as they are
set -euo pipefail

dur=${1:-3}
rounds=${2:-1}
req_p1=${REQ_P1:-200000}
req_p16=${REQ_P16:-2000000}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
out=${OUT:-$target/rpc-vs-resp}
citadel=$target/release/citadel
loadgen=$target/release/citadel-loadgen
command -v redis-benchmark >/dev/null || { echo "redis-benchmark missing (apt-get install redis-tools)" >&2; exit 1; }
[ -n "${NO_BUILD:-}" ] || (cd "$root" && cargo build --release -q -p citadel-server -p citadel-loadgen)
mkdir -p "$out"
samples=$out/samples.tsv
: >"$samples"

scratch=$(mktemp -d /dev/shm/citadel-rpc-vs-resp.XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

port=$(free_port)
rpc_port=$(free_port)
resp_sock=$scratch/resp.sock
rpc_sock=$scratch/rpc.sock
shm_sock=$scratch/shm.sock
taskset -c 0 "$citadel" --port "$port" --rpc-port "$rpc_port" --threads 1 \
    --unixsocket "$resp_sock" --rpc-unixsocket "$rpc_sock" --shm-socket "$shm_sock" \
    --maxmemory 256mb --fresh --cache-file "$scratch/citadel.cache" >"$scratch/citadel.log" 2>&1 &
pid=$!
up() { redis-cli -p "$port" ping >/dev/null 2>&1 && [ -S "$rpc_sock" ] && [ -S "$shm_sock" ]; }
for _ in $(seq 100); do
    up && break
    sleep 0.1
done
up || { echo "citadel did not start: $(cat "$scratch/citadel.log")" >&2; exit 1; }

# The target flags of one loadgen client: protocol, transport.
endpoint() { # proto transport
    case "$1/$2" in
        resp/tcp) echo "-s 127.0.0.1:$port" ;;
        resp/unix) echo "--unix $resp_sock" ;;
        rpc/tcp) echo "-P rpc -s 127.0.0.1:$rpc_port" ;;
        rpc/unix) echo "-P rpc --unix $rpc_sock" ;;
        rpc/shm) echo "-P rpc --shm $shm_sock" ;;
    esac
}

# Runs loadgen pinned to core 1; prints its JSON report's path.
run_loadgen() { # json-name args...
    local json=$scratch/$1.json
    shift
    taskset -c 1 "$loadgen" -q -t 1 --json "$json" "$@" >"$scratch/loadgen.out" 2>&1 \
        || { echo "loadgen $* failed: $(cat "$scratch/loadgen.out")" >&2; exit 1; }
    echo "$json"
}
field() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# Prefill: redis-benchmark's keys (key:000000012345) and the loadgen's (key:12345).
taskset -c 1 redis-benchmark -p "$port" -c 50 -n 100000 -P 16 -r 100000 -d 32 -t set -q >/dev/null
run_loadgen prefill $(endpoint resp tcp) -c 50 -p 16 --keys 100000 -d 32 --prefill -n 0 >/dev/null

# One throughput cell: appends "op depth client transport ops/s cpu_us/op client_ops/cpu_s".
cell() { # op depth client transport [batch]
    local op=$1 depth=$2 client=$3 transport=$4 batch=${5:-1} ratio=1:0 before after ops n client_eff=-
    [ "$op" = GET ] && ratio=0:1
    before=$(cpu_ticks "$pid")
    if [ "$client" = redis-benchmark ]; then
        n=$req_p1
        [ "$depth" = 16 ] && n=$req_p16
        ops=$(taskset -c 1 redis-benchmark -p "$port" -c 50 -n "$n" -P "$depth" -r 100000 -d 32 \
            -t "${op,,}" --csv 2>/dev/null | awk -F, 'NR==2 {gsub(/"/,""); print $2}')
    else
        local proto=${client#loadgen-} json
        proto=${proto%-batch}
        json=$(run_loadgen cell $(endpoint "$proto" "$transport") -c 50 -p "$depth" --batch "$batch" \
            --ratio "$ratio" --keys 100000 -d 32 -D "${dur}s")
        ops=$(field "$json" 'j["ops_per_sec"]')
        n=$(field "$json" 'j["requests"]')
        client_eff=$(field "$json" 'round(j["ops_per_client_cpu_s"])')
    fi
    after=$(cpu_ticks "$pid")
    # clock ticks (100 Hz) -> microseconds per op
    local us
    us=$(echo "scale=4; ($after - $before) * 10000 / $n" | bc)
    printf 'tput\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$op" "$depth" "$client" "$transport" "$ops" "$us" "$client_eff" >>"$samples"
    echo "$op depth $depth $client $transport: $ops ops/s, $us us/op server CPU" >&2
}

# Round-trip latency: GET of prefilled values, one connection, one request at a time.
latency() { # size proto transport
    local json
    json=$(run_loadgen lat $(endpoint "$2" "$3") -c 1 -p 1 --ratio 0:1 \
        --key-prefix "lat$1:" --keys 100 -d "$1" --prefill -D "${dur}s")
    printf 'lat\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" \
        "$(field "$json" 'j["latency_us"]["get"]["p50"]')" \
        "$(field "$json" 'j["latency_us"]["get"]["p99"]')" \
        "$(field "$json" 'round(j["ops_per_client_cpu_s"])')" >>"$samples"
}

# Odd rounds run the clients in this order, even rounds in reverse.
in_order() { if [ $(($1 % 2)) = 1 ]; then cat; else tac; fi; }
for round in $(seq "$rounds"); do
    for depth in 1 16; do
        for op in GET SET; do
            {
                echo redis-benchmark tcp
                for transport in tcp unix shm; do
                    [ "$transport" = shm ] || echo loadgen-resp "$transport"
                    echo loadgen-rpc "$transport"
                    [ "$depth" = 1 ] || echo loadgen-rpc-batch "$transport" 16
                done
            } | in_order "$round" | while read -r client transport batch; do
                cell "$op" "$depth" "$client" "$transport" "$batch" </dev/null
            done
        done
    done
    for size in 64 102400; do
        printf '%s\n' "resp tcp" "rpc tcp" "resp unix" "rpc unix" "rpc shm" | in_order "$round" |
            while read -r proto transport; do latency "$size" "$proto" "$transport" </dev/null; done
    done
done

python3 - "$samples" "$dur" "$rounds" <<'PY' | tee "$out/table.md"
import sys, statistics
from collections import defaultdict
def medians(kind, nkey):
    """{key: [median of each value column]} in first-seen key order."""
    groups = defaultdict(list)
    for l in open(sys.argv[1]):
        r = l.rstrip("\n").split("\t")
        if r[0] == kind:
            groups[tuple(r[1:1 + nkey])].append(r[1 + nkey:])
    return {k: [str(statistics.median(float(x[i]) for x in v)) if v[0][i] != "-" else "-"
                for i in range(len(v[0]))] for k, v in groups.items()}
tput = medians("tput", 4)
lat = medians("lat", 3)
def ratio(a, b):
    return f"{a / b:.2f}" if a and b else ""
print("| op | depth | client | transport | ops/s | server CPU µs/op | client ops/CPU-s | CPU/op vs loadgen RESP | CPU/op vs redis-benchmark |")
print("|---|---:|---|---|---:|---:|---:|---:|---:|")
for (op, depth, client, transport), (ops, us, eff) in tput.items():
    us = float(us)
    # RESP has no shm transport: shm rows compare with RESP over the Unix socket.
    same = tput.get((op, depth, "loadgen-resp", "unix" if transport == "shm" else transport))
    rb = tput.get((op, depth, "redis-benchmark", "tcp"))
    rpc = client.startswith("loadgen-rpc")
    vs_resp = f"**{ratio(us, float(same[1]))}**" if rpc and same else ""
    vs_rb = ratio(us, float(rb[1])) if client != "redis-benchmark" and rb else ""
    eff = eff if eff == "-" else f"{float(eff):.0f}"
    print(f"| {op} | {depth} | {client} | {transport} | {float(ops):.0f} | {us:.2f} | {eff} | {vs_resp} | {vs_rb} |")
print()
print("| GET value | protocol | transport | p50 µs | p99 µs | client ops/CPU-s |")
print("|---:|---|---|---:|---:|---:|")
for (size, proto, transport), (p50, p99, eff) in sorted(lat.items(), key=lambda kv: (int(kv[0][0]), kv[0][2], kv[0][1])):
    size = "100 KB" if size == "102400" else f"{size} B"
    print(f"| {size} | {proto} | {transport} | {float(p50):.1f} | {float(p99):.1f} | {float(eff):.0f} |")
print()
print(f"One citadel --threads 1 on core 0, clients on core 1; {sys.argv[2]} s per loadgen cell;")
print(f"medians of {sys.argv[3]} round(s), clients in alternating order;")
print("throughput: 50 connections, 100k keys, 32-byte values; server CPU = utime+stime per op;")
print("rpc-batch = --pipeline 16 --batch 16. Latency: 1 connection, pipeline 1, GET only.")
print("shm: one ring pair per connection; the server busy-polls while shm traffic flows and the")
print("client spins for replies (both in the CPU columns); shm rows' RESP ratio is against Unix.")
PY
