#!/usr/bin/env bash
# Server instructions per BITCOUNT of one SIZE-byte string (random bytes),
# or with OP=bitpos per BITPOS key 1 of SIZE-1 zero bytes and a last 0x01
# (the search goes through the whole value), Citadel and redis-server,
# under callgrind (every server thread; counters zeroed after the fill,
# dumped after redis-benchmark -c 4 -n REQUESTS and the command). Instruction
# counts are stable on a loaded machine.
#
# Usage: benches/bitcount-callgrind.sh [REQUESTS] [SIZE]
#   OP=bitcount|bitpos  SERVERS="citadel redis"  CITADEL=PATH
#   KEEP=DIR (keeps the profiles)
set -uo pipefail  # no -e: cg_finish reaps a killed server (status 137)

requests=${1:-200}
size=${2:-262144}
op=${OP:-bitcount}
root=$(cd "$(dirname "$0")/.." && pwd)
servers=${SERVERS:-citadel redis}
citadel=${CITADEL:-$root/target/release/citadel}
dir=$(mktemp -d /dev/shm/citadel-bitcount-cg.XXXXXX)
# shellcheck source=benches/callgrind-lib.sh
source "$root/benches/callgrind-lib.sh"
cleanup() { [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT

case $op in
bitcount) head -c "$size" /dev/urandom >"$dir/value"; cmd=(bitcount bk) ;;
bitpos) { head -c $((size - 1)) /dev/zero; printf '\001'; } >"$dir/value"; cmd=(bitpos bk 1) ;;
*) echo "OP must be bitcount or bitpos" >&2; exit 2 ;;
esac
declare -A got
for server in $servers; do
    cg_start "$server" "$dir/cg.$server" "$dir"
    redis-cli -p "$port" -x set bk <"$dir/value" >/dev/null
    # The answer, to compare across servers: the same bytes, the same answer.
    echo "$server: ${cmd[*]} = $(redis-cli -p "$port" "${cmd[@]}")" >&2
    got[$server]=$(cg_measure "$dir/cg.$server" "$requests" "$dir/bench.$server" \
        -c 4 -n "$requests" "${cmd[@]}")
done
echo "${cmd[*]} of $size bytes, redis-benchmark -c 4 -n $requests; callgrind; $(uptime)"
for server in $servers; do echo "$server: ${got[$server]} instructions/op"; done
if [[ $servers == "citadel redis" ]]; then
    echo "citadel/redis: $(echo "scale=2; ${got[citadel]} / ${got[redis]}" | bc)x"
fi
