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
#   OVERLOAD_TARGET_US=N   citadel's core admission target (default 0: off;
#                          the server's own default is 5000, which sheds
#                          under valgrind's slowdown: count admission's
#                          per-command cost with one it never reaches,
#                          e.g. 60000000)
#   KEEP=DIR               copy each callgrind output there (for
#                          callgrind_annotate --inclusive=yes)
set -uo pipefail
requests=${1:-200000}
tests=${TESTS:-get,set}
pipelines=${PIPELINES:-16}
servers=${SERVERS:-citadel redis}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-$root/target/release/citadel}
dir=$(mktemp -d /dev/shm/citadel-cpu-cg.XXXXXX)
# shellcheck source=benches/callgrind-lib.sh
source "$root/benches/callgrind-lib.sh"
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

per_request() { # server test pipeline -> instructions per request
    local server=$1 test=$2 p=$3 out="$dir/cg.$1.$2.p$3"
    cg_start "$server" "$out" "$dir"
    redis-benchmark -p "$port" -c 50 -P 16 -n 200000 -r 100000 -d 32 -q -t set >/dev/null
    cg_measure "$out" "$requests" "$dir/rb.$server.$test" \
        -c 50 -P "$p" -n "$requests" -r 100000 -d 32 -q -t "$test"
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
