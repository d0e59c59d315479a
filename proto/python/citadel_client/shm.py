"""The shared-memory transport (same host). Handshake on the server's
--shm-socket: we send b"CSHM", u32 version 1, u64 ring capacity (0 = the
server's default); it answers b"CSHM", u32 status, u64 granted capacity,
with four fds (as proto/src/rpc/shm.rs sends them): the request ring's
memfd, the reply ring's memfd, the server's doorbell eventfd and ours.
Every ring record is one whole frame. The handshake socket stays open for the transport's life: its
closing tells the server to reclaim the rings, and its EOF tells us the
server is gone.
"""

import mmap
import os
import select
import socket
import struct
import threading
import time

from .errors import CitadelError, ConnectionClosed, ErrorCode, TooLarge
from .frame import split_frame
from .ring import Ring, RingReader, RingWriter
from .transport import open_socket
from .address import Address

HANDSHAKE = struct.Struct("<4sIQ")
SHM_MAGIC = b"CSHM"
SHM_VERSION = 1
# How long the reader polls the ring before it sleeps on its eventfd, and
# the longest pause while the request ring is full.
SPIN_S = 50e-6
FULL_BACKOFF_MAX_S = 0.002


GRANT_FDS = 4
# A refusal's status (proto/src/rpc/shm.rs GrantRefused).
REFUSALS = {1: "malformed handshake", 2: "version not supported", 3: "capacity not a power of two in 64 KiB..64 MiB", 4: "the server cannot create the rings"}


def handshake(sock, capacity):
    """Sends the request; returns the four granted fds (request ring memfd,
    reply ring memfd, server doorbell, client eventfd)."""
    sock.sendall(HANDSHAKE.pack(SHM_MAGIC, SHM_VERSION, capacity))
    data, fds, _, _ = socket.recv_fds(sock, HANDSHAKE.size, GRANT_FDS)
    if len(data) < HANDSHAKE.size:
        for fd in fds:
            os.close(fd)
        raise ConnectionClosed("shm handshake: the server closed the socket")
    magic, status, _ = HANDSHAKE.unpack(data)
    if magic != SHM_MAGIC or status != 0 or len(fds) != GRANT_FDS:
        for fd in fds:
            os.close(fd)
        if magic != SHM_MAGIC:
            raise CitadelError(ErrorCode.BadFrame, f"shm handshake: bad magic {magic!r}")
        why = REFUSALS.get(status, f"status {status}") if status else f"{len(fds)} descriptors, not {GRANT_FDS}"
        raise CitadelError(ErrorCode.Internal, f"shm handshake refused: {why}")
    return fds


def map_ring(fd):
    """The ring in memfd `fd` (the whole file), which is closed after mapping."""
    try:
        return Ring(mmap.mmap(fd, 0), 0)
    finally:
        os.close(fd)


class ShmTransport:
    def __init__(self, sock, request_fd, reply_fd, server_fd, client_fd):
        self.sock = sock
        self.writer = RingWriter(map_ring(request_fd), server_fd)
        self.reader = RingReader(map_ring(reply_fd), client_fd)
        self._send_lock = threading.Lock()
        self._closed = False

    @classmethod
    def connect(cls, path, capacity=0, timeout=10.0):
        sock = open_socket(Address("unix", path), timeout)
        try:
            fds = handshake(sock, capacity)
        except BaseException:
            sock.close()
            raise
        return cls(sock, *fds)

    def send(self, request_id, frame, deadline=0):
        if len(frame) > self.writer.ring.max_payload:
            raise TooLarge(ErrorCode.TooLarge, f"frame of {len(frame)} bytes exceeds the ring's {self.writer.ring.max_payload}")
        pause = SPIN_S
        with self._send_lock:
            # The ring is full only while the server is behind: wait for it
            # to commit, with a growing pause (there is no "space" doorbell).
            while not self._closed and not self.writer.try_write(request_id, frame, deadline):
                time.sleep(pause)
                pause = min(pause * 2, FULL_BACKOFF_MAX_S)
            if self._closed:
                raise ConnectionClosed("shm transport closed")

    def frames(self):
        poller = select.poll()
        poller.register(self.reader.wake_fd, select.POLLIN)
        poller.register(self.sock.fileno(), select.POLLIN)
        reader = self.reader
        while not self._closed:
            record = reader.read()
            if record is not None:
                yield split_frame(record)
                continue
            spin_until = time.monotonic() + SPIN_S
            while not reader.has_unread() and time.monotonic() < spin_until:
                pass
            if reader.has_unread() or not reader.prepare_sleep():
                continue
            ready = {fd for fd, _ in poller.poll()}
            reader.woke()
            if self.sock.fileno() in ready and self._server_gone():
                return

    def _server_gone(self):
        """True at EOF on the handshake socket (the server went away, or
        we shut it down); a stray byte is read and ignored."""
        try:
            return self.sock.recv(64, socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def shutdown(self):
        self._closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self):
        self._closed = True
        self.sock.close()
        for fd in (self.writer.wake_fd, self.reader.wake_fd):
            os.close(fd)
        for ring in (self.writer.ring, self.reader.ring):
            ring.release()
            ring.mm.close()
