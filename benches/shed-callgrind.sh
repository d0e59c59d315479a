#!/usr/bin/env bash
# What a refusal costs the core in user space, in instructions under
# callgrind (repeatable where CPU time on a shared machine is not):
# citadel --threads 1 under callgrind, 16 BITCOUNT keys of 256 KiB, then
# the load generator open loop at RATE/s for SECONDS (100 connections)
# with a 250 µs admission target. Under callgrind each admitted BITCOUNT
# takes milliseconds, so the core is overloaded and sheds ~99% of it.
# Prints the event loop thread's instructions per refusal outside the
# admitted BITCOUNTs and the prefill's SETs (the loop, reads, framing,
# the refusal, sends), and the framing path's own share
# (`command/admission.rs`, inlined into Session::process).
#
# The server runs on core 0, the load on core 1 (a run with both on any
# core admitted 15% instead of ~1%, and each admitted request's parsing
# and reply then counted as the refusals').
#
# Usage: benches/shed-callgrind.sh [CITADEL] [RATE] [SECONDS]
#        (defaults: target/release/citadel 4000 10; LOADGEN=PATH)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${1:-$root/target/release/citadel}
rate=${2:-4000}
secs=${3:-10}
loadgen=${LOADGEN:-$root/target/release/citadel-loadgen}
command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }
dir=$(mktemp -d /dev/shm/citadel-shed.XXXXXX)
trap 'rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/cg" "$citadel" \
    --port "$port" --rpc-port 0 --threads 1 --fresh --cache-file "$dir/cache" --maxmemory 64mb \
    --overload-delay-target-us 0 >"$dir/log" 2>&1 &
pid=$!
for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
work=(--keys 16 --ops bitcount -d 262144)
"$loadgen" -s "127.0.0.1:$port" -t 1 -c 1 "${work[@]}" --prefill -n 1 -q >/dev/null
redis-cli -p "$port" config set overload-delay-target-us 250 >/dev/null
taskset -c 1 "$loadgen" -s "127.0.0.1:$port" -t 1 -c 100 -p 32 "${work[@]}" --rate "$rate" -D "${secs}s" -q \
    >"$dir/loadgen.txt" 2>&1
shed=$(redis-cli -p "$port" info overload | tr -d '\r' | awk -F: '$1 == "shed_core" {print $2}')
redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
kill "$pid" 2>/dev/null
wait "$pid"
tail -1 "$dir/loadgen.txt"
# The event loop thread: the dump with the most instructions.
loop=$(for f in "$dir"/cg-*; do echo "$(awk '/^summary:/ {print $2}' "$f") $f"; done | sort -n | tail -1 | cut -d' ' -f2)
inclusive() { # function pattern -> its inclusive instructions
    callgrind_annotate --inclusive=yes "$loop" 2>/dev/null | grep -E "$1" | head -1 | awk '{gsub(",", "", $1); printf "%.0f\n", $1 + 0}'
}
total=$(awk '/^summary:/ {print $2}' "$loop")
bitcount=$(inclusive 'bits::bitcount \[')
set=$(inclusive 'set_one::set ')
framing=$(inclusive 'command/admission.rs:citadel_server::command::session::Session::process')
echo "refusals $shed; loop thread $total instructions, BITCOUNT ${bitcount:-0}, SET ${set:-0}"
echo "per refusal: $(( (total - ${bitcount:-0} - ${set:-0}) / shed )) instructions, framing path $(( ${framing:-0} / shed ))"
