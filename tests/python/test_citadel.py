"""End-to-end tests of citadel with redis-py.

Runs under pytest, or standalone (`python3 test_citadel.py`) with plain
asserts and a closing `python: N passed, M failed` line. The server binary
is $CITADEL_BIN, else <target>/release/citadel.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.environ.get("CITADEL_BIN", os.path.join(TARGET, "release", "citadel"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Citadel:
    """A citadel process on a free port with a private cache file; stop() always kills it."""

    def __init__(self, *extra, port=None):
        self.dir = tempfile.mkdtemp(prefix="citadel-py", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        self.port = port or free_port()
        self.args = [BIN, "--port", str(self.port), "--cache-file", os.path.join(self.dir, "cache"),
                     "--maxmemory", "64mb", "--threads", "2",
                     "--discovery-dir", os.path.join(self.dir, "discovery"),
                     # Core admission off on these shared CI cores (tests/src/lib.rs says why).
                     *([] if "--overload-delay-target-us" in extra else ["--overload-delay-target-us", "0"]),
                     *([] if "--rpc-port" in extra else ["--rpc-port", "0"]), *extra]
        self.proc = None
        self.start()

    def start(self, *more):
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(self.args + list(more), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("citadel exited at startup:\n" + self.read_log())
            try:
                if self.client().ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("citadel did not start:\n" + self.read_log())

    def read_log(self):
        with open(os.path.join(self.dir, "log")) as f:
            return f.read()

    def client(self, **kw):
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30, **kw)

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=15)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


SERVER = None


def setup_module(module=None):
    global SERVER
    SERVER = Citadel()


def teardown_module(module=None):
    if SERVER:
        SERVER.cleanup()


def r():
    return SERVER.client(decode_responses=True)


def test_ping_echo():
    c = r()
    assert c.ping() is True
    assert c.echo("hi") == "hi"


def test_set_get_del():
    c = r()
    assert c.set("py:a", "1") is True
    assert c.get("py:a") == "1"
    assert c.delete("py:a", "py:none") == 1
    assert c.get("py:a") is None


def test_set_options():
    c = r()
    assert c.set("py:nx", "1", nx=True) is True
    assert c.set("py:nx", "2", nx=True) is None
    assert c.set("py:xx", "1", xx=True) is None
    assert c.set("py:nx", "3", xx=True) is True
    assert c.get("py:nx") == "3"


def test_counters():
    c = r()
    assert c.incr("py:n") == 1
    assert c.incrby("py:n", 10) == 11
    assert c.decr("py:n") == 10
    try:
        c.set("py:s", "abc")
        c.incr("py:s")
        assert False, "INCR on a non-number succeeded"
    except redis.exceptions.ResponseError as e:
        assert "not an integer" in str(e)


def test_mset_mget_exists():
    c = r()
    assert c.mset({"py:m1": "a", "py:m2": "b"}) is True
    assert c.mget(["py:m1", "py:missing", "py:m2"]) == ["a", None, "b"]
    assert c.exists("py:m1", "py:m2", "py:missing") == 2


def test_expiry():
    c = r()
    c.set("py:ttl", "v", ex=100)
    assert 99 <= c.ttl("py:ttl") <= 100
    c.set("py:px", "v", px=120)
    time.sleep(0.35)
    assert c.get("py:px") is None
    assert c.persist("py:ttl") is True
    assert c.ttl("py:ttl") == -1


def test_binary_values():
    c = SERVER.client()
    blob = bytes(range(256)) * 1000
    c.set(b"py:\x00bin", blob)
    assert c.get(b"py:\x00bin") == blob


def test_pipeline_10k():
    c = r()
    p = c.pipeline(transaction=False)
    for i in range(10000):
        p.set(f"py:p:{i}", i)
    assert all(x is True for x in p.execute())
    p = c.pipeline(transaction=False)
    for i in range(10000):
        p.get(f"py:p:{i}")
    assert p.execute() == [str(i) for i in range(10000)]


def test_scan_iter():
    c = r()
    for i in range(300):
        c.set(f"py:scan:{i}", i)
    assert len(set(c.scan_iter(match="py:scan:*", count=50))) == 300


def test_concurrent_clients():
    errors = []

    def work(t):
        try:
            c = r()
            for i in range(50):
                c.set(f"py:t{t}:{i}", i)
                assert c.get(f"py:t{t}:{i}") == str(i)
        except Exception as e:  # noqa: BLE001 - collected and reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_transactions_with_redis_py():
    c = r()
    c.set("py:tx:a", 10)
    c.delete("py:tx:b")
    # pipeline() wraps the batch in MULTI/EXEC; a run-time error is a
    # result in place, the other commands still apply.
    p = c.pipeline()
    p.incr("py:tx:a").set("py:tx:b", "x").get("py:tx:b").incr("py:tx:b")
    results = p.execute(raise_on_error=False)
    assert results[:3] == [11, True, "x"]
    assert isinstance(results[3], redis.ResponseError)
    # transaction() retries when a watched key changes under it.
    other = r()
    calls = []

    def bump(pipe):
        value = int(pipe.get("py:tx:a"))
        if not calls:
            other.incr("py:tx:a")
        calls.append(value)
        pipe.multi()
        pipe.set("py:tx:a", value + 100)

    c.transaction(bump, "py:tx:a")
    assert calls == [11, 12]
    assert c.get("py:tx:a") == "112"
    p = c.pipeline()
    p.watch("py:tx:a")
    p.multi()
    p.set("py:tx:a", "never")
    other.set("py:tx:a", "theirs")
    try:
        p.execute()
        raise AssertionError("EXEC after a changed WATCH must fail")
    except redis.WatchError:
        pass
    assert c.get("py:tx:a") == "theirs"


def test_redis_py_client_side_cache():
    from redis.cache import CacheConfig

    cached = redis.Redis(
        host="127.0.0.1",
        port=SERVER.port,
        protocol=3,
        cache_config=CacheConfig(),
        decode_responses=True,
    )
    other = r()
    other.set("py:csc", "v1")
    assert cached.get("py:csc") == "v1"
    cache = cached.get_cache()
    assert cache.size == 1, "the read is cached client-side"
    # A change by another client invalidates the cached key (a push the
    # client reads before its next command).
    other.set("py:csc", "v2")
    deadline = time.time() + 5
    while time.time() < deadline:
        if cached.get("py:csc") == "v2":
            break
        time.sleep(0.02)
    assert cached.get("py:csc") == "v2"
    # Expiry invalidates too.
    other.set("py:csc:ttl", "t", px=50)
    assert cached.get("py:csc:ttl") == "t"
    time.sleep(0.1)
    other.get("py:csc:ttl")
    deadline = time.time() + 5
    while time.time() < deadline and cached.get("py:csc:ttl") is not None:
        time.sleep(0.02)
    assert cached.get("py:csc:ttl") is None
    cached.close()


def test_large_value():
    c = SERVER.client()
    value = os.urandom(8 * 1024 * 1024)
    c.set("py:large", value)
    assert c.get("py:large") == value
    c.delete("py:large")


def test_unknown_command():
    c = r()
    try:
        c.execute_command("NOSUCHCOMMAND", "x")
        assert False, "unknown command succeeded"
    except redis.exceptions.ResponseError as e:
        assert "unknown command" in str(e)


def test_saves_and_role_with_redis_py():
    c = r()
    before = c.lastsave()
    c.set("py:save", "1")
    assert c.info("persistence")["rdb_changes_since_last_save"] >= 1
    assert c.save()
    assert c.info("persistence")["rdb_changes_since_last_save"] == 0
    assert c.lastsave() >= before
    assert c.bgsave() in (True, "Background saving started")
    deadline = time.time() + 30
    while c.info("persistence")["rdb_bgsave_in_progress"]:
        assert time.time() < deadline, "BGSAVE never ended"
        time.sleep(0.02)
    assert c.info("persistence")["rdb_last_bgsave_status"] == "ok"
    assert c.role() == ["master", 0, []]
    assert c.replicaof("NO", "ONE")
    assert c.lolwut().startswith("Redis ver.")


def test_graceful_restart_keeps_keys():
    s = Citadel()
    try:
        c = s.client(decode_responses=True)
        c.set("keep", "me")
        assert s.terminate() == 0
        s.start()
        assert s.client(decode_responses=True).get("keep") == "me"
        assert "clean=true" in s.read_log()
    finally:
        s.cleanup()


def _block_io_uring_setup():
    """preexec_fn: a seccomp filter failing io_uring_setup (syscall 425 on
    every architecture) with EPERM, like a container runtime's default profile."""
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    ld_nr = struct.pack("HBBI", 0x20, 0, 0, 0)  # BPF_LD|BPF_W|BPF_ABS, seccomp_data.nr
    jeq = struct.pack("HBBI", 0x15, 0, 1, 425)  # BPF_JMP|BPF_JEQ|BPF_K
    deny = struct.pack("HBBI", 0x06, 0, 0, 0x00050000 | 1)  # RET ERRNO(EPERM)
    allow = struct.pack("HBBI", 0x06, 0, 0, 0x7FFF0000)  # RET ALLOW
    code = ctypes.create_string_buffer(ld_nr + jeq + deny + allow)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = SockFprog(4, ctypes.addressof(code))
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    if libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def test_io_uring_blocked_exits_with_reason():
    if os.uname().machine not in ("x86_64", "aarch64"):
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([BIN, "--port", str(port), "--rpc-port", "0", "--cache-file", os.path.join(d, "c"), "--maxmemory", "8mb"],
                             preexec_fn=_block_io_uring_setup, capture_output=True, text=True, timeout=20)
    assert out.returncode != 0
    assert "io_uring" in out.stderr and "seccomp" in out.stderr, out.stderr


def _next_message(p):
    deadline = time.time() + 5
    while time.time() < deadline:
        m = p.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if m:
            return m
    raise AssertionError("no message arrived")


def test_pubsub_channels_and_patterns():
    for protocol in (2, 3):
        channel, pattern = f"py{protocol}:news", f"py{protocol}:n*"
        p = SERVER.client(decode_responses=True, protocol=protocol).pubsub()
        p.subscribe(channel)
        p.psubscribe(pattern)
        # redis-py sends (P)SUBSCRIBE without reading the reply: until the
        # confirmations arrive the server may not have read them yet (the
        # subscriber's connection is served by another core than the
        # publisher's), and a PUBLISH then reaches fewer subscribers.
        confirmed = [p.get_message(timeout=5) for _ in range(2)]
        assert [m and m["type"] for m in confirmed] == ["subscribe", "psubscribe"], confirmed
        publisher = r()
        assert publisher.publish(channel, "hello") == 2
        got = sorted((m["type"], m["channel"], m["data"], m["pattern"]) for m in (_next_message(p), _next_message(p)))
        assert got == [("message", channel, "hello", None), ("pmessage", channel, "hello", pattern)]
        assert publisher.pubsub_numsub(channel) == [(channel, 1)]
        assert publisher.pubsub_numpat() >= 1
        p.close()


def test_lock_acquire_extend_release():
    c = r()
    lock = c.lock("py:lock", timeout=5)
    assert lock.acquire(blocking=False)
    token = lock.local.token
    assert c.get("py:lock") == (token.decode() if isinstance(token, bytes) else token)
    other = c.lock("py:lock", timeout=5)
    assert not other.acquire(blocking=False)
    assert lock.extend(10)
    assert 5000 < c.pttl("py:lock") <= 15000
    assert lock.reacquire()
    assert 4000 < c.pttl("py:lock") <= 5000  # back to the lock's timeout
    assert lock.owned()
    assert not other.owned()
    lock.release()
    assert c.get("py:lock") is None
    try:
        lock.release()
        raise AssertionError("releasing an unlocked lock must fail")
    except redis.exceptions.LockError:
        pass
    with c.lock("py:lock2", timeout=5, blocking_timeout=1):
        assert c.exists("py:lock2") == 1
    assert c.exists("py:lock2") == 0


def test_register_script_and_evalsha():
    c = r()
    c.script_flush()
    add = c.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert add(keys=["py:script:n"], args=[5]) == 5
    assert add(keys=["py:script:n"], args=[2]) == 7
    assert c.script_exists(add.sha) == [True]
    c.script_flush()
    assert c.script_exists(add.sha) == [False]
    assert add(keys=["py:script:n"], args=[1]) == 8  # NOSCRIPT, then EVAL
    try:
        c.eval("return redis.call('nosuch')", 0)
        raise AssertionError("an unknown command must fail")
    except redis.exceptions.ResponseError as e:
        assert "Unknown Redis command called from script" in str(e)
    assert c.eval("return {KEYS[1], ARGV[1], cjson.encode({a = 1})}", 1, "k", "v") == ["k", "v", '{"a":1}']


def test_function_load_and_fcall():
    c = r()
    c.function_flush()
    code = """#!lua name=pylib
redis.register_function('py_set', function(keys, args) return redis.call('set', keys[1], args[1]) end)
redis.register_function{function_name='py_get', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}
"""
    assert c.function_load(code) == "pylib"
    assert c.fcall("py_set", 1, "py:fn", "value") == "OK"
    assert c.fcall("py_get", 1, "py:fn") == "value"
    assert c.fcall_ro("py_get", 1, "py:fn") == "value"
    try:
        c.fcall_ro("py_set", 1, "py:fn", "x")
        raise AssertionError("a write function under FCALL_RO must fail")
    except redis.exceptions.ResponseError as e:
        assert "write flag" in str(e)
    libs = c.function_list(library="pylib")
    assert len(libs) == 1
    lib = dict(zip(libs[0][::2], libs[0][1::2]))  # RESP2: a flat map
    assert lib["library_name"] == "pylib"
    names = sorted(dict(zip(f[::2], f[1::2]))["name"] for f in lib["functions"])
    assert names == ["py_get", "py_set"]
    assert c.function_delete("pylib")
    assert c.function_list() == []


def start_cluster(nodes, *flags, count=3):
    """Starts `count` citadel nodes on 127.0.0.1 in one cluster (static
    membership) with the extra `flags`, appending them to `nodes`."""
    ports = [free_port() for _ in range(count)]
    members = ",".join(f"127.0.0.1:{p}" for p in ports)
    for p in ports:
        nodes.append(Citadel("--cluster-enabled", "yes", *flags, "--cluster-nodes", members, port=p))


def stop_all(nodes):
    while nodes:
        nodes.pop().cleanup()


def run_tests(namespace):
    """The runner without pytest: every test_* of a test module (its
    globals()), between its setup_module and teardown_module (if any)."""
    tests = [(name, fn) for name, fn in sorted(namespace.items()) if name.startswith("test_") and callable(fn)]
    passed = failed = 0
    nothing = lambda: None  # noqa: E731 - a module that starts its servers per test
    setup_module = namespace.get("setup_module", nothing)
    teardown_module = namespace.get("teardown_module", nothing)
    setup_module()
    try:
        for name, fn in tests:
            try:
                fn()
                passed += 1
                print(f"PASS {name}")
            except Exception as e:  # noqa: BLE001 - report every failure
                failed += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")
    finally:
        teardown_module()
    print(f"python: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_tests(globals()))


def test_unix_socket_with_redis_py():
    sock_dir = tempfile.mkdtemp(prefix="citadel-sock")
    sock = os.path.join(sock_dir, "citadel.sock")
    server = Citadel("--unixsocket", sock, "--unixsocketperm", "770")
    try:
        over_unix = redis.Redis(unix_socket_path=sock, decode_responses=True)
        assert over_unix.ping()
        assert over_unix.set("py:unix", "yes")
        assert server.client(decode_responses=True).get("py:unix") == "yes"
        pipe = over_unix.pipeline(transaction=False)
        for i in range(1000):
            pipe.incr("py:unix:n")
        assert pipe.execute()[-1] == 1000
        assert oct(os.stat(sock).st_mode & 0o777) == "0o770"
        assert server.terminate() == 0
        assert not os.path.exists(sock)
    finally:
        server.cleanup()
        shutil.rmtree(sock_dir, ignore_errors=True)
