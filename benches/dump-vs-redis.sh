#!/usr/bin/env bash
# DUMP of small collections, Citadel vs redis-server in one run, driven by
# redis-benchmark: a 100-field hash (Redis: one listpack) and a 100-member
# sorted set with fractional scores. Prints requests/s for each and the
# Citadel/Redis ratio (compare only figures of the same run). Servers on
# core 0, the client on core 1 where the machine has two.
#
# Usage: benches/dump-vs-redis.sh [REQUESTS]   (default 200000)
#   CITADEL=PATH   the binary (default: the workspace's release build)
set -euo pipefail

requests=${1:-200000}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-${CARGO_TARGET_DIR:-$root/target}/release/citadel}
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(port); cport=$(port)
other=$(($(nproc) > 1 ? 1 : 0))
cleanup() {
    for p in "$rport" "$cport"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
taskset -c 0 redis-server --port "$rport" --save '' --appendonly no --dir "$work" \
    --daemonize yes --logfile "$work/redis.log"
taskset -c 0 "$citadel" --port "$cport" --threads 1 --cache-file "$work/cache" --maxmemory 256mb \
    --rpc-port 0 --discovery-dir "$work/discovery" >"$work/citadel.log" 2>&1 &
for p in "$rport" "$cport"; do
    until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
done
hash=() zset=()
for i in $(seq 0 99); do hash+=("field:$i" "$i"); zset+=("$i.25" "member:$i"); done
for p in "$rport" "$cport"; do
    redis-cli -p "$p" hset h "${hash[@]}" >/dev/null
    redis-cli -p "$p" zadd z "${zset[@]}" >/dev/null
done
rate() {
    # 50 clients, pipeline 8: a standing queue under Citadel's default
    # 5 ms admission target.
    taskset -c "$other" redis-benchmark -p "$1" -n "$requests" -c 50 -P 8 -q dump "$2" |
        tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1
}
printf '%-28s %12s %12s %8s\n' "DUMP of" redis citadel ratio
for key in h z; do
    name=$([ "$key" = h ] && echo "100-field hash" || echo "100-member sorted set")
    r=$(rate "$rport" "$key"); c=$(rate "$cport" "$key")
    printf '%-28s %12s %12s %7.2fx\n' "$name" "$r" "$c" "$(echo "$c / $r" | bc -l)"
done
