"""Cluster mode with redis-py's RedisCluster: three citadel nodes on
127.0.0.1 with static membership (cluster-nodes).

Runs under pytest, or standalone (`python3 test_cluster.py`) with a closing
`python: N passed, M failed` line. The server binary is $CITADEL_BIN, else
<target>/release/citadel.
"""

import os
import sys

import redis
from redis.cluster import ClusterNode, RedisCluster

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_citadel import run_tests, start_cluster, stop_all  # noqa: E402

NODES = []


def setup_module():
    start_cluster(NODES)


def teardown_module():
    stop_all(NODES)


def cluster_client():
    return RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in NODES],
                        decode_responses=True, socket_timeout=30)


def test_set_get_across_all_slots():
    rc = cluster_client()
    keys = [f"py:{i}" for i in range(1500)]
    for i, k in enumerate(keys):
        assert rc.set(k, i)
    for i, k in enumerate(keys):
        assert rc.get(k) == str(i)
    # Every node owns a share of the keys.
    for n in NODES:
        assert n.client().dbsize() > 300
    # Every slot's owner answers for it: one key per slot of a sample.
    seen = {rc.keyslot(k) for k in keys}
    assert len(seen) > 1000
    rc.close()


def test_hash_tags_mget_and_pipeline():
    rc = cluster_client()
    assert rc.mset({"{cart9}.a": "1", "{cart9}.b": "2"})
    assert rc.mget("{cart9}.a", "{cart9}.b") == ["1", "2"]
    assert rc.keyslot("{cart9}.a") == rc.keyslot("{cart9}.b")
    # Keys of many slots: the client splits the MGET by node.
    for i in range(20):
        rc.set(f"many:{i}", i)
    assert rc.mget_nonatomic([f"many:{i}" for i in range(20)]) == [str(i) for i in range(20)]
    pipe = rc.pipeline()
    for i in range(200):
        pipe.incr(f"pipe:{i}")
    assert pipe.execute() == [1] * 200
    rc.close()


def test_crossslot_and_moved_from_a_plain_client():
    c = NODES[0].client(decode_responses=True)
    try:
        c.mset({"a": "1", "b": "2"})
        raise AssertionError("MSET across slots must fail")
    except redis.exceptions.ClusterCrossSlotError as e:
        assert "don't hash to the same slot" in str(e)
    moved = 0
    ports = {n.port for n in NODES}
    for i in range(50):
        try:
            c.set(f"plain:{i}", "x")
        except redis.exceptions.MovedError as e:
            # redis-py parses "MOVED <slot> <host:port>".
            assert e.slot_id == redis.cluster.key_slot(f"plain:{i}".encode())
            assert e.host == "127.0.0.1" and e.port in ports - {NODES[0].port}
            moved += 1
    assert 10 < moved < 50


def test_cluster_commands_parse_in_redis_py():
    rc = cluster_client()
    slots = rc.cluster_slots()
    covered = sum(end - start + 1 for (start, end) in slots)
    assert covered == 16384
    nodes = rc.cluster_nodes()
    assert len(nodes) == 3
    assert all(v["flags"] in ("master", "myself,master") for v in nodes.values())
    shards = rc.cluster_shards()
    assert len(shards) == 3
    # redis-py 8.2 pairs each shard's slots as (start, end); earlier
    # versions keep Redis's flat [start, end, start, end, ...].
    def ranges(shard_slots):
        paired = shard_slots and isinstance(shard_slots[0], (tuple, list))
        return len(shard_slots) if paired else len(shard_slots) // 2

    assert sum(ranges(s["slots"]) for s in shards) == len(slots)
    info = NODES[1].client(decode_responses=True).cluster("info")
    assert info["cluster_state"] == "ok" and int(info["cluster_known_nodes"]) == 3
    assert rc.cluster_keyslot("foo") == 12182
    assert NODES[0].client().info("cluster")["cluster_enabled"] == 1
    rc.close()


def next_message(pubsub):
    """The next message (not a subscription confirmation) on `pubsub`."""
    while True:
        m = pubsub.get_message(ignore_subscribe_messages=True, timeout=10)
        assert m is not None, "no message within 10 s"
        if m["type"] in ("message", "pmessage", "smessage"):
            return m


def test_pubsub_broadcast_and_sharded():
    rc = cluster_client()
    # One subscriber on each node (ClusterPubSub pinned to it).
    subs = []
    for n in NODES:
        ps = rc.pubsub(node=rc.get_node(host="127.0.0.1", port=n.port))
        ps.subscribe("py-news")
        next_sub = ps.get_message(timeout=10)
        assert next_sub["type"] == "subscribe"
        subs.append(ps)
    # A PUBLISH through any node reaches all three; the reply counts the
    # receiving node's own subscriber. Each publisher's messages arrive in
    # publish order; messages of different publishers may interleave (a
    # broadcast is not awaited, as in Redis Cluster).
    for i, n in enumerate(NODES):
        c = n.client(decode_responses=True)
        for j in range(5):
            assert c.publish("py-news", f"{i}:{j}") == 1
    for ps in subs:
        got = [next_message(ps)["data"] for _ in range(15)]
        for i in range(3):
            mine = [m for m in got if m.startswith(f"{i}:")]
            assert mine == [f"{i}:{j}" for j in range(5)], got
    # RedisCluster.publish (sent to whichever node it picks) too.
    rc.publish("py-news", "via-cluster-client")
    for ps in subs:
        assert next_message(ps)["data"] == "via-cluster-client"
    # Sharded Pub/Sub: redis-py routes SSUBSCRIBE/SPUBLISH to the slot owner.
    sharded = rc.pubsub()
    sharded.ssubscribe("py-shard")
    assert sharded.get_sharded_message(timeout=10)["type"] == "ssubscribe"
    assert rc.spublish("py-shard", "s1") == 1
    m = sharded.get_sharded_message(ignore_subscribe_messages=True, timeout=10)
    assert m["type"] == "smessage" and m["data"] == "s1"
    for ps in subs + [sharded]:
        ps.close()
    rc.close()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
