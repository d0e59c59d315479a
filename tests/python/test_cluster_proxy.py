"""Proxy mode (--cluster-proxy yes) with a plain redis-py `Redis`: three
citadel nodes on 127.0.0.1 with static membership; the client knows
nothing of the cluster and talks to one node only.

Runs under pytest, or standalone (`python3 test_cluster_proxy.py`) with a
closing `python: N passed, M failed` line. The server binary is
$CITADEL_BIN, else <target>/release/citadel.
"""

import os
import sys

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_citadel import run_tests, start_cluster, stop_all  # noqa: E402

NODES = []


def setup_module():
    start_cluster(NODES, "--cluster-proxy", "yes")


def teardown_module():
    stop_all(NODES)


def plain():
    return NODES[0].client(decode_responses=True)


def test_plain_client_reaches_every_slot():
    r = plain()
    keys = [f"pyproxy:{i}" for i in range(300)]
    for i, k in enumerate(keys):
        assert r.set(k, i)
    for i, k in enumerate(keys):
        assert r.get(k) == str(i)
    # The keys live on every node, not only on the one the client uses.
    assert all(n.client().dbsize() > 30 for n in NODES)
    r.close()


def test_multi_key_commands_and_pipelines():
    r = plain()
    keys = [f"pym:{i}" for i in range(100)]
    assert r.mset({k: f"v{i}" for i, k in enumerate(keys) if i % 2})
    assert r.mget(keys) == [f"v{i}" if i % 2 else None for i in range(100)]
    assert r.exists(*keys) == 50
    pipe = r.pipeline(transaction=False)
    for k in keys[:40]:
        pipe.incr(k + ":n").get(k)
    got = pipe.execute()
    assert got[0::2] == [1] * 40
    assert got[1::2] == [f"v{i}" if i % 2 else None for i in range(40)]
    assert r.delete(*keys) == 50
    r.close()


def test_transaction_on_one_slot_of_another_node():
    r = plain()
    pipe = r.pipeline(transaction=True)
    pipe.set("{pytx}.a", 1).incr("{pytx}.a").get("{pytx}.a")
    assert pipe.execute() == [True, 2, "2"]
    r.close()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
