#!/usr/bin/env bash
# Scripts and transactions: server instructions per operation under
# callgrind (deterministic on a shared, noisy machine, where CPU time is
# not), Citadel vs redis-server in one run.
#
# Workloads (the issue's benchmark shapes, 20 connections, pipeline 16):
#   evalsha: redis-benchmark EVALSHA of the 2-key script
#            redis.call("SET", KEYS[1], ARGV[1]); return redis.call("INCR", KEYS[2])
#            over 100k random keys each;
#   multi:   txn-load (benches/src/bin/txn_load.rs) MULTI + 3 SET + EXEC
#            over 1M random keys.
# citadel runs with --threads 1 and admission off (it would shed under
# valgrind); redis with --save '' --appendonly no. Per-op = the difference
# of two runs (N1 and N2 operations) over N2 - N1, so start-up, connection
# set-up and SCRIPT LOAD cancel out; the busiest thread (the event loop)
# is the one counted.
#
# Usage: benches/script-cost.sh [CITADEL] [N1] [N2]
#        (defaults: target/release/citadel 9600 28800; both multiples of
#        320 = 20 connections x pipeline 16). Env: WORKLOADS="evalsha multi",
#        REDIS=redis-server (empty: Citadel only), OUT=directory for the
#        callgrind files (default: a temporary one, removed).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
citadel=${1:-$target/release/citadel}
n1=${2:-9600}
n2=${3:-28800}
redis=${REDIS-redis-server}
load=$target/release/txn-load
conns=20
depth=16
for tool in valgrind redis-benchmark; do
    command -v $tool >/dev/null || { echo "$tool missing" >&2; exit 1; }
done
[ -x "$load" ] || (cd "$root" && cargo build --release -q -p citadel-benches --bin txn-load)
if [ -n "${OUT:-}" ]; then
    dir=$OUT
    mkdir -p "$dir"
else
    dir=$(mktemp -d /dev/shm/citadel-script-cost.XXXXXX)
    trap 'rm -rf "$dir"' EXIT
fi
script='redis.call("SET", KEYS[1], ARGV[1]); return redis.call("INCR", KEYS[2])'

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

drive() { # workload port pid ops
    case $1 in
    evalsha)
        local sha
        sha=$(redis-cli -p "$2" script load "$script")
        redis-benchmark -p "$2" -c $conns -P $depth -n "$4" -r 100000 -q \
            EVALSHA "$sha" 2 "k:__rand_int__" "c:__rand_int__" v
        ;;
    multi)
        "$load" --port "$2" --pid "$3" --mode multi --conns $conns --depth $depth \
            --rounds $(($4 / conns / depth))
        ;;
    esac
}

instructions() { # server workload ops -> instructions of the busiest thread
    local server=$1 work=$2 n=$3 port pid out
    port=$(free_port)
    out="$dir/cg.$server.$work.$n"
    if [ "$server" = redis ]; then
        valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
            "$redis" --port "$port" --save '' --appendonly no >"$dir/log.$port" 2>&1 &
    else
        valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out" \
            "$citadel" --port "$port" --rpc-port 0 --threads 1 --fresh \
            --cache-file "$dir/cache.$port" --maxmemory 256mb \
            --overload-delay-target-us 0 >"$dir/log.$port" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
    drive "$work" "$port" "$pid" "$n" >"$dir/load.$server.$work.$n" 2>&1 ||
        echo "warning: load failed ($server $work $n): $(tail -1 "$dir/load.$server.$work.$n")" >&2
    grep -q -E 'OVERLOAD|ERR|NOSCRIPT' "$dir/load.$server.$work.$n" &&
        echo "warning: errors in the load ($server $work $n)" >&2
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
    kill "$pid" 2>/dev/null
    wait "$pid"
    for f in "$out"-*; do awk '/^summary:/ {print $2}' "$f"; done | sort -n | tail -1
}

servers=citadel
[ -n "$redis" ] && servers="citadel redis"
echo "| workload | server | instructions/op | vs redis |"
echo "|---|---|---:|---:|"
for work in ${WORKLOADS:-evalsha multi}; do
    declare -A per=()
    for server in $servers; do
        a=$(instructions "$server" "$work" "$n1")
        b=$(instructions "$server" "$work" "$n2")
        per[$server]=$(echo "($b - $a) / ($n2 - $n1)" | bc -l)
    done
    for server in $servers; do
        ratio=-
        [ -n "${per[redis]:-}" ] && ratio=$(printf '%.2fx' "$(echo "${per[$server]} / ${per[redis]}" | bc -l)")
        printf '| %s | %s | %.0f | %s |\n' "$work" "$server" "${per[$server]}" "$ratio"
    done
done
echo
echo "callgrind, busiest thread, ($n2 - $n1) ops; $conns connections, pipeline $depth."
