#!/usr/bin/env bash
# What the stats region's plugin table costs a plugin call, in one run:
# PLUGIN CALL echo driven by redis-benchmark against citadel under
# callgrind (--threads 1; the echo plugin runs as its own process, not
# traced), then the server's instructions per call in all (every thread)
# and the part the plugin table takes: the lines of
# server/telemetry/src/plugins.rs and the bucket index (layout.rs) inlined
# into the plugin code, plus the OnceLock look-up of PluginShared::shm in
# route.rs's started/finished (callgrind_annotate, exclusive, by line).
#
# Usage: benches/plugin-stats-callgrind.sh [CALLS]   (default 20000)
#   CITADEL=PATH   the citadel binary (default: target/release/citadel)
#   ECHO=PATH      the echo plugin (default: target/release/citadel-plugin-echo)
#   KEEP=DIR       copy the callgrind output there
set -uo pipefail
calls=${1:-20000}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-$root/target/release/citadel}
echo_bin=${ECHO:-$root/target/release/citadel-plugin-echo}
dir=$(mktemp -d /dev/shm/citadel-plugin-cg.XXXXXX)
# shellcheck source=benches/callgrind-lib.sh
source "$root/benches/callgrind-lib.sh"
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

printf '[[plugin]]\nname = "echo"\nexec = "%s"\n' "$echo_bin" >"$dir/plugins.toml"
out="$dir/cg.plugin"
CITADEL_ARGS="--config $dir/plugins.toml" cg_start citadel "$out" "$dir"
redis-cli -p "$port" PLUGIN CALL echo warm >/dev/null
rm -f "$out"*
cg_control -z
redis-benchmark -p "$port" -c 10 -n "$calls" PLUGIN CALL echo payload-0123456789 >"$dir/rb.log" 2>&1
cg_control -d
{ kill -9 "$pid" && wait "$pid"; } 2>/dev/null
pid=""
total=0
table=0
for f in "$out"*; do
    n=$(awk '/^summary:/ {print $2}' "$f")
    total=$((total + ${n:-0}))
    t=$(callgrind_annotate --inclusive=no --threshold=100 "$f" 2>/dev/null |
        grep -E 'telemetry/src/(plugins|layout)\.rs:citadel_server::plugin::|once_lock\.rs:citadel_server::plugin::route::(started|finished)' |
        awk '{gsub(",", "", $1); s += $1} END {print s + 0}')
    table=$((table + t))
    [[ -n ${KEEP:-} ]] && cp "$f" "$KEEP/$(basename "$f")"
done
echo "| calls | server instructions/call | plugin table instructions/call | share |"
echo "|---:|---:|---:|---:|"
awk -v c="$calls" -v t="$total" -v p="$table" \
    'BEGIN {printf "| %d | %d | %.1f | %.2f%% |\n", c, t / c, p / c, 100 * p / t}'
