#!/usr/bin/env bash
# The cache engine's instructions per operation next to HashMap<Vec<u8>,
# Vec<u8>> doing the same work (benches/src/bin/cache_ops.rs): get-hit,
# get-miss, set-overwrite and set-new at KEYS keys, OPS operations each, in
# one run under callgrind. Each phase is a `measure_*` function; callgrind
# counts only inside them (--toggle-collect) and dumps after each
# (--dump-after), so a dump holds one phase. (The two patterns differ:
# callgrind applies only one option of two with the same pattern.) The counts include the loop's
# own key picking, the same for both. Stable on a loaded machine.
#
# Usage: benches/cache-callgrind.sh [KEYS] [OPS]
#   CACHE_OPS=PATH (the binary; built with cargo if absent)
#   KEEP=DIR (keeps the dumps: callgrind_annotate --inclusive=yes DIR/cg.N)
set -euo pipefail

keys=${1:-1000000}
ops=${2:-200000}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CACHE_OPS:-$root/target/release/cache-ops}
# shellcheck source=benches/callgrind-lib.sh
source "$root/benches/callgrind-lib.sh"
if [[ ! -x $bin ]]; then
    (cd "$root" && cargo build --release -p citadel-benches --bin cache-ops)
fi
dir=$(mktemp -d /dev/shm/citadel-cache-cg.XXXXXX)
trap 'rm -rf "$dir"' EXIT

valgrind --tool=callgrind --callgrind-out-file="$dir/cg" --collect-atstart=no \
    --toggle-collect='*cache_ops::measure_*' --dump-after='cache_ops::measure_*' \
    "$bin" "$keys" "$ops" >"$dir/out" 2>"$dir/log" || {
    cat "$dir/log" >&2
    exit 1
}

# One dump per measure_ call, numbered in call order; the binary names
# each phase before it runs ("phase NAME").
mapfile -t phases < <(awk '$1 == "phase" {print $2}' "$dir/out")
declare -A per_op
for i in "${!phases[@]}"; do
    f=$dir/cg.$((i + 1))
    [[ -f $f ]] || { echo "no dump $f for ${phases[$i]}" >&2; exit 1; }
    total=$(awk '/^summary:/ {print $2}' "$f")
    n=$ops
    [[ ${phases[$i]} == *_medium ]] && n=$((ops / 10))
    per_op[${phases[$i]}]=$((total / n))
    if [[ -n ${KEEP:-} ]]; then cp "$f" "$KEEP/cg.${phases[$i]}"; fi
done

echo "cache-ops $keys keys, $ops ops per phase; callgrind instructions/op; $(uptime)"
grep -v '^keys\|^phase' "$dir/out" || true
printf '%-14s %10s %10s %8s\n' op citadel hashmap ratio
for op in get_hit get_miss set_overwrite set_new; do
    c=${per_op[citadel_$op]:-0} m=${per_op[hashmap_$op]:-0}
    ratio=$( ((m > 0)) && echo "scale=2; $c / $m" | bc || echo -)
    printf '%-14s %10s %10s %7sx\n' "${op//_/-}" "$c" "$m" "$ratio"
done
# One-key updates (the collection write path; no HashMap twin).
for op in update update_medium update_read; do
    printf '%-14s %10s\n' "${op//_/-}" "${per_op[citadel_$op]:-0}"
done
