"""A small Python stand-in for the server's RPC listener, for tests that
need no server binary: decodes requests with the generated code, keeps a
dict, encodes replies. Plugins: "echo" (payload back), "sleep" (payload =
milliseconds, answered later from another thread: out-of-order replies),
"stream" (3 partials, then the final), anything else -> Plugin error."""

import fnmatch
import mmap
import os
import select
import socket
import struct
import threading
import time

import flatbuffers

from citadel_client import ring as ringmod
from citadel_client.frame import FLAG_BATCH, FLAG_ERROR, FLAG_FINAL, FLAG_PARTIAL, FrameSplitter, encode_frame, split_frame
from citadel_client.generated import rpc_generated as fb
from citadel_client.generated.rpc_generated import Answer, Condition, ErrorCode
from citadel_client.generated.rpc_generated import Op as M
from citadel_client.replies import _vector_bytes

OP_CLASSES = {getattr(M, n): getattr(fb, n) for n in vars(M) if not n.startswith("_") and n != "NONE"}


# --- decoding requests ---


def op_table(op_type, table):
    obj = OP_CLASSES[op_type]()
    obj.Init(table.Bytes, table.Pos)
    return obj


def keys_of(t):
    return [_vector_bytes(t.Keys(i), 4) for i in range(t.KeysLength())]


def decode_request(body):
    """(deadline_ms, priority, op_type, op table)."""
    r = fb.Request.GetRootAs(body, 0)
    return r.DeadlineMs(), r.Priority(), r.OpType(), op_table(r.OpType(), r.Op())


# --- encoding replies: each returns (answer type, table offset) ---


def _vec(b, offsets, start):
    start(b, len(offsets))
    for o in reversed(offsets):
        b.PrependUOffsetTRelative(o)
    return b.EndVector()


def a_value(b, value):
    v = b.CreateByteVector(value) if value is not None else None
    fb.ValueStart(b)
    fb.ValueAddFound(b, value is not None)
    if v is not None:
        fb.ValueAddValue(b, v)
    return Answer.Value, fb.ValueEnd(b)


def a_done(b, applied):
    fb.DoneStart(b)
    fb.DoneAddApplied(b, applied)
    return Answer.Done, fb.DoneEnd(b)


def a_int(b, n):
    fb.IntStart(b)
    fb.IntAddValue(b, n)
    return Answer.Int, fb.IntEnd(b)


def a_values(b, values):
    tables = [a_value(b, v)[1] for v in values]
    vec = _vec(b, tables, fb.ValuesStartValuesVector)
    fb.ValuesStart(b)
    fb.ValuesAddValues(b, vec)
    return Answer.Values, fb.ValuesEnd(b)


def a_scan(b, cursor, keys):
    tables = []
    for k in keys:
        kv = b.CreateByteVector(k)
        fb.KeyStart(b)
        fb.KeyAddKey(b, kv)
        tables.append(fb.KeyEnd(b))
    vec = _vec(b, tables, fb.ScanPageStartKeysVector)
    fb.ScanPageStart(b)
    fb.ScanPageAddCursor(b, cursor)
    fb.ScanPageAddKeys(b, vec)
    return Answer.ScanPage, fb.ScanPageEnd(b)


def a_call(b, payload):
    p = b.CreateByteVector(payload)
    fb.CallReplyStart(b)
    fb.CallReplyAddPayload(b, p)
    return Answer.CallReply, fb.CallReplyEnd(b)


def a_partial(b, index, data):
    d = b.CreateByteVector(data)
    fb.PartialStart(b)
    fb.PartialAddIndex(b, index)
    fb.PartialAddData(b, d)
    return Answer.Partial, fb.PartialEnd(b)


def a_stats(b, stats):
    tables = []
    for name, value in stats.items():
        n = b.CreateString(name)
        t = b.CreateString(value) if isinstance(value, str) else None
        fb.StatStart(b)
        fb.StatAddName(b, n)
        if t is None:
            fb.StatAddValue(b, value)
        else:
            fb.StatAddText(b, t)
        tables.append(fb.StatEnd(b))
    vec = _vec(b, tables, fb.StatsReplyStartStatsVector)
    fb.StatsReplyStart(b)
    fb.StatsReplyAddStats(b, vec)
    return Answer.StatsReply, fb.StatsReplyEnd(b)


def a_welcome(b, server, features):
    s = b.CreateString(server)
    fv = _vec(b, [b.CreateString(f) for f in features], fb.WelcomeStartFeaturesVector)
    fb.WelcomeStart(b)
    fb.WelcomeAddVersion(b, 1)
    fb.WelcomeAddServer(b, s)
    fb.WelcomeAddFeatures(b, fv)
    return Answer.Welcome, fb.WelcomeEnd(b)


def a_error(b, code, message):
    m = b.CreateString(message)
    fb.ErrorStart(b)
    fb.ErrorAddCode(b, code)
    fb.ErrorAddMessage(b, m)
    return Answer.Error, fb.ErrorEnd(b)


def a_batch(b, answers):
    tables = []
    for kind, table in answers:
        fb.OutcomeStart(b)
        fb.OutcomeAddAnswerType(b, kind)
        fb.OutcomeAddAnswer(b, table)
        tables.append(fb.OutcomeEnd(b))
    vec = _vec(b, tables, fb.BatchReplyStartOutcomesVector)
    fb.BatchReplyStart(b)
    fb.BatchReplyAddOutcomes(b, vec)
    return Answer.BatchReply, fb.BatchReplyEnd(b)


def reply_frame(request_id, method, make, *args):
    """A whole reply frame whose answer make(builder, *args) writes."""
    b = flatbuffers.Builder(64)
    kind, table = make(b, *args)
    fb.ReplyStart(b)
    fb.ReplyAddAnswerType(b, kind)
    fb.ReplyAddAnswer(b, table)
    b.Finish(fb.ReplyEnd(b))
    flags = FLAG_FINAL
    if kind == Answer.Error:
        flags |= FLAG_ERROR
    elif kind == Answer.Partial:
        flags = FLAG_PARTIAL
    elif kind == Answer.BatchReply:
        flags |= FLAG_BATCH
    return encode_frame(request_id, method, flags, b.Output())


# --- the store ---


class Store:
    def __init__(self, password=None):
        self.data = {}
        self.expiry = {}  # key -> unix ms
        self.password = password
        self.lock = threading.Lock()

    def _live(self, key):
        at = self.expiry.get(key)
        if at is not None and at <= time.time() * 1000:
            self.data.pop(key, None)
            self.expiry.pop(key, None)
        return key in self.data

    def answer(self, b, op_type, t):
        """(answer type, table) for one op; the store's semantics follow
        the contract (spec/rpc-contract.md)."""
        with self.lock:
            if op_type == M.Get:
                k = _vector_bytes(t, 4)
                return a_value(b, self.data[k] if self._live(k) else None)
            if op_type == M.Set:
                k, v = _vector_bytes(t, 4), _vector_bytes(t, 6) or b""
                present = self._live(k)
                if (t.Condition() == Condition.Nx and present) or (t.Condition() == Condition.Xx and not present):
                    return a_done(b, False)
                self.data[k] = v
                self.expiry.pop(k, None)
                if t.TtlMs():
                    self.expiry[k] = time.time() * 1000 + t.TtlMs()
                return a_done(b, True)
            if op_type in (M.Delete, M.Exists):
                keys = [k for k in keys_of(t) if self._live(k)]
                if op_type == M.Delete:
                    for k in keys:
                        self.data.pop(k, None)
                return a_int(b, len(keys))
            if op_type == M.Incr:
                k = _vector_bytes(t, 4)
                try:
                    n = int(self.data.get(k, b"0") if self._live(k) else b"0") + t.By()
                except ValueError:
                    return a_error(b, ErrorCode.NotInteger, "value is not an integer")
                self.data[k] = str(n).encode()
                return a_int(b, n)
            if op_type == M.MGet:
                return a_values(b, [self.data[k] if self._live(k) else None for k in keys_of(t)])
            if op_type == M.MSet:
                for i in range(t.PairsLength()):
                    p = t.Pairs(i)
                    self.data[_vector_bytes(p, 4)] = _vector_bytes(p, 6) or b""
                return a_done(b, True)
            if op_type == M.Ttl:
                k = _vector_bytes(t, 4)
                if not self._live(k):
                    return a_int(b, -2)
                at = self.expiry.get(k)
                return a_int(b, -1 if at is None else int(at - time.time() * 1000))
            if op_type == M.Expire:
                k = _vector_bytes(t, 4)
                if not self._live(k):
                    return a_done(b, False)
                if t.TtlMs():
                    self.expiry[k] = time.time() * 1000 + t.TtlMs()
                else:
                    self.expiry.pop(k, None)
                return a_done(b, True)
            if op_type == M.Scan:
                pattern = (t.Match() or b"*").decode()
                keys = sorted(k for k in list(self.data) if self._live(k) and fnmatch.fnmatchcase(k.decode(), pattern))
                start, count = t.Cursor(), t.Count() or 10
                page = keys[start : start + count]
                nxt = start + count if start + count < len(keys) else 0
                return a_scan(b, nxt, page)
            if op_type == M.Stats:
                return a_stats(b, {"keys": len(self.data), "server": "fake"})
            if op_type == M.Hello:
                pw = t.Password()
                if self.password is not None and (pw or b"").decode() != self.password:
                    return a_error(b, ErrorCode.Auth, "wrong password")
                return a_welcome(b, "citadel fake", [])
            return a_error(b, ErrorCode.UnknownMethod, f"op {op_type} not here")


# --- the listener ---


class FakeServer:
    """Serves the RPC protocol on a TCP port (self.port) or a Unix socket
    (unix_path), one thread per connection."""

    def __init__(self, unix_path=None, password=None):
        self.store = Store(password)
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix_path)
            self.address = f"unix://{unix_path}"
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.port = self.sock.getsockname()[1]
            self.address = f"tcp://127.0.0.1:{self.port}"
        self.sock.listen()
        self.conns = []
        self.requests = []  # (id, method, deadline, priority) as received
        self.drop_next_request = False  # "crash" instead of answering the next one
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        lock = threading.Lock()

        def send(frame):
            with lock:
                try:
                    conn.sendall(frame)
                except OSError:
                    pass

        splitter = FrameSplitter()
        while True:
            try:
                data = conn.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            for header, body in splitter.feed(data):
                self.handle(header, body, send)

    def handle(self, header, body, send):
        deadline, priority, op_type, t = decode_request(body)
        self.requests.append((header.id, header.method, deadline, priority))
        if self.drop_next_request:
            self.drop_next_request = False
            return self.drop_connections()
        rid, method = header.id, header.method
        if deadline and deadline < time.time() * 1000:
            return send(reply_frame(rid, method, a_error, ErrorCode.Deadline, "deadline passed"))
        if op_type == M.Call:
            return self.call(rid, t, send)
        if op_type == M.Batch:
            return send(reply_frame(rid, method, self.batch, t))
        send(reply_frame(rid, method, self.store.answer, op_type, t))

    def batch(self, b, t):
        answers = []
        for i in range(t.OpsLength()):
            o = t.Ops(i)
            if o.OpType() in (M.Call, M.Hello, M.Batch):
                answers.append(a_error(b, ErrorCode.UnknownMethod, "not in a batch"))
            else:
                answers.append(self.store.answer(b, o.OpType(), op_table(o.OpType(), o.Op())))
        return a_batch(b, answers)

    def call(self, rid, t, send):
        name, payload = t.Name().decode(), _vector_bytes(t, 6) or b""
        if name == "echo":
            send(reply_frame(rid, M.Call, a_call, payload))
        elif name == "sleep":

            def later():
                time.sleep(int(payload) / 1000)
                send(reply_frame(rid, M.Call, a_call, payload))

            threading.Thread(target=later, daemon=True).start()
        elif name == "stream":
            for i in range(3):
                send(reply_frame(rid, M.Call, a_partial, i, b'{"frame":%d}' % i))
            send(reply_frame(rid, M.Call, a_call, b'{"frames":3}'))
        else:
            send(reply_frame(rid, M.Call, a_error, ErrorCode.Plugin, f"no plugin {name}"))

    def drop_connections(self):
        """Shuts every connection down (the server "crashed" for clients)."""
        # A snapshot: a client that reconnects as soon as it sees its EOF
        # must not have its new connection appended to the list mid-loop
        # and shut down too.
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.drop_connections()


# --- the shared-memory handshake, server side ---


class FakeShmServer:
    """The --shm-socket side: hands each client two ring memfds and two
    eventfds, then serves the request ring with a FakeServer's logic."""

    def __init__(self, path, fake=None, capacity=1 << 16):
        self.fake = fake or FakeServer()
        self.capacity = capacity
        self.path = path
        self.address = f"shm://{path}"
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _init_ring(self, mm, offset):
        struct.pack_into("<QIIQ", mm, offset, ringmod.MAGIC, ringmod.LAYOUT_VERSION, ringmod.DATA_OFFSET, self.capacity)

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(16)
            rings = []
            for _ in range(2):  # the request ring, then the reply ring
                memfd = os.memfd_create("fake-shm")
                os.ftruncate(memfd, ringmod.region_len(self.capacity))
                mm = mmap.mmap(memfd, ringmod.region_len(self.capacity))
                self._init_ring(mm, 0)
                rings.append((memfd, ringmod.Ring(mm, 0)))
            doorbell, client_fd = os.eventfd(0, os.EFD_NONBLOCK), os.eventfd(0, os.EFD_NONBLOCK)
            grant = struct.pack("<4sIQ", b"CSHM", 0, self.capacity)
            socket.send_fds(conn, [grant], [rings[0][0], rings[1][0], doorbell, client_fd])
            requests = ringmod.RingReader(rings[0][1], doorbell)
            replies = ringmod.RingWriter(rings[1][1], client_fd)
            lock = threading.Lock()

            def send(frame, replies=replies, lock=lock):
                with lock:
                    while not replies.try_write(0, frame):
                        time.sleep(0.0005)

            def serve(conn=conn, requests=requests, send=send):
                poller = select.poll()
                poller.register(requests.wake_fd, select.POLLIN)
                poller.register(conn.fileno(), select.POLLIN)
                while True:
                    frame = requests.read()
                    if frame is not None:
                        self.fake.handle(*split_frame(frame), send)
                        continue
                    if not requests.prepare_sleep():
                        continue
                    ready = {fd for fd, _ in poller.poll()}
                    requests.woke()
                    if conn.fileno() in ready and not conn.recv(1):
                        return

            threading.Thread(target=serve, daemon=True).start()
