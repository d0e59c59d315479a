#!/usr/bin/env python3
"""Warm restart across list layouts (a manual check, not a test: it needs
two binaries). OLD writes paged lists (LPUSH/RPUSH/LPOP/RPOP from a seeded
model), is stopped (SIGTERM, or SIGKILL with `kill`), NEW opens the same
cache file and must read them as the model says, then edit them (pushes,
pops, LINDEX, LSET, DUMP/RESTORE, COPY) and survive a kill -9 restart.

Usage: benches/collections-warm-layouts.py OLD_CITADEL NEW_CITADEL [term|kill]
(needs redis-py; uses /dev/shm/citadel-warm-layouts.cache and port 27391).
"""
import glob, os, random, shutil, signal, subprocess, sys, time
import redis

old_bin, new_bin = sys.argv[1], sys.argv[2]
cache = "/dev/shm/citadel-warm-layouts.cache"
port = 27391

def start(binary, fresh):
    args = [binary, "--port", str(port), "--rpc-port", "0", "--threads", "2",
            "--cache-file", cache, "--maxmemory", "256mb"]
    if fresh:
        args.append("--fresh")
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.devnull, "w"))
    r = redis.Redis(port=port)
    for _ in range(300):
        try:
            r.ping()
            return p, r
        except Exception:
            time.sleep(0.1)
    raise SystemExit("no start")

rng = random.Random(7)
model = {}
p, r = start(old_bin, True)
for k in range(6):
    key = f"l{k}"
    model[key] = []
    for _ in range(rng.randrange(300, 3000)):
        e = str(rng.randrange(10**6)) * rng.randrange(1, 4)
        if rng.random() < 0.5:
            r.lpush(key, e); model[key].insert(0, e)
        else:
            r.rpush(key, e); model[key].append(e)
    for _ in range(rng.randrange(0, 100)):
        if rng.random() < 0.5:
            r.lpop(key); model[key].pop(0)
        else:
            r.rpop(key); model[key].pop()
for key, m in model.items():
    assert [x.decode() for x in r.lrange(key, 0, -1)] == m, key
kill = sys.argv[3] if len(sys.argv) > 3 else "term"
p.send_signal(signal.SIGKILL if kill == "kill" else signal.SIGTERM)
p.wait()

p, r = start(new_bin, False)
for key, m in model.items():
    assert r.llen(key) == len(m), key
    assert [x.decode() for x in r.lrange(key, 0, -1)] == m, key
    assert r.lindex(key, 0).decode() == m[0]
    assert r.lindex(key, -1).decode() == m[-1]
ops = 0
for _ in range(20000):
    key = rng.choice(list(model))
    m = model[key]
    c = rng.random()
    e = str(rng.randrange(10**6))
    if c < 0.25:
        r.lpush(key, e); m.insert(0, e)
    elif c < 0.5:
        r.rpush(key, e); m.append(e)
    elif c < 0.7 and m:
        assert r.lpop(key).decode() == m.pop(0)
    elif c < 0.9 and m:
        assert r.rpop(key).decode() == m.pop()
    elif m:
        i = rng.randrange(len(m))
        assert r.lindex(key, i).decode() == m[i]
        r.lset(key, i, e); m[i] = e
    ops += 1
for key, m in model.items():
    assert [x.decode() for x in r.lrange(key, 0, -1)] == m, key
# DUMP/RESTORE and COPY of converted lists
for key, m in model.items():
    if m:
        r.restore(key + "r", 0, r.dump(key))
        assert [x.decode() for x in r.lrange(key + "r", 0, -1)] == m
        r.copy(key, key + "c")
        assert [x.decode() for x in r.lrange(key + "c", 0, -1)] == m
p.send_signal(signal.SIGKILL)
p.wait()
# and once more, a warm restart of the new layout
p, r = start(new_bin, False)
for key, m in model.items():
    assert [x.decode() for x in r.lrange(key, 0, -1)] == m, key
p.send_signal(signal.SIGTERM)
p.wait()
for leftover in glob.glob(cache + "*"):  # the file and its sidecars
    if os.path.isdir(leftover):
        shutil.rmtree(leftover)
    else:
        os.unlink(leftover)
print("warm restart across layouts: ok,", ops, "ops on", len(model), "lists")
