"""The asyncio client (TCP and Unix socket): the same methods as Client,
as coroutines; any number of tasks may have requests in flight on one
connection, replies are routed by request id as they come."""

import asyncio

from . import ops
from .address import parse_address
from .batch import Batch
from .client import wait_seconds
from .commands import Commands
from .errors import ConnectionClosed
from .frame import FrameSplitter
from .inflight import Inflight, StreamSink, stream_item


class AsyncClient(Commands):
    """client = await AsyncClient.connect("tcp://127.0.0.1:7379")."""

    def __init__(self, reader, writer, timeout):
        self.timeout = timeout
        self._reader = reader
        self._writer = writer
        self._inflight = Inflight()
        self._task = asyncio.get_running_loop().create_task(self._read_replies())

    @classmethod
    async def connect(cls, address, *, timeout=30.0, connect_timeout=10.0, client_name=None, password=None):
        address = parse_address(address)
        if address.kind == "tcp":
            opening = asyncio.open_connection(*address.target)
        elif address.kind == "unix":
            opening = asyncio.open_unix_connection(address.target)
        else:
            raise ValueError("AsyncClient speaks tcp and unix; use Client for shm")
        reader, writer = await asyncio.wait_for(opening, connect_timeout)
        client = cls(reader, writer, timeout)
        if client_name is not None or password is not None:
            client.welcome = await client.hello(client_name, password)
        return client

    async def _read_replies(self):
        splitter = FrameSplitter()
        reason = "connection closed by the server"
        try:
            while data := await self._reader.read(1 << 18):
                for header, body in splitter.feed(data):
                    self._inflight.deliver(header, body)
        except (OSError, asyncio.CancelledError):
            pass
        except Exception as e:  # a corrupt stream
            reason = f"connection dropped: {e}"
        finally:
            self._inflight.close(reason)

    def _send(self, sink, encode):
        request_id = self._inflight.add(sink)
        if self._writer.is_closing():
            self._inflight.discard(request_id)
            raise ConnectionClosed("connection closed")
        self._writer.write(encode(request_id))
        return request_id

    async def _request(self, encode, deadline_ms):
        future = asyncio.get_running_loop().create_future()
        request_id = self._send(future, encode)
        # Writes are buffered; drain only lets the transport push back when
        # the socket is slower than the callers.
        await self._writer.drain()
        try:
            return await asyncio.wait_for(future, wait_seconds(deadline_ms, self.timeout))
        except asyncio.TimeoutError:
            raise self._inflight.timed_out(request_id) from None

    def _run(self, op, deadline_ms, priority):
        deadline = ops.absolute_deadline(deadline_ms)
        return self._request(lambda i: ops.encode_request(i, op, deadline, priority), deadline_ms)

    def _run_batch(self, op_list, deadline_ms, priority):
        deadline = ops.absolute_deadline(deadline_ms)
        return self._request(lambda i: ops.encode_batch(i, op_list, deadline, priority), deadline_ms)

    async def call_stream(self, name, payload=b"", options=None, *, deadline_ms=None, priority=0):
        """Async-yields Partial(index, data) results, then the final result."""
        deadline = ops.absolute_deadline(deadline_ms)
        replies = asyncio.Queue()
        op = ops.call(name, payload, options)
        request_id = self._send(StreamSink(replies), lambda i: ops.encode_request(i, op, deadline, priority))
        await self._writer.drain()
        while True:
            try:
                value, last = stream_item(*await asyncio.wait_for(replies.get(), wait_seconds(deadline_ms, self.timeout)))
            except asyncio.TimeoutError:
                raise self._inflight.timed_out(request_id) from None
            yield value
            if last:
                return

    async def scan_iter(self, match=None, count=0, **call_options):
        cursor = 0
        while True:
            cursor, keys = await self.scan(cursor, match, count, **call_options)
            for key in keys:
                yield key
            if cursor == 0:
                return

    def batch(self):
        """As Client.batch; `await batch.execute()`."""
        return Batch(self._run_batch)

    async def close(self):
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()
