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
# 3. Pipeline stages: a fresh citadel runs the text pipeline split -> upper
#    (plugins/examples/text-stages, 2 instances each, results not cached);
#    PIPELINE CALL text DATA <a random line> from CLIENTS connections, once
#    steady, then while PLUGIN RELOAD split and upper alternate every
#    RELOAD_EVERY seconds (overlapped: the new stage instance takes new
#    calls once attached, the upstream opens calls only in open rings, the
#    old one stops once its inputs are drained). Same report as phase 1.
#    PY_MIDDLE=1 puts a Python stage (plugins/python/examples/upper.py, one
#    instance, a slow start) between them and reloads it too.
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
#        PY_MIDDLE      1: a Python stage in the pipeline phase (default 0)
#        PY_STAGE       its script (default plugins/python/examples/upper.py;
#                       a copy beside another citadel_plugin package: an A/B)
#        PHASES         which phases to run (default "upgrade scale pipeline")
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

log "building (release): citadel, the echo plugin, the text stages"
(cd "$root" && cargo build --release -q -p citadel-server -p citadel-plugin-echo -p citadel-text-stages)

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

# stage NAME: a text-stages [[plugin]] table (2 instances).
stage() {
    printf '[[plugin]]\nname = "%s"\nexec = "%s"\nargs = ["--role", "%s"]\ninstances = 2\ncores = "none"\n' \
        "$1" "$bin/citadel-text-stage" "$1"
}

# pbench PORT LABEL: one redis-benchmark run of pipeline calls, one row.
pbench() {
    local rps p50 p99 max_ms
    read -r rps p50 p99 max_ms <<<"$(bench_csv "$1" "$requests" -r 1000000000 PIPELINE CALL text DATA "line __rand_int__")"
    printf '%-28s p50_ms=%-7s p99_ms=%-8s max_ms=%-8s calls_per_s=%s\n' \
        "$2" "$p50" "$p99" "$max_ms" "$rps"
}

# pipeline_field PORT KEY: one PIPELINE INFO text field.
pipeline_field() {
    redis-cli -p "$1" pipeline info text | awk -v k="$2" 'prev == k { print; exit } { prev = $0 }'
}

pipeline_phase() {
    local port reloads=0 k=0 names=(split upper) middle=
    if [ "${PY_MIDDLE:-0}" = 1 ]; then
        names=(split pyupper upper)
        middle=$(printf '[[plugin]]\nname = "pyupper"\nexec = "python3"\nargs = ["%s"]\ncores = "none"\n' \
            "${PY_STAGE:-$root/plugins/python/examples/upper.py}")
    fi
    port=$(free_port)
    start_server "$port" "$(stage split)
$middle
$(stage upper)
[[pipeline]]
name = \"text\"
stages = [$(printf '"%s", ' "${names[@]}" | sed 's/, $//')]
result-ttl-ms = 0
max-inflight = 100000"
    redis-benchmark -p "$port" -c "$clients" -n $((requests / 4)) -r 1000000000 -q \
        PIPELINE CALL text DATA "line __rand_int__" >/dev/null
    pbench "$port" "pipeline steady (${names[*]})"
    pbench "$port" "pipeline during upgrades" &
    load_pid=$!
    pids+=("$load_pid")
    while kill -0 "$load_pid" 2>/dev/null; do
        sleep "$reload_every"
        kill -0 "$load_pid" 2>/dev/null || break
        redis-cli -p "$port" plugin reload "${names[k]}" >/dev/null
        reloads=$((reloads + 1))
        k=$(((k + 1) % ${#names[@]}))
    done
    wait "$load_pid"
    load_pid=
    local done_=0 name
    for name in "${names[@]}"; do
        done_=$((done_ + $(plugin_field "$port" "$name" reloads)))
    done
    echo "stage reloads asked: $reloads, instances replaced: $done_; failed calls: $(($(pipeline_field "$port" errors) + $(pipeline_field "$port" timeouts)))"
    stop "$port"
}

{
    echo "# plugin-upgrade: echo plugin, $clients clients, $requests calls per phase, $threads server threads ($(nproc) CPUs)"
    echo "# upgrade phase: ${delay} us per call, $versions version(s), PLUGIN RELOAD every ${reload_every} s"
    for phase in ${PHASES:-upgrade scale pipeline}; do
        "${phase}_phase"
    done
} | tee "$out"
log "report: $out"
