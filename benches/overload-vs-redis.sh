#!/usr/bin/env bash
# Overload: goodput and admitted-request p99 of Citadel and redis-server side
# by side, in one run, as the offered load passes their capacity; then the
# cost of the protection when nothing is overloaded (server CPU per op, on vs
# off).
#
# Both servers run on core 0 (citadel --threads 1; redis --save ''), the load
# on core 1. For each server:
#   1. capacity: closed-loop runs of the steps' own shape (the median of
#      CAP_ROUNDS runs, STEP_SECONDS each), CAP_CONNS
#      connections with CAP_PIPELINE request in flight each (by default
#      the steps' 100 x 1: every request arrives alone and is answered by a
#      send of its own, as in the open loop), its goodput; the server's CPU
#      use over it is printed (near 1.00: the server, not the client, was
#      the limit). Citadel's admission is off for this run (set back to
#      ON_FLAGS' target for the steps): a closed loop that is shed
#      measures a peak that moves between runs, and the steps are
#      multiples of it. A capacity measured with requests pipelined (e.g.
#      CAP_CONNS=16 CAP_PIPELINE=4, this bench's earlier default) is one
#      the open loop never reaches: batched reads and sends cost ~half as
#      much per request, so "1x" of it is already ~1.5x of what either
#      server can do one request per read;
#   2. open-loop steps at STEPS multiples of that capacity (latency from
#      each request's intended send time, so queueing shows), with up to
#      CONNS x PIPELINE in flight: enough that an offered load past the
#      capacity queues at the server, as when many clients drive it, and
#      not only inside the load generator. The lowest step is the unloaded
#      reference.
# Requests the server sheds (`-OVERLOAD ...`) are counted apart from errors:
# goodput is good replies/s, p99 is the admitted (good) replies'. Each
# server's JSON and SVG chart (goodput vs offered load) are kept in OUT.
#
# The issue's targets, printed as ratios: Citadel's goodput at 3x >= 90% of
# its peak, its admitted p99 at 3x <= 5x its unloaded p99, and the protection
# costing <= 3% more server CPU per op when not overloaded. The admission
# target is a deployment's latency budget: the bench runs Citadel with
# --overload-delay-target-us 1000 (the default, 5000, suits deep pipelines of
# heavy commands), so an admitted request waits at most a few ms.
#
# Usage: benches/overload-vs-redis.sh [STEP_SECONDS] [CPU_REQUESTS]
#   STEPS=0.1x,0.5x,1x,2x,3x  the offered loads (multiples of the capacity)
#   CAP_CONNS=100 CAP_PIPELINE=1  in flight while measuring the capacity
#   CAP_ROUNDS=3              closed-loop runs; the capacity is their median
#   CONNS=100 PIPELINE=32     in flight at most during the steps
#   RATIO=1:10 KEYS=100000    SET:GET mix and key space (prefilled)
#   WORKLOAD="--mget 32"      more loadgen flags shaping the requests (see
#                             below why a GET is an MGET here; "" for GETs;
#                             "--ops bitcount -d 262144" for BITCOUNTs of
#                             256 KiB strings, RATIO then unused, KEYS=256)
#   ON_FLAGS                  citadel flags for the steps (default: hot-key
#                             sampling and core admission, --hotkeys-sample 8
#                             --overload-delay-target-us 1000)
#   CPU_ON_FLAGS / CPU_OFF_FLAGS  citadel flags for the CPU-per-op phase, core
#                             admission on / off (default: "" = the default
#                             target, 5 ms / --overload-delay-target-us 0).
#                             Not the steps' 1 ms: a closed-loop client with
#                             800 requests in flight keeps a standing queue
#                             near 1 ms, and one shed reply stops
#                             redis-benchmark.
#   CITADEL=PATH LOADGEN=PATH OUT=DIR  NO_BUILD=1 (use them as built)
set -euo pipefail
shopt -s inherit_errexit

step_s=${1:-5}
cpu_requests=${2:-2000000}
steps=${STEPS:-0.1x,0.5x,1x,2x,3x}
conns=${CONNS:-100}
pipeline=${PIPELINE:-32}
cap_conns=${CAP_CONNS:-100}
cap_pipeline=${CAP_PIPELINE:-1}
cap_rounds=${CAP_ROUNDS:-3}
ratio=${RATIO:-1:10}
# One load core must offer 3x what one server core can do. A single-key GET
# costs the client about what it costs the server (both mostly syscalls),
# so one client core cannot offer 3x Citadel's GET capacity (its open loop
# tops out near 0.5x of it on this machine). A 32-key MGET costs the server
# ~4x what it costs the client: the overload is the server's, as it is
# when many client machines drive one server.
workload=${WORKLOAD---mget 32}
# --ops in WORKLOAD names the operations itself (e.g. "--ops bitcount -d
# 262144 --keys 256": a read whose server cost grows with the value while
# request and reply stay a few bytes); otherwise RATIO mixes SETs and reads.
mix=(--ratio "$ratio")
[[ $workload == *--ops* ]] && mix=()
keys=${KEYS:-100000}
on_flags=${ON_FLAGS:---hotkeys-sample 8 --overload-delay-target-us 1000}
cpu_on_flags=${CPU_ON_FLAGS-}
cpu_off_flags=${CPU_OFF_FLAGS---overload-delay-target-us 0}
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
[ -n "${NO_BUILD:-}" ] || (cd "$root" && cargo build --release -q -p citadel-server -p citadel-loadgen)
citadel=${CITADEL:-$target/release/citadel}
loadgen=${LOADGEN:-$target/release/citadel-loadgen}
out=${OUT:-$target/overload-vs-redis}
mkdir -p "$out"
command -v redis-server >/dev/null || { echo "redis-server missing (apt-get install redis-server)" >&2; exit 1; }
scratch=$(mktemp -d /dev/shm/citadel-overload-bench.XXXXXX)
pid=""
cleanup() { [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT

start() { # name port [citadel flags...]: starts it on core 0, sets $pid
    local name=$1 port=$2
    shift 2
    if [[ $name == redis ]]; then
        taskset -c 0 redis-server --port "$port" --save '' --appendonly no >"$scratch/$name.log" 2>&1 &
    else
        # shellcheck disable=SC2086 # flags are words
        taskset -c 0 "$citadel" --port "$port" --rpc-port 0 --threads 1 --fresh \
            --cache-file "$scratch/$name-$port.cache" --maxmemory 1gb "$@" >"$scratch/$name.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "$name did not start: $(cat "$scratch/$name.log")" >&2
    exit 1
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; }

# 1. Goodput and admitted p99 vs offered load, each server at multiples of
#    its own measured capacity.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
port=$((20000 + RANDOM % 10000))
for server in citadel redis; do
    port=$((port + 1))
    echo "== $server: capacity, then $steps of it, ${step_s}s each" >&2
    # shellcheck disable=SC2086
    start "$server" "$port" $on_flags
    # The prefill on its own, one connection, and the capacity run, with
    # Citadel's admission off for both (live): CAP_CONNS writers of big
    # values at once, or even one connection's pipeline of 1 MiB SETs,
    # would be shed (the loadgen then fails rather than leave keys
    # missing); and a capacity measured while shedding moved 15% between
    # runs (what was refused is not goodput), so every step's offered
    # load moved with it. The steps run with the target restored.
    target_us=""
    if [[ $server == citadel ]]; then
        target_us=$(redis-cli -p "$port" config get overload-delay-target-us | tail -1)
        redis-cli -p "$port" config set overload-delay-target-us 0 >/dev/null
    fi
    # shellcheck disable=SC2086
    taskset -c 1 "$loadgen" -s "127.0.0.1:$port" -t 1 -c 1 "${mix[@]}" --keys "$keys" $workload \
        --prefill -n 1 -q >/dev/null
    # The median of CAP_ROUNDS closed-loop runs: on a shared machine one
    # run can measure a third above the others, and every step's offered
    # load is a multiple of it.
    rates=()
    busy_ticks=0
    busy_s=0
    for round in $(seq "$cap_rounds"); do
        before=$(cpu_ticks "$pid")
        # shellcheck disable=SC2086
        taskset -c 1 "$loadgen" -s "127.0.0.1:$port" -t 1 -c "$cap_conns" -p "$cap_pipeline" \
            "${mix[@]}" --keys "$keys" $workload -D "${step_s}s" -q \
            --json "$out/$server-capacity-$round.json" >"$out/$server-capacity-$round.txt"
        after=$(cpu_ticks "$pid")
        rates+=("$(jq '.goodput_ops_per_sec' "$out/$server-capacity-$round.json")")
        busy_ticks=$((busy_ticks + after - before))
        busy_s=$(echo "$busy_s + $(jq '.elapsed_s' "$out/$server-capacity-$round.json")" | bc)
    done
    capacity=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
    echo "capacity rounds (ops/s): ${rates[*]}; median $capacity" | tee "$out/$server-capacity-rounds" >&2
    echo "$(echo "scale=2; $busy_ticks / 100 / $busy_s" | bc)" >"$out/$server-capacity-busy"
    [[ -z $target_us ]] || redis-cli -p "$port" config set overload-delay-target-us "$target_us" >/dev/null
    # shellcheck disable=SC2086
    taskset -c 1 "$loadgen" -s "127.0.0.1:$port" -t 1 -c "$conns" -p "$pipeline" \
        "${mix[@]}" --keys "$keys" $workload --rate-steps "$steps" --capacity "$capacity" \
        --server-pid "$pid" --duration "${step_s}s" --max-errors 1 -q \
        --json "$out/$server.json" --svg "$out/$server.svg" >"$out/$server.txt"
    stop
done

# 2. Server CPU per op, protection on vs off, nothing overloaded:
#    redis-benchmark GET and SET, pipeline 16, 50 connections.
declare -A cpu
for mode in off on; do
    port=$((port + 1))
    flags=cpu_${mode}_flags
    # shellcheck disable=SC2086
    start "citadel-$mode" "$port" ${!flags}
    for t in set get; do
        before=$(cpu_ticks "$pid")
        taskset -c 1 redis-benchmark -p "$port" -c 50 -P 16 -r "$keys" -d 32 \
            -n "$cpu_requests" -q -t "$t" >/dev/null
        after=$(cpu_ticks "$pid")
        cpu[$mode,$t]=$(echo "scale=4; ($after - $before) * 10000 / $cpu_requests" | bc)
    done
    stop
done

python3 - "$out" "$steps" <<'EOF' | tee "$out/overload.md"
import json, sys
out, steps = sys.argv[1], sys.argv[2]
c = json.load(open(f"{out}/citadel.json"))
r = json.load(open(f"{out}/redis.json"))
print(f"Open loop at multiples of each server's measured capacity ({steps}); goodput = good replies/s,")
print("p99 = admitted (good) replies, from the intended send time; shed = `-OVERLOAD` replies/s.\n")
def busy(name):
    return open(f"{out}/{name}-capacity-busy").read().strip()
print(f"Capacity (closed loop): Citadel {c['capacity']['ops_per_sec']:.0f} ops/s (server busy {busy('citadel')}), "
      f"Redis {r['capacity']['ops_per_sec']:.0f} ops/s (server busy {busy('redis')}); busy = CPU s/s,\n"
      "1.00 = a saturated core: the server must be the saturated side for the steps to overload it.")
for name in ("citadel", "redis"):
    print(f"{name} {open(f'{out}/{name}-capacity-rounds').read().strip()}")
print()
print("p99 srv = the server's own p99 queueing delay of the requests it admitted in the step (INFO overload")
print("histogram, log2 bucket bound): the rest of the client's p99 is the network and the client itself.")
print("p99 sent = the same replies' p99 from their actual send; lag = the load generator's p99 lag behind its")
print("timetable (its own queueing, which p99, from the intended send time, counts).\n")
print("| offered | Citadel offered/s | goodput/s | shed/s | p99 µs | p99 sent µs | lag µs | p99 srv µs "
      "| busy srv/cli | Redis offered/s | goodput/s | p99 µs | busy srv/cli |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
def b2(d):
    return f"{d.get('server_busy', 0):.2f}/{d['client_busy']:.2f}"
def srv(d):
    sd = d.get("server_delay")
    return f"< {sd['p99_us']}" if sd else "-"
for a, b in zip(c["steps"], r["steps"]):
    print(f"| {a['multiple']}x | {a['offered_ops_per_sec']:.0f} | {a['goodput_ops_per_sec']:.0f} | "
          f"{a['shed_per_sec']:.0f} | {a['p99_us']:.1f} | {a['p99_from_send_us']:.1f} | {a['send_lag_p99_us']:.1f} | "
          f"{srv(a)} | {b2(a)} | {b['offered_ops_per_sec']:.0f} | "
          f"{b['goodput_ops_per_sec']:.0f} | {b['p99_us']:.1f} | {b2(b)} |")
def verdict(name, d):
    s = d["steps"]
    top = s[-1]
    # The peak: the best step or the closed-loop capacity, whichever is higher.
    peak = max(d["peak_goodput_ops_per_sec"], d["capacity"]["ops_per_sec"]) or 1
    base = s[0]["p99_us"] or 1
    return (f"{name}: goodput at {top['multiple']}x = {100 * top['goodput_ops_per_sec'] / peak:.0f}% of peak; "
            f"admitted p99 at {top['multiple']}x = {top['p99_us'] / base:.1f}x its p99 at {s[0]['multiple']}x")
print()
print(verdict("Citadel", c) + " (targets: >= 90%, <= 5x)")
print(verdict("Redis", r))
EOF
{
    echo
    echo "Server CPU µs/op, protection on (${cpu_on_flags:-defaults}) vs off ($cpu_off_flags), redis-benchmark -P 16 -c 50, $cpu_requests requests:"
    echo
    echo "| op | off | on | on/off |"
    echo "|---|---:|---:|---:|"
    for t in set get; do
        echo "| ${t^^} | ${cpu[off,$t]} | ${cpu[on,$t]} | $(echo "scale=3; ${cpu[on,$t]} / ${cpu[off,$t]}" | bc)x |"
    done
    echo
    echo "JSON, SVG charts and loadgen output: $out"
} | tee -a "$out/overload.md"
