#!/usr/bin/env bash
# GET and SET: server instructions per request under callgrind, Citadel vs
# redis-server, driven by redis-benchmark in benches/server-cpu.sh's shape
# (50 connections, 100k keys, 32-byte values). Instruction counts are
# deterministic where CPU time on a shared machine is not: this is what
# decisions about the per-request path are made on; server-cpu.sh gives the
# CPU time (kernel included) on a quiet machine.
#
# Each server runs under valgrind --tool=callgrind (citadel --threads 1 with
# overload shedding off; redis --save ''). Every key is set once first (so
# GETs hit and SETs replace), the counters are zeroed (callgrind_control
# -z), redis-benchmark -c 50 -P PIPELINE -r 100000 -d 32 -n REQUESTS -t TEST
# runs, the counters are dumped; instructions per request = the dump's
# total (every thread, kernel excluded) / REQUESTS.
#
# Usage: benches/server-cpu-callgrind.sh [REQUESTS]   (default 200000)
#   TESTS=get,set          the tests (default: get,set)
#   PIPELINES="16 1"       pipeline depths (default: 16)
#   SERVERS="citadel redis"  which servers (default both)
#   CITADEL=PATH           the citadel binary (default: target/release/citadel)
#   KEEP=DIR               copy each callgrind output there (for
#                          callgrind_annotate --inclusive=yes)
set -uo pipefail
requests=${1:-200000}
tests=${TESTS:-get,set}
pipelines=${PIPELINES:-16}
servers=${SERVERS:-citadel redis}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-$root/target/release/citadel}
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }
dir=$(mktemp -d /dev/shm/citadel-cpu-cg.XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# callgrind_control blocks until the server's next system call: keep the
# server busy with PINGs until it returns.
control() { # flag port
    callgrind_control "$1" "$pid" >/dev/null 2>&1 &
    local c=$!
    while kill -0 "$c" 2>/dev/null; do redis-cli -p "$2" ping >/dev/null 2>&1; sleep 0.3; done
}

per_request() { # server test pipeline -> instructions per request
    local server=$1 test=$2 p=$3 port out
    port=$(free_port)
    out="$dir/cg.$server.$test.p$p"
    case $server in
        citadel) valgrind --tool=callgrind --callgrind-out-file="$out" "$citadel" --port "$port" \
                     --rpc-port 0 --threads 1 --fresh --cache-file "$dir/cache.$port" --maxmemory 256mb \
                     --overload-delay-target-us 0 >"$dir/log.$port" 2>&1 & ;;
        redis) valgrind --tool=callgrind --callgrind-out-file="$out" redis-server --port "$port" \
                   --save '' --appendonly no >"$dir/log.$port" 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
    redis-benchmark -p "$port" -c 50 -P 16 -n 200000 -r 100000 -d 32 -q -t set >/dev/null
    rm -f "$out"*
    control -z "$port"
    redis-benchmark -p "$port" -c 50 -P "$p" -n "$requests" -r 100000 -d 32 -q -t "$test" \
        >"$dir/rb.$server.$test" 2>&1
    control -d "$port"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
    local total=0 f n
    for f in "$out"*; do
        n=$(awk '/^summary:/ {print $2}' "$f")
        total=$((total + ${n:-0}))
        [[ -n ${KEEP:-} ]] && cp "$f" "$KEEP/$(basename "$f")"
    done
    echo $((total / requests))
}

header="| test | P |"; rule="|---|---:|"
for s in $servers; do header+=" $s instructions/request |"; rule+="---:|"; done
[[ $servers == "citadel redis" ]] && { header+=" citadel/redis |"; rule+="---:|"; }
echo "$header"; echo "$rule"
IFS=, read -ra list <<<"$tests"
for p in $pipelines; do
    for t in "${list[@]}"; do
        row="| $t | $p |"; declare -A got=()
        for s in $servers; do
            got[$s]=$(per_request "$s" "$t" "$p")
            row+=" ${got[$s]} |"
        done
        if [[ $servers == "citadel redis" ]]; then
            row+=" $(awk -v a="${got[citadel]}" -v b="${got[redis]}" 'BEGIN {printf "%.2fx", a / b}') |"
        fi
        echo "$row"
    done
done
