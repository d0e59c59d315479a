#!/usr/bin/env python3
"""COPY, RENAME and ZRANGESTORE of paged collections, wall clock (a bench,
not a test): a 100,000-member sorted set and a 100,000-element list in one
citadel (--threads 1), then ms per COPY ... REPLACE, per RENAME, and per
ZRANGESTORE of 100 members. Compare two binaries run one after the other.

Usage: benches/collections-copy.py CITADEL_BINARY PORT
"""
import redis, subprocess, sys, time, tempfile, os, random
binary, port = sys.argv[1], int(sys.argv[2])
d = tempfile.mkdtemp(dir="/dev/shm")
p = subprocess.Popen([binary, "--port", str(port), "--threads", "1", "--cache-file", d + "/cache", "--maxmemory", "1gb"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    r = redis.Redis(port=port)
    for _ in range(100):
        try:
            r.ping(); break
        except Exception:
            time.sleep(0.1)
    rnd = random.Random(7)
    n = 100_000
    for b in range(n // 1000):
        r.zadd("z", {f"member:{b*1000+i}": rnd.random() for i in range(1000)})
    for b in range(n // 1000):
        r.rpush("l", *[f"element:{b*1000+i}" for i in range(1000)])
    res = {}
    for key in ["z", "l"]:
        t = time.perf_counter()
        for i in range(10):
            r.copy(key, key + "c", replace=True)
        res[f"copy_{key}"] = (time.perf_counter() - t) / 10 * 1000
        t = time.perf_counter()
        for i in range(10):
            r.rename(key, key + "m"); r.rename(key + "m", key)
        res[f"rename_{key}"] = (time.perf_counter() - t) / 20 * 1000
    t = time.perf_counter()
    for i in range(100):
        r.zrangestore("d", "z", 5000, 5099)
    res["zrangestore_100_of_100k"] = (time.perf_counter() - t) / 100 * 1000
    assert r.zcard("zc") == n and r.llen("lc") == n
    print(" ".join(f"{k}={v:.2f}ms" for k, v in res.items()))
finally:
    p.terminate(); p.wait()
