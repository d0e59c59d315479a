"""Blocking transports for the Client. A transport sends whole request
frames (any thread, serialised here) and yields reply frames to one reader
thread until the connection ends:

    send(request_id, frame, deadline)   frames() -> iter of (Header, body)
    shutdown()  (wakes the reader)      close()  (after the reader ended)
"""

import socket
import threading

from .address import parse_address
from .errors import ConnectionClosed
from .frame import FrameSplitter


class SocketTransport:
    """TCP or Unix stream socket."""

    def __init__(self, sock):
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, request_id, frame, deadline=0):
        with self._send_lock:
            try:
                self.sock.sendall(frame)
            except OSError as e:
                raise ConnectionClosed(f"send failed: {e}") from e

    def frames(self):
        splitter = FrameSplitter()
        while True:
            try:
                data = self.sock.recv(1 << 18)
            except OSError:
                return
            if not data:
                return
            yield from splitter.feed(data)

    def shutdown(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        self.sock.close()


def open_socket(address, timeout=10.0):
    """A connected socket for a tcp or unix Address."""
    if address.kind == "tcp":
        sock = socket.create_connection(address.target, timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.target)
        except OSError:
            sock.close()
            raise
    sock.settimeout(None)
    return sock


def connect(address, timeout=10.0, shm_capacity=0):
    """A transport to `address` (see address.parse_address)."""
    address = parse_address(address)
    if address.kind == "shm":
        from .shm import ShmTransport

        return ShmTransport.connect(address.target, shm_capacity, timeout)
    return SocketTransport(open_socket(address, timeout))
