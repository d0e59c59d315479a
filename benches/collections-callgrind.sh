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
# Two tests of our own: lpush_many and lpop_many push onto / pop off
# 3,000 mid-size lists (filled with 900,000 LPUSHes: ~300 elements, ~1.2
# KB each) picked at random (-r 3000), the shape of many work queues.
#
# Usage: benches/collections-callgrind.sh [REQUESTS]   (default 20000)
#   TESTS=lpush,rpush,...  the tests (default: lpush,rpush,lpop,rpop;
#                          also lpush_many, lpop_many)
#   SERVERS="citadel redis"  which servers (default both)
#   CITADEL=PATH           the citadel binary (default: target/release/citadel)
#   DATA=N                 element bytes (redis-benchmark -d; default its 3)
#   KEEP=DIR               copy each callgrind output there (for
#                          callgrind_annotate)
#   BIG=N                  the big-key tests (zadd_big, zrank_big,
#                          zscore_big, zincrby_big, zrange_big, hget_big,
#                          hset_big, sismember_big, sadd_big; see
#                          big-keys-lib.sh): ONE collection of N elements
#                          filled first, then REQUESTS commands on random
#                          elements (-r N)
set -uo pipefail
requests=${1:-20000}
tests=${TESTS:-lpush,rpush,lpop,rpop}
data=(-d "${DATA:-3}")
servers=${SERVERS:-citadel redis}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-$root/target/release/citadel}
dir=$(mktemp -d /dev/shm/citadel-coll-cg.XXXXXX)
# shellcheck source=benches/callgrind-lib.sh
source "$root/benches/callgrind-lib.sh"
# shellcheck source=benches/big-keys-lib.sh
source "$root/benches/big-keys-lib.sh"
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

per_op() { # server test -> instructions per op
    local server=$1 test=$2 out="$dir/cg.$1.$2"
    cg_start "$server" "$out" "$dir"
    case $test in
        lpop | rpop | lrange_*) redis-benchmark -p "$port" -c 50 -P 16 -n $((requests * 2)) "${data[@]}" -q -t lpush >/dev/null ;;
        lpush | rpush) redis-benchmark -p "$port" -c 50 -P 16 -n "$requests" "${data[@]}" -q -t lpush >/dev/null ;;
        spop) redis-benchmark -p "$port" -c 50 -P 16 -n $((requests * 2)) "${data[@]}" -q -t sadd >/dev/null ;;
        zpopmin) redis-benchmark -p "$port" -c 50 -P 16 -n $((requests * 2)) "${data[@]}" -q -t zadd >/dev/null ;;
        *_many) redis-benchmark -p "$port" -c 50 -P 16 -n 900000 -r 3000 -q lpush 'ml:__rand_int__' abc >/dev/null ;;
        *_big) fill_big "$port" "$test" ;;
    esac
    local run=(-c 50 -P 16 -n "$requests" -q)
    case $test in
        lpush_many) run+=(-r 3000 lpush 'ml:__rand_int__' abc) ;;
        lpop_many) run+=(-r 3000 lpop 'ml:__rand_int__') ;;
        *_big)
            local words
            read -ra words <<<"$(big_command "$test")"
            run+=(-r "${BIG:?BIG=N is needed for $test}" "${words[@]}")
            ;;
        *) run+=("${data[@]}" -t "$test") ;;
    esac
    cg_measure "$out" "$requests" "$dir/rb.$server.$test" "${run[@]}"
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
echo "redis-benchmark -c 50 -P 16 -n $requests ${data[*]} after a fill; callgrind, every server thread; $(uptime)"
