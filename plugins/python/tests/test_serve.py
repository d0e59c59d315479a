import os
import signal

from helpers import PKG_ROOT, Host

from citadel_plugin.ring import KIND_ABANDONED, KIND_REPLY, KIND_REQUEST, STATUS_POISON

UPPER = os.path.join(PKG_ROOT, "examples", "upper.py")
POISON = """
import os
from citadel_plugin import serve
def handle(req):
    if req.payload == b"poison":
        os.abort()
    return req.payload.upper()
serve(handle)
"""


def test_example_plugin_uppercases_and_stops_on_sigterm():
    host = Host()
    try:
        proc = host.spawn([UPPER])
        for i in range(500):
            host.requests.send(i, b"hello %d" % i, kind=KIND_REQUEST)
            if i % 50 == 0:
                host.requests.notify()
        host.requests.notify()
        got = host.collect(500, proc)
        assert sorted(got) == list(range(500))
        for i, recs in got.items():
            assert [(r.kind, r.payload, r.attempt) for r in recs] == [(KIND_REPLY, b"HELLO %d" % i, 1)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        host.close()


def test_poison_request_is_skipped_after_three_attempts():
    host = Host()
    try:
        for i, payload in enumerate([b"a", b"poison", b"b"]):
            host.requests.send(i, payload, kind=KIND_REQUEST)
        crashes = 0
        got = {}
        while True:
            proc = host.spawn(["-c", POISON])
            host.requests.notify()
            for k, v in host.collect(3 - len(got), proc).items():
                got.setdefault(k, []).extend(v)
            if len(got) == 3:
                break
            assert proc.wait(timeout=10) != 0
            crashes += 1
            assert crashes <= 3
        assert crashes == 3
        assert [(r.kind, r.payload) for r in got[0]] == [(KIND_REPLY, b"A")]
        assert [(r.kind, r.status, r.attempt) for r in got[1]] == [(KIND_ABANDONED, STATUS_POISON, 4)]
        assert [(r.kind, r.payload) for r in got[2]] == [(KIND_REPLY, b"B")]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        host.close()
