#!/usr/bin/env bash
# DUMP and RESTORE of one big stream, Citadel vs redis-server, in one run:
# the same stream (ENTRIES entries of two small fields, a consumer group
# with 5,000 pending entries) built on both, then redis-benchmark's DUMP
# of it (the reference client; one connection, so each figure is one DUMP's
# latency) and RESTORE of each server's own payload from redis-py (10
# times). Prints the payload sizes, DUMP latencies and RESTORE times and
# their Citadel/Redis ratios. Both servers run on core 0, the clients on
# core 1 where the machine has two.
#
# Usage: benches/stream-dump-vs-redis.sh [ENTRIES]   (default 100000)
#   CITADEL=PATH   the binary (default: the workspace's release build)
set -euo pipefail

entries=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-${CARGO_TARGET_DIR:-$root/target}/release/citadel}
work=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(port)
cport=$(port)
pin_server="taskset -c 0"
pin_client="taskset -c $(($(nproc) > 1 ? 1 : 0))"
cleanup() {
    redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
    redis-cli -p "$cport" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

$pin_server redis-server --port "$rport" --save '' --dir "$work" >/dev/null 2>&1 &
$pin_server "$citadel" --port "$cport" --rpc-port 0 --threads 1 --maxmemory 1gb \
    --cache-file "$work/cache" >"$work/citadel.log" 2>&1 &
for p in "$rport" "$cport"; do
    for _ in $(seq 100); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done

echo "building a stream of $entries entries on both servers" >&2
python3 - "$entries" >"$work/fill.txt" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print(f"XADD s {1000 + i}-0 sensor {i % 100} temp {i * 7 % 1000}")
PY
for p in "$rport" "$cport"; do
    redis-cli -p "$p" <"$work/fill.txt" >/dev/null
    redis-cli -p "$p" xgroup create s g 0 >/dev/null
    redis-cli -p "$p" xreadgroup group g c count 5000 streams s '>' >/dev/null
done

dump_ms() {
    $pin_client redis-benchmark -p "$1" -c 1 -n 30 DUMP s 2>/dev/null |
        awk '/latency summary/ {getline; getline; print $1}'
}
restore_ms() {
    $pin_client python3 - "$1" <<'PY'
import sys, time, redis
r = redis.Redis(port=int(sys.argv[1]))
payload = r.dump("s")
start = time.perf_counter()
for i in range(10):
    r.restore(f"copy{i}", 0, payload)
print(f"{(time.perf_counter() - start) * 100:.1f} {len(payload)}")
PY
}
rd=$(dump_ms "$rport"); cd_=$(dump_ms "$cport")
read -r rr rsize < <(restore_ms "$rport")
read -r cr csize < <(restore_ms "$cport")
ratio() { python3 -c "print(f'{float($1) / float($2):.2f}x')"; }
printf '| %-8s | %12s | %12s | %12s |\n' "" "payload B" "DUMP ms" "RESTORE ms"
printf '| %-8s | %12s | %12s | %12s |\n' redis "$rsize" "$rd" "$rr"
printf '| %-8s | %12s | %12s | %12s |\n' citadel "$csize" "$cd_" "$cr"
printf '| %-8s | %12s | %12s | %12s |\n' ratio "$(ratio "$csize" "$rsize")" "$(ratio "$cd_" "$rd")" "$(ratio "$cr" "$rr")"
