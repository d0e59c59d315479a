#!/usr/bin/env bash
# GET round-trip latency of the blocking Rust client over shared memory, the
# Unix socket and TCP, against one citadel server (--threads 1, private cache
# file in /dev/shm, private RPC port and socket paths).
#
# Usage: benches/rpc-roundtrip.sh [rpc-roundtrip flags, e.g. --small-iters 20000]
# Env:   CARGO_TARGET_DIR (where the release binaries are built),
#        CITADEL (a citadel binary to measure instead of the one built here),
#        CLIENT_CPUS (taskset list for the client, e.g. 1: on a small host keep
#        it off the server thread's core, which polls shared memory).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release -q -p citadel-server \
    && cargo build --release -q -p citadel-benches --bin rpc-roundtrip)
citadel=${CITADEL:-$target/release/citadel}

scratch=$(mktemp -d /dev/shm/citadel-rpc-roundtrip.XXXXXX)
server=
cleanup() {
    if [[ -n $server ]]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
rpc_port=$(free_port)
"$citadel" --port "$port" --threads 1 --cache-file "$scratch/cache" --maxmemory 256mb \
    --discovery-dir "$scratch/discovery" \
    --rpc-port "$rpc_port" --rpc-unixsocket "$scratch/rpc.sock" --shm-socket "$scratch/shm.sock" \
    >"$scratch/server.log" 2>&1 &
server=$!
for _ in $(seq 200); do
    [[ -S $scratch/shm.sock && -S $scratch/rpc.sock ]] \
        && (exec 3<>"/dev/tcp/127.0.0.1/$rpc_port") 2>/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$scratch/server.log"; exit 1; }
    sleep 0.05
done

${CLIENT_CPUS:+taskset -c "$CLIENT_CPUS"} "$target/release/rpc-roundtrip" --rpc-port "$rpc_port" \
    --rpc-unixsocket "$scratch/rpc.sock" --shm-socket "$scratch/shm.sock" "$@"
