"""The blocking client: one connection, any number of threads, many
requests in flight. A reader thread routes reply frames (in any order) to
the waiting callers by request id."""

import concurrent.futures
import queue
import threading

from . import ops
from .address import parse_address
from .batch import Batch
from .commands import Commands
from .inflight import Inflight, StreamSink, stream_item
from .transport import connect

# A reply may trail the server's deadline check by this much (execution
# and transfer) before the client gives up waiting.
DEADLINE_GRACE_S = 1.0


def wait_seconds(deadline_ms, timeout):
    return deadline_ms / 1000 + DEADLINE_GRACE_S if deadline_ms else timeout


class BlockingCommands(Commands):
    """What the blocking clients (Client, FailoverClient) add to Commands."""

    def scan_iter(self, match=None, count=0, **call_options):
        """Every key matching `match`, page by page."""
        cursor = 0
        while True:
            cursor, keys = self.scan(cursor, match, count, **call_options)
            yield from keys
            if cursor == 0:
                return

    def batch(self):
        """A Batch: queue operations with its methods, then execute() sends
        them as one frame and returns one outcome per op (a value, or a
        CitadelError instance for an op that failed)."""
        return Batch(self._run_batch)


class Client(BlockingCommands):
    """Client("tcp://127.0.0.1:7379"), Client("unix:///run/citadel/rpc.sock"),
    Client("shm:///run/citadel/shm.sock"). `timeout`: how long a call without
    deadline_ms waits for its reply (None: forever)."""

    def __init__(self, address, *, timeout=30.0, connect_timeout=10.0, client_name=None, password=None, shm_capacity=0):
        self.address = parse_address(address)
        self.timeout = timeout
        self._transport = connect(self.address, connect_timeout, shm_capacity)
        self._inflight = Inflight()
        self._reader = threading.Thread(target=self._read_replies, name="citadel-client-reader", daemon=True)
        self._reader.start()
        self.futures = Futures(self)
        if client_name is not None or password is not None:
            self.welcome = self.hello(client_name, password)

    def _read_replies(self):
        reason = "connection closed by the server"
        try:
            for header, body in self._transport.frames():
                self._inflight.deliver(header, body)
        except Exception as e:  # a corrupt stream: nothing later can be trusted
            reason = f"connection dropped: {e}"
        finally:
            self._inflight.close(reason)

    def _send(self, sink, encode, deadline):
        """Registers `sink`, sends the frame encode(request_id); returns the id."""
        request_id = self._inflight.add(sink)
        try:
            self._transport.send(request_id, encode(request_id), deadline)
        except BaseException:
            self._inflight.discard(request_id)
            raise
        return request_id

    def _submit(self, encode, deadline_ms):
        """Sends a one-reply request; returns (request id, Future)."""
        future = concurrent.futures.Future()
        return self._send(future, encode, ops.absolute_deadline(deadline_ms)), future

    def _wait(self, request_id, future, deadline_ms):
        try:
            return future.result(wait_seconds(deadline_ms, self.timeout))
        except concurrent.futures.TimeoutError:
            raise self._inflight.timed_out(request_id) from None

    def _run(self, op, deadline_ms, priority):
        deadline = ops.absolute_deadline(deadline_ms)
        request_id, future = self._submit(lambda i: ops.encode_request(i, op, deadline, priority), deadline_ms)
        return self._wait(request_id, future, deadline_ms)

    def _run_batch(self, op_list, deadline_ms, priority):
        deadline = ops.absolute_deadline(deadline_ms)
        request_id, future = self._submit(lambda i: ops.encode_batch(i, op_list, deadline, priority), deadline_ms)
        return self._wait(request_id, future, deadline_ms)

    def call_stream(self, name, payload=b"", options=None, *, deadline_ms=None, priority=0):
        """Yields a pipeline's Partial(index, data) results, then its final
        result (bytes) last."""
        deadline = ops.absolute_deadline(deadline_ms)
        replies = queue.SimpleQueue()
        op = ops.call(name, payload, options)
        request_id = self._send(StreamSink(replies), lambda i: ops.encode_request(i, op, deadline, priority), deadline)
        wait = wait_seconds(deadline_ms, self.timeout)
        while True:
            try:
                value, last = stream_item(*replies.get(timeout=wait))
            except queue.Empty:
                raise self._inflight.timed_out(request_id) from None
            yield value
            if last:
                return

    def in_flight(self):
        return len(self._inflight)

    def abort(self):
        """Drops the connection: every waiting call gets ConnectionClosed."""
        self._transport.shutdown()
        self._reader.join(5)

    def close(self):
        self._transport.shutdown()
        self._reader.join(5)
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Futures(Commands):
    """client.futures.get(k) etc.: send now, return a concurrent.futures.Future
    (so one thread can have many requests in flight)."""

    def __init__(self, client):
        self._client = client

    def _run(self, op, deadline_ms, priority):
        deadline = ops.absolute_deadline(deadline_ms)
        return self._client._submit(lambda i: ops.encode_request(i, op, deadline, priority), deadline_ms)[1]
