"""Round trips of the wire format in Python: requests encoded by the
client and decoded as the server would, replies encoded as the server
would and decoded by the client, the frame header, the stream splitter,
the ring records, discovery records and addresses."""

import mmap
import os
import struct

import pytest

from citadel_client import ops, ring
from citadel_client.address import Address, parse_address
from citadel_client.discovery import parse_record
from citadel_client.errors import AuthError, CitadelError, DeadlineExceeded, ErrorCode, PluginError, TooLarge, error_for
from citadel_client.frame import FLAG_BATCH, FLAG_FINAL, HEADER_LEN, FrameSplitter, encode_frame, parse_header, split_frame
from citadel_client.generated.rpc_generated import Condition
from citadel_client.generated.rpc_generated import Op as M
from citadel_client.replies import Partial, Welcome, decode_reply
from citadel_client.replies import _vector_bytes
from fakeserver import a_batch, a_call, a_done, a_error, a_int, a_partial, a_scan, a_stats, a_value, a_values, a_welcome, decode_request, keys_of, reply_frame


def request(op, **kw):
    frame = ops.encode_request(7, op, **kw)
    header, body = split_frame(frame)
    assert (header.id, header.method, header.flags) == (7, op.method, 0)
    return decode_request(body)


def test_header_layout_matches_the_rust_doc():
    frame = encode_frame(0x0102030405060708, M.Get, FLAG_FINAL, b"xyz")
    assert frame[:4] == b"C\x01\x01\x01"
    assert struct.unpack_from("<I", frame, 4)[0] == 3
    assert frame[8:16] == bytes([8, 7, 6, 5, 4, 3, 2, 1])
    assert frame[16:24] == bytes(8) and frame[24:] == b"xyz" and HEADER_LEN == 24


def test_requests_round_trip():
    _, _, kind, t = request(ops.get("k"))
    assert kind == M.Get and _vector_bytes(t, 4) == b"k"
    deadline, priority, kind, t = request(ops.set(b"k", "v\x00", ttl_ms=500, nx=True), deadline=123, priority=9)
    assert (deadline, priority, kind) == (123, 9, M.Set)
    assert (_vector_bytes(t, 4), _vector_bytes(t, 6), t.TtlMs(), t.Condition()) == (b"k", b"v\x00", 500, Condition.Nx)
    assert request(ops.set("k", "v", xx=True))[3].Condition() == Condition.Xx
    assert keys_of(request(ops.delete("a", "b"))[3]) == [b"a", b"b"]
    assert keys_of(request(ops.exists(["a", "b", "c"]))[3]) == [b"a", b"b", b"c"]
    assert keys_of(request(ops.mget("x"))[3]) == [b"x"]
    t = request(ops.incr("n", -4))[3]
    assert (_vector_bytes(t, 4), t.By()) == (b"n", -4)
    t = request(ops.expire("k", 0))[3]
    assert (_vector_bytes(t, 4), t.TtlMs()) == (b"k", 0)
    t = request(ops.mset({"a": "1", "b": b"2"}))[3]
    assert [(_vector_bytes(t.Pairs(i), 4), _vector_bytes(t.Pairs(i), 6)) for i in range(2)] == [(b"a", b"1"), (b"b", b"2")]
    t = request(ops.scan(42, "user:*", 100))[3]
    assert (t.Cursor(), t.Match(), t.Count()) == (42, b"user:*", 100)
    t = request(ops.call("ocr", b"\x00\xff", "fps=1"))[3]
    assert (t.Name(), _vector_bytes(t, 6), t.Options()) == (b"ocr", b"\x00\xff", b"fps=1")
    assert request(ops.stats("memory"))[3].Section() == b"memory"
    t = request(ops.hello("me", "pw", ["shm"]))[3]
    assert (t.Version(), t.ClientName(), t.Password(), t.Features(0)) == (1, b"me", b"pw", b"shm")
    with pytest.raises(ValueError):
        ops.set("k", "v", nx=True, xx=True)


def test_batch_round_trip():
    frame = ops.encode_batch(9, [ops.get("a"), ops.incr("b"), ops.delete("c")])
    header, body = split_frame(frame)
    assert (header.method, header.flags) == (M.Batch, FLAG_BATCH)
    _, _, kind, t = decode_request(body)
    assert kind == M.Batch and [t.Ops(i).OpType() for i in range(t.OpsLength())] == [M.Get, M.Incr, M.Delete]


def reply(make, *args):
    header, body = split_frame(reply_frame(3, M.Get, make, *args))
    assert header.id == 3
    return decode_reply(body)


def test_replies_round_trip():
    assert reply(a_value, b"v") == b"v"
    assert reply(a_value, b"") == b""
    assert reply(a_value, None) is None
    assert reply(a_done, True) is True and reply(a_done, False) is False
    assert reply(a_int, -2) == -2
    assert reply(a_values, [b"a", None]) == [b"a", None]
    assert reply(a_scan, 17, [b"k1", b"k2"]) == (17, [b"k1", b"k2"])
    assert reply(a_call, b"\x01\x02") == b"\x01\x02"
    assert reply(a_partial, 4, b"{}") == Partial(4, b"{}")
    assert reply(a_stats, {"keys": 3, "role": "primary"}) == {"keys": 3, "role": "primary"}
    assert reply(a_welcome, "citadel 0.1", ["shm"]) == Welcome(1, "citadel 0.1", ["shm"])
    err = reply(a_error, ErrorCode.Deadline, "late")
    assert isinstance(err, DeadlineExceeded) and err.code == ErrorCode.Deadline and err.message == "late"


def test_batch_reply_round_trip():
    def outcomes(b):
        return a_batch(b, [a_value(b, b"x"), a_error(b, ErrorCode.NotInteger, "nope"), a_int(b, 5)])

    assert reply(outcomes) == [b"x", CitadelError(ErrorCode.NotInteger, "nope"), 5]


def test_garbage_reply_is_a_bad_frame_error():
    assert reply_is_bad(b"\x01\x02\x03")
    assert reply_is_bad(b"")


def reply_is_bad(body):
    err = decode_reply(body)
    return isinstance(err, CitadelError) and err.code == ErrorCode.BadFrame


def test_error_classes_by_code():
    assert type(error_for(ErrorCode.Auth, "")) is AuthError
    assert type(error_for(ErrorCode.TooLarge, "")) is TooLarge
    assert type(error_for(ErrorCode.Plugin, "")) is PluginError
    assert type(error_for(ErrorCode.Overloaded, "")) is CitadelError
    assert all(issubclass(c, CitadelError) for c in (AuthError, TooLarge, PluginError, DeadlineExceeded))


def test_splitter_reassembles_any_cut():
    frames = [ops.encode_request(i, ops.set(f"k{i}", "v" * i)) for i in range(1, 30)]
    stream = b"".join(frames)
    for step in (1, 7, 24, 25, 1000, len(stream)):
        splitter, got = FrameSplitter(), []
        for pos in range(0, len(stream), step):
            got += [h.id for h, _ in splitter.feed(stream[pos : pos + step])]
        assert got == list(range(1, 30))


def test_bad_magic_or_version_is_refused():
    with pytest.raises(CitadelError) as e:
        parse_header(b"X" + bytes(23))
    assert e.value.code == ErrorCode.BadFrame
    with pytest.raises(CitadelError) as e:
        parse_header(b"C\x02" + bytes(22))
    assert e.value.code == ErrorCode.Version
    with pytest.raises(CitadelError) as e:
        parse_header(b"C\x01\x00\x01" + struct.pack("<I", 0xFFFFFFF0) + bytes(16))
    assert e.value.code == ErrorCode.TooLarge


def make_ring(capacity=4096):
    mm = mmap.mmap(-1, ring.region_len(capacity))
    struct.pack_into("<QIIQ", mm, 0, ring.MAGIC, ring.LAYOUT_VERSION, ring.DATA_OFFSET, capacity)
    return ring.Ring(mm, 0)


def test_ring_records_wrap_around_in_order():
    r = make_ring()
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    writer, reader = ring.RingWriter(r, efd), ring.RingReader(r, efd)
    sent, got = [], []
    for i in range(500):
        payload = bytes([i % 251]) * (i * 13 % 900)
        while not writer.try_write(i, payload):
            got.append(reader.read())
        sent.append(payload)
    while (p := reader.read()) is not None:
        got.append(p)
    assert got == sent and r.head() == r.commit()
    with pytest.raises(ValueError):
        writer.try_write(1, bytes(r.max_payload + 1))
    os.close(efd)


def test_ring_sleeper_is_woken():
    r = make_ring()
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    writer, reader = ring.RingWriter(r, efd), ring.RingReader(r, efd)
    assert reader.prepare_sleep()
    writer.try_write(1, b"x")
    assert os.eventfd_read(efd) == 1  # the writer saw the sleeping flag
    reader.woke()
    assert reader.read() == b"x"
    os.close(efd)


def test_refuses_memory_that_is_not_a_ring():
    with pytest.raises(ring.RingError):
        ring.Ring(mmap.mmap(-1, 8192), 0)


def test_discovery_records():
    text = "name=c1\npid=42\nversion=0.1.0\ntcp=127.0.0.1:6379\nstarted_at_ms=5\nrpc=127.0.0.1:7379\nrpc_unix=/r.sock\nshm=/s.sock\nfuture=x\n"
    rec = parse_record(text)
    assert (rec.name, rec.pid, rec.unix, rec.rpc) == ("c1", 42, None, "127.0.0.1:7379")
    assert rec.endpoints() == [Address("shm", "/s.sock"), Address("unix", "/r.sock"), Address("tcp", ("127.0.0.1", 7379))]
    assert parse_record("name=x\n") is None
    assert parse_record(text.replace("pid=42", "pid=x")) is None
    old = parse_record("name=c\npid=1\nversion=1\ntcp=a:1\nstarted_at_ms=1\n")
    assert old.endpoints() == []  # a server without RPC listeners


def test_addresses():
    assert parse_address("tcp://h:1") == Address("tcp", ("h", 1))
    assert parse_address("127.0.0.1:7379") == Address("tcp", ("127.0.0.1", 7379))
    assert parse_address("[::1]:7") == Address("tcp", ("::1", 7))
    assert parse_address("unix:///a/b") == Address("unix", "/a/b")
    assert str(parse_address("shm:///s")) == "shm:///s"
    with pytest.raises(ValueError):
        parse_address("udp://x:1")
    with pytest.raises(ValueError):
        parse_address("nohostport")
