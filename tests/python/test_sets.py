"""Set commands end to end with redis-py (RESP2 and RESP3 clients).

Runs under pytest, or standalone (`python3 test_sets.py`) with a closing
`python: N passed, M failed` line. The server binary is $CITADEL_BIN, else
<target>/release/citadel.
"""

import os
import sys

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


def r(protocol=2):
    return SERVER.client(decode_responses=True, protocol=protocol)


def test_members_and_membership():
    c = r()
    c.delete("py:s")
    assert c.sadd("py:s", "a", "b", "c", "a") == 3
    assert c.smembers("py:s") == {"a", "b", "c"}
    assert c.sismember("py:s", "a") and not c.sismember("py:s", "z")
    assert c.smismember("py:s", ["a", "z"]) == [1, 0]
    assert c.scard("py:s") == 3
    assert c.srem("py:s", "a", "z") == 1
    assert c.type("py:s") == "set"
    assert c.object("encoding", "py:s") == "hashtable"
    c.delete("py:ints")
    c.sadd("py:ints", 3, 1, 2)
    assert c.object("encoding", "py:ints") == "intset"
    assert c.sscan("py:ints") == (0, ["1", "2", "3"])  # sorted, as an intset


def test_algebra_and_store():
    c = r()
    c.delete("py:a", "py:b", "py:d")
    c.sadd("py:a", "1", "2", "3", "x")
    c.sadd("py:b", "2", "3", "4")
    assert c.sinter("py:a", "py:b") == {"2", "3"}
    assert c.sunion("py:a", "py:b") == {"1", "2", "3", "4", "x"}
    assert c.sdiff("py:a", "py:b") == {"1", "x"}
    assert c.sintercard(2, ["py:a", "py:b"]) == 2
    assert c.sintercard(2, ["py:a", "py:b"], limit=1) == 1
    c.set("py:d", "a string", ex=100)
    assert c.sunionstore("py:d", ["py:a", "py:b"]) == 5
    assert c.type("py:d") == "set" and c.ttl("py:d") == -1
    assert c.sinterstore("py:d", ["py:a", "py:missing"]) == 0
    assert c.exists("py:d") == 0
    assert c.smove("py:a", "py:b", "x") is True
    assert c.smove("py:a", "py:b", "x") is False
    assert "x" in c.smembers("py:b")


def test_random_picks_and_scan():
    c = r()
    c.delete("py:r")
    members = {f"m{i}" for i in range(100)}
    c.sadd("py:r", *members)
    picks = c.srandmember("py:r", 10)
    assert len(picks) == 10 and len(set(picks)) == 10 and set(picks) <= members
    repeats = c.srandmember("py:r", -300)
    assert len(repeats) == 300 and set(repeats) <= members
    popped = c.spop("py:r", 30)
    assert len(popped) == 30 and set(popped) <= members
    assert c.scard("py:r") == 70
    assert set(c.sscan_iter("py:r", count=7)) == members - set(popped)
    assert set(c.sscan_iter("py:r", match="m1*")) == {m for m in members - set(popped) if m.startswith("m1")}
    assert c.spop("py:r", 1000) and c.exists("py:r") == 0
    assert c.spop("py:r") is None


def test_resp3_replies_are_sets():
    c = r(protocol=3)
    c.delete("py:3")
    c.sadd("py:3", "a", "b")
    assert c.execute_command("SMEMBERS", "py:3") == {"a", "b"}
    assert c.execute_command("SUNION", "py:3", "py:none") == {"a", "b"}
    c.set("py:str", "x")
    try:
        c.sadd("py:str", "a")
        raise AssertionError("SADD on a string must fail")
    except redis.ResponseError as e:
        assert str(e).startswith("WRONGTYPE")


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
