"""Addresses: "tcp://host:port" (or plain "host:port"), "unix:///path",
"shm:///path" (the shared-memory handshake socket)."""

from typing import NamedTuple


class Address(NamedTuple):
    kind: str  # "tcp" | "unix" | "shm"
    target: object  # (host, port) for tcp, a path otherwise

    def __str__(self):
        if self.kind == "tcp":
            return f"tcp://{self.target[0]}:{self.target[1]}"
        return f"{self.kind}://{self.target}"


def parse_address(text):
    if isinstance(text, Address):
        return text
    if isinstance(text, tuple):
        return Address("tcp", (text[0], int(text[1])))
    kind, sep, rest = text.partition("://")
    if not sep:
        kind, rest = "tcp", text
    if kind in ("unix", "shm"):
        return Address(kind, rest)
    if kind != "tcp":
        raise ValueError(f"unknown address scheme {kind!r} in {text!r}")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"tcp address {text!r} is not host:port")
    return Address("tcp", (host.strip("[]"), int(port)))
