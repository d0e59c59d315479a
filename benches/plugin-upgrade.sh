#!/usr/bin/env bash
# Plugin upgrades and elastic scaling under load, in one run.
#
# 1. Upgrade: a fresh citadel runs [[plugin]] echo with instances = 2,
#    cores "none", ECHO_DELAY_US (every call takes that long).
#    redis-benchmark sends PLUGIN CALL echo x from CLIENTS connections
#    (closed loop): once in steady state, then again while PLUGIN RELOAD
#    echo runs every RELOAD_EVERY seconds (each an overlapped upgrade: new
#    processes start beside the old ones, take new calls once attached, the
#    old ones stop when they hold none). p50/p99/max (ms), calls per second,
#    the reloads done and the plugin's failed calls (errors + timeouts +
#    rejected) are reported; the target is a p99 during upgrades within 2x
#    the steady one, and 0 failed calls. VERSIONS > 1 runs that many
#    versions of echo side by side (equal weights, each with its spare slot:
#    a reload replaces every version's instances, one at a time).
# 2. Scale-up reaction: a fresh citadel with instances = "1..MAX_INSTANCES"
#    (ECHO_DELAY_US=SLOW_US, the scaler's default windows); from the start of a
#    CLIENTS-connection burst, the time until 2 instances take calls, and
#    until MAX_INSTANCES do; then, after the burst, until it is back at 1.
#
# Usage: benches/plugin-upgrade.sh [-h|--help]
# Env:   REQUESTS       calls per phase (default 40000)
#        CLIENTS        concurrent connections (default 16)
#        DELAY_US       time per call, upgrade phase (default 200)
#        RELOAD_EVERY   seconds between reloads (default 0.5)
#        VERSIONS       versions of echo in the upgrade phase (default 1)
#        SLOW_US        time per call, scaling phase (default 2000)
#        MAX_INSTANCES  elastic MAX (default 4)
#        THREADS        server threads (default 2)
#        OUT            report file (default target/bench/plugin-upgrade.txt)
# Needs: redis-benchmark, redis-cli.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,/^# Needs/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac

requests=${REQUESTS:-40000}
clients=${CLIENTS:-16}
delay=${DELAY_US:-200}
reload_every=${RELOAD_EVERY:-0.5}
versions=${VERSIONS:-1}
slow=${SLOW_US:-2000}
max=${MAX_INSTANCES:-4}
threads=${THREADS:-2}
. "$(dirname "$0")/plugin-bench-lib.sh"

log "building (release): citadel, the echo plugin"
(cd "$root" && cargo build --release -q -p citadel-server -p citadel-plugin-echo)

load_pid=

# serve PORT INSTANCES DELAY_US [VERSIONS]: starts citadel with the echo
# plugin (VERSIONS > 1: that many versions, equal weights).
serve() {
    local exec="exec = \"$bin/citadel-plugin-echo\"" v list=()
    if [ "${4:-1}" -gt 1 ]; then
        for v in $(seq "$4"); do
            list+=("{ name = \"v$v\", exec = \"$bin/citadel-plugin-echo\", weight = 1 }")
        done
        exec="versions = [$(IFS=,; echo "${list[*]}")]"
    fi
    start_server "$1" "[[plugin]]
name = \"echo\"
$exec
instances = \"$2\"
cores = \"none\"
max-inflight = 100000
env = { ECHO_DELAY_US = \"$3\" }"
}

stop() {
    stop_server "$1"
}

# field PORT NAME: one PLUGIN INFO echo field.
field() {
    plugin_field "$1" echo "$2"
}

# bench PORT LABEL: one redis-benchmark run, one row.
bench() {
    local rps p50 p99 max_ms
    read -r rps p50 p99 max_ms <<<"$(bench_csv "$1" "$requests" PLUGIN CALL echo x)"
    printf '%-28s p50_ms=%-7s p99_ms=%-8s max_ms=%-8s calls_per_s=%s\n' \
        "$2" "$p50" "$p99" "$max_ms" "$rps"
}

failed() {
    echo $(($(field "$1" errors) + $(field "$1" timeouts) + $(field "$1" rejected)))
}

upgrade_phase() {
    local port reloads=0
    port=$(free_port)
    serve "$port" 2 "$delay" "$versions"
    redis-benchmark -p "$port" -c "$clients" -n $((requests / 4)) -q PLUGIN CALL echo x >/dev/null
    bench "$port" "steady (2 instances x $versions)"
    bench "$port" "during upgrades" &
    load_pid=$!
    pids+=("$load_pid")
    while kill -0 "$load_pid" 2>/dev/null; do
        sleep "$reload_every"
        kill -0 "$load_pid" 2>/dev/null || break
        redis-cli -p "$port" plugin reload echo >/dev/null
        reloads=$((reloads + 1))
    done
    wait "$load_pid"
    load_pid=
    echo "reloads asked: $reloads, done: $(($(field "$port" reloads) / (2 * versions))); failed calls: $(failed "$port")"
    stop "$port"
}

# ms_until PORT N START_NS: polls until N instances take calls.
ms_until() {
    while [ "$(field "$1" instances)" -ne "$2" ]; do sleep 0.02; done
    echo $((($(date +%s%N) - $3) / 1000000))
}

scale_phase() {
    local port start two top down
    port=$(free_port)
    serve "$port" "1..$max" "$slow"
    start=$(date +%s%N)
    redis-benchmark -p "$port" -c "$clients" -n 100000000 -q PLUGIN CALL echo x >/dev/null 2>&1 &
    load_pid=$!
    pids+=("$load_pid")
    two=$(ms_until "$port" 2 "$start")
    top=$(ms_until "$port" "$max" "$start")
    kill "$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
    load_pid=
    start=$(date +%s%N)
    down=$(ms_until "$port" 1 "$start")
    echo "scale-up reaction ($clients clients, $slow us per call): 1->2 in ${two} ms, 1->$max in ${top} ms; back to 1 ${down} ms after the burst; failed calls: $(failed "$port")"
    echo "last change: $(field "$port" last_change)"
    stop "$port"
}

{
    echo "# plugin-upgrade: echo plugin, $clients clients, $requests calls per phase, $threads server threads ($(nproc) CPUs)"
    echo "# upgrade phase: ${delay} us per call, $versions version(s), PLUGIN RELOAD every ${reload_every} s"
    upgrade_phase
    scale_phase
} | tee "$out"
log "report: $out"
