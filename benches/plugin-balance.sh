#!/usr/bin/env bash
# Plugin instance choice side by side, in one run: round robin against
# latency-aware (power of two choices over EWMA latency x in-flight), with
# one of four instances of the echo plugin made 10x slower.
#
# For each balance mode a fresh citadel runs [[plugin]] echo with
# instances = 4, cores "none", env ECHO_DELAY_US (every call takes that
# long) and ECHO_SLOW_INSTANCE=2 / ECHO_SLOW_FACTOR=10 (instance 2 takes
# ten times as long). redis-benchmark sends PLUGIN CALL echo x from
# CLIENTS connections (closed loop), once to warm up, then REQUESTS calls;
# its p50/p99/max (ms) and throughput are reported. A third row is the
# reference: only the three healthy instances (round robin), the p99 the
# latency-aware row should come close to.
#
# Usage: benches/plugin-balance.sh [-h|--help]
# Env:   REQUESTS  calls per mode (default 20000)
#        CLIENTS   concurrent connections (default 16)
#        DELAY_US  a healthy instance's time per call (default 1000)
#        THREADS   server threads (default 2)
#        OUT       report file (default target/bench/plugin-balance.txt)
# Needs: redis-benchmark, redis-cli.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,/^# Needs/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac

requests=${REQUESTS:-20000}
clients=${CLIENTS:-16}
delay=${DELAY_US:-1000}
threads=${THREADS:-2}
. "$(dirname "$0")/plugin-bench-lib.sh"

log "building (release): citadel, the echo plugin"
(cd "$root" && cargo build --release -q -p citadel-server -p citadel-plugin-echo)

# run LABEL MODE INSTANCES SLOW: starts citadel with balance MODE and
# INSTANCES echo instances (SLOW: the slow one's index, "" for none),
# benchmarks it, prints one row.
run() {
    local label=$1 mode=$2 instances=$3 slow=$4 port
    port=$(free_port)
    start_server "$port" "[[plugin]]
name = \"echo\"
exec = \"$bin/citadel-plugin-echo\"
instances = $instances
cores = \"none\"
balance = \"$mode\"
env = { ECHO_DELAY_US = \"$delay\", ECHO_SLOW_INSTANCE = \"$slow\", ECHO_SLOW_FACTOR = \"10\" }"
    redis-benchmark -p "$port" -c "$clients" -n $((requests / 5)) -q PLUGIN CALL echo x >/dev/null
    local rps p50 p99 max
    read -r rps p50 p99 max <<<"$(bench_csv "$port" "$requests" PLUGIN CALL echo x)"
    printf '%-30s p50_ms=%-7s p99_ms=%-8s max_ms=%-8s calls_per_s=%s\n' \
        "$label" "$p50" "$p99" "$max" "$rps"
    stop_server "$port"
}

{
    echo "# plugin-balance: 4 echo instances, ${delay} us per call, instance 2 10x slower;"
    echo "# $clients clients, $requests calls per mode, $threads server threads ($(nproc) CPUs)"
    run "round-robin (1 of 4 slow)" round-robin 4 2
    run "latency (1 of 4 slow)" latency 4 2
    run "reference: 3 healthy only" round-robin 3 ""
} | tee "$out"
log "report: $out"
