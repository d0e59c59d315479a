"""The serve loop: the same protocol as the Rust SDK (plugins/sdk/src/runtime.rs)."""

import os
import signal
import time
from dataclasses import dataclass

from . import ring as r
from .handshake import attach_from_env, server_gone
from .outputs import Outputs, continues_call


@dataclass(frozen=True)
class Request:
    id: int
    kind: int
    format: int
    deadline_ms: int
    attempt: int  # 1 = first delivery; more after a plugin crash
    pair: int  # index of the ring pair (server thread) it came from
    payload: bytes


@dataclass(frozen=True)
class Reply:
    payload: bytes = b""
    status: int = r.STATUS_OK
    kind: int = r.KIND_REPLY
    format: int = r.FORMAT_RAW
    # In a pipeline stage with a next stage: answer the server directly
    # (later stages skip the call) instead of passing the reply on.
    to_server: bool = False

    @staticmethod
    def error(status, message):
        return Reply(_to_bytes(message), status=status, kind=r.KIND_ERROR)

    @staticmethod
    def final_answer(payload):
        return Reply(_to_bytes(payload), to_server=True)


def _to_bytes(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if value is None:
        return b""
    raise TypeError(f"a handler must return bytes, str or Reply, not {type(value).__name__}")


def _to_reply(value):
    return value if isinstance(value, Reply) else Reply(_to_bytes(value))


class _Stop:
    """SIGTERM/SIGINT set a flag and make a pipe readable, waking a parked loop."""

    def __init__(self):
        self.requested = False
        self.read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, _signum, _frame):
        self.requested = True
        try:
            os.write(self._write_fd, b"x")
        except BlockingIOError:
            pass


def _send(producer, record, attempt, reply):
    while True:
        try:
            producer.send(record.id, reply.payload, reply.kind, reply.format, record.deadline_ms, attempt, reply.status)
            return
        except r.TooLarge as e:
            reply = Reply.error(r.STATUS_HANDLER_FAILED, str(e))
        except r.RingFull:
            producer.notify()
            time.sleep(50e-6)


def _pass_on(outputs, rec, reply):
    """A pipeline stage's successful reply goes to the next stage as its
    request (every record of one call to the same next instance); returns
    the output ring's index."""
    while True:
        n = outputs.route(rec.id)
        if n is None:  # every next instance closed for a moment (an upgrade)
            time.sleep(50e-6)
            continue
        out = outputs.rings[n]
        try:
            out.send(rec.id, reply.payload, r.KIND_REQUEST, reply.format, rec.deadline_ms, 0, r.STATUS_OK)
            return n
        except r.RingFull:
            out.notify()
            time.sleep(50e-6)


def _serve_pair(pair, consumer, producer, outputs, handle_batch, max_attempts, max_batch):
    """Handles one batch from one ring pair; returns whether there was anything."""
    batch, records = [], []
    replied = False
    read_any = False
    while len(batch) < max_batch:
        rec = consumer.read()
        if rec is None:
            break
        read_any = True
        attempt = consumer.mark_delivery(rec)  # counted before the handler may crash
        early = None
        if attempt > max_attempts:
            early = Reply(kind=r.KIND_ABANDONED, status=r.STATUS_POISON)
        elif rec.deadline_ms and time.time() * 1000 > rec.deadline_ms:
            early = Reply.error(r.STATUS_DEADLINE, "deadline passed before delivery")
        if early is not None:
            if rec.kind == r.KIND_REQUEST:
                _send(producer, rec, attempt, early)
                replied = True
            # Answered to the server: a call that ends here ends in the outputs too.
            if outputs and not continues_call(rec.payload):
                outputs.end(rec.id)
            continue
        records.append((rec, attempt))
        batch.append(Request(rec.id, rec.kind, rec.format, rec.deadline_ms, attempt, pair, rec.payload))
    if not read_any:
        return False
    if batch:
        started = time.monotonic_ns()
        try:
            replies = [_to_reply(x) for x in handle_batch(batch)]
        except Exception as e:  # a handler error is answered, not fatal
            replies = [Reply.error(r.STATUS_HANDLER_FAILED, f"handler raised {type(e).__name__}: {e}")] * len(batch)
        consumer.record_handled(len(batch), time.monotonic_ns() - started)
        # Only the rings written to are woken: a notify is a full fence
        # each, and a stage has one output per next-stage slot (spare too).
        passed_on = set()
        for i, (rec, attempt) in enumerate(records):
            if rec.kind == r.KIND_REQUEST:
                reply = replies[i] if i < len(replies) else Reply.error(r.STATUS_HANDLER_FAILED, "no reply")
                if outputs and reply.kind == r.KIND_REPLY and not reply.to_server:
                    passed_on.add(_pass_on(outputs, rec, reply))
                else:
                    _send(producer, rec, attempt, reply)
                    replied = True
                if outputs and not continues_call(rec.payload):
                    outputs.end(rec.id)
        outputs.notify(passed_on)
    if replied:
        producer.notify()
    consumer.commit_read()  # after the replies: a crash re-delivers, never loses
    return True


def serve_batch(handler, max_batch=64):
    """Serves requests in batches: ``handler(list[Request]) -> list[bytes|str|Reply]``.
    Returns 0 after SIGTERM/SIGINT (the batch in hand is finished and committed)."""
    ends, max_attempts = attach_from_env()
    ends = [(c, p, Outputs(o)) for c, p, o in ends]
    stop = _Stop()
    parent = os.getppid()
    waiter = r.Waiter([c for c, _, _ in ends], [stop.read_fd])
    # (pair, its ring's u64 words, consumer, producer, outputs): an idle pair
    # (an upstream spare's always is) costs one head load, no call.
    lanes = [(n, c.ring._q, c, p, o) for n, (c, p, o) in enumerate(ends)]
    head = r.OFF_HEAD // 8
    while True:
        worked = False
        for pair, words, consumer, producer, outputs in lanes:
            if words[head] != consumer.read_pos:
                worked |= _serve_pair(pair, consumer, producer, outputs, handler, max_attempts, max_batch)
        if stop.requested:
            return 0
        if not worked:
            woke = waiter.wait(timeout=1.0)
            if woke == "extra":
                return 0
            if woke == "timeout" and server_gone(parent):
                raise SystemExit("citadel_plugin: the server went away")


def serve(handler):
    """Serves one request at a time: ``handler(Request) -> bytes | str | Reply``.
    Each reply is published and its request committed before the next one."""
    return serve_batch(lambda reqs: [handler(req) for req in reqs], max_batch=1)
