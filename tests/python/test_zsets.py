"""Sorted sets through redis-py: its zset helpers (which parse scores and
WITHSCORES replies) in RESP2 and RESP3, errors, and a small leaderboard.

Runs under pytest, or standalone (`python3 test_zsets.py`) with a closing
`python: N passed, M failed` line. The server binary is $CITADEL_BIN, else
<target>/release/citadel.
"""

import os
import sys
import threading

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_citadel import Citadel, run_tests  # noqa: E402

SERVER = None


def setup_module(module=None):
    global SERVER
    SERVER = Citadel()


def teardown_module(module=None):
    if SERVER:
        SERVER.cleanup()


def client(protocol=2):
    return SERVER.client(decode_responses=True, protocol=protocol)


def pairs(reply):
    """WITHSCORES replies: tuples in RESP2, lists in RESP3."""
    return [tuple(p) for p in reply]


def test_zadd_scores_and_ranges():
    for protocol in (2, 3):
        r = client(protocol)
        key = f"py:z:{protocol}"
        r.delete(key)
        assert r.zadd(key, {"a": 1, "b": 2.5, "c": -1}) == 3
        assert r.zadd(key, {"a": 5}, gt=True, ch=True) == 1
        assert r.zadd(key, {"a": 1}, gt=True, ch=True) == 0
        assert r.zincrby(key, 0.5, "b") == 3.0
        assert r.zscore(key, "a") == 5.0
        assert r.zmscore(key, ["a", "nope"]) == [5.0, None]
        assert r.zcard(key) == 3
        assert r.zrank(key, "c") == 0 and r.zrevrank(key, "c") == 2
        assert pairs(r.zrange(key, 0, -1, withscores=True)) == [("c", -1.0), ("b", 3.0), ("a", 5.0)]
        assert r.zrange(key, "(0", "+inf", byscore=True) == ["b", "a"]
        assert pairs(r.zrevrangebyscore(key, 10, 0, withscores=True)) == [("a", 5.0), ("b", 3.0)]
        assert r.zcount(key, "-inf", "(5") == 2
        assert pairs(r.zpopmin(key, 1)) == [("c", -1.0)]
        assert pairs(r.zpopmax(key, 2)) == [("a", 5.0), ("b", 3.0)]
        assert r.exists(key) == 0


def test_lex_algebra_and_stores():
    r = client()
    r.delete("py:lex", "py:u1", "py:u2", "py:dst")
    r.zadd("py:lex", {m: 0 for m in "abcdef"})
    assert r.zrangebylex("py:lex", "[b", "(e") == ["b", "c", "d"]
    assert r.zlexcount("py:lex", "-", "+") == 6
    assert r.zremrangebylex("py:lex", "-", "[b") == 2
    r.zadd("py:u1", {"x": 1, "y": 2})
    r.zadd("py:u2", {"y": 10, "z": 3})
    assert r.zunion(["py:u1", "py:u2"], withscores=True) == [("x", 1.0), ("z", 3.0), ("y", 12.0)]
    assert r.zinterstore("py:dst", {"py:u1": 2, "py:u2": 1}) == 1
    assert r.zscore("py:dst", "y") == 14.0
    assert r.zdiff(["py:u1", "py:u2"]) == ["x"]
    assert r.zrangestore("py:dst", "py:lex", 0, 1) == 2
    assert r.zrange("py:dst", 0, -1) == ["c", "d"]


def test_errors():
    r = client()
    r.set("py:str", "v")
    for call in (lambda: r.zadd("py:str", {"a": 1}), lambda: r.zrange("py:str", 0, 1)):
        try:
            call()
            raise AssertionError("no WRONGTYPE")
        except redis.exceptions.ResponseError as e:
            assert str(e).startswith("WRONGTYPE")
    try:
        r.execute_command("ZADD", "py:z", "NX", "XX", "1", "a")
        raise AssertionError("no error")
    except redis.exceptions.ResponseError as e:
        assert "not compatible" in str(e)
    try:
        r.execute_command("ZINCRBY", "py:inf", "inf", "a")
        r.execute_command("ZINCRBY", "py:inf", "-inf", "a")
        raise AssertionError("no NaN error")
    except redis.exceptions.ResponseError as e:
        assert str(e) == "resulting score is not a number (NaN)"


def test_concurrent_leaderboard():
    SERVER.client().delete("py:board")
    per_thread, threads = 300, 4

    def play(t):
        r = client()
        for i in range(per_thread):
            r.zincrby("py:board", t + 1, f"p{i % 5}")

    workers = [threading.Thread(target=play, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    board = dict(client().zrange("py:board", 0, -1, withscores=True))
    total = per_thread // 5 * sum(t + 1 for t in range(threads))
    assert board == {f"p{i}": float(total) for i in range(5)}


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
