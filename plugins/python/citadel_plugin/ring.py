"""The ring protocol of citadel-proto (proto/src/ring/layout.rs), in pure Python.

Memory layout (little-endian, offsets from the start of the mapping)::

    0    magic "CITRING1"      8   layout version (u32)   12  data offset (u32)
    16   capacity (u64)        24  consumer attaches      32  producer attaches
    72   closed (u32, host: 1 = a stage's input takes no new call)
    128  head   (u64, producer: bytes ever published)
    136  writing (u32, producer: 1 while it opens a call)
    144  calls  (u64, producer: calls opened here and not ended)
    160  open calls (12 x u64 call ids, producer: 0 = free; a restarted
         producer continues the calls it finds here)
    256  commit (u64, consumer: bytes ever released; durable)
    384  sleeping (u32, 1 while the consumer is parked)
    512  data: records = 32-byte header + payload padded to 8; a header whose
         len is 0xFFFFFFFF is padding up to the end of the data area.

Header (FlatBuffers struct citadel.ring.RecordHeader): len u32, kind u8,
format u8, attempt u16, id u64, deadline_ms u64, status u32, reserved u32.

Memory ordering: cursors and flags are read and written as single aligned
8/4-byte accesses through ``memoryview.cast``. On x86-64 (TSO) plain loads
and stores already give the acquire/release ordering the protocol needs; the
store-then-load handshakes that need a full fence (the sleeping flag, and the
gate's ``writing`` then ``closed``, proto/src/ring/gate.rs) use
``full_fence()``. Other architectures are not supported by this package.
"""

import mmap
import os
import select
import struct
import threading
import time

MAGIC = int.from_bytes(b"CITRING1", "little")
LAYOUT_VERSION = 2
OFF_VERSION = 8
OFF_DATA_OFFSET = 12
OFF_CAPACITY = 16
OFF_CONSUMER_ATTACHES = 24
OFF_PRODUCER_ATTACHES = 32
OFF_FULL_COUNT = 40
OFF_EMPTY_COUNT = 48
OFF_DELIVERED = 56
OFF_BUSY_NS = 64
OFF_CLOSED = 72
_CLOSED = OFF_CLOSED // 4
OFF_HEAD = 128
_HEAD = OFF_HEAD // 8
OFF_WRITING = 136
OFF_CALLS = 144
_WRITING, _CALLS = OFF_WRITING // 4, OFF_CALLS // 8
OFF_OPEN_CALLS = 160
OPEN_CALL_SLOTS = 12
_OPEN_CALLS = range(OFF_OPEN_CALLS // 8, OFF_OPEN_CALLS // 8 + OPEN_CALL_SLOTS)
OFF_COMMIT = 256
OFF_LATENCY = 264  # 14 buckets: under 64 us, then doubling (proto/src/ring/mod.rs)
LATENCY_BUCKETS = 14
OFF_SLEEPING = 384
_SLEEPING = OFF_SLEEPING // 4
DATA_OFFSET = 512
HEADER = struct.Struct("<IBBHQQII")
HEADER_LEN = HEADER.size
PAD_MARKER = 0xFFFFFFFF

KIND_REQUEST, KIND_REPLY, KIND_INVALIDATION, KIND_ERROR, KIND_ABANDONED, KIND_CONTROL = 1, 2, 3, 4, 5, 6
FORMAT_RAW, FORMAT_FLATBUFFER = 0, 1
STATUS_OK, STATUS_POISON, STATUS_HANDLER_FAILED, STATUS_DEADLINE = 0, 1, 2, 3

_fence_lock = threading.Lock()


def full_fence():
    """A full memory barrier: an uncontended lock acquire is an atomic
    read-modify-write (a locked instruction on x86-64)."""
    _fence_lock.acquire()
    _fence_lock.release()


def record_len(payload_len):
    return HEADER_LEN + ((payload_len + 7) & ~7)


class RingError(Exception):
    """The memory is not a ring this package understands, or is corrupt."""


class RingFull(Exception):
    """No room for the record now (backpressure); retry after the consumer commits."""


class TooLarge(Exception):
    """The payload can never fit in this ring."""


class Ring:
    """A mapped ring. ``mm`` is a shared, writable mmap of the whole region."""

    def __init__(self, mm):
        if len(mm) < DATA_OFFSET:
            raise RingError(f"region of {len(mm)} bytes is too small")
        self.mm = mm
        self._q = memoryview(mm)[: len(mm) & ~7].cast("Q")
        self._i = memoryview(mm)[: len(mm) & ~3].cast("I")
        self._h = memoryview(mm)[: len(mm) & ~1].cast("H")
        if self._q[0] != MAGIC:
            raise RingError(f"bad ring magic {self._q[0]:#x}")
        version = self._i[OFF_VERSION // 4]
        if version != LAYOUT_VERSION:
            raise RingError(f"ring layout version {version}, this package speaks {LAYOUT_VERSION}")
        self.capacity = self._q[OFF_CAPACITY // 8]
        cap = self.capacity
        if cap < 4096 or cap & (cap - 1) or self._i[OFF_DATA_OFFSET // 4] != DATA_OFFSET or len(mm) < DATA_OFFSET + cap:
            raise RingError("ring geometry does not match the region")
        self.mask = cap - 1
        self.max_payload = cap // 2 - HEADER_LEN

    @classmethod
    def create(cls, capacity, path=None):
        """A fresh ring in a new memfd, or in the file `path` (for tests and
        Python-side servers)."""
        if path is None:
            fd = os.memfd_create("citadel-py-ring")
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.ftruncate(fd, DATA_OFFSET + capacity)
        mm = mmap.mmap(fd, DATA_OFFSET + capacity)
        os.close(fd)
        struct.pack_into("<IIQ", mm, OFF_VERSION, LAYOUT_VERSION, DATA_OFFSET, capacity)
        struct.pack_into("<Q", mm, 0, MAGIC)
        return cls(mm)

    @classmethod
    def open_fd(cls, fd):
        return cls(mmap.mmap(fd, 0))

    @classmethod
    def open_path(cls, path):
        fd = os.open(path, os.O_RDWR)
        try:
            return cls.open_fd(fd)
        finally:
            os.close(fd)

    def _u64(self, off):
        return self._q[off // 8]

    def _set_u64(self, off, value):
        self._q[off // 8] = value

    def head(self):
        return self._q[OFF_HEAD // 8]

    def commit_cursor(self):
        return self._q[OFF_COMMIT // 8]

    def sleeping(self):
        return self._i[OFF_SLEEPING // 4]

    def is_open(self):
        """A stage's input the host lets new calls open in (the gate)."""
        return self._i[OFF_CLOSED // 4] == 0

    def set_sleeping(self, value):
        self._i[OFF_SLEEPING // 4] = value


class Record:
    __slots__ = ("id", "kind", "format", "deadline_ms", "attempt", "status", "payload", "index", "end")

    def __init__(self, header, payload, index, end):
        _, self.kind, self.format, self.attempt, self.id, self.deadline_ms, self.status, _ = header
        self.payload = payload
        self.index = index
        self.end = end


class Consumer:
    """The ring's single consumer; starts reading at the durable commit cursor."""

    def __init__(self, ring, eventfd):
        self.ring = ring
        self.eventfd = eventfd
        self.committed = ring.commit_cursor()
        self.read_pos = self.committed
        ring._set_u64(OFF_CONSUMER_ATTACHES, ring._u64(OFF_CONSUMER_ATTACHES) + 1)

    def has_unread(self):
        return self.ring.head() != self.read_pos

    def read(self):
        """The next record (payload copied to bytes), or None."""
        ring = self.ring
        while True:
            pos = self.read_pos
            avail = ring.head() - pos
            if avail == 0:
                return None
            index = pos & ring.mask
            to_end = ring.capacity - index
            length = ring._i[(DATA_OFFSET + index) // 4]
            if length == PAD_MARKER:
                if avail < to_end:
                    raise RingError(f"padding past head at {pos}")
                self.read_pos = pos + to_end
                continue
            rec = record_len(length)
            if rec > to_end or rec > avail:
                raise RingError(f"corrupt record at {pos}")
            start = DATA_OFFSET + index
            header = HEADER.unpack_from(ring.mm, start)
            payload = ring.mm[start + HEADER_LEN : start + HEADER_LEN + length]
            self.read_pos = pos + rec
            return Record(header, payload, index, pos + rec)

    def mark_delivery(self, record):
        """Counts one more delivery in ring memory; returns the new count."""
        slot = (DATA_OFFSET + record.index + 6) // 2
        attempt = (self.ring._h[slot] + 1) & 0xFFFF
        self.ring._h[slot] = attempt
        return attempt

    def record_handled(self, records, nanos):
        """Statistics the server reads (PIPELINE INFO): records delivered,
        handler time, and each record's share in the latency histogram."""
        q = self.ring._q  # per batch (per record in ``serve``): no method calls
        q[OFF_DELIVERED // 8] += records
        q[OFF_BUSY_NS // 8] += nanos
        units = (nanos // max(records, 1)) // 64_000
        q[OFF_LATENCY // 8 + min(units.bit_length(), LATENCY_BUCKETS - 1)] += records

    def commit_read(self):
        """Releases everything read so far to the producer (durable)."""
        if self.read_pos != self.committed:
            self.committed = self.read_pos
            self.ring._set_u64(OFF_COMMIT, self.committed)

    def drain_eventfd(self):
        try:
            os.eventfd_read(self.eventfd)
        except BlockingIOError:
            pass


class Waiter:
    """Parks on a fixed set of consumers and extra fds. The poll set is built
    once: a stage serves one pair per upstream slot (spares included) and
    parks after nearly every record at light load."""

    def __init__(self, consumers, extra_fds=()):
        self.consumers = list(consumers)
        self.extra_fds = tuple(extra_fds)
        self._poller = select.poll()
        for fd in [c.eventfd for c in self.consumers] + list(self.extra_fds):
            self._poller.register(fd, select.POLLIN)

    def _any_unread(self, heads):
        return any(q[_HEAD] != pos for q, pos in heads)

    def wait(self, timeout=None, spin_s=50e-6):
        """Waits until a consumer has records ("data"), an extra fd is readable
        ("extra"), or the timeout passes ("timeout"): spins briefly, then parks."""
        consumers = self.consumers
        # Nothing reads while waiting: each consumer's position is fixed.
        heads = [(c.ring._q, c.read_pos) for c in consumers]
        spin_until = time.monotonic() + spin_s
        while time.monotonic() < spin_until:
            if self._any_unread(heads):
                return "data"
        for c in consumers:
            c.ring.set_sleeping(1)
        full_fence()
        try:
            if self._any_unread(heads):
                return "data"
            ready = {fd for fd, _ in self._poller.poll(None if timeout is None else int(timeout * 1000))}
        finally:
            for c in consumers:
                c.ring.set_sleeping(0)
        for c in consumers:
            if c.eventfd in ready:
                c.drain_eventfd()
        if any(fd in ready for fd in self.extra_fds):
            return "extra"
        if self._any_unread(heads):
            return "data"
        return "timeout"


class Producer:
    """The ring's single producer; continues after the last published record."""

    def __init__(self, ring, eventfd):
        self.ring = ring
        self.eventfd = eventfd
        # Records start 8-aligned. A head that is not (another process wrote
        # it) moves up to the next boundary, as in the Rust producer: a
        # padding marker at a misaligned offset could run past the data area.
        self.head = (ring.head() + 7) & ~7
        self._commit = ring.commit_cursor()
        ring._set_u64(OFF_PRODUCER_ATTACHES, ring._u64(OFF_PRODUCER_ATTACHES) + 1)
        # The calls a previous producer (now gone) opened here stay open: this
        # one continues them (gate.rs). It may have died between a slot and
        # the count, so the count is the table's.
        ring._set_u64(OFF_CALLS, len(self.open_call_ids()))
        ring._i[OFF_WRITING // 4] = 0

    def send(self, id, payload, kind=KIND_REPLY, fmt=FORMAT_RAW, deadline_ms=0, attempt=0, status=STATUS_OK):
        """Publishes one record (without waking the consumer: call notify())."""
        ring = self.ring
        length = len(payload)
        if length > ring.max_payload:
            raise TooLarge(f"payload of {length} bytes exceeds {ring.max_payload}")
        rec = record_len(length)
        index = self.head & ring.mask
        to_end = ring.capacity - index
        pad = to_end if rec > to_end else 0
        if ring.capacity - (self.head - self._commit) < pad + rec:
            self._commit = ring.commit_cursor()
            if ring.capacity - (self.head - self._commit) < pad + rec:
                raise RingFull(f"{pad + rec} bytes needed")
        if pad:
            ring._i[(DATA_OFFSET + index) // 4] = PAD_MARKER
            index = 0
        start = DATA_OFFSET + index
        ring.mm[start + HEADER_LEN : start + HEADER_LEN + length] = payload
        HEADER.pack_into(ring.mm, start, length, kind, fmt, attempt, id, deadline_ms, status, 0)
        self.head += pad + rec
        ring._set_u64(OFF_HEAD, self.head)

    def in_flight(self):
        return self.head - self.ring.commit_cursor()

    def open_call(self, id):
        """Opens call ``id`` (never 0) in this ring unless the host closed it
        (the gate of proto/src/ring/gate.rs: writing = 1, full fence, look at
        closed) or its open-call table is full. Returns "opened", "closed" or
        "full"."""
        words, q = self.ring._i, self.ring._q
        words[_WRITING] = 1
        _fence_lock.acquire()  # full_fence(), inline: once per call
        _fence_lock.release()
        if words[_CLOSED] != 0:
            outcome = "closed"
        else:
            free = next((n for n in _OPEN_CALLS if q[n] == 0), None)
            if free is None:
                outcome = "full"
            else:
                q[free] = id
                q[_CALLS] += 1
                outcome = "opened"
        # TSO: the slot and the count are stored before writing goes back to 0.
        words[_WRITING] = 0
        return outcome

    def end_call(self, id):
        """Ends call ``id``, opened here, after its last record is published."""
        q = self.ring._q
        slot = next((n for n in _OPEN_CALLS if id and q[n] == id), None)
        if slot is None:
            return
        q[slot] = 0
        if q[_CALLS]:
            q[_CALLS] -= 1

    def open_call_ids(self):
        """The calls open here; just after attaching, those a previous
        producer opened and did not end (this one continues them here)."""
        q = self.ring._q
        return [q[n] for n in _OPEN_CALLS if q[n]]

    def notify(self):
        """Wakes the consumer if it is parked."""
        _fence_lock.acquire()  # full_fence(), inline: once per batch
        _fence_lock.release()
        if self.ring._i[_SLEEPING]:
            os.eventfd_write(self.eventfd, 1)
            return True
        return False
