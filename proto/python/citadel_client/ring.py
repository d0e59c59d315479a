"""The two halves of citadel-proto's shared-memory ring (proto/src/ring/
layout.rs) that a client needs: it produces requests into one ring and
consumes replies from the other. The plugin SDK (plugins/python/
citadel_plugin/ring.py) implements the same layout for plugins; it is not
an installable package, so the client keeps this small copy of the layout
constants and the two operations it uses.

    0 magic "CITRING1"  8 version u32  12 data offset u32  16 capacity u64
    128 head u64 (producer)  256 commit u64 (consumer)  384 sleeping u32
    (72 closed, 136 writing, 144 calls: layout 2's gate of a pipeline
    stage's input ring; a client's rings are never closed, so it ignores
    them)
    512 data: records = 32-byte header + payload padded to 8 bytes; a header
        whose len is 0xFFFFFFFF pads to the end of the data area.

Record header: len u32, kind u8, format u8, attempt u16, id u64,
deadline_ms u64, status u32, reserved u32.

Ordering: cursors are single aligned 8-byte accesses through memoryview
casts; on x86-64 (TSO) plain stores and loads give the release/acquire
order the protocol needs. The sleeping-flag handshake needs a full fence
(store then load), made with an uncontended lock (a locked instruction).
"""

import os
import struct
import threading

MAGIC = int.from_bytes(b"CITRING1", "little")
LAYOUT_VERSION = 2
OFF_CAPACITY = 16
OFF_HEAD = 128
OFF_COMMIT = 256
OFF_SLEEPING = 384
DATA_OFFSET = 512
RECORD_HEADER = struct.Struct("<IBBHQQII")
PAD_MARKER = 0xFFFFFFFF
KIND_REQUEST = 1
FORMAT_FLATBUFFER = 1

_fence_lock = threading.Lock()


def full_fence():
    _fence_lock.acquire()
    _fence_lock.release()


def region_len(capacity):
    return DATA_OFFSET + capacity


def record_len(payload_len):
    return RECORD_HEADER.size + ((payload_len + 7) & ~7)


class RingError(Exception):
    """The memory is not a ring, or its contents are inconsistent."""


class Ring:
    """A view of one ring inside a shared mapping, starting at `offset`."""

    def __init__(self, mm, offset):
        self.mm = mm
        self.base = offset
        (magic,) = struct.unpack_from("<Q", mm, offset)
        version, data_offset, capacity = struct.unpack_from("<IIQ", mm, offset + 8)
        if magic != MAGIC or version != LAYOUT_VERSION or data_offset != DATA_OFFSET:
            raise RingError(f"no ring at offset {offset} (magic {magic:#x}, version {version})")
        if capacity < 4096 or capacity & (capacity - 1) or offset + region_len(capacity) > len(mm):
            raise RingError(f"ring capacity {capacity} does not fit the mapping")
        self.capacity = capacity
        self.mask = capacity - 1
        self.max_payload = capacity // 2 - RECORD_HEADER.size
        view = memoryview(mm)[offset : offset + region_len(capacity)]
        self._q = view.cast("Q")
        self._i = view.cast("I")
        self.data = offset + DATA_OFFSET

    def head(self):
        return self._q[OFF_HEAD // 8]

    def commit(self):
        return self._q[OFF_COMMIT // 8]

    def release(self):
        """Drops the memoryviews so the mapping can be closed."""
        self._q.release()
        self._i.release()


class RingWriter:
    """The single producer of the request ring. `wake_fd`: the consumer's
    (the server's) doorbell eventfd, written only when it sleeps."""

    def __init__(self, ring, wake_fd):
        self.ring = ring
        self.wake_fd = wake_fd
        self.head = (ring.head() + 7) & ~7

    def try_write(self, record_id, payload, deadline_ms=0):
        """Publishes one record and wakes the consumer; False if the ring has
        no room now (the caller waits for the consumer to commit)."""
        ring = self.ring
        length = len(payload)
        if length > ring.max_payload:
            raise ValueError(f"record of {length} bytes exceeds the ring's {ring.max_payload}")
        need = record_len(length)
        index = self.head & ring.mask
        pad = ring.capacity - index if need > ring.capacity - index else 0
        if ring.capacity - (self.head - ring.commit()) < pad + need:
            return False
        if pad:
            ring._i[(DATA_OFFSET + index) // 4] = PAD_MARKER
            index = 0
        start = ring.data + index
        body = start + RECORD_HEADER.size
        ring.mm[body : body + length] = payload
        RECORD_HEADER.pack_into(ring.mm, start, length, KIND_REQUEST, FORMAT_FLATBUFFER, 0, record_id, deadline_ms, 0, 0)
        self.head += pad + need
        ring._q[OFF_HEAD // 8] = self.head  # publish: payload and header first (TSO)
        full_fence()
        if ring._i[OFF_SLEEPING // 4]:
            os.eventfd_write(self.wake_fd, 1)
        return True


class RingReader:
    """The single consumer of the reply ring. `wake_fd`: our eventfd, which
    the server writes when it publishes while we sleep."""

    def __init__(self, ring, wake_fd):
        self.ring = ring
        self.wake_fd = wake_fd
        self.pos = ring.commit()

    def has_unread(self):
        return self.ring.head() != self.pos

    def read(self):
        """The next record's payload (copied out), or None; the space is
        released at once since the copy is all we keep."""
        ring = self.ring
        while True:
            avail = ring.head() - self.pos
            if avail == 0:
                return None
            index = self.pos & ring.mask
            to_end = ring.capacity - index
            length = ring._i[(DATA_OFFSET + index) // 4]
            if length == PAD_MARKER:
                if avail < to_end:
                    raise RingError(f"padding past head at {self.pos}")
                self.pos += to_end
                continue
            size = record_len(length)
            if size > to_end or size > avail:
                raise RingError(f"corrupt record at {self.pos}")
            body = ring.data + index + RECORD_HEADER.size
            payload = ring.mm[body : body + length]
            self.pos += size
            ring._q[OFF_COMMIT // 8] = self.pos
            return payload

    def prepare_sleep(self):
        """Sets the sleeping flag and fences; True if the caller may block on
        wake_fd (any later record rings it), False if data came meanwhile."""
        self.ring._i[OFF_SLEEPING // 4] = 1
        full_fence()
        if self.has_unread():
            self.ring._i[OFF_SLEEPING // 4] = 0
            return False
        return True

    def woke(self):
        self.ring._i[OFF_SLEEPING // 4] = 0
        try:
            os.eventfd_read(self.wake_fd)
        except BlockingIOError:
            pass
