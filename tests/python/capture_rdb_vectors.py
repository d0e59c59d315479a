"""Captures DUMP payloads of Redis 7.0 as test vectors for the RDB codec
(server/collections/src/rdb/tests.rs): key, OBJECT ENCODING, payload hex,
TYPE and the canonical elements (hex; sets and hashes sorted)."""
import redis, sys
# Usage: redis-server --port P --save '' --enable-debug-command yes &
#        python3 tests/python/capture_rdb_vectors.py P > server/collections/testdata/redis7_dumps.tsv
# (then put back the two header lines). Needs redis-py.
r = redis.Redis(port=int(sys.argv[1]))
r.flushall()
def canon(k):
    t = r.type(k).decode()
    if t == 'string': els = [r.get(k)]
    elif t == 'list': els = r.lrange(k, 0, -1)
    elif t == 'set': els = sorted(r.smembers(k))
    elif t == 'hash':
        els = []
        for f, v in sorted(r.hgetall(k).items()): els += [f, v]
    elif t == 'zset':
        els = []
        for m, s in r.zrange(k, 0, -1, withscores=True): els += [m, repr(s).encode()]
    return t, ','.join(e.hex() for e in els)
r.set("string_short", "hello")
r.set("string_int8", "12")
r.set("string_int16", "-1234")
r.set("string_int32", "123456789")
r.set("string_int64", "12345678901234")
r.set("string_lzf", "abc" * 40)
r.set("string_binary", bytes(range(256)))
r.set("string_empty", "")
r.hset("hash_listpack", mapping={"f1": "v1", "n": "42", "neg": "-70000", "big": "9223372036854775807", "m": "-9223372036854775808", "e": ""})
for i in range(300): r.hset("hash_table", "field:%d" % i, "value:%d" % i)
r.hset("hash_long_value", mapping={"a": "x" * 100, "b": "1"})
r.sadd("set_intset", 1, 2, 3, -5, 100000, 5000000000, -9223372036854775808)
r.sadd("set_intset16", 1, 2, 3, -5)
r.sadd("set_table", "a", "b", "c", "")
r.zadd("zset_listpack", {"a": 1.5, "b": -2, "c": 3e10, "d": 100, "e": float('inf'), "f": float('-inf'), "g": 0.1})
r.zadd("zset_skiplist", {("m%d" % i): i * 0.5 - 7 for i in range(200)})
r.rpush("list_small", "a", "1", "-20", "hello world", "x" * 100, "4294967296", "-100000", "300", "-5000000", "")
r.rpush("list_big", *["e%d" % i for i in range(1000)])
r.rpush("list_long", *["%d" % i + "y" * 200 for i in range(100)])
r.execute_command("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "100")
r.rpush("list_plain", "y" * 200, "z", "w" * 150, "q")
for k in sorted(r.keys()):
    v = r.dump(k)
    t, c = canon(k)
    enc = r.object("encoding", k).decode()
    print(k.decode(), enc, v.hex(), t, c, sep='\t')
