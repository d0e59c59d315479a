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
# Both: OCR_WORKERS OCR engines (baseline: threads of the model server;
# Citadel: instances of the OCR stage) with 1 intra-op thread each, the same PP-OCRv4 models and
# ONNX Runtime, detector LimitType::Max / max_side 960, the same videos, the
# same client (ocr-baseline client) with CONCURRENCY videos in flight, and
# every process (server, plugins, ffmpeg, client) under taskset -c CPUS.
# Both servers stay resident; each is warmed up with one video, then ROUNDS
# rounds run all videos through each setup, in alternating order (noise on
# a shared machine drifts; totals and latency percentiles are over all
# rounds). CPU = utime+stime of every process of the setup (/proc/<pid>/stat
# of the servers and plugins around each run, getrusage of the client and
# its ffmpeg children). Then a cached
# call: a first call of an unseen video vs the same call answered from the
# cache (median of 100). Sanity: the recognised line texts of both setups
# are compared per video (multiset).
#
# Usage: benches/pipeline-vs-baseline.sh [-h|--help]
# Env:   VIDEOS       test videos (default 12)
#        CLIP_SECONDS length of each, at 25 fps, 640x360 (default 10)
#        OCR_WORKERS  OCR engines per setup, 1 intra-op thread each (default 2)
#        MAX_SIDE     the OCR detector's longest side, both setups (default 960;
#                     smaller makes inference cheaper, so the rest weighs more)
#        CONCURRENCY  videos in flight per client (default 2 x OCR_WORKERS)
#        ROUNDS       rounds per setup (default 3)
#        CPUS         taskset CPU list for both setups (default 0,1)
#        OUT          report file (default target/bench/pipeline-vs-baseline.txt)
# Needs: ffmpeg, redis-cli, python3, taskset; pip onnxruntime + rapidocr-onnxruntime.
set -euo pipefail
case "${1:-}" in -h | --help) sed -n '2,/^# Needs/s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
duration=${CLIP_SECONDS:-10}

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
videos=${VIDEOS:-12}
workers=${OCR_WORKERS:-2}
max_side=${MAX_SIDE:-960}
conc=${CONCURRENCY:-$((2 * workers))}
rounds=${ROUNDS:-3}
cpus=${CPUS:-0,1}
out=${OUT:-$target/bench/pipeline-vs-baseline.txt}
bin=$target/release
mkdir -p "$(dirname "$out")"
for c in ffmpeg redis-cli python3 taskset; do
    command -v "$c" >/dev/null || { echo "$c is missing" >&2; exit 1; }
done
log() { echo "[$(date +%T)] $*" >&2; }

log "building (release): citadel, the media and OCR stages, ocr-baseline"
(cd "$root" && cargo build --release -q --workspace --bins)

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
# "comm=ticks" (utime+stime, all threads) of the given processes, summed per
# command name (several instances of one plugin are one line), sorted.
ticks() {
    for p in "$@"; do echo "$(cat "/proc/$p/comm") $(awk '{print $14 + $15}' "/proc/$p/stat")"; done |
        awk '{t[$1] += $2} END {for (k in t) print k "=" t[k]}' | sort
}
# The CPU seconds between two ticks outputs, as " cpu_<comm>_s=<s>" fields.
cpu_delta() { paste -d= <(echo "$1") <(echo "$2") | awk -F= -v hz="$hz" '{printf " cpu_%s_s=%.3f", $1, ($4 - $2) / hz}'; }
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
run() { taskset -c "$cpus" "$@"; } # (servers: taskset itself in the background, for $!)

# --- the two setups, both resident ---------------------------------------------
bport=$(free_port)
log "baseline: model server on :$bport (cpus $cpus)"
TMPDIR=$scratch taskset -c "$cpus" "$bin/ocr-baseline" server --listen "127.0.0.1:$bport" \
    --threads 1 --workers "$workers" --max-side "$max_side" >"$scratch/base-server.log" 2>&1 &
spid=$!
pids+=("$spid")
cport=$(free_port)
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
args = ["--threads", "1", "--max-side", "$max_side"]
instances = $workers
cores = "none"
ring-capacity = "64mb"
timeout-ms = 120000
[[pipeline]]
name = "video-ocr"
stages = ["decode", "ocr"]
timeout-ms = 120000
EOF
log "citadel: server on :$cport (cpus $cpus), decode x1 + ocr x$workers, --threads 1 each"
taskset -c "$cpus" "$bin/citadel" --port "$cport" --threads 1 --maxmemory 256mb --fresh \
    --cache-file "$scratch/citadel.cache" --config "$scratch/video.toml" \
    >"$scratch/citadel.log" 2>&1 &
cpid=$!
pids+=("$cpid")
for _ in $(seq 300); do grep -q '^ready' "$scratch/base-server.log" && break; sleep 0.1; done
grep -q '^ready' "$scratch/base-server.log" || { cat "$scratch/base-server.log" >&2; exit 1; }
for _ in $(seq 300); do redis-cli -p "$cport" ping >/dev/null 2>&1 && break; sleep 0.1; done
baseline=(--server "127.0.0.1:$bport")
citadel=(--citadel "127.0.0.1:$cport")
log "warm-up: 1 video through each setup"
TMPDIR=$scratch run "$bin/ocr-baseline" client "${baseline[@]}" --concurrency 1 "$1" >/dev/null
run "$bin/ocr-baseline" client "${citadel[@]}" --concurrency 1 "$1" >/dev/null
procs() { echo "$cpid" $(pgrep -P "$cpid" || true); }
for p in "$spid" $(procs); do
    log "process $p $(cat "/proc/$p/comm"), cpus $(awk '/Cpus_allowed_list/ {print $2}' "/proc/$p/status")"
done

measure() { # setup round: one client run, its summary line appended to $scratch/<setup>.runs
    local setup=$1 r=$2 servers t0 line sc
    local -n args=$setup
    shift 2
    if [ "$setup" = baseline ]; then servers=$spid; else servers=$(procs); fi
    log "round $r: $setup, $videos videos, $conc in flight"
    t0=$(ticks $servers)
    line=$(TMPDIR=$scratch run "$bin/ocr-baseline" client "${args[@]}" --concurrency "$conc" \
        --texts "$scratch/$setup.tsv" "$@")
    sc=$(cpu_delta "$t0" "$(ticks $servers)")
    log "round $r: $setup: ${line%% lat_ms=*}$sc"
    echo "$line$sc" >>"$scratch/$setup.runs"
}
for ((r = 1; r <= rounds; r++)); do # alternating order, so drifting noise hits both
    if ((r % 2)); then measure baseline "$r" "$@"; measure citadel "$r" "$@"
    else measure citadel "$r" "$@"; measure baseline "$r" "$@"; fi
done
log "citadel: cached call (a first call of an unseen video, then 100 cached calls)"
cached=$(run "$bin/ocr-baseline" cached "${citadel[@]}" --repeat 100 "$scratch/probe.mp4")
log "citadel: $cached"

# --- report --------------------------------------------------------------------
same=$(comm -12 <(sort "$scratch/baseline.tsv") <(sort "$scratch/citadel.tsv") | wc -l)
nospace() { tr -d ' ' <"$1" | sort; }
same_ns=$(comm -12 <(nospace "$scratch/baseline.tsv") <(nospace "$scratch/citadel.tsv") | wc -l)
{ echo "# line texts of only one setup: baseline<TAB><TAB>|<TAB>citadel columns (comm -3)"
  comm -3 <(sort "$scratch/baseline.tsv") <(sort "$scratch/citadel.tsv"); } >"${out%.txt}.diff"
python3 - "$scratch" "$cached" "$same" "$cpus" "$conc" "$rounds" "$same_ns" "${out%.txt}.diff" "$workers" "$max_side" \
    <<'EOF' | tee "$out"
import sys
scratch, cached, same, cpus, conc, rounds, same_ns, diff, workers, max_side = sys.argv[1:]
kv = lambda s: dict(x.split("=") for x in s.split())
def load(setup):
    runs = [kv(l) for l in open(f"{scratch}/{setup}.runs")]
    s = {k: sum(float(r[k]) for r in runs) for k in runs[0] if k != "lat_ms"}
    cpu = {k[4:-2]: v for k, v in s.items() if k.startswith("cpu_")}
    names = {"self": "client", "children": "ffmpeg CLI", "ocr-baseline": "model server",
             "citadel": "server", "citadel-media-f": "decode stage", "citadel-infer-o": "OCR stage"}
    cpu = {names.get(k, k): v for k, v in cpu.items() if v or k != "children"}
    lat = sorted(float(x) for r in runs for x in r["lat_ms"].split(","))
    pct = lambda p: lat[max(1, -(-len(lat) * p // 100)) - 1]
    s.update(fps=s["frames"] / s["wall_s"], p50=pct(50), p99=pct(99),
             cpf=sum(cpu.values()) / s["frames"],
             parts=", ".join(f"{k} {1e3 * v / s['frames']:.1f}" for k, v in cpu.items()),
             lines=sum(1 for _ in open(f"{scratch}/{setup}.tsv")))
    return s
base, cit, c = load("baseline"), load("citadel"), kv(cached)
print(f"# video OCR: Citadel pipeline vs the seed's shape; cpus {cpus}, {conc} videos in flight, "
      f"{rounds} round(s) each, {workers} OCR engine(s) x 1 intra-op thread, max side {max_side}")
print("| setup    | videos | frames | wall s | videos/s | frames/s | CPU s/frame | p50 ms | p99 ms |")
print("|----------|-------:|-------:|-------:|---------:|---------:|------------:|-------:|-------:|")
for name, s in (("baseline", base), ("citadel", cit)):
    print(f"| {name:8} | {s['videos']:6.0f} | {s['frames']:6.0f} | {s['wall_s']:6.1f} | "
          f"{s['videos'] / s['wall_s']:8.3f} | {s['fps']:8.2f} | {s['cpf']:11.3f} | "
          f"{s['p50']:6.0f} | {s['p99']:6.0f} |")
for name, s in (("baseline", base), ("citadel", cit)):
    print(f"CPU ms per frame, {name}: {s['parts']}")
print(f"Citadel/baseline: frames/s {cit['fps'] / base['fps']:.2f}x, "
      f"CPU per frame {cit['cpf'] / base['cpf']:.2f}x, p50 latency {cit['p50'] / base['p50']:.2f}x")
print(f"cached call (citadel): first {float(c['first_ms']):.0f} ms, cached {float(c['cached_us']):.0f} us "
      f"(median of 100), ratio {float(c['ratio']):.0f}x")
print(f"sanity: {same} identical line texts (per video, as multisets, last round; "
      f"{same_ns} ignoring spaces); baseline {base['lines']} lines, citadel {cit['lines']} lines")
only = [l.rstrip("\n").split("\t") for l in open(diff) if not l.startswith("#")]
for who, rows in (("baseline", [r for r in only if r[0]]), ("citadel", [r[1:] for r in only if not r[0]])):
    shown = ", ".join(f"{v}: {t!r}" for v, t in rows[:4])
    print(f"  only in {who}: {len(rows)} lines" + (f" (e.g. {shown})" if rows else ""))
EOF
log "report written to $out (texts of one setup only: ${out%.txt}.diff)"
