"""Finding local servers: each server writes `<dir>/<name>.server`, lines
of key=value (proto/src/discovery.rs), removed at a clean exit:

    name=citadel-6379  pid=4242  version=0.1.0  tcp=127.0.0.1:6379 (RESP)
    unix=/path (RESP, optional)  started_at_ms=...
    rpc=127.0.0.1:7379  rpc_unix=/path  shm=/path   (RPC endpoints, optional)

A record whose process is gone (a crash) is dead.
"""

import os
from typing import NamedTuple, Optional

from .address import Address

REQUIRED = ("name", "pid", "version", "tcp", "started_at_ms")
# The RPC endpoints a client may use, best first: no copies through the
# kernel, then a local socket, then TCP.
PREFERENCE = (("shm", "shm"), ("rpc_unix", "unix"), ("rpc", "tcp"))


class Record(NamedTuple):
    name: str
    pid: int
    version: str
    tcp: str
    unix: Optional[str]
    started_at_ms: int
    rpc: Optional[str]
    rpc_unix: Optional[str]
    shm: Optional[str]

    def alive(self):
        """True while the record's process runs and is not a zombie."""
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                stat = f.read()
        except OSError:
            return False
        return not stat.rpartition(")")[2].lstrip().startswith("Z")

    def endpoints(self):
        """The record's RPC Addresses, best first."""
        out = []
        for key, kind in PREFERENCE:
            value = getattr(self, key)
            if value:
                if kind == "tcp":
                    host, _, port = value.rpartition(":")
                    out.append(Address("tcp", (host.strip("[]"), int(port))))
                else:
                    out.append(Address(kind, value))
        return out


def parse_record(text):
    """A Record, or None when a required key is missing or malformed. The
    first line of a key wins; unknown keys are ignored."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key not in fields:
            fields[key] = value
    if any(k not in fields for k in REQUIRED):
        return None
    try:
        pid, started = int(fields["pid"]), int(fields["started_at_ms"])
    except ValueError:
        return None
    get = fields.get
    return Record(fields["name"], pid, fields["version"], fields["tcp"], get("unix"), started, get("rpc"), get("rpc_unix"), get("shm"))


def default_dir():
    """As discovery::default_dir: $XDG_RUNTIME_DIR/citadel, /run/citadel for
    root, else <tmp>/citadel-<uid>."""
    run = os.environ.get("XDG_RUNTIME_DIR")
    if run:
        return os.path.join(run, "citadel")
    uid = os.geteuid()
    if uid == 0:
        return "/run/citadel"
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", f"citadel-{uid}")


def list_records(directory=None):
    """[(Record, alive)] for every readable record, sorted by name."""
    directory = directory or default_dir()
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    out = []
    for name in names:
        if not name.endswith(".server"):
            continue
        try:
            with open(os.path.join(directory, name)) as f:
                record = parse_record(f.read())
        except OSError:
            continue
        if record is not None:
            out.append((record, record.alive()))
    out.sort(key=lambda pair: pair[0].name)
    return out


def local_endpoints(directory=None, name=None):
    """The RPC Addresses of the live local servers (only `name`'s when
    given), best transport first, in record-name order."""
    return [
        address
        for record, alive in list_records(directory)
        if alive and (name is None or record.name == name)
        for address in record.endpoints()
    ]
