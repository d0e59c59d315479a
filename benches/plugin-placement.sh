#!/usr/bin/env bash
# One plugin, two placements, in one run: the echo plugin as a process
# (`echo`) and the same source as an inline module (`iecho`, loaded into the
# server), both served by one citadel, for a small (64 B) and an OCR-sized
# (256 KiB) payload.
#
# Per row: round trip p50/p99 (µs) and calls/s from plugin-calls
# (benches/src/bin/plugin_calls.rs: CLIENTS closed-loop connections sending
# PLUGIN CALL <plugin> <payload>; redis-benchmark cannot carry a 256 KiB
# argument), and server+plugin CPU per call (µs) from /proc/<pid>/stat of
# the server and, for the process placement, the plugin process (an inline
# plugin's thread is part of the server's figure). A redis-benchmark row
# per placement at 64 B cross-checks the small-payload numbers with the
# reference client. The plugins are pinned to their own core when the host
# has more than two CPUs (cores = "auto"), unpinned otherwise. Rings are
# 4 MiB so CLIENTS 256 KiB calls fit in one at once.
#
# Usage: benches/plugin-placement.sh [-h|--help]
# Env:   CALLS     calls per row (default 20000; 256 KiB rows use CALLS/10)
#        CLIENTS   concurrent connections (default 4)
#        THREADS   server threads (default 1)
#        OUT       report file (default target/bench/plugin-placement.txt)
# Needs: redis-benchmark, redis-cli.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,/^# Needs/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac

calls=${CALLS:-20000}
clients=${CLIENTS:-4}
threads=${THREADS:-1}
. "$(dirname "$0")/plugin-bench-lib.sh"

log "building (release): citadel, the echo plugin (binary and module), plugin-calls"
(cd "$root" && cargo build --release -q -p citadel-server -p citadel-plugin-echo \
    && cargo build --release -q -p citadel-benches --bin plugin-calls)

port=$(free_port)
cores=none
[ "$(nproc)" -gt 2 ] && cores=auto
start_server "$port" "[[plugin]]
name = \"echo\"
exec = \"$bin/citadel-plugin-echo\"
cores = \"$cores\"
ring-capacity = \"4mb\"

[[plugin]]
name = \"iecho\"
placement = \"inline\"
exec = \"$bin/libcitadel_plugin_echo.so\"
cores = \"$cores\"
ring-capacity = \"4mb\""
echo_pid=$(plugin_field "$port" echo pid)

# row LABEL PLUGIN SIZE CALLS PIDS
row() {
    printf '%-26s %s\n' "$1" "$("$bin/plugin-calls" --port "$port" --plugin "$2" --size "$3" \
        --calls "$4" --clients "$clients" --pids "$5")"
}

# bench_row LABEL PLUGIN: redis-benchmark at 64 B.
bench_row() {
    local payload rps p50 p99
    payload=$(head -c 64 /dev/zero | tr '\0' x)
    redis-benchmark -p "$port" -c "$clients" -n $((calls / 5)) -q PLUGIN CALL "$2" "$payload" >/dev/null
    read -r rps p50 p99 _ <<<"$(bench_csv "$port" "$calls" PLUGIN CALL "$2" "$payload")"
    printf '%-26s p50_ms=%s p99_ms=%s calls_per_s=%s\n' "$1" "$p50" "$p99" "$rps"
}

{
    echo "# plugin-placement: echo as a process vs inline, $clients clients, $threads server thread(s),"
    echo "# plugin cores=$cores, $(nproc) CPUs; CPU = server + plugin process per call"
    row "process 64B" echo 64 "$calls" "$server_pid,$echo_pid"
    row "inline  64B" iecho 64 "$calls" "$server_pid"
    row "process 256KiB" echo $((256 * 1024)) $((calls / 10)) "$server_pid,$echo_pid"
    row "inline  256KiB" iecho $((256 * 1024)) $((calls / 10)) "$server_pid"
    bench_row "redis-benchmark process" echo
    bench_row "redis-benchmark inline" iecho
} | tee "$out"
stop_server "$port"
log "report: $out"
