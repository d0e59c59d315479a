"""Reply decoding: a Reply body (or a batch Outcome) to a Python value.

    Value -> bytes or None      Done -> bool        Int -> int
    Values -> [bytes | None]    ScanPage -> (cursor, [bytes])
    CallReply -> bytes          StatsReply -> {name: int | str}
    Welcome -> Welcome          Partial -> Partial(index, data)
    Error -> a CitadelError instance (returned, not raised)
    BatchReply -> [outcome, ...] (each decoded the same way)
"""

from typing import NamedTuple

from .errors import CitadelError, ErrorCode, error_for
from .generated import rpc_generated as fb
from .generated.rpc_generated import Answer


class Welcome(NamedTuple):
    version: int
    server: str
    features: list


class Partial(NamedTuple):
    index: int
    data: bytes


def _vector_bytes(table, vtable_offset):
    """A [ubyte] field as bytes in one slice (the generated accessors read
    byte by byte, or need numpy); None when the field is absent."""
    tab = table._tab
    o = tab.Offset(vtable_offset)
    if o == 0:
        return None
    start = tab.Vector(o)
    return bytes(tab.Bytes[start : start + tab.VectorLen(o)])


def _text(s):
    return s.decode() if s is not None else ""


def _value(v):
    return (_vector_bytes(v, 6) or b"") if v.Found() else None


def _keys(table):
    return [_vector_bytes(table.Keys(i), 4) or b"" for i in range(table.KeysLength())]


def _stat(s):
    text = s.Text()
    return s.Name().decode(), (text.decode() if text is not None else s.Value())


def _error(e):
    return error_for(e.Code(), _text(e.Message()), e.Slot(), _text(e.Address()))


_DECODERS = {
    Answer.Value: (fb.Value, _value),
    Answer.Done: (fb.Done, lambda d: d.Applied()),
    Answer.Int: (fb.Int, lambda i: i.Value()),
    Answer.Values: (fb.Values, lambda vs: [_value(vs.Values(i)) for i in range(vs.ValuesLength())]),
    Answer.ScanPage: (fb.ScanPage, lambda p: (p.Cursor(), _keys(p))),
    Answer.CallReply: (fb.CallReply, lambda c: _vector_bytes(c, 4) or b""),
    Answer.StatsReply: (fb.StatsReply, lambda s: dict(_stat(s.Stats(i)) for i in range(s.StatsLength()))),
    Answer.Welcome: (
        fb.Welcome,
        lambda w: Welcome(w.Version(), _text(w.Server()), [w.Features(i).decode() for i in range(w.FeaturesLength())]),
    ),
    Answer.Partial: (fb.Partial, lambda p: Partial(p.Index(), _vector_bytes(p, 6) or b"")),
    Answer.Error: (fb.Error, _error),
    Answer.BatchReply: (
        fb.BatchReply,
        lambda r: [decode_answer(o.AnswerType(), o.Answer()) for o in map(r.Outcomes, range(r.OutcomesLength()))],
    ),
}


def decode_answer(answer_type, table):
    """The value of one `Answer` union member (`table`: the union's Table)."""
    kind = _DECODERS.get(answer_type)
    if kind is None or table is None:
        return CitadelError(ErrorCode.BadFrame, f"reply with unknown answer type {answer_type}")
    cls, decode = kind
    obj = cls()
    obj.Init(table.Bytes, table.Pos)
    return decode(obj)


def decode_reply(body):
    """The value of a Reply body; an Error answer comes back as an exception
    instance so that batch outcomes and single replies share one path."""
    try:
        reply = fb.Reply.GetRootAs(body, 0)
        return decode_answer(reply.AnswerType(), reply.Answer())
    except Exception as e:  # a truncated or garbled body: struct/index errors
        return CitadelError(ErrorCode.BadFrame, f"undecodable reply: {e}")
