"""The clients against the Python stand-in server (tests/fakeserver.py) on
every transport: multiplexing, out-of-order replies, deadlines, streams,
batches, the asyncio client, and discovery with failover. Needs no server
binary; test_e2e.py checks the same against the real server."""

import asyncio
import os
import shutil
import tempfile
import threading
import time

import pytest

from citadel_client import (
    AsyncClient,
    CitadelError,
    Client,
    ConnectionClosed,
    DeadlineExceeded,
    ErrorCode,
    FailoverClient,
    Partial,
    PluginError,
    TooLarge,
)
from citadel_client.watch import DirWatcher
from fakeserver import FakeServer, FakeShmServer


@pytest.fixture
def tmp():
    d = tempfile.mkdtemp(prefix="citadel-client-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(params=["tcp", "unix", "shm"])
def server(request, tmp):
    if request.param == "tcp":
        s = FakeServer()
    elif request.param == "unix":
        s = FakeServer(unix_path=os.path.join(tmp, "rpc.sock"))
    else:
        s = FakeShmServer(os.path.join(tmp, "shm.sock"))
    yield s
    s.sock.close()


def test_methods(server):
    with Client(server.address) as c:
        assert c.set("a", "1") is True
        assert c.set("a", "2", nx=True) is False
        assert c.set("b", "2", xx=True) is False
        assert c.get("a") == b"1" and c.get("none") is None
        assert c.incr("n", 5) == 5 and c.incr("n") == 6
        assert c.set("s", "x")
        with pytest.raises(CitadelError) as e:
            c.incr("s")
        assert e.value.code == ErrorCode.NotInteger
        assert c.mset({"m1": "x", "m2": b"y"}) is True
        assert c.mget("m1", "none", "m2") == [b"x", None, b"y"]
        assert c.exists("m1", "m2", "none") == 2
        assert c.delete(["m1", "none"]) == 1
        assert c.ttl("a") == -1 and c.ttl("none") == -2
        assert c.expire("a", 60_000) is True and 0 < c.ttl("a") <= 60_000
        assert c.expire("none", 5) is False
        assert sorted(c.scan_iter(match="m*", count=1)) == [b"m2"]
        assert c.stats()["keys"] >= 1
        assert c.hello("tests").server
        assert c.call("echo", b"\x00hi") == b"\x00hi"
        with pytest.raises(PluginError):
            c.call("missing")


def test_replies_out_of_order(server):
    with Client(server.address) as c:
        slow = c.futures.call("sleep", "400")
        fast = [c.futures.get("k") for _ in range(20)]
        for f in fast:
            assert f.result(2) is None
        assert not slow.done()
        assert slow.result(5) == b"400"


def test_many_threads_share_one_connection(server):
    with Client(server.address) as c:
        errors = []

        def work(n):
            try:
                for i in range(50):
                    key = f"t{n}:{i}"
                    assert c.set(key, key)
                    assert c.get(key) == key.encode()
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and c.in_flight() == 0


def test_deadlines(server):
    with Client(server.address) as c:
        # The client stops waiting once the deadline (plus grace) passes...
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            c.call("sleep", "3000", deadline_ms=100)
        assert time.monotonic() - t0 < 2.5
        # ...and the deadline and priority travel in the request.
        assert c.get("k", deadline_ms=10_000, priority=7) is None
        _, _, deadline, priority = server_of(server).requests[-1]
        assert priority == 7 and deadline > time.time() * 1000


def server_of(server):
    return getattr(server, "fake", server)


def test_expired_deadline_is_refused_by_the_server(server):
    with Client(server.address) as c:
        with pytest.raises(DeadlineExceeded) as e:
            c.get("k", deadline_ms=-1000)
        assert e.value.code == ErrorCode.Deadline


def test_stream_and_batch(server):
    with Client(server.address) as c:
        got = list(c.call_stream("stream"))
        assert got[:3] == [Partial(i, b'{"frame":%d}' % i) for i in range(3)] and got[3] == b'{"frames":3}'
        with pytest.raises(PluginError):
            list(c.call_stream("missing"))
        b = c.batch()
        b.set("x", "1").incr("x").get("x").call("echo")
        assert len(b) == 4
        out = b.execute()
        assert out[:3] == [True, 2, b"2"] and isinstance(out[3], CitadelError)


def test_shm_refuses_frames_larger_than_the_ring(tmp):
    s = FakeShmServer(os.path.join(tmp, "shm.sock"), capacity=1 << 14)
    with Client(s.address) as c:
        with pytest.raises(TooLarge):
            c.set("big", bytes(20_000))
        assert c.set("small", bytes(1000)) is True
        # More bytes in flight than the ring holds: the writer waits for
        # the server to commit.
        futures = [c.futures.set(f"k{i}", bytes(3000)) for i in range(100)]
        assert all(f.result(10) for f in futures)


def test_connection_loss_fails_waiters():
    s = FakeServer()
    c = Client(s.address)
    slow = c.futures.call("sleep", "2000")
    time.sleep(0.1)
    s.close()
    with pytest.raises(ConnectionClosed):
        slow.result(5)
    with pytest.raises(ConnectionClosed):
        c.get("k")
    c.close()


def test_auth_on_connect():
    s = FakeServer(password="pw")
    with pytest.raises(CitadelError) as e:
        Client(s.address, password="wrong")
    assert e.value.code == ErrorCode.Auth
    with Client(s.address, client_name="me", password="pw") as c:
        assert c.welcome.version == 1
    s.close()


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_async_client(kind, tmp):
    s = FakeServer(unix_path=os.path.join(tmp, "a.sock") if kind == "unix" else None)

    async def main():
        async with await AsyncClient.connect(s.address) as c:
            assert await c.set("a", "1") is True
            slow = asyncio.ensure_future(c.call("sleep", "300"))
            gets = await asyncio.gather(*(c.get("a") for _ in range(50)))
            assert gets == [b"1"] * 50 and not slow.done()
            assert await slow == b"300"
            assert [x async for x in c.call_stream("stream")][-1] == b'{"frames":3}'
            await c.mset({"s1": "1", "s2": "2"})
            assert sorted([k async for k in c.scan_iter(match="s*")]) == [b"s1", b"s2"]
            b = c.batch()
            b.incr("n", 2).get("n")
            assert await b.execute() == [2, b"2"]
            with pytest.raises(DeadlineExceeded):
                await c.call("sleep", "3000", deadline_ms=50)
            with pytest.raises(PluginError):
                await c.call("missing")

    asyncio.run(main())
    s.close()


# --- discovery and failover ---


def publish(directory, name, pid, **endpoints):
    os.makedirs(directory, exist_ok=True)
    lines = [f"name={name}", f"pid={pid}", "version=0.1.0", "tcp=127.0.0.1:1", "started_at_ms=1"]
    lines += [f"{k}={v}" for k, v in endpoints.items()]
    tmp = os.path.join(directory, f".{name}.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.rename(tmp, os.path.join(directory, f"{name}.server"))


def wait_for(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


@pytest.mark.parametrize("use_inotify", [True, False])
def test_failover_to_remote_and_back(tmp, use_inotify):
    disc = os.path.join(tmp, "discovery")
    local, remote = FakeServer(unix_path=os.path.join(tmp, "local.sock")), FakeServer()
    remote.store.data[b"where"] = b"remote"
    local.store.data[b"where"] = b"local"
    shm = FakeShmServer(os.path.join(tmp, "shm.sock"), fake=local)
    publish(disc, "dead", 2**22 + 12345, rpc=remote.address[6:])  # no such pid: ignored
    publish(disc, "local", os.getpid(), rpc_unix=os.path.join(tmp, "local.sock"), shm=shm.path)
    with FailoverClient(remote.address, discovery_dir=disc, use_inotify=use_inotify) as c:
        assert str(c.current.address).startswith("shm://") and c.get("where") == b"local"
        os.unlink(os.path.join(disc, "local.server"))  # the local server exits cleanly
        assert wait_for(lambda: c.fallbacks == 1)
        assert c.get("where") == b"remote" and not c.local
        publish(disc, "local", os.getpid(), rpc_unix=os.path.join(tmp, "local.sock"))
        assert wait_for(lambda: c.switch_backs == 1)
        assert c.get("where") == b"local" and str(c.current.address).startswith("unix://")
    for s in (local, remote):
        s.close()


def test_idempotent_calls_are_retried_once(tmp):
    disc = os.path.join(tmp, "discovery")
    remote = FakeServer()
    with FailoverClient(remote.address, discovery_dir=disc, watch=False) as c:
        assert c.set("k", "v") is True
        remote.drop_next_request = True
        assert c.get("k") == b"v" and c.retries == 1  # reconnected to the same fallback
        # Not idempotent: a call cut off mid-flight raises; the next call
        # reconnects.
        remote.drop_next_request = True
        with pytest.raises(ConnectionClosed):
            c.incr("n")
        assert c.retries == 1 and c.incr("n") == 1
    remote.close()


def test_dir_watcher_sees_records_come_and_go(tmp):
    for use_inotify in (True, False):
        d = os.path.join(tmp, f"w{use_inotify}")
        w = DirWatcher(d, use_inotify)
        assert not w.wait(0.15)
        publish(d, "a", os.getpid())
        assert wait_until_changed(w)
        os.unlink(os.path.join(d, "a.server"))
        assert wait_until_changed(w)
        w.close()


def wait_until_changed(w, timeout=3.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if w.wait(0.2):
            return True
    return False
