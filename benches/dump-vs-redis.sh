#!/usr/bin/env bash
# DUMP and RESTORE of small collections, Citadel vs redis-server in one
# run: a 100-field hash (Redis: one listpack), a 100-member sorted set with
# fractional scores and a 100-element list. DUMP is driven by
# redis-benchmark; RESTORE by `redis-cli --pipe` sending REQUESTS/10
# `RESTORE key 0 <payload> REPLACE` of Redis's own payload for that value.
# Prints requests/s for each and the Citadel/Redis ratio (compare only
# figures of the same run). Servers on core 0, the client on core 1 where
# the machine has two. The cache file is in /dev/shm (the default place).
#
# Usage: benches/dump-vs-redis.sh [REQUESTS]   (default 200000)
#   CITADEL=PATH   the binary (default: the workspace's release build)
set -euo pipefail

requests=${1:-200000}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-${CARGO_TARGET_DIR:-$root/target}/release/citadel}
work=$(mktemp -d /dev/shm/citadel-dump-bench.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(port); cport=$(port)
other=$(($(nproc) > 1 ? 1 : 0))
cleanup() {
    for p in "$rport" "$cport"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT
taskset -c 0 redis-server --port "$rport" --save '' --appendonly no --dir "$work" \
    --daemonize yes --logfile "$work/redis.log"
taskset -c 0 "$citadel" --port "$cport" --threads 1 --cache-file "$work/cache" --maxmemory 256mb \
    --rpc-port 0 --discovery-dir "$work/discovery" --overload-delay-target-us 0 >"$work/citadel.log" 2>&1 &
for p in "$rport" "$cport"; do
    until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
done
hash=() zset=() list=()
for i in $(seq 0 99); do hash+=("field:$i" "$i"); zset+=("$i.25" "member:$i"); list+=("element-$i"); done
for p in "$rport" "$cport"; do
    redis-cli -p "$p" hset h "${hash[@]}" >/dev/null
    redis-cli -p "$p" zadd z "${zset[@]}" >/dev/null
    redis-cli -p "$p" rpush l "${list[@]}" >/dev/null
done
rate() {
    # 50 clients, pipeline 8. (Citadel runs without admission control, as
    # in benches/server-cpu.sh: on a busy machine it would shed some of a
    # standing queue this deep with -OVERLOAD, which ends redis-benchmark.)
    taskset -c "$other" redis-benchmark -p "$1" -n "$requests" -c 50 -P 8 -q dump "$2" |
        tr '\r' '\n' | grep -o '[0-9.]* requests per second' | tail -1 | cut -d' ' -f1
}
name() { case $1 in h) echo "100-field hash" ;; z) echo "100-member sorted set" ;; *) echo "100-element list" ;; esac; }
printf '%-32s %12s %12s %8s\n' "DUMP of" redis citadel ratio
for key in h z; do
    r=$(rate "$rport" "$key"); c=$(rate "$cport" "$key")
    printf '%-32s %12s %12s %7.2fx\n' "$(name "$key")" "$r" "$c" "$(echo "$c / $r" | bc -l)"
done
restores=$((requests / 10))
restore_rate() { # port file -> RESTOREs per second
    local start end
    start=$(date +%s.%N)
    taskset -c "$other" redis-cli -p "$1" --pipe <"$2" >/dev/null
    end=$(date +%s.%N)
    echo "$restores / ($end - $start)" | bc -l | cut -d. -f1
}
printf '%-32s %12s %12s %8s\n' "RESTORE REPLACE of" redis citadel ratio
for key in h z l; do
    # Redis's own payload, RESTOREd over the same key again and again.
    python3 - "$rport" "$key" "$restores" "$work/restore.$key" <<'PY'
import sys, redis
port, key, n, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
payload = redis.Redis(port=port).dump(key)
words = [b"RESTORE", ("r:" + key).encode(), b"0", payload, b"REPLACE"]
cmd = b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
open(path, "wb").write(cmd * n)
PY
    r=$(restore_rate "$rport" "$work/restore.$key"); c=$(restore_rate "$cport" "$work/restore.$key")
    printf '%-32s %12s %12s %7.2fx\n' "$(name "$key")" "$r" "$c" "$(echo "$c / $r" | bc -l)"
done
