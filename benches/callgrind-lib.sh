# Sourced by the callgrind benches (collections-callgrind.sh,
# server-cpu-callgrind.sh): a server under valgrind --tool=callgrind, its
# counters zeroed and dumped around a redis-benchmark run, and the dump's
# instructions per request. Instruction counts are deterministic where CPU
# time on a shared, loaded machine is not.
#
#   cg_start SERVER OUT DIR   starts citadel (--threads 1; core admission off
#                             unless OVERLOAD_TARGET_US=N sets its target;
#                             CITADEL_ARGS adds arguments, e.g. --config) or
#                             redis (--save '') under callgrind, writing OUT;
#                             sets $pid and $port; waits until it answers
#   cg_control FLAG           callgrind_control FLAG (-z zero, -d dump) on it
#   cg_finish OUT REQUESTS    stops it; prints the dumps' total instructions
#                             (every thread) / REQUESTS; KEEP=DIR keeps them
#   cg_measure OUT REQUESTS LOG ARGS...  zeroes the counters, runs
#                             redis-benchmark ARGS (-p set) into LOG, dumps,
#                             then cg_finish
# Needs $citadel (the binary) set by the caller.

command -v valgrind >/dev/null || { echo "valgrind missing (apt-get install valgrind)" >&2; exit 1; }
pid=""
port=""

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cg_start() { # server out dir
    local server=$1 out=$2 dir=$3
    port=$(free_port)
    case $server in
        citadel) valgrind --tool=callgrind --callgrind-out-file="$out" "$citadel" --port "$port" \
                     --rpc-port 0 --threads 1 --fresh --cache-file "$dir/cache.$port" --maxmemory 256mb \
                     --overload-delay-target-us "${OVERLOAD_TARGET_US:-0}" ${CITADEL_ARGS:-} >"$dir/log.$port" 2>&1 & ;;
        redis) valgrind --tool=callgrind --callgrind-out-file="$out" redis-server --port "$port" \
                   --save '' --appendonly no >"$dir/log.$port" 2>&1 & ;;
        *) echo "unknown server $server (citadel or redis)" >&2; exit 2 ;;
    esac
    pid=$!
    for _ in $(seq 300); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "$server did not start: $(cat "$dir/log.$port")" >&2
    exit 1
}

# callgrind_control blocks until the server's next system call: keep the
# server busy with PINGs until it returns.
cg_control() { # flag
    callgrind_control "$1" "$pid" >/dev/null 2>&1 &
    local c=$!
    while kill -0 "$c" 2>/dev/null; do redis-cli -p "$port" ping >/dev/null 2>&1; sleep 0.3; done
}

cg_finish() { # out requests
    local out=$1 requests=$2 total=0 f n
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
    for f in "$out"*; do
        n=$(awk '/^summary:/ {print $2}' "$f")
        total=$((total + ${n:-0}))
        [[ -n ${KEEP:-} ]] && cp "$f" "$KEEP/$(basename "$f")"
    done
    echo $((total / requests))
}

cg_measure() { # out requests log redis-benchmark-args...
    local out=$1 requests=$2 log=$3
    shift 3
    rm -f "$out"*
    cg_control -z
    redis-benchmark -p "$port" "$@" >"$log" 2>&1
    cg_control -d
    cg_finish "$out" "$requests"
}
