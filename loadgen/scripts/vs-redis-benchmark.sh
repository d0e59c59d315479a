#!/usr/bin/env bash
# Efficiency check: citadel-loadgen vs redis-benchmark against one redis-server, same
# connections, pipeline, operation and request count. The server is pinned to core 0 and
# the client to core 1; client CPU (user+sys, whole process) comes from the shell's `times`.
# Prints a markdown table with ops/s, ops per client CPU-second and the ratio.
#
# usage: loadgen/scripts/vs-redis-benchmark.sh [LOADGEN_BIN] [REQUESTS]
set -euo pipefail
LOADGEN=${1:-${CARGO_TARGET_DIR:-target}/release/citadel-loadgen}
N=${2:-2000000}
CONNS=50
KEYS=100000
for bin in redis-server redis-benchmark taskset; do
  command -v "$bin" >/dev/null || { echo "$bin missing: run tests/run.sh (installs redis-server redis-tools)" >&2; exit 1; }
done
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
taskset -c 0 redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# cpu_of CMD...: runs CMD, prints "<wall_s> <cpu_s>" (cpu = children's user+sys).
cpu_of() {
  local start end t
  start=$(date +%s.%N)
  t=$( { "$@" >/tmp/vsrb.out 2>&1; times; } | tail -1 )
  end=$(date +%s.%N)
  python3 - "$start" "$end" "$t" <<'PY'
import sys, re
start, end, t = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
secs = [int(m)*60 + float(s) for m, s in re.findall(r'(\d+)m([\d.]+)s', t)]
print(f"{end-start:.3f} {sum(secs):.3f}")
PY
}

echo "| op | pipeline | client | ops/s | client CPU s | ops per client CPU-s |"
echo "|---|---|---|---|---|---|"
for P in 1 16; do
  for OP in set get; do
    RATIO=$([ "$OP" = set ] && echo 1:0 || echo 0:1)
    read -r _ cpu_rb < <(cpu_of taskset -c 1 redis-benchmark -h 127.0.0.1 -p "$PORT" -c $CONNS -P $P -n "$N" -t "$OP" -r $KEYS -d 32 -q --threads 1)
    rb_ops=$(grep -oE '[0-9.]+ requests per second' /tmp/vsrb.out | awk '{print $1}')
    read -r _ cpu_lg < <(cpu_of taskset -c 1 "$LOADGEN" -s 127.0.0.1:"$PORT" -t 1 -c $CONNS -p $P -n "$N" --ratio "$RATIO" --keys $KEYS -d 32 -q --json /tmp/vsrb.json)
    lg_ops=$(python3 -c 'import json; print(round(json.load(open("/tmp/vsrb.json"))["ops_per_sec"]))')
    python3 - "$OP" "$P" "$N" "$rb_ops" "$cpu_rb" "$lg_ops" "$cpu_lg" <<'PY'
import sys
op, p, n, rb_ops, cpu_rb, lg_ops, cpu_lg = sys.argv[1:]
n = int(n); rb = n / float(cpu_rb); lg = n / float(cpu_lg)
print(f"| {op} | {p} | redis-benchmark | {float(rb_ops):,.0f} | {float(cpu_rb):.2f} | {rb:,.0f} |")
print(f"| {op} | {p} | citadel-loadgen | {float(lg_ops):,.0f} | {float(cpu_lg):.2f} | {lg:,.0f} (x{lg/rb:.2f}) |")
PY
  done
done
