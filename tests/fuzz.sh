#!/usr/bin/env bash
# Runs every cargo-fuzz target for a given time and reports executions.
#
# Usage: tests/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
#   SECONDS_PER_TARGET  default 30 (tests/run.sh passes 20, CI's budget); the issue-level
#                       runs use e.g. 600 or -runs via FUZZ_RUNS.
#   TARGET              dir:target pairs to run (default: all below).
# Env: FUZZ_RUNS=N      stop each target after N executions instead of a time.
#      FUZZ_JOBS=N      libFuzzer worker processes per target (default 1).
#      FUZZ_PARALLEL=N  targets run side by side (default: the core count).
# Needs the nightly toolchain and cargo-fuzz (installed when missing).
# Prints one line per target: executions, executions/s, result; exits
# non-zero if any target found a crash (the input is kept under
# <fuzz dir>/artifacts/<target>/ and its path printed).
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(
        server/resp/fuzz:request_parser
        server/resp/fuzz:inline_parser
        server/resp/fuzz:ext_float_parse
        server/resp/fuzz:frame_skim
        server/cache/fuzz:attach_corrupted
        server/collections/fuzz:rdb_decode
        server/collections/fuzz:paged_edits
        server/collections/fuzz:zset_tree
        proto/fuzz:ring_records
        proto/fuzz:load_codec
        proto/fuzz:pipeline_messages
        proto/fuzz:rpc_frames
    )
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "==> rustup toolchain install nightly" >&2
    rustup toolchain install nightly --profile minimal >/dev/null || {
        echo "fuzz: the nightly toolchain is missing and could not be installed" >&2
        exit 1
    }
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> cargo install cargo-fuzz" >&2
    cargo install -q cargo-fuzz || exit 1
fi

# Build each fuzz crate once, one at a time (cargo would serialise
# concurrent builds of one crate on its lock anyway), then run the targets
# FUZZ_PARALLEL at a time: each libFuzzer process is single-threaded, so on
# an idle machine two targets side by side get the same executions each in
# half the wall time.
# Every fuzz crate builds into one target directory beside the
# workspace's: their shared dependencies (and the citadel crates two of
# them share) are built and stored once, which keeps a CI machine's disk
# from filling with four copies.
fuzz_target="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
# No sanitizer: the resp targets are safe code, and the unsafe code of
# the others touches shared mappings ASan does not instrument (every
# access there is bounds-checked); it would cost 2-3x the executions.
failed=0
built=()
for t in "${targets[@]}"; do
    dir=${t%%:*}
    if [ ! -d "$dir" ]; then
        echo "fuzz ${t##*:}: $dir missing" >&2
        failed=1
        continue
    fi
    case " ${built[*]} " in *" $dir "*) continue ;; esac
    built+=("$dir")
    build_log=$(mktemp)
    cargo +nightly fuzz build -s none --target-dir "$fuzz_target" --fuzz-dir "$dir" >"$build_log" 2>&1 || {
        echo "fuzz: building $dir failed; the build's last lines:" >&2
        tail -n 15 "$build_log" >&2
        failed=1
    }
    rm -f "$build_log"
done

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

# Runs one target; its one-line result (and a crash's evidence) goes to
# $results/<index>.out, its status to $results/<index>.rc.
run_target() { # index dir name
    local index=$1 dir=$2 name=$3 limit log start end rc execs elapsed rate
    limit=(-max_total_time="$secs")
    if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS"); fi
    log="$results/$index.log"
    start=$(date +%s.%N)
    cargo +nightly fuzz run -s none --target-dir "$fuzz_target" --fuzz-dir "$dir" "$name" -- \
        "${limit[@]}" -timeout=10 -print_final_stats=1 "${jobs[@]}" \
        >"$log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    execs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s+=$2} END {print s+0}')
    elapsed=$(echo "$end - $start" | bc)
    rate=$(echo "scale=0; $execs / ($elapsed + 0.001)" | bc)
    if [ $rc -eq 0 ]; then
        echo "fuzz $name: $execs executions in ${elapsed%.*} s ($rate/s), no crash"
    else
        echo "fuzz $name: FAILED after $execs executions (exit $rc)"
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -20
    fi >"$results/$index.out"
    echo $rc >"$results/$index.rc"
}

parallel=${FUZZ_PARALLEL:-$(nproc)}
# One libFuzzer process per target runs in-process, its output on stdout.
# With worker jobs libFuzzer writes fuzz-<job>.log into the working
# directory, which targets side by side would share: one at a time then.
jobs=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
    jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
    parallel=1
fi
echo "fuzz: ${#targets[@]} targets, $parallel at a time, ${FUZZ_RUNS:-$secs s} each" >&2
index=0
for t in "${targets[@]}"; do
    dir=${t%%:*}
    [ -d "$dir" ] || continue
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n; done
    run_target "$index" "$dir" "${t##*:}" &
    index=$((index + 1))
done
wait
# attach_corrupted keeps its cache image in citadel-fuzz-<pid>.cache for
# its whole run (libFuzzer exits without unwinding): remove the ones whose
# process is gone, so runs do not pile up files in /dev/shm.
for f in /dev/shm/citadel-fuzz-*.cache /tmp/citadel-fuzz-*.cache; do
    [ -e "$f" ] || continue
    pid=${f##*citadel-fuzz-}
    pid=${pid%.cache}
    kill -0 "$pid" 2>/dev/null || rm -f "$f"
done
for ((i = 0; i < index; i++)); do
    cat "$results/$i.out"
    [ "$(cat "$results/$i.rc")" = 0 ] || failed=1
done
exit $failed
