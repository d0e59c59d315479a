"""The 24-byte RPC frame header (proto/src/rpc/mod.rs) and a stream splitter.

    offset size field
         0    1 magic b'C'
         1    1 version 1
         2    1 flags: FINAL 1 | PARTIAL 2 | BATCH 4 | ERROR 8
         3    1 method (the Op union's discriminant)
         4    4 body length, u32 LE
         8    8 request id, u64 LE
        16    8 reserved (zero)
"""

import struct
from typing import NamedTuple

from .errors import CitadelError, ErrorCode

MAGIC = ord("C")
VERSION = 1
FLAG_FINAL = 1
FLAG_PARTIAL = 2
FLAG_BATCH = 4
FLAG_ERROR = 8
HEADER = struct.Struct("<BBBBIQQ")
HEADER_LEN = HEADER.size
# Mirrors DEFAULT_MAX_FRAME: a 64 MiB value plus room for its key and tables.
MAX_FRAME = (64 << 20) + (64 << 10)


class Header(NamedTuple):
    flags: int
    method: int
    body_len: int
    id: int

    def has(self, flag):
        return bool(self.flags & flag)


def encode_frame(request_id, method, flags, body):
    """One whole frame: header followed by the FlatBuffers body."""
    return HEADER.pack(MAGIC, VERSION, flags, method, len(body), request_id, 0) + body


def parse_header(buf, offset=0):
    """The header at `offset` of `buf` (at least HEADER_LEN bytes there).
    A bad magic, version or length means the stream is out of sync: the
    caller must drop the connection, so it is an exception."""
    magic, version, flags, method, body_len, request_id, _ = HEADER.unpack_from(buf, offset)
    if magic != MAGIC:
        raise CitadelError(ErrorCode.BadFrame, f"frame starts with {magic:#04x}, not {MAGIC:#04x}")
    if version != VERSION:
        raise CitadelError(ErrorCode.Version, f"frame version {version}, this client speaks {VERSION}")
    if HEADER_LEN + body_len > MAX_FRAME:
        raise CitadelError(ErrorCode.TooLarge, f"frame of {HEADER_LEN + body_len} bytes exceeds {MAX_FRAME}")
    return Header(flags, method, body_len, request_id)


class FrameSplitter:
    """Cuts a byte stream (TCP or Unix socket) into frames.

    feed() takes whatever recv() returned and yields every frame completed
    by it as (Header, body bytes); a partial frame stays buffered."""

    def __init__(self):
        self._buf = bytearray()

    def feed(self, data):
        self._buf += data
        buf = self._buf
        pos = 0
        while len(buf) - pos >= HEADER_LEN:
            header = parse_header(buf, pos)
            end = pos + HEADER_LEN + header.body_len
            if len(buf) < end:
                break
            yield header, bytes(buf[pos + HEADER_LEN : end])
            pos = end
        # One deletion per feed, not per frame: many small replies per recv
        # would otherwise shift the buffer once each.
        del buf[:pos]


def split_frame(frame):
    """A frame held whole in one buffer (a shared-memory ring record)."""
    header = parse_header(frame)
    if len(frame) < HEADER_LEN + header.body_len:
        raise CitadelError(ErrorCode.BadFrame, "ring record shorter than its frame")
    return header, bytes(frame[HEADER_LEN : HEADER_LEN + header.body_len])
