"""Numbered databases with redis-py: `db=1` clients (as Celery, Django and
`redis://host:6379/1` configure them), URLs, MOVE and SWAPDB.

Runs under pytest, or standalone (`python3 test_databases.py`) with a
closing `python: N passed, M failed` line. The server binary is
$CITADEL_BIN, else <target>/release/citadel.
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


def test_a_db_1_client_sees_its_own_keys():
    zero = SERVER.client(decode_responses=True)
    one = SERVER.client(db=1, decode_responses=True)
    zero.flushall()
    zero.set("py:k", "zero")
    assert one.get("py:k") is None
    one.set("py:k", "one")
    one.rpush("py:q", "a", "b")
    assert zero.get("py:k") == "zero"
    assert one.dbsize() == 2 and zero.dbsize() == 1
    assert sorted(one.keys("py:*")) == ["py:k", "py:q"]
    assert one.info("keyspace") == {"db0": {"keys": 1, "expires": 0, "avg_ttl": 0},
                                    "db1": {"keys": 2, "expires": 0, "avg_ttl": 0}}
    assert one.client_info()["db"] in (1, "1")


def test_urls_pools_move_and_swapdb():
    url = "redis://127.0.0.1:%d/2" % SERVER.port
    two = redis.Redis.from_url(url, decode_responses=True)
    two.flushdb()
    two.set("py:m", "v")
    assert two.move("py:m", 3)
    three = SERVER.client(db=3, decode_responses=True)
    assert three.get("py:m") == "v" and two.get("py:m") is None
    assert two.swapdb(2, 3)
    assert two.get("py:m") == "v" and three.get("py:m") is None
    pool = redis.ConnectionPool(host="127.0.0.1", port=SERVER.port, db=2, decode_responses=True)
    pooled = redis.Redis(connection_pool=pool)
    assert [pooled.get("py:m") for _ in range(5)] == ["v"] * 5
    pipe = pooled.pipeline(transaction=True)
    pipe.set("py:t", "1").incr("py:t")
    assert pipe.execute() == [True, 2]
    assert three.get("py:t") is None


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
