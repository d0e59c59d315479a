"""A Python stand-in for the server side: creates rings and eventfds and
spawns a plugin process with the handshake environment."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PKG_ROOT = os.path.dirname(HERE)
sys.path.insert(0, PKG_ROOT)

from citadel_plugin.ring import Consumer, Producer, Ring  # noqa: E402


class Host:
    def __init__(self, capacity=1 << 16):
        base = os.path.join("/dev/shm", f"citadel-pytest-{os.getpid()}-{id(self)}")
        self._files = [base + ".req", base + ".rep"]
        self.req_ring = Ring.create(capacity, self._files[0])
        self.rep_ring = Ring.create(capacity, self._files[1])
        self.req_efd = os.eventfd(0, os.EFD_NONBLOCK)
        self.rep_efd = os.eventfd(0, os.EFD_NONBLOCK)
        self.requests = Producer(self.req_ring, self.req_efd)
        self.replies = Consumer(self.rep_ring, self.rep_efd)

    def env(self, max_attempts=3):
        env = dict(os.environ)
        env["CITADEL_PLUGIN_RINGS"] = f"{self._files[0]},{self._files[1]}"
        env["CITADEL_PLUGIN_EVENTFDS"] = f"{self.req_efd},{self.rep_efd}"
        env["CITADEL_PLUGIN_MAX_ATTEMPTS"] = str(max_attempts)
        env["PYTHONPATH"] = PKG_ROOT
        return env

    def spawn(self, args):
        return subprocess.Popen([sys.executable, *args], env=self.env(), pass_fds=(self.req_efd, self.rep_efd))

    def collect(self, want, proc, timeout=30.0):
        """Reads replies until `want` ids are answered or `proc` exits; returns {id: [record]}."""
        import time

        from citadel_plugin.ring import Waiter

        waiter = Waiter([self.replies])
        got = {}
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            while (rec := self.replies.read()) is not None:
                got.setdefault(rec.id, []).append(rec)
            self.replies.commit_read()
            if proc.poll() is not None:
                break
            waiter.wait(timeout=0.02, spin_s=0)
        return got

    def close(self):
        for path in self._files:
            os.unlink(path)
        os.close(self.req_efd)
        os.close(self.rep_efd)
