"""Starting the real server for end-to-end tests: free ports, a private
cache file and discovery directory, every RPC transport, the test plugins.
The binary is $CITADEL_BIN, else <target>/release/citadel."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.environ.get("CITADEL_BIN", os.path.join(TARGET, "release", "citadel"))
TEXT_STAGE = os.path.join(TARGET, "release", "citadel-text-stage")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_reason():
    """Why the e2e tests cannot run here (None when they can)."""
    if not os.path.exists(BIN):
        return f"no server binary at {BIN}"
    help_text = subprocess.run([BIN, "--help"], capture_output=True, text=True).stdout
    if "--rpc-port" not in help_text or "--shm-socket" not in help_text:
        return "this server build has no RPC listener"
    return None


def config_text():
    """Plugins: "sleepy" (Python SDK), and the "text" pipeline when the
    text stage binary is built."""
    conf = f'[[plugin]]\nname = "sleepy"\nexec = "{sys.executable}"\nargs = ["{os.path.join(HERE, "plugins", "sleepy.py")}"]\ncores = "none"\ninstances = 2\ntimeout-ms = 20000\n'
    if os.path.exists(TEXT_STAGE):
        for role in ("split", "upper"):
            conf += f'[[plugin]]\nname = "{role}"\nexec = "{TEXT_STAGE}"\nargs = ["--role", "{role}"]\ncores = "none"\n'
        conf += '[[pipeline]]\nname = "text"\nstages = ["split", "upper"]\ntimeout-ms = 20000\n'
    return conf


class Citadel:
    """A citadel process; stop() kills it, start() runs it again with the
    same ports and paths (a restart)."""

    def __init__(self, *extra, discovery_dir=None, port=None, rpc_port=None):
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.dir = tempfile.mkdtemp(prefix="citadel-pyclient-", dir=base)
        self.port, self.rpc_port = port or free_port(), rpc_port or free_port()
        self.rpc_unix = os.path.join(self.dir, "rpc.sock")
        self.shm = os.path.join(self.dir, "shm.sock")
        self.discovery = discovery_dir or os.path.join(self.dir, "discovery")
        config = os.path.join(self.dir, "citadel.toml")
        with open(config, "w") as f:
            f.write(config_text())
        self.args = [
            BIN, "--config", config, "--port", str(self.port), "--rpc-port", str(self.rpc_port),
            "--rpc-unixsocket", self.rpc_unix, "--shm-socket", self.shm,
            "--cache-file", os.path.join(self.dir, "cache"), "--maxmemory", "64mb", "--threads", "2",
            "--discovery-dir", self.discovery, *extra,
        ]  # fmt: skip
        self.proc = None
        self.start()

    def addresses(self):
        """The RPC endpoints by transport (shm only where the server serves it)."""
        out = {"tcp": f"tcp://127.0.0.1:{self.rpc_port}", "unix": f"unix://{self.rpc_unix}"}
        if self.has_shm:
            out["shm"] = f"shm://{self.shm}"
        return out

    def start(self):
        self.log = open(os.path.join(self.dir, "log"), "a")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("citadel exited at startup:\n" + self.read_log())
            # Ready: every RPC endpoint accepts and the discovery record is
            # there (published just after the listeners start).
            if self._accepts() and self.record_path():
                self.has_shm = self._accepts_at(self.shm)
                return
            time.sleep(0.05)
        raise RuntimeError("citadel did not start:\n" + self.read_log())

    def _accepts(self):
        try:
            socket.create_connection(("127.0.0.1", self.rpc_port), timeout=1).close()
        except OSError:
            return False
        return self._accepts_at(self.rpc_unix)

    @staticmethod
    def _accepts_at(path):
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(path)
                return True
            except OSError:
                return False

    def record_path(self):
        try:
            names = [n for n in os.listdir(self.discovery) if n.endswith(".server")]
        except OSError:
            return None
        for name in names:
            path = os.path.join(self.discovery, name)
            with open(path) as f:
                if f"pid={self.proc.pid}\n" in f.read():
                    return path
        return None

    def read_log(self):
        with open(os.path.join(self.dir, "log")) as f:
            return f.read()

    def redis(self, **kw):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30, **kw)

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)
        self.log.close()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
