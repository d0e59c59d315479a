#!/usr/bin/env bash
# Server instructions per BITCOUNT of one SIZE-byte string (random bytes),
# Citadel and redis-server, under callgrind (every server thread; counters
# zeroed after the fill, dumped after redis-benchmark -c 4 -n REQUESTS
# BITCOUNT key). Instruction counts are stable on a loaded machine.
#
# Usage: benches/bitcount-callgrind.sh [REQUESTS] [SIZE]
#   SERVERS="citadel redis"  CITADEL=PATH  KEEP=DIR (keeps the profiles)
set -uo pipefail  # no -e: cg_finish reaps a killed server (status 137)

requests=${1:-200}
size=${2:-262144}
root=$(cd "$(dirname "$0")/.." && pwd)
servers=${SERVERS:-citadel redis}
citadel=${CITADEL:-$root/target/release/citadel}
dir=$(mktemp -d /dev/shm/citadel-bitcount-cg.XXXXXX)
# shellcheck source=benches/callgrind-lib.sh
source "$root/benches/callgrind-lib.sh"
cleanup() { [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

head -c "$size" /dev/urandom >"$dir/value"
declare -A got
for server in $servers; do
    cg_start "$server" "$dir/cg.$server" "$dir"
    redis-cli -p "$port" -x set bk <"$dir/value" >/dev/null
    # The count, to compare across servers: the same bytes, the same answer.
    echo "$server: BITCOUNT = $(redis-cli -p "$port" bitcount bk)" >&2
    got[$server]=$(cg_measure "$dir/cg.$server" "$requests" "$dir/bench.$server" \
        -c 4 -n "$requests" bitcount bk)
done
echo "BITCOUNT of $size bytes, redis-benchmark -c 4 -n $requests; callgrind; $(uptime)"
for server in $servers; do echo "$server: ${got[$server]} instructions/op"; done
if [[ $servers == "citadel redis" ]]; then
    echo "citadel/redis: $(echo "scale=2; ${got[citadel]} / ${got[redis]}" | bc)x"
fi
