"""Request encoding: each operation is an `Op` (method code, a function that
writes its table into a FlatBuffers builder, and whether it is safe to
retry), framed by encode_request / encode_batch."""

import time
from typing import Callable, NamedTuple

import flatbuffers

from .frame import FLAG_BATCH, encode_frame
from .generated import rpc_generated as fb
from .generated.rpc_generated import Condition
from .generated.rpc_generated import Op as Method


class Op(NamedTuple):
    method: int
    build: Callable  # builder -> table offset
    # Safe to send again when the connection died before the reply: running
    # it twice leaves the same state and gives an equally valid answer.
    idempotent: bool
    # Its (first) key: where a ClusterClient sends it. None: keyless.
    key: object = None


def to_bytes(data):
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, int):
        return str(data).encode()
    return bytes(data)


def _key_list(b, keys):
    """A [Key] vector; children are written before the vector that holds them."""
    tables = []
    for k in keys:
        data = b.CreateByteVector(to_bytes(k))
        fb.KeyStart(b)
        fb.KeyAddKey(b, data)
        tables.append(fb.KeyEnd(b))
    return _offsets(b, tables)


def _offsets(b, tables):
    b.StartVector(4, len(tables), 4)
    for t in reversed(tables):
        b.PrependUOffsetTRelative(t)
    return b.EndVector()


def _one_key(start, add_key, end, extra=lambda b: None):
    """Builder of a table with one `key` field (Get, Ttl, Expire, Incr)."""

    def build(b, key):
        data = b.CreateByteVector(to_bytes(key))
        start(b)
        add_key(b, data)
        extra(b)
        return end(b)

    return build


def _keys_table(start, add_keys, end):
    """Builder of a table with one `keys` field (Delete, Exists, MGet)."""

    def build(b, keys):
        vec = _key_list(b, keys)
        start(b)
        add_keys(b, vec)
        return end(b)

    return build


_build_get = _one_key(fb.GetStart, fb.GetAddKey, fb.GetEnd)
_build_ttl = _one_key(fb.TtlStart, fb.TtlAddKey, fb.TtlEnd)
_build_delete = _keys_table(fb.DeleteStart, fb.DeleteAddKeys, fb.DeleteEnd)
_build_exists = _keys_table(fb.ExistsStart, fb.ExistsAddKeys, fb.ExistsEnd)
_build_mget = _keys_table(fb.MGetStart, fb.MGetAddKeys, fb.MGetEnd)


def _key_args(keys):
    """delete("a", "b") and delete(["a", "b"]) both mean two keys."""
    if len(keys) == 1 and isinstance(keys[0], (list, tuple)):
        return list(keys[0])
    return list(keys)


def _first(keys):
    return keys[0] if keys else None


def get(key):
    return Op(Method.Get, lambda b: _build_get(b, key), True, key)


def set(key, value, ttl_ms=0, nx=False, xx=False):
    if nx and xx:
        raise ValueError("nx and xx exclude each other")
    condition = Condition.Nx if nx else Condition.Xx if xx else Condition.Always

    def build(b):
        k, v = b.CreateByteVector(to_bytes(key)), b.CreateByteVector(to_bytes(value))
        fb.SetStart(b)
        fb.SetAddKey(b, k)
        fb.SetAddValue(b, v)
        fb.SetAddTtlMs(b, int(ttl_ms or 0))
        fb.SetAddCondition(b, condition)
        return fb.SetEnd(b)

    return Op(Method.Set, build, condition == Condition.Always, key)


def delete(*keys):
    keys = _key_args(keys)
    return Op(Method.Delete, lambda b: _build_delete(b, keys), False, _first(keys))


def exists(*keys):
    keys = _key_args(keys)
    return Op(Method.Exists, lambda b: _build_exists(b, keys), True, _first(keys))


def expire(key, ttl_ms):
    build = _one_key(fb.ExpireStart, fb.ExpireAddKey, fb.ExpireEnd, lambda b: fb.ExpireAddTtlMs(b, int(ttl_ms)))
    return Op(Method.Expire, lambda b: build(b, key), True, key)


def ttl(key):
    return Op(Method.Ttl, lambda b: _build_ttl(b, key), True, key)


def incr(key, by=1):
    build = _one_key(fb.IncrStart, fb.IncrAddKey, fb.IncrEnd, lambda b: fb.IncrAddBy(b, int(by)))
    return Op(Method.Incr, lambda b: build(b, key), False, key)


def mget(*keys):
    keys = _key_args(keys)
    return Op(Method.MGet, lambda b: _build_mget(b, keys), True, _first(keys))


def mset(pairs):
    items = list(pairs.items() if hasattr(pairs, "items") else pairs)

    def build(b):
        tables = []
        for k, v in items:
            kv, vv = b.CreateByteVector(to_bytes(k)), b.CreateByteVector(to_bytes(v))
            fb.PairStart(b)
            fb.PairAddKey(b, kv)
            fb.PairAddValue(b, vv)
            tables.append(fb.PairEnd(b))
        vec = _offsets(b, tables)
        fb.MSetStart(b)
        fb.MSetAddPairs(b, vec)
        return fb.MSetEnd(b)

    return Op(Method.MSet, build, True, _first([k for k, _ in items]))


def scan(cursor=0, match=None, count=0):
    def build(b):
        m = b.CreateString(match) if match is not None else None
        fb.ScanStart(b)
        fb.ScanAddCursor(b, int(cursor))
        if m is not None:
            fb.ScanAddMatch(b, m)
        fb.ScanAddCount(b, int(count))
        return fb.ScanEnd(b)

    return Op(Method.Scan, build, True)


def call(name, payload=b"", options=None):
    def build(b):
        n, p = b.CreateString(name), b.CreateByteVector(to_bytes(payload))
        o = b.CreateString(options) if options is not None else None
        fb.CallStart(b)
        fb.CallAddName(b, n)
        fb.CallAddPayload(b, p)
        if o is not None:
            fb.CallAddOptions(b, o)
        return fb.CallEnd(b)

    return Op(Method.Call, build, False)


def stats(section=None):
    def build(b):
        s = b.CreateString(section) if section else None
        fb.StatsStart(b)
        if s is not None:
            fb.StatsAddSection(b, s)
        return fb.StatsEnd(b)

    return Op(Method.Stats, build, True)


def hello(client_name=None, password=None, features=(), version=1):
    def build(b):
        name = b.CreateString(client_name) if client_name is not None else None
        pw = b.CreateString(password) if password is not None else None
        feats = _offsets(b, [b.CreateString(f) for f in features]) if features else None
        fb.HelloStart(b)
        fb.HelloAddVersion(b, version)
        if name is not None:
            fb.HelloAddClientName(b, name)
        if pw is not None:
            fb.HelloAddPassword(b, pw)
        if feats is not None:
            fb.HelloAddFeatures(b, feats)
        return fb.HelloEnd(b)

    return Op(Method.Hello, build, True)


def absolute_deadline(deadline_ms):
    """The wire's deadline (Unix ms) for a budget of `deadline_ms` from now;
    0 (none) for None or 0."""
    return int(time.time() * 1000) + int(deadline_ms) if deadline_ms else 0


def _request(b, method, op_table, deadline, priority):
    fb.RequestStart(b)
    fb.RequestAddDeadlineMs(b, deadline)
    fb.RequestAddPriority(b, priority)
    fb.RequestAddOpType(b, method)
    fb.RequestAddOp(b, op_table)
    b.Finish(fb.RequestEnd(b))
    return b.Output()


def encode_request(request_id, op, deadline=0, priority=0):
    """One request frame. `deadline`: absolute Unix ms (absolute_deadline)."""
    b = flatbuffers.Builder(64)
    body = _request(b, op.method, op.build(b), deadline, priority)
    return encode_frame(request_id, op.method, 0, body)


def encode_batch(request_id, ops, deadline=0, priority=0):
    """One Batch frame carrying `ops` in order."""
    b = flatbuffers.Builder(256)
    operations = []
    for op in ops:
        table = op.build(b)
        fb.OperationStart(b)
        fb.OperationAddOpType(b, op.method)
        fb.OperationAddOp(b, table)
        operations.append(fb.OperationEnd(b))
    vec = _offsets(b, operations)
    fb.BatchStart(b)
    fb.BatchAddOps(b, vec)
    body = _request(b, Method.Batch, fb.BatchEnd(b), deadline, priority)
    return encode_frame(request_id, Method.Batch, FLAG_BATCH, body)
