"""Client-side caching across nodes in proxy mode, with redis-py's own
cache (RESP3, `cache_config`): a client of node 0 caches a key node 1
owns; a write on the owner, or one node 0 forwards for another client,
reaches that cache as an invalidation, so the next read sees it.

Runs under pytest, or standalone (`python3 test_cluster_tracking.py`) with
a closing `python: N passed, M failed` line. The server binary is
$CITADEL_BIN, else <target>/release/citadel.
"""

import os
import sys
import time

import redis
from redis.cache import CacheConfig

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_citadel import run_tests, start_cluster, stop_all  # noqa: E402

NODES = []


def setup_module():
    start_cluster(NODES, "--cluster-proxy", "yes")


def teardown_module():
    stop_all(NODES)


def owner_of(key):
    """The index of the node that owns `key` (node 0 asked past proxying)."""
    c = NODES[0].client()
    c.execute_command("CLUSTER", "NOPROXY")
    try:
        c.exists(key)
        return 0
    except redis.ResponseError as e:
        port = int(str(e).rsplit(":", 1)[1])
        return [n.port for n in NODES].index(port)
    finally:
        c.close()


def read_until(want, read, patience=10.0):
    """`read()` until it answers `want` or `patience` seconds pass (an
    invalidation is asynchronous: redis-py reads it before its next hit)."""
    deadline = time.monotonic() + patience
    got = read()
    while got != want and time.monotonic() < deadline:
        time.sleep(0.02)
        got = read()
    return got


def test_a_cached_read_of_another_nodes_key_is_invalidated():
    key = next(k for k in (f"pycache:{i}" for i in range(1000)) if owner_of(k) == 1)
    owner = NODES[1].client(decode_responses=True)
    owner.set(key, "1")
    cached = redis.Redis(host="127.0.0.1", port=NODES[0].port, protocol=3,
                         cache_config=CacheConfig(), decode_responses=True)
    assert cached.get(key) == "1"
    assert cached.get(key) == "1"
    assert cached.get_cache().size >= 1
    owner.set(key, "2")
    assert read_until("2", lambda: cached.get(key)) == "2"
    # Written through node 0 by another client: forwarded, then invalidated.
    NODES[0].client().set(key, "3")
    assert read_until("3", lambda: cached.get(key)) == "3"
    cached.close()
    owner.close()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
