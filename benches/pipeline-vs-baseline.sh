#!/usr/bin/env bash
# Video OCR side by side, in one run on the same cores: the seed's shape
# (baseline) against Citadel's video-ocr pipeline.
#
#   baseline  per video, the ffmpeg CLI writes JPEG frames (-vf fps=1 -q:v 2,
#             -threads 1) to a temp dir; the client sends each JPEG over TCP
#             to a resident model server (ocr-baseline server: zune-jpeg
#             decode + citadel-ocr), which answers the lines as JSON.
#   citadel   target/release/citadel with [[pipeline]] video-ocr = decode
#             (citadel-media-ffmpeg --threads 1) -> ocr (citadel-infer-onnx
#             --threads 1), cores "none"; the client sends
#             PIPELINE CALL video-ocr DATA <video> FPS 1 NOCACHE.
#
# Both: one OCR process with 1 intra-op thread, the same PP-OCRv4 models and
# ONNX Runtime, detector LimitType::Max / max_side 960, the same videos, the
# same client (ocr-baseline client) with CONCURRENCY videos in flight, and
# every process (server, plugins, ffmpeg, client) under taskset -c CPUS.
# Each setup is warmed up with one video first. CPU = utime+stime of every
# process of the setup (/proc/<pid>/stat of the servers and plugins around
# the run, getrusage of the client and its ffmpeg children). Then a cached
# call: a first call of an unseen video vs the same call answered from the
# cache (median of 100). Sanity: the recognised line texts of both setups
# are compared per video (multiset).
#
# Usage: benches/pipeline-vs-baseline.sh [-h|--help]
# Env:   VIDEOS       test videos (default 12)
#        SECONDS      length of each, at 25 fps, 640x360 (default 10)
#        CONCURRENCY  videos in flight per client (default 2)
#        CPUS         taskset CPU list for both setups (default 0,1)
#        OUT          report file (default target/bench/pipeline-vs-baseline.txt)
# Needs: ffmpeg, redis-cli, python3, taskset; pip onnxruntime + rapidocr-onnxruntime.
duration=$SECONDS # read first: bash counts SECONDS up from the value it imported
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,/^# Needs/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
[ "$duration" -gt 0 ] || duration=10

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
videos=${VIDEOS:-12}
conc=${CONCURRENCY:-2}
cpus=${CPUS:-0,1}
out=${OUT:-$target/bench/pipeline-vs-baseline.txt}
bin=$target/release
mkdir -p "$(dirname "$out")"
for c in ffmpeg redis-cli python3 taskset; do
    command -v "$c" >/dev/null || { echo "$c is missing" >&2; exit 1; }
done
log() { echo "[$(date +%T)] $*" >&2; }

log "building (release): citadel, the media and OCR stages, ocr-baseline"
(cd "$root" && cargo build --release -q -p citadel-server -p citadel-media-ffmpeg \
    -p citadel-ocr -p citadel-benches --bins)

scratch=$(mktemp -d /dev/shm/citadel-pvb.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# utime+stime in clock ticks of the given processes (all their threads).
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0; done | awk '{s += $1} END {print s + 0}'; }
hz=$(getconf CLK_TCK)

# --- inputs ------------------------------------------------------------------
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
words=(ALPHA BRAVO CHARLIE DELTA ECHO FOXTROT GOLF HOTEL INDIA JULIETT KILO LIMA MIKE
    NOVEMBER OSCAR PAPA QUEBEC ROMEO SIERRA TANGO UNIFORM VICTOR WHISKEY XRAY YANKEE ZULU)
text() { echo "drawtext=fontfile=$font:text='$1':fontsize=44:fontcolor=black:box=1:boxcolor=white:boxborderw=14:x=40:y=$2"; }
make_video() { # index path: "CITADEL", "VIDEO <i>", and a word per second
    local f t
    f="$(text CITADEL 40),$(text "VIDEO $1" 130)"
    for ((t = 0; t < duration; t++)); do
        f+=",$(text "${words[$(((t + $1) % 26))]}" 220):enable='between(t,$t,$t.999)'"
    done
    ffmpeg -y -hide_banner -loglevel error -f lavfi -i testsrc=size=640x360:rate=25 \
        -t "$duration" -vf "$f" -c:v libx264 -pix_fmt yuv420p "$2"
}
log "generating $videos videos of ${duration}s (640x360, 25 fps) + a cache probe in $scratch"
mkdir -p "$scratch/v"
set --
for ((i = 0; i < videos; i++)); do
    make_video "$i" "$scratch/v/$(printf %03d "$i").mp4"
    set -- "$@" "$scratch/v/$(printf %03d "$i").mp4"
done
make_video 99 "$scratch/probe.mp4"
run() { taskset -c "$cpus" "$@"; }

# --- baseline ----------------------------------------------------------------
port=$(free_port)
log "baseline: model server on :$port (cpus $cpus)"
TMPDIR=$scratch run "$bin/ocr-baseline" server --listen "127.0.0.1:$port" --threads 1 \
    >"$scratch/base-server.log" 2>&1 &
spid=$!
pids+=("$spid")
for _ in $(seq 300); do grep -q '^ready' "$scratch/base-server.log" && break; sleep 0.1; done
grep -q '^ready' "$scratch/base-server.log" || { cat "$scratch/base-server.log" >&2; exit 1; }
log "baseline: warm-up (1 video)"
TMPDIR=$scratch run "$bin/ocr-baseline" client --server "127.0.0.1:$port" --concurrency 1 "$1" >/dev/null
log "baseline: $videos videos, $conc in flight"
t0=$(ticks "$spid")
base=$(TMPDIR=$scratch run "$bin/ocr-baseline" client --server "127.0.0.1:$port" \
    --concurrency "$conc" --texts "$scratch/base.tsv" "$@")
base+=" server_cpu_s=$(echo "$(ticks "$spid") $t0 $hz" | awk '{print ($1 - $2) / $3}')"
kill "$spid"
log "baseline: $base"

# --- citadel -----------------------------------------------------------------
port=$(free_port)
cat >"$scratch/video.toml" <<EOF
[[plugin]]
name = "decode"
exec = "$bin/citadel-media-ffmpeg"
args = ["--threads", "1"]
cores = "none"
ring-capacity = "512mb"
timeout-ms = 120000
[[plugin]]
name = "ocr"
exec = "$bin/citadel-infer-onnx"
args = ["--threads", "1"]
cores = "none"
ring-capacity = "64mb"
timeout-ms = 120000
[[pipeline]]
name = "video-ocr"
stages = ["decode", "ocr"]
timeout-ms = 120000
EOF
log "citadel: server on :$port (cpus $cpus)"
run "$bin/citadel" --port "$port" --threads 1 --maxmemory 256mb --fresh \
    --cache-file "$scratch/citadel.cache" --config "$scratch/video.toml" \
    >"$scratch/citadel.log" 2>&1 &
cpid=$!
pids+=("$cpid")
for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
log "citadel: warm-up (1 video)"
run "$bin/ocr-baseline" client --citadel "127.0.0.1:$port" --concurrency 1 "$1" >/dev/null
procs() { echo "$cpid" $(pgrep -P "$cpid" || true); }
log "citadel: $videos videos, $conc in flight (processes: $(procs))"
t0=$(ticks $(procs))
cit=$(run "$bin/ocr-baseline" client --citadel "127.0.0.1:$port" \
    --concurrency "$conc" --texts "$scratch/cit.tsv" "$@")
cit+=" server_cpu_s=$(echo "$(ticks $(procs)) $t0 $hz" | awk '{print ($1 - $2) / $3}')"
log "citadel: $cit"
log "citadel: cached call (a first call of an unseen video, then 100 cached calls)"
cached=$(run "$bin/ocr-baseline" cached --citadel "127.0.0.1:$port" --repeat 100 "$scratch/probe.mp4")
log "citadel: $cached"

# --- report ------------------------------------------------------------------
same=$(comm -12 <(sort "$scratch/base.tsv") <(sort "$scratch/cit.tsv") | wc -l)
python3 - "$base" "$cit" "$cached" "$same" "$(wc -l <"$scratch/base.tsv")" \
    "$(wc -l <"$scratch/cit.tsv")" <<'EOF' | tee "$out"
import os, sys
kv = lambda s: {k: float(v) for k, v in (x.split("=") for x in s.split())}
base, cit, cached = kv(sys.argv[1]), kv(sys.argv[2]), kv(sys.argv[3])
same, nb, nc = sys.argv[4:7]
def row(name, r):
    cpu = r["cpu_self_s"] + r["cpu_children_s"] + r["server_cpu_s"]
    r["fps"] = r["frames"] / r["wall_s"]
    r["cpf"] = cpu / max(r["frames"], 1)
    return (f"| {name:8} | {r['videos']:6.0f} | {r['frames']:6.0f} | {r['wall_s']:6.1f} | "
            f"{r['videos'] / r['wall_s']:8.3f} | {r['fps']:8.2f} | {r['cpf']:11.3f} | "
            f"{r['p50_ms']:8.0f} | {r['p99_ms']:8.0f} |")
env = os.environ
print(f"# video OCR: Citadel pipeline vs the seed's shape (cpus {env.get('CPUS', '0,1')}, "
      f"concurrency {env.get('CONCURRENCY', '2')}, 1 OCR process x 1 intra-op thread)")
print("| setup    | videos | frames | wall s | videos/s | frames/s | CPU s/frame | p50 ms   | p99 ms   |")
print("|----------|--------|--------|--------|----------|----------|-------------|----------|----------|")
print(row("baseline", base))
print(row("citadel", cit))
print(f"Citadel/baseline: frames/s {cit['fps'] / base['fps']:.2f}x, "
      f"CPU per frame {cit['cpf'] / base['cpf']:.2f}x")
print(f"cached call: first {cached['first_ms']:.0f} ms, cached {cached['cached_us']:.0f} us "
      f"(median of 100), ratio {cached['ratio']:.0f}x")
print(f"sanity: {same} identical line texts (per video, as multisets); "
      f"baseline {nb} lines, citadel {nc} lines")
EOF
log "report written to $out"
