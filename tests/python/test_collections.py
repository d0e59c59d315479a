"""Hashes and lists end to end with redis-py (pytest, or standalone with a
closing `python: N passed, M failed` line)."""

import os
import sys

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_citadel  # noqa: E402

# One server for this module, started and stopped as test_citadel's.
setup_module = test_citadel.setup_module
teardown_module = test_citadel.teardown_module


def server():
    return test_citadel.SERVER


def client():
    return server().client(decode_responses=True)


def test_hash_round_trip():
    r = client()
    r.delete("py:h")
    assert r.hset("py:h", mapping={"a": "1", "b": "two"}) == 2
    assert r.hgetall("py:h") == {"a": "1", "b": "two"}
    assert r.hincrby("py:h", "a", 41) == 42
    assert r.hincrbyfloat("py:h", "f", 1.5) == 1.5
    assert sorted(r.hkeys("py:h")) == ["a", "b", "f"]
    assert r.hrandfield("py:h") in {"a", "b", "f"}
    assert sorted(r.hrandfield("py:h", 10)) == ["a", "b", "f"]
    cursor, fields = r.hscan("py:h", 0, match="a*")
    assert (cursor, fields) == (0, {"a": "42"})
    assert r.object("encoding", "py:h") == "listpack"
    assert r.type("py:h") == "hash"
    assert r.hdel("py:h", "a", "b", "f") == 3
    assert r.exists("py:h") == 0
    r.set("py:s", "x")
    try:
        r.hget("py:s", "a")
        raise AssertionError("HGET on a string succeeded")
    except redis.exceptions.ResponseError as e:
        assert str(e).startswith("WRONGTYPE")


def test_hash_resp3_map():
    r = redis.Redis(port=server().port, protocol=3, decode_responses=True)
    r.delete("py:h3")
    r.hset("py:h3", mapping={"x": "1", "y": "2"})
    assert r.hgetall("py:h3") == {"x": "1", "y": "2"}


def test_list_round_trip():
    r = client()
    r.delete("py:l", "py:l2")
    assert r.rpush("py:l", "a", "b", "c") == 3
    assert r.lpush("py:l", "z") == 4
    assert r.lrange("py:l", 0, -1) == ["z", "a", "b", "c"]
    assert r.lpos("py:l", "b") == 2
    assert r.linsert("py:l", "AFTER", "a", "a2") == 5
    assert r.lmove("py:l", "py:l2", "RIGHT", "LEFT") == "c"
    assert r.rpoplpush("py:l", "py:l2") == "b"
    assert r.lrange("py:l2", 0, -1) == ["b", "c"]
    assert r.lpop("py:l", 2) == ["z", "a"]
    assert r.lmpop(2, "py:none", "py:l", direction="LEFT", count=5) == ["py:l", ["a2"]]
    assert r.exists("py:l") == 0
    assert r.lpop("py:l") is None
    assert r.object("encoding", "py:l2") == "quicklist"
    assert r.type("py:l2") == "list"
    try:
        r.lset("py:none", 0, "x")
        raise AssertionError("LSET on no key succeeded")
    except redis.exceptions.ResponseError as e:
        assert str(e) == "no such key"


if __name__ == "__main__":
    sys.exit(test_citadel.run_tests(globals()))
