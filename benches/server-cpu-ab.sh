#!/usr/bin/env bash
# Server CPU per operation of two Citadel builds (before/after a change) with
# redis-server beside them: benches/server-cpu.sh without the floor servers.
#
# Usage: benches/server-cpu-ab.sh [ROUNDS] [REQUESTS_P1] [REQUESTS_P16]
# Env:   SERVERS (default "citadel=target/release/citadel redis=redis-server"),
#        CLIENTS, OPS, PIPELINES as in server-cpu.sh; OUT (default target/server-cpu-ab).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
export SERVERS=${SERVERS:-"citadel=$target/release/citadel redis=redis-server"}
export OUT=${OUT:-$target/server-cpu-ab}
exec "$root/benches/server-cpu.sh" "$@"
