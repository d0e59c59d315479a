"""Requests in flight on one connection, matched to replies by request id.

A sink receives one request's answer: anything with set_result /
set_exception (a concurrent.futures.Future or an asyncio.Future: both
clients share this table), plus `partial(value)` for streamed calls.
Replies arrive in any order; a reply whose request was given up (its
waiter timed out) finds no sink and is dropped.
"""

import itertools
import threading

from .errors import CitadelError, ConnectionClosed, DeadlineExceeded, ErrorCode
from .frame import FLAG_FINAL, FLAG_PARTIAL
from .replies import decode_reply


def _settle(sink, value):
    if getattr(sink, "done", lambda: False)():
        return  # cancelled by its waiter
    if isinstance(value, BaseException):
        sink.set_exception(value)
    else:
        sink.set_result(value)


class Inflight:
    def __init__(self):
        self._ids = itertools.count(1)
        self._sinks = {}
        self._lock = threading.Lock()
        self.closed = None  # the ConnectionClosed every later request gets
        self.last_error = None  # an error reply about the stream itself (id 0)

    def add(self, sink):
        """Registers a sink; returns its request id."""
        with self._lock:
            if self.closed is not None:
                raise self.closed
            request_id = next(self._ids)
            self._sinks[request_id] = sink
            return request_id

    def discard(self, request_id):
        with self._lock:
            self._sinks.pop(request_id, None)

    def timed_out(self, request_id):
        """Gives up waiting for `request_id` (a late reply is dropped) and
        returns the exception for the caller to raise."""
        self.discard(request_id)
        return DeadlineExceeded(ErrorCode.Deadline, "no reply in time")

    def __len__(self):
        return len(self._sinks)

    def deliver(self, header, body):
        """Routes one reply frame to its request's sink."""
        value = decode_reply(body)
        with self._lock:
            if header.flags & FLAG_PARTIAL and not header.flags & FLAG_FINAL:
                sink = self._sinks.get(header.id)
            else:
                sink = self._sinks.pop(header.id, None)
        if sink is None:
            if header.id == 0 and isinstance(value, CitadelError):
                # An error about the stream itself (a bad frame): the server
                # closes next; say why in the ConnectionClosed that follows.
                self.last_error = value
            return
        if header.flags & FLAG_PARTIAL and not header.flags & FLAG_FINAL:
            partial = getattr(sink, "partial", None)
            if partial is not None:
                partial(value)
            return
        _settle(sink, value)

    def close(self, reason="connection closed"):
        """Fails every waiting request and refuses new ones."""
        error = self.last_error
        exc = ConnectionClosed(f"{reason} ({error})" if error else reason)
        with self._lock:
            if self.closed is None:
                self.closed = exc
            sinks, self._sinks = list(self._sinks.values()), {}
        for sink in sinks:
            _settle(sink, self.closed)


class StreamSink:
    """A streamed call's sink: puts ("partial" | "final" | "error", value)
    into a queue (queue.SimpleQueue or asyncio.Queue: both have put_nowait)."""

    def __init__(self, queue):
        self.queue = queue

    def partial(self, value):
        self.queue.put_nowait(("partial", value))

    def set_result(self, value):
        self.queue.put_nowait(("final", value))

    def set_exception(self, exc):
        self.queue.put_nowait(("error", exc))


def stream_item(kind, value):
    """(value, is_last) for one StreamSink entry; raises an "error" entry."""
    if kind == "error":
        raise value
    return value, kind == "final"
