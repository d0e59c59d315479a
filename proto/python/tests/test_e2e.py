"""The clients against the real server (tests/citadel.py starts it): every
method over every transport, out-of-order replies, deadlines, batches,
streams, auth, RESP and RPC seeing the same data, discovery and failover.
Skipped when the binary is missing or has no RPC listener."""

import asyncio
import os
import threading
import time

import pytest

from citadel import TEXT_STAGE, Citadel, free_port, missing_reason
from citadel_client import (
    AsyncClient,
    AuthError,
    CitadelError,
    Client,
    ClusterClient,
    DeadlineExceeded,
    ErrorCode,
    FailoverClient,
    Moved,
    Partial,
    PluginError,
    TooLarge,
    key_slot,
    list_records,
)

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))

TRANSPORTS = ["tcp", "unix", "shm"]


@pytest.fixture(scope="module")
def server():
    s = Citadel()
    yield s
    s.cleanup()


@pytest.fixture(params=TRANSPORTS)
def client(request, server):
    if request.param not in server.addresses():
        pytest.skip("this server does not serve the shared-memory transport")
    with Client(server.addresses()[request.param]) as c:
        c.prefix = f"{request.param}:"  # keys per transport: tests share one server
        yield c


def test_every_method(client):
    p = client.prefix
    assert client.hello(f"e2e-{p}").version == 1
    assert client.set(p + "a", "1") is True
    assert client.set(p + "a", "2", nx=True) is False
    assert client.set(p + "b", "2", xx=True) is False
    assert client.set(p + "a", "3", xx=True) is True
    assert client.get(p + "a") == b"3" and client.get(p + "none") is None
    assert client.set(p + "bin", b"\x00\xff" * 1000) and client.get(p + "bin") == b"\x00\xff" * 1000
    assert client.incr(p + "n") == 1 and client.incr(p + "n", 41) == 42 and client.incr(p + "n", -2) == 40
    with pytest.raises(CitadelError) as e:
        client.incr(p + "bin")
    assert e.value.code == ErrorCode.NotInteger
    assert client.mset({p + "m1": "x", p + "m2": b"y"}) is True
    assert client.mget(p + "m1", p + "none", p + "m2") == [b"x", None, b"y"]
    assert client.exists(p + "m1", p + "m2", p + "none") == 2
    assert client.delete(p + "m1", p + "none") == 1 and client.exists(p + "m1") == 0
    assert client.ttl(p + "a") == -1 and client.ttl(p + "none") == -2
    assert client.expire(p + "a", 60_000) is True and 0 < client.ttl(p + "a") <= 60_000
    assert client.expire(p + "a", 0) is True and client.ttl(p + "a") == -1  # PERSIST
    assert client.expire(p + "none", 100) is False
    assert client.set(p + "t", "v", ttl_ms=100) and client.ttl(p + "t") > 0
    time.sleep(0.25)
    assert client.get(p + "t") is None
    for i in range(30):
        client.set(f"{p}scan:{i}", i)
    cursor, keys = client.scan(0, p + "scan:*", 10)
    assert all(k.startswith((p + "scan:").encode()) for k in keys)
    assert sorted(client.scan_iter(p + "scan:*", count=7)) == sorted(f"{p}scan:{i}".encode() for i in range(30))
    stats = client.stats()
    assert stats and all(isinstance(v, (int, str)) for v in stats.values())
    assert client.call("sleepy", b"5") == b"5"
    with pytest.raises(PluginError):
        client.call("no-such-plugin", b"x")


def test_replies_come_out_of_order(client):
    p = client.prefix
    client.set(p + "fast", "1")
    slow = client.futures.call("sleepy", b"700")
    t0 = time.monotonic()
    fast = [client.futures.get(p + "fast") for _ in range(50)]
    assert [f.result(5) for f in fast] == [b"1"] * 50
    assert time.monotonic() - t0 < 0.6 and not slow.done()
    assert slow.result(10) == b"700"


def test_threads_share_a_connection(client):
    p, errors = client.prefix, []

    def work(n):
        try:
            for i in range(100):
                assert client.set(f"{p}th{n}:{i}", i) and client.get(f"{p}th{n}:{i}") == str(i).encode()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and client.in_flight() == 0


def test_deadlines(client):
    p = client.prefix
    with pytest.raises(DeadlineExceeded) as e:
        client.set(p + "late", "x", deadline_ms=-1000)  # already past: not executed
    assert e.value.code == ErrorCode.Deadline
    assert client.get(p + "late") is None
    assert client.get(p + "late", deadline_ms=5000, priority=200) is None
    t0 = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        client.call("sleepy", b"1500", deadline_ms=200)
    assert time.monotonic() - t0 < 3


def test_batch(client):
    p = client.prefix
    b = client.batch()
    b.set(p + "bx", "1").incr(p + "bx").get(p + "bx").incr(p + "bad-incr").get(p + "none")
    b.set(p + "s", "str").incr(p + "s").call("sleepy", b"1").mget(p + "bx", p + "none").exists(p + "bx")
    out = b.execute()
    assert out[:5] == [True, 2, b"2", 1, None]
    assert out[5] is True and isinstance(out[6], CitadelError) and out[6].code == ErrorCode.NotInteger
    assert isinstance(out[7], CitadelError)  # a Call inside a batch is refused
    assert out[8:] == [[b"2", None], 1]


def test_large_values(client):
    p = client.prefix
    value = os.urandom(300_000)
    if str(client.address).startswith("shm"):
        with pytest.raises(TooLarge):  # larger than half the default 1 MiB ring
            client.set(p + "huge", os.urandom(600_000))
    assert client.set(p + "big", value) and client.get(p + "big") == value


@pytest.mark.skipif(not os.path.exists(TEXT_STAGE), reason="text stage binary not built")
def test_call_stream_pipeline(client):
    items = list(client.call_stream("text", b"one\ntwo\nthree", ""))
    partials, final = items[:-1], items[-1]
    # The contract streams one Partial per frame before the final result;
    # a server that does not stream yet sends the final result alone.
    if partials:
        assert [x.index for x in partials] == [0, 1, 2] and all(isinstance(x, Partial) for x in partials)
        assert b"ONE" in partials[0].data
    assert isinstance(final, bytes) and b'"frames":3' in final and b"THREE" in final
    assert client.call("text", b"a\nb").count(b"frame") >= 2


def test_resp_and_rpc_see_the_same_data(server, client):
    p = client.prefix
    r = server.redis()
    r.set(p + "from-resp", "r")
    assert client.get(p + "from-resp") == b"r"
    client.set(p + "from-rpc", "x", ttl_ms=50_000)
    assert r.get(p + "from-rpc") == b"x" and 0 < r.pttl(p + "from-rpc") <= 50_000
    client.incr(p + "ctr", 5)
    assert r.incr(p + "ctr") == 6 and client.get(p + "ctr") == b"6"
    r.delete(p + "from-rpc")
    assert client.exists(p + "from-rpc") == 0


def test_async_client(server):
    async def main(address, p):
        async with await AsyncClient.connect(address) as c:
            await c.set(p + "k", "v")
            slow = asyncio.ensure_future(c.call("sleepy", b"500"))
            assert await asyncio.gather(*(c.get(p + "k") for _ in range(100))) == [b"v"] * 100
            assert not slow.done() and await slow == b"500"
            b = c.batch()
            b.incr(p + "n", 3).get(p + "n")
            assert await b.execute() == [3, b"3"]
            assert sorted([k async for k in c.scan_iter(p + "*")]) == [(p + "k").encode(), (p + "n").encode()]
            with pytest.raises(DeadlineExceeded):
                await c.get(p + "k", deadline_ms=-10)

    for kind in ("tcp", "unix"):
        asyncio.run(main(server.addresses()[kind], f"aio-{kind}:"))


def test_requirepass():
    s = Citadel("--requirepass", "sesame")
    try:
        for address in s.addresses().values():
            with pytest.raises(AuthError):
                Client(address, password="wrong")
            with Client(address, client_name="e2e", password="sesame") as c:
                assert c.welcome.server.startswith("citadel")
                assert c.set("k", "v") and c.get("k") == b"v"
    finally:
        s.cleanup()


def test_discovery_failover_and_switch_back():
    local = Citadel()
    remote = Citadel()
    try:
        record = [r for r, alive in list_records(local.discovery) if alive]
        assert record and record[0].rpc_unix == local.rpc_unix and record[0].rpc == f"127.0.0.1:{local.rpc_port}"
        assert record[0].shm == local.shm
        best = "shm" if local.has_shm else "unix"  # an unserved shm endpoint is passed over
        remote.redis().set("where", "remote")
        local.redis().set("where", "local")
        with FailoverClient(remote.addresses()["tcp"], discovery_dir=local.discovery) as c:
            assert str(c.current.address).startswith(best) and c.get("where") == b"local"
            local.kill()  # a crash: the record stays, the process is gone
            assert c.get("where") == b"remote" and c.fallbacks == 1 and c.retries <= 1
            local.start()
            deadline = time.time() + 10
            while c.switch_backs == 0 and time.time() < deadline:
                time.sleep(0.05)
            assert c.switch_backs == 1 and c.get("where") in (b"local", None)
            local.terminate()  # a clean exit removes the record
            deadline = time.time() + 10
            while c.fallbacks < 2 and time.time() < deadline:
                time.sleep(0.05)
            assert c.fallbacks == 2 and c.get("where") == b"remote"
    finally:
        local.cleanup()
        remote.cleanup()


def test_cluster_moved_and_the_cluster_client():
    ports = [(free_port(), free_port()) for _ in range(3)]
    members = ",".join(f"127.0.0.1:{p}@{r}" for p, r in ports)
    nodes = [
        Citadel("--cluster-enabled", "yes", "--cluster-nodes", members, port=p, rpc_port=r) for p, r in ports
    ]
    try:
        keys = [f"py:{i}" for i in range(300)]
        with Client(f"tcp://127.0.0.1:{nodes[0].rpc_port}") as plain:
            moved = []
            for k in keys:
                try:
                    plain.get(k)
                except Moved as e:
                    assert e.code == ErrorCode.Moved and e.slot == key_slot(k)
                    moved.append(e.address)
            rpc_addresses = {f"127.0.0.1:{n.rpc_port}" for n in nodes[1:]}
            assert moved and set(moved) <= rpc_addresses
            with pytest.raises(CitadelError) as e:
                plain.exists("a", "b")
            assert e.value.code == ErrorCode.CrossSlot
        with ClusterClient([f"tcp://127.0.0.1:{nodes[1].rpc_port}"]) as c:
            for k in keys:
                assert c.set(k, k.upper())
            assert c.redirects > 0
            assert [c.get(k) for k in keys] == [k.upper().encode() for k in keys]
            assert c.mget("{py}a", "{py}b") == [None, None]
        # A batch over every node from a client that knows no slot yet.
        with ClusterClient([f"127.0.0.1:{nodes[0].rpc_port}"]) as c:
            b = c.batch()
            for k in keys:
                b.get(k)
            assert b.execute() == [k.upper().encode() for k in keys]
            assert c.redirects > 0
        # RESP on each key's owner holds the same data.
        by_rpc_port = {n.rpc_port: n for n in nodes}
        with ClusterClient([f"127.0.0.1:{nodes[2].rpc_port}"]) as c:
            for k in keys[:50]:
                c.get(k)
                owner = c._owner(k).rsplit(":", 1)[1]
                assert by_rpc_port[int(owner)].redis().get(k) == k.upper().encode()
    finally:
        for n in nodes:
            n.cleanup()
