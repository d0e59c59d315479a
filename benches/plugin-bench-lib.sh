# Shared by the plugin benchmarks (plugin-balance.sh, plugin-placement.sh,
# plugin-upgrade.sh); sourced, not run. Sets root, target, bin and work (a
# scratch dir in /dev/shm, removed at exit with every process in `pids`),
# checks for redis-benchmark and redis-cli, and provides:
#   log MSG...                 a timestamped line on stderr
#   free_port                  a free TCP port
#   start_server PORT TOML     citadel on PORT with TOML as its config
#                              (`threads` server threads); waits for PING;
#                              sets server_pid
#   stop_server PORT           SHUTDOWN NOSAVE and wait
#   plugin_field PORT PLUGIN KEY   one PLUGIN INFO field
#   bench_csv PORT N ARGS...   one redis-benchmark run: "rps p50 p99 max" (ms)
# The caller sets `threads` and `clients` first; the report goes to $OUT
# (default target/bench/<script name>.txt), as `out`.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=$target/release
out=${OUT:-$target/bench/$(basename "$0" .sh).txt}
mkdir -p "$(dirname "$out")"
for c in redis-benchmark redis-cli; do
    command -v "$c" >/dev/null || { echo "$c is missing" >&2; exit 1; }
done

log() { echo "[$(date +%T)] $*" >&2; }

work=$(mktemp -d "/dev/shm/$(basename "$0" .sh).XXXXXX")
server_pid=
pids=()
cleanup() {
    for pid in "${pids[@]}" $server_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_server() {
    local port=$1
    printf '%s\n' "$2" >"$work/$port.toml"
    "$bin/citadel" --port "$port" --rpc-port 0 --threads "$threads" --maxmemory 64mb \
        --cache-file "$work/$port.cache" --discovery-dir "$work/$port.disc" \
        --config "$work/$port.toml" >"$work/$port.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "citadel did not start on $port; its log:" >&2
    cat "$work/$port.log" >&2
    exit 1
}

stop_server() {
    redis-cli -p "$1" shutdown nosave >/dev/null 2>&1 || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

plugin_field() {
    redis-cli -p "$1" plugin info "$2" | awk -v k="$3" 'prev == k { print; exit } { prev = $0 }'
}

bench_csv() {
    local port=$1 n=$2 csv rps p50 p99 max
    shift 2
    csv=$(redis-benchmark -p "$port" -c "$clients" -n "$n" --csv "$@" | tail -1)
    # "test","rps","avg","min","p50","p95","p99","max"
    IFS=, read -r _ rps _ _ p50 _ p99 max <<<"$(tr -d '"' <<<"$csv")"
    echo "$rps $p50 $p99 $max"
}
