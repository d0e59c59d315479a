#!/usr/bin/env bash
# What overload protection costs a core that is not overloaded, in server
# instructions per request under callgrind (deterministic on a shared,
# noisy machine, where CPU time is not): citadel --threads 1 with admission
# on (a 60 s target, so it measures every request but never sheds) and off
# (--overload-delay-target-us 0), driven by redis-benchmark GET and SET at
# pipeline 16, 50 connections, 32-byte values. Per-op = the difference of
# two runs (N1 and N2 requests) over N2 - N1, so start-up cancels out; the
# busiest thread (the core's event loop) is the one counted.
#
# Usage: benches/protection-cost.sh [CITADEL] [N1] [N2]
#        (defaults: target/release/citadel 20000 120000; OPS="get set")
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${1:-$root/target/release/citadel}
n1=${2:-20000}
n2=${3:-120000}
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }
dir=$(mktemp -d /dev/shm/citadel-protection.XXXXXX)
trap 'rm -rf "$dir"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

instructions() { # mode op requests -> instructions of the busiest thread
    local mode=$1 op=$2 n=$3 port target
    port=$(free_port)
    target=0
    [[ $mode == on ]] && target=60000000
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/cg.$mode.$op.$n" \
        "$citadel" --port "$port" --rpc-port 0 --threads 1 --fresh --cache-file "$dir/cache.$port" \
        --maxmemory 256mb --overload-delay-target-us "$target" >"$dir/log.$port" 2>&1 &
    local pid=$!
    for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
    [[ $op == get ]] && redis-benchmark -p "$port" -c 50 -P 16 -r 100000 -d 32 -n 100000 -q -t set >/dev/null
    redis-benchmark -p "$port" -c 50 -P 16 -r 100000 -d 32 -n "$n" -q -t "$op" >"$dir/rb.$mode.$op.$n" 2>&1
    grep -q OVERLOAD "$dir/rb.$mode.$op.$n" && echo "warning: -OVERLOAD seen ($mode $op $n)" >&2
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
    kill "$pid" 2>/dev/null
    wait "$pid"
    for f in "$dir/cg.$mode.$op.$n"-*; do awk '/^summary:/ {print $2}' "$f"; done | sort -n | tail -1
}

echo "| op | off: instructions/op | on: instructions/op | on/off |"
echo "|---|---:|---:|---:|"
for op in ${OPS:-get set}; do
    declare -A per
    for mode in off on; do
        a=$(instructions "$mode" "$op" "$n1")
        b=$(instructions "$mode" "$op" "$n2")
        per[$mode]=$(echo "($b - $a) / ($n2 - $n1)" | bc -l)
    done
    printf '| %s | %.0f | %.0f | %.3f |\n' "$op" "${per[off]}" "${per[on]}" "$(echo "${per[on]} / ${per[off]}" | bc -l)"
done
