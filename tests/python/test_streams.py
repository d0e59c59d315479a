"""Stream consumer groups end to end with redis-py: a job queue of workers
(xgroup_create, xreadgroup, xack), a crashed worker's jobs taken over
with xautoclaim, and the group's bookkeeping (xpending, xinfo_groups,
xinfo_consumers), in RESP2 and RESP3.

Runs under pytest, or standalone (`python3 test_streams.py`) with a
closing `python: N passed, M failed` line. The server binary is
$CITADEL_BIN, else <target>/release/citadel.
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


def r(protocol=2):
    return SERVER.client(decode_responses=True, protocol=protocol)


def worker_queue(protocol):
    c = r(protocol)
    key = f"py:jobs:{protocol}"
    c.delete(key)
    c.xgroup_create(key, "workers", id="$", mkstream=True)
    try:
        c.xgroup_create(key, "workers", id="$")
        raise AssertionError("a second create must fail")
    except redis.ResponseError as e:
        assert "BUSYGROUP" in str(e)
    jobs = [c.xadd(key, {"job": str(i)}) for i in range(30)]
    done = []
    lock = threading.Lock()

    def work(name):
        w = r(protocol)
        while True:
            got = w.xreadgroup("workers", name, {key: ">"}, count=4, block=200)
            if not got:
                return
            entries = got[0][1] if protocol == 2 else got[key][0]
            for entry_id, fields in entries:
                with lock:
                    done.append((entry_id, fields["job"]))
                assert w.xack(key, "workers", entry_id) == 1

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every job once, nothing left pending.
    assert sorted(i for i, _ in done) == sorted(jobs)
    assert sorted(int(j) for _, j in done) == list(range(30))
    pending = c.xpending(key, "workers")
    assert pending["pending"] == 0
    group = c.xinfo_groups(key)[0]
    assert group["name"] == "workers"
    assert group["pending"] == 0
    assert group["last-delivered-id"] == jobs[-1]
    assert group["entries-read"] == 30 and group["lag"] == 0
    consumers = {x["name"] for x in c.xinfo_consumers(key, "workers")}
    assert consumers <= {"w0", "w1", "w2"} and consumers


def test_a_job_queue_of_workers_takes_every_job_once():
    for protocol in (2, 3):
        worker_queue(protocol)


def test_a_crashed_workers_jobs_are_claimed():
    c = r()
    key = "py:claims"
    c.delete(key)
    ids = [c.xadd(key, {"n": str(i)}) for i in range(10)]
    c.xgroup_create(key, "g", id="0")
    got = c.xreadgroup("g", "crashed", {key: ">"}, count=6)
    assert [e[0] for e in got[0][1]] == ids[:6]
    # One job is deleted before anyone claims it: XAUTOCLAIM drops it.
    c.xdel(key, ids[2])
    cursor, claimed, deleted = c.xautoclaim(
        key, "g", "rescuer", min_idle_time=0, start_id="0-0", count=3
    )
    assert [e[0] for e in claimed] == ids[:2]
    assert deleted == [ids[2]]
    assert cursor == ids[3]
    # (redis-py answers JUSTID with the claimed IDs alone.)
    claimed = c.xautoclaim(key, "g", "rescuer", min_idle_time=0, start_id=cursor, justid=True)
    assert claimed == ids[3:6]
    assert c.xautoclaim(key, "g", "rescuer", 0, "0", justid=True) == [
        ids[0],
        ids[1],
        ids[3],
        ids[4],
        ids[5],
    ]
    rows = c.xpending_range(key, "g", min="-", max="+", count=10)
    assert [x["message_id"] for x in rows] == [ids[0], ids[1], ids[3], ids[4], ids[5]]
    assert all(x["consumer"] == "rescuer" for x in rows)
    # The first claim counted a delivery; JUSTID did not.
    assert [x["times_delivered"] for x in rows] == [2, 2, 1, 1, 1]
    assert c.xclaim(key, "g", "other", 0, [ids[0]], justid=True) == [ids[0]]
    assert c.xack(key, "g", *ids) == 5
    assert c.xpending(key, "g")["pending"] == 0
    assert c.xgroup_delconsumer(key, "g", "crashed") == 0
    assert c.xgroup_destroy(key, "g") == 1
    assert c.xinfo_groups(key) == []


if __name__ == "__main__":
    sys.exit(run_tests(globals()))
