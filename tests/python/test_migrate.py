"""redis-py's `migrate()` sent to Citadel: keys move to a real redis-server
(and to another Citadel) with their TTLs, as `Redis.migrate` documents.

Runs under pytest, or standalone (`python3 test_migrate.py`) with a
closing `python: N passed, M failed` line. The server binary is
$CITADEL_BIN, else <target>/release/citadel.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_citadel import Citadel, free_port, run_tests  # noqa: E402

class RedisServer:
    """A redis-server child on a free port, without persistence."""

    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="citadel-py-redis")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.time() + 20
        while True:
            try:
                redis.Redis(port=self.port, password=self.password(extra)).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    @staticmethod
    def password(extra):
        return extra[extra.index("--requirepass") + 1] if "--requirepass" in extra else None

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_migrate_moves_keys_with_their_ttls_into_redis():
    source, target = Citadel(), RedisServer("--requirepass", "tpw")
    try:
        src = source.client(decode_responses=True)
        src.set("py:s", "v", px=600000)
        src.hset("py:h", mapping={"a": "1", "b": "2"})
        src.rpush("py:l", "x", "y")
        dst = redis.Redis(port=target.port, password="tpw", db=2, decode_responses=True)
        assert src.migrate("127.0.0.1", target.port, ["py:s", "py:h", "py:l"], 2, 5000,
                           auth="tpw") == "OK"
        assert src.exists("py:s", "py:h", "py:l") == 0
        assert dst.get("py:s") == "v" and 0 < dst.pttl("py:s") <= 600000
        assert dst.hgetall("py:h") == {"a": "1", "b": "2"}
        assert dst.lrange("py:l", 0, -1) == ["x", "y"]
        # COPY keeps the source's; without REPLACE the target's key is BUSYKEY.
        src.set("py:c", "1")
        src.migrate("127.0.0.1", target.port, "py:c", 2, 5000, copy=True, auth="tpw")
        assert src.get("py:c") == "1" and dst.get("py:c") == "1"
        try:
            src.migrate("127.0.0.1", target.port, "py:c", 2, 5000, auth="tpw")
            raise AssertionError("BUSYKEY expected")
        except redis.exceptions.ResponseError as e:
            assert "Target instance replied with error: BUSYKEY" in str(e)
        src.migrate("127.0.0.1", target.port, "py:c", 2, 5000, replace=True, auth="tpw")
        assert src.exists("py:c") == 0
        assert src.migrate("127.0.0.1", target.port, "py:none", 2, 5000, auth="tpw") == "NOKEY"
    finally:
        source.cleanup()
        target.stop()


def test_migrate_between_citadels():
    source, other = Citadel(), Citadel()
    try:
        src = source.client(decode_responses=True)
        src.zadd("py:z", {"a": 1.5, "b": -2})
        src.migrate("127.0.0.1", other.port, "py:z", 0, 5000)
        assert other.client(decode_responses=True).zrange("py:z", 0, -1, withscores=True) == [
            ("b", -2.0), ("a", 1.5)]
        assert src.exists("py:z") == 0
    finally:
        source.cleanup()
        other.cleanup()


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
