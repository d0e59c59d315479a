#!/usr/bin/env bash
# Outbound MIGRATE, Citadel vs redis-server, in one run: each source holds
# the same KEYS small strings (and as many 100-element hashes) and moves
# them to its own fresh redis-server target, first one MIGRATE per key
# (a round trip each, the cached connection reused), then all in one
# MIGRATE ... KEYS. Prints each source's time and the Citadel/Redis ratio
# (wall clock: compare only figures of the same run). Sources on core 0,
# targets and the client on core 1 where the machine has two.
#
# Usage: benches/migrate-vs-redis.sh [KEYS]   (default 2000)
#   CITADEL=PATH   the binary (default: the workspace's release build)
set -euo pipefail

keys=${1:-2000}
root=$(cd "$(dirname "$0")/.." && pwd)
citadel=${CITADEL:-${CARGO_TARGET_DIR:-$root/target}/release/citadel}
work=$(mktemp -d /dev/shm/citadel-migrate-bench.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(port); cport=$(port); rtarget=$(port); ctarget=$(port)
other=$(($(nproc) > 1 ? 1 : 0))
cleanup() {
    for p in "$rport" "$cport" "$rtarget" "$ctarget"; do
        redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
redis() { taskset -c "$1" redis-server --port "$2" --save '' --appendonly no --dir "$work" \
    --daemonize yes --logfile "$work/redis-$2.log"; }
redis 0 "$rport"
redis "$other" "$rtarget"
redis "$other" "$ctarget"
taskset -c 0 "$citadel" --port "$cport" --threads 1 --cache-file "$work/cache" --maxmemory 256mb \
    --rpc-port 0 --discovery-dir "$work/discovery" >"$work/citadel.log" 2>&1 &
for p in "$rport" "$cport" "$rtarget" "$ctarget"; do
    until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.05; done
done
taskset -c "$other" python3 - "$keys" "$rport" "$rtarget" "$cport" "$ctarget" <<'PY'
import sys, time
import redis
keys, rport, rtarget, cport, ctarget = map(int, sys.argv[1:])

def fill(r):
    p = r.pipeline(transaction=False)
    for i in range(keys):
        p.set("s:%d" % i, "v" * 32)
        p.hset("h:%d" % i, mapping={"f%d" % j: j for j in range(100)})
    p.execute()

def one_by_one(r, target):
    t = time.perf_counter()
    for i in range(keys):
        assert r.migrate("127.0.0.1", target, "s:%d" % i, 0, 5000) in (b"OK", "OK")
    return time.perf_counter() - t

def all_at_once(r, target):
    t = time.perf_counter()
    assert r.migrate("127.0.0.1", target, ["h:%d" % i for i in range(keys)], 0, 60000) in (b"OK", "OK")
    return time.perf_counter() - t

rows = []
for name, run in (("one MIGRATE per string key", one_by_one), ("hashes in one MIGRATE KEYS", all_at_once)):
    got = {}
    for who, port, target in (("redis", rport, rtarget), ("citadel", cport, ctarget)):
        r = redis.Redis(port=port)
        if run is one_by_one:
            fill(r)
        got[who] = run(r, target)
        assert r.dbsize() == (keys if run is one_by_one else 0), (who, r.dbsize())
    rows.append((name, got["redis"], got["citadel"]))
print("%d keys; seconds (redis, citadel, citadel/redis)" % keys)
for name, r, c in rows:
    print("  %-30s %7.3f %7.3f %5.2fx" % (name, r, c, c / r))
PY
