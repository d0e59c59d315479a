#!/usr/bin/env bash
# Collections: server instructions per operation under callgrind, Citadel
# vs redis-server, for redis-benchmark's collection tests. Instruction
# counts are deterministic where CPU time on a shared, loaded machine is
# not (benches/collections-vs-redis.sh measures CPU time).
#
# Each server runs under valgrind --tool=callgrind (citadel --threads 1,
# overload shedding off; redis --save ''). The key is filled first
# (pops and ranges: 2 x REQUESTS LPUSHes / SADDs / ZADDs; pushes: REQUESTS
# LPUSHes, so a push lands on a big list), the counters are zeroed
# (callgrind_control -z), redis-benchmark -c 50 -P 16 -n REQUESTS -t TEST
# runs, the counters are dumped; instructions per op = the dump's total
# (every thread) / REQUESTS.
#
# Usage: benches/collections-callgrind.sh [REQUESTS]   (default 20000)
#   TESTS=lpush,rpush,...  the tests (default: lpush,rpush,lpop,rpop)
#   SERVERS="citadel redis"  which servers (default both)
#   CITADEL=PATH           the citadel binary (default: target/release/citadel)
#   KEEP=DIR               copy each callgrind output there (for
#                          callgrind_annotate)
set -uo pipefail
requests=${1:-20000}
tests=${TESTS:-lpush,rpush,lpop,rpop}
servers=${SERVERS:-citadel redis}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-$root/target/release/citadel}
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }
dir=$(mktemp -d /dev/shm/citadel-coll-cg.XXXXXX)
trap 'rm -rf "$dir"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# callgrind_control blocks until the server's next system call: keep the
# server busy with PINGs until it returns.
control() { # flag pid port
    callgrind_control "$1" "$2" >/dev/null 2>&1 &
    local c=$!
    while kill -0 "$c" 2>/dev/null; do redis-cli -p "$3" ping >/dev/null 2>&1; sleep 0.3; done
}

per_op() { # server test -> instructions per op
    local server=$1 test=$2 port pid out
    port=$(free_port)
    out="$dir/cg.$server.$test"
    case $server in
        citadel) valgrind --tool=callgrind --callgrind-out-file="$out" "$citadel" --port "$port" \
                     --rpc-port 0 --threads 1 --fresh --cache-file "$dir/cache.$port" --maxmemory 256mb \
                     --overload-delay-target-us 0 >"$dir/log.$port" 2>&1 & ;;
        redis) valgrind --tool=callgrind --callgrind-out-file="$out" redis-server --port "$port" \
                   --save '' --appendonly no >"$dir/log.$port" 2>&1 & ;;
    esac
    pid=$!
    for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
    case $test in
        lpop | rpop | lrange_*) redis-benchmark -p "$port" -c 50 -P 16 -n $((requests * 2)) -q -t lpush >/dev/null ;;
        lpush | rpush) redis-benchmark -p "$port" -c 50 -P 16 -n "$requests" -q -t lpush >/dev/null ;;
        spop) redis-benchmark -p "$port" -c 50 -P 16 -n $((requests * 2)) -q -t sadd >/dev/null ;;
        zpopmin) redis-benchmark -p "$port" -c 50 -P 16 -n $((requests * 2)) -q -t zadd >/dev/null ;;
    esac
    rm -f "$out"*
    control -z "$pid" "$port"
    redis-benchmark -p "$port" -c 50 -P 16 -n "$requests" -q -t "$test" >"$dir/rb.$server.$test" 2>&1
    control -d "$pid" "$port"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    local total=0 f n
    for f in "$out"*; do
        n=$(awk '/^summary:/ {print $2}' "$f")
        total=$((total + ${n:-0}))
        [[ -n ${KEEP:-} ]] && cp "$f" "$KEEP/$(basename "$f")"
    done
    echo $((total / requests))
}

header="| test |"; rule="|---|"
for s in $servers; do header+=" $s instructions/op |"; rule+="---:|"; done
[[ $servers == "citadel redis" ]] && { header+=" citadel/redis |"; rule+="---:|"; }
echo "$header"; echo "$rule"
IFS=, read -ra list <<<"$tests"
for t in "${list[@]}"; do
    line="| $t |"
    declare -A got=()
    for s in $servers; do
        got[$s]=$(per_op "$s" "$t")
        line+=" ${got[$s]} |"
    done
    [[ $servers == "citadel redis" ]] && line+=" $(echo "scale=2; ${got[citadel]} / ${got[redis]}" | bc)x |"
    echo "$line"
done
echo
echo "redis-benchmark -c 50 -P 16 -n $requests after a fill; callgrind, every server thread; $(uptime)"
