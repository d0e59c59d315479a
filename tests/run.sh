#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run).
#
# 1. Installs what the tests need when missing (Debian packages redis-server,
#    redis-tools, memcached, python3-pip, postgresql, ffmpeg and its -dev
#    libraries, libclang-dev, fonts-dejavu-core, etcd-server, systemd; the
#    Python packages redis, pytest, pyyaml, onnxruntime and rapidocr-onnxruntime), as root or through
#    sudo. apt-get update runs only when a package is missing. Installs the
#    Python RPC client (proto/python) with pip.
# 2. Builds the workspace in release mode and runs `cargo test --workspace
#    --release` (one optimized build serves both the binary under test and
#    the test harnesses, so 2 cores finish well inside the time budget).
# 3. Runs the Python end-to-end tests (pytest when available, else the
#    file's own runner) and prints `python: N passed, M failed`.
# 4. Runs the loom models that need `--cfg loom` (a separate target dir) and
#    every cargo-fuzz target for CITADEL_FUZZ_SECONDS (default 20) each
#    (tests/fuzz.sh; needs the nightly toolchain, installs cargo-fuzz).
# Exits non-zero if anything failed. Tests start their own servers on free
# ports and kill them; no service already running is touched.
set -uo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Each step names the disk space left where the builds go: a CI machine's
# disk is what runs out first (the release build and its ~80 test binaries,
# then loom's and the fuzzers' builds).
step() {
    local free
    free=$(df -h --output=avail "${CARGO_TARGET_DIR:-$PWD}" 2>/dev/null | tail -n 1 | tr -d ' ')
    printf '\n==> %s (disk free: %s, %d s in)\n' "$*" "${free:-?}" "$SECONDS"
}

install_deps() {
    local missing=()
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
    command -v memcached >/dev/null 2>&1 || missing+=(memcached)
    python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
    # The media stage (ffmpeg-next builds against these, bindgen needs
    # libclang) and the test videos (ffmpeg CLI, drawtext with DejaVu).
    command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
    pkg-config --exists libavcodec libavformat libavutil libswscale libavfilter libavdevice 2>/dev/null \
        || missing+=(pkg-config libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavfilter-dev libavdevice-dev)
    # (libclang itself: libclang-cpp, which other packages pull in, is not it.)
    compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null || missing+=(libclang-dev)
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
    # Cluster membership tests start their own etcd (the package's service,
    # if the host starts one, is on the default ports the tests never use).
    command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
    # The deployment tests: systemd-analyze verify of deploy/systemd.
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    # The metrics tests: promtool and a Prometheus server they start (the
    # package's service, if the host starts one, is on a port they never
    # use); citadel-top is driven inside tmux.
    { command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing+=(prometheus)
    command -v tmux >/dev/null 2>&1 || missing+=(tmux)
    if [ ${#missing[@]} -gt 0 ]; then
        step "installing ${missing[*]}"
        $SUDO apt-get update -qq || return 1
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null || return 1
    fi
    local pkgs=()
    python3 -c 'import redis' 2>/dev/null || pkgs+=(redis)
    python3 -c 'import pytest' 2>/dev/null || pkgs+=(pytest)
    # The deployment tests load deploy/k8s with PyYAML.
    python3 -c 'import yaml' 2>/dev/null || pkgs+=(pyyaml)
    # The OCR stage: ONNX Runtime's library and the PP-OCRv4 models.
    python3 -c 'import onnxruntime' 2>/dev/null || pkgs+=(onnxruntime)
    python3 -c 'import rapidocr_onnxruntime' 2>/dev/null || pkgs+=(rapidocr-onnxruntime)
    if [ ${#pkgs[@]} -gt 0 ]; then
        step "pip install ${pkgs[*]}"
        python3 -m pip install -q "${pkgs[@]}" 2>/dev/null \
            || python3 -m pip install -q --break-system-packages "${pkgs[@]}" 2>/dev/null \
            || python3 -m pip install -q --user --break-system-packages "${pkgs[@]}" \
            || echo "warning: pip install ${pkgs[*]} failed"
    fi
    # The RPC client under test (proto/python), reinstalled each run so the
    # tests exercise the package as users install it.
    step "pip install ./proto/python"
    python3 -m pip install -q ./proto/python 2>/dev/null \
        || python3 -m pip install -q --break-system-packages ./proto/python 2>/dev/null \
        || python3 -m pip install -q --user --break-system-packages ./proto/python \
        || echo "warning: pip install ./proto/python failed"
    python3 -c 'import redis' || return 1
}

run_python() {
    local junit rc
    junit=$(mktemp)
    if python3 -c 'import pytest' 2>/dev/null; then
        python3 -m pytest -q -p no:cacheprovider --junitxml="$junit" tests/python plugins/python/tests proto/python/tests
        rc=$?
        python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
    suites = [root] if root.tag == "testsuite" else list(root)
    total = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    skipped = sum(int(s.get("skipped", 0)) for s in suites)
    print(f"python: {total - bad - skipped} passed, {bad} failed")
except Exception as e:
    print(f"python: 0 passed, 1 failed ({e})")
PY
    else
        python3 tests/python/test_citadel.py
        rc=$?
        python3 tests/python/test_cluster.py || rc=1
        python3 tests/python/test_collections.py || rc=1
        python3 tests/python/test_zsets.py || rc=1
        python3 tests/python/test_cluster_proxy.py || rc=1
        python3 tests/python/test_sets.py || rc=1
        python3 plugins/python/tests/run.py || rc=1
    fi
    rm -f "$junit"
    return $rc
}

# Models of the cache's seqlock and free list and of the ring cursors, which
# swap the real atomics for loom's (the flights model runs with cargo test).
run_loom() {
    local dir="${CARGO_TARGET_DIR:-$PWD/target}/loom"
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$dir" LOOM_MAX_PREEMPTIONS=3 \
        cargo test --release -p citadel-cache --test loom_seqlock --test loom_free_list \
        --test loom_occupancy || return 1
    RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$dir" \
        cargo test --release -p citadel-proto --test loom_ring || return 1
}

failed=()
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

step "dependencies"
install_deps || failed+=("dependencies")

step "cargo build --workspace --release"
if ! cargo build --workspace --release; then
    echo "build failed"
    exit 1
fi
export CITADEL_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/citadel"

step "cargo test --workspace --release --no-fail-fast"
cargo test --workspace --release --no-fail-fast || failed+=("cargo test")

step "python end-to-end tests"
run_python || failed+=("python tests")

step "loom models (--cfg loom)"
run_loom || failed+=("loom")

step "fuzz targets, ${CITADEL_FUZZ_SECONDS:-20} s each"
bash tests/fuzz.sh "${CITADEL_FUZZ_SECONDS:-20}" || failed+=("fuzz")

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (after $SECONDS s)"
    exit 1
fi
echo "all tests passed in $SECONDS s"
