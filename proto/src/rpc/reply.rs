//! Building reply frames straight into the connection's send buffer, and
//! verifying them (clients, tests).
//!
//! Each [`ReplyWriter`] method builds one reply in a reusable
//! `FlatBufferBuilder` and returns a [`Body`]; [`ReplyWriter::finish`]
//! appends header and body to the caller's `out` and resets the builder.
//! In steady state nothing is allocated: the builder, the offset scratch
//! lists and `out` keep their capacity (`proto/tests/rpc_alloc.rs` counts).
//! The body is built back to front, so it is copied once into `out`; a GET
//! hit skips the builder: [`ReplyWriter::reserve_value`] lays the reply
//! out by hand in `out` and hands back the value's bytes to fill, so the
//! value is copied once, from the cache into the send buffer.

use flatbuffers::{FlatBufferBuilder, InvalidFlatbuffer, WIPOffset};

use super::frame::{FrameHeader, Method, HEADER_LEN};
use super::schema::{self, ErrorCode};
use super::{Limits, FLAG_BATCH, FLAG_ERROR, FLAG_FINAL, FLAG_PARTIAL};

/// One reply built in a [`ReplyWriter`], valid until its next `finish`
/// (using it later panics).
#[derive(Clone, Copy, Debug)]
pub struct Body {
    kind: schema::Answer,
    off: u32,
    generation: u32,
}

/// A statistic's value in a `StatsReply`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatValue<'a> {
    Int(i64),
    Text(&'a str),
}

/// A reusable reply encoder, one per connection (or per thread).
#[derive(Default)]
pub struct ReplyWriter {
    fbb: FlatBufferBuilder<'static>,
    items: Vec<u32>,
    outcomes: Vec<u32>,
    generation: u32,
}

macro_rules! table {
    ($self:ident, $table:ident, $args:expr) => {{
        let off = schema::$table::create(&mut $self.fbb, &$args);
        Body {
            kind: schema::Answer::$table,
            off: off.as_union_value().value(),
            generation: $self.generation,
        }
    }};
}

/// The items recorded in `items`, as a vector of `T` offsets.
macro_rules! offsets {
    ($self:ident, $t:ty) => {{
        let items = &$self.items;
        Some(
            $self
                .fbb
                .create_vector_from_iter(items.iter().map(|&o| WIPOffset::<$t>::new(o))),
        )
    }};
}

// The hand-laid `Reply { result: Value { found: true, value } }` of
// `reserve_value` (little-endian, offsets from the body's start):
//   0  u32 12: the root table
//   4  Reply's vtable: u16 8 (its size), 12 (table size), 8 (result_type), 4 (result)
//  12  Reply: i32 8 (vtable 8 bytes before), u32 16 (-> Value at 32), u8 1 (Value), 3 zeros
//  24  Value's vtable: u16 8, 12, 8 (found), 4 (value)
//  32  Value: i32 8, u32 8 (-> vector at 44), u8 1 (found), 3 zeros
//  44  the value: u32 length, bytes, zeros to a multiple of 4
const VALUE_PREFIX: [u8; 48] = {
    let mut b = [0u8; 48];
    let words: [(usize, u32); 5] = [(0, 12), (12, 8), (16, 16), (32, 8), (36, 8)];
    let halves: [(usize, u16); 8] = [
        (4, 8),
        (6, 12),
        (8, 8),
        (10, 4),
        (24, 8),
        (26, 12),
        (28, 8),
        (30, 4),
    ];
    let mut i = 0;
    while i < words.len() {
        let (at, v) = words[i];
        let le = v.to_le_bytes();
        b[at] = le[0];
        b[at + 1] = le[1];
        b[at + 2] = le[2];
        b[at + 3] = le[3];
        i += 1;
    }
    let mut i = 0;
    while i < halves.len() {
        let (at, v) = halves[i];
        let le = v.to_le_bytes();
        b[at] = le[0];
        b[at + 1] = le[1];
        i += 1;
    }
    b[20] = schema::Answer::Value.0;
    b[40] = 1;
    b
};

impl ReplyWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// GET's reply: a value, or absent (see also [`ReplyWriter::reserve_value`]).
    pub fn value(&mut self, value: Option<&[u8]>) -> Body {
        let v = value.map(|v| self.fbb.create_vector(v));
        table!(
            self,
            Value,
            schema::ValueArgs {
                found: value.is_some(),
                value: v
            }
        )
    }

    /// SET, EXPIRE, MSET: whether it was done.
    pub fn done(&mut self, applied: bool) -> Body {
        table!(self, Done, schema::DoneArgs { applied })
    }

    /// DELETE, EXISTS (a count), INCR (the new value), TTL (ms; -1, -2).
    pub fn int(&mut self, value: i64) -> Body {
        table!(self, Int, schema::IntArgs { value })
    }

    /// MGET: one slot per key.
    pub fn values<'v>(&mut self, values: impl IntoIterator<Item = Option<&'v [u8]>>) -> Body {
        self.items.clear();
        for v in values {
            let value = v.map(|v| self.fbb.create_vector(v));
            let args = schema::ValueArgs {
                found: v.is_some(),
                value,
            };
            self.items
                .push(schema::Value::create(&mut self.fbb, &args).value());
        }
        let values = offsets!(self, schema::Value);
        table!(self, Values, schema::ValuesArgs { values })
    }

    /// SCAN: the next cursor (0: done) and this page's keys.
    pub fn scan_page<'k>(&mut self, cursor: u64, keys: impl IntoIterator<Item = &'k [u8]>) -> Body {
        self.items.clear();
        for k in keys {
            let key = Some(self.fbb.create_vector(k));
            self.items
                .push(schema::Key::create(&mut self.fbb, &schema::KeyArgs { key }).value());
        }
        let keys = offsets!(self, schema::Key);
        table!(self, ScanPage, schema::ScanPageArgs { cursor, keys })
    }

    /// CALL's final reply.
    pub fn call_reply(&mut self, payload: &[u8]) -> Body {
        let payload = Some(self.fbb.create_vector(payload));
        table!(self, CallReply, schema::CallReplyArgs { payload })
    }

    pub fn stats<'s>(&mut self, stats: impl IntoIterator<Item = (&'s str, StatValue<'s>)>) -> Body {
        self.items.clear();
        for (name, value) in stats {
            let (value, text) = match value {
                StatValue::Int(n) => (n, None),
                StatValue::Text(t) => (0, Some(self.fbb.create_string(t))),
            };
            let name = Some(self.fbb.create_string(name));
            let stat = schema::Stat::create(&mut self.fbb, &schema::StatArgs { name, value, text });
            self.items.push(stat.value());
        }
        let stats = offsets!(self, schema::Stat);
        table!(self, StatsReply, schema::StatsReplyArgs { stats })
    }

    /// HELLO's reply: the version spoken and the features granted.
    pub fn welcome<'f>(
        &mut self,
        version: u32,
        server: &str,
        features: impl IntoIterator<Item = &'f str>,
    ) -> Body {
        self.items.clear();
        for f in features {
            self.items.push(self.fbb.create_string(f).value());
        }
        let features = offsets!(self, &str);
        let server = Some(self.fbb.create_string(server));
        table!(
            self,
            Welcome,
            schema::WelcomeArgs {
                version,
                server,
                features
            }
        )
    }

    /// One streamed result (sent with flag PARTIAL).
    pub fn partial(&mut self, index: u32, data: &[u8]) -> Body {
        let data = Some(self.fbb.create_vector(data));
        table!(self, Partial, schema::PartialArgs { index, data })
    }

    /// An error (sent with FINAL | ERROR; in a batch, one operation's).
    pub fn error(&mut self, code: ErrorCode, message: &str) -> Body {
        let message = Some(self.fbb.create_string(message));
        table!(
            self,
            Error,
            schema::ErrorArgs {
                code,
                message,
                ..Default::default()
            }
        )
    }

    /// A `Moved` error: `slot` is served by the node whose RPC door is at
    /// `address` (empty: that node has none).
    pub fn moved(&mut self, slot: u16, address: &str, message: &str) -> Body {
        let message = Some(self.fbb.create_string(message));
        let address = Some(self.fbb.create_string(address));
        table!(
            self,
            Error,
            schema::ErrorArgs {
                code: ErrorCode::Moved,
                message,
                slot,
                address,
            }
        )
    }

    /// Adds `body` as the next outcome of the batch being answered.
    pub fn push_outcome(&mut self, body: Body) {
        self.check(body);
        let args = schema::OutcomeArgs {
            answer_type: body.kind,
            answer: Some(WIPOffset::new(body.off)),
        };
        self.outcomes
            .push(schema::Outcome::create(&mut self.fbb, &args).value());
    }

    /// The `BatchReply` of the outcomes pushed since the last frame.
    pub fn batch(&mut self) -> Body {
        let outcomes = &self.outcomes;
        let outcomes = Some(
            self.fbb.create_vector_from_iter(
                outcomes
                    .iter()
                    .map(|&o| WIPOffset::<schema::Outcome>::new(o)),
            ),
        );
        self.outcomes.clear();
        table!(self, BatchReply, schema::BatchReplyArgs { outcomes })
    }

    fn check(&self, body: Body) {
        assert_eq!(
            body.generation, self.generation,
            "a Body of an earlier frame"
        );
    }

    /// Appends the reply frame of request `id` (of `method`) to `out`, with
    /// flags from the body: PARTIAL for a `Partial`, else FINAL (with ERROR
    /// for an `Error`, BATCH for a `BatchReply`); resets the builder.
    pub fn finish(&mut self, out: &mut Vec<u8>, id: u64, method: Method, body: Body) {
        self.check(body);
        let args = schema::ReplyArgs {
            answer_type: body.kind,
            answer: Some(WIPOffset::new(body.off)),
        };
        let reply = schema::Reply::create(&mut self.fbb, &args);
        self.fbb.finish_minimal(reply);
        let bytes = self.fbb.finished_data();
        let flags = match body.kind {
            schema::Answer::Partial => FLAG_PARTIAL,
            schema::Answer::Error => FLAG_FINAL | FLAG_ERROR,
            schema::Answer::BatchReply => FLAG_FINAL | FLAG_BATCH,
            _ => FLAG_FINAL,
        };
        let header = FrameHeader {
            flags,
            method,
            body_len: bytes.len() as u32,
            id,
        };
        out.reserve(HEADER_LEN + bytes.len());
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(bytes);
        self.fbb.reset();
        self.outcomes.clear();
        self.generation = self.generation.wrapping_add(1);
    }

    /// An error frame: `error` then `finish`.
    pub fn error_frame(
        &mut self,
        out: &mut Vec<u8>,
        id: u64,
        method: Method,
        code: ErrorCode,
        message: &str,
    ) {
        let body = self.error(code, message);
        self.finish(out, id, method, body);
    }

    /// Appends the frame of a found value of `len` bytes (a GET hit) to
    /// `out`, laid out by hand without the builder, and returns the value's
    /// bytes (zeroed) for the caller to fill. Panics if `len` exceeds
    /// `u32::MAX - 64` (values are bounded far below by the server).
    pub fn reserve_value(out: &mut Vec<u8>, id: u64, method: Method, len: usize) -> &mut [u8] {
        let start = out.len();
        Self::begin_value(out, id, method, len);
        let at = out.len();
        out.resize(
            start + HEADER_LEN + VALUE_PREFIX.len() + len.next_multiple_of(4),
            0,
        );
        &mut out[at..at + len]
    }

    /// Appends a reply whose body never changes (SET's `Done`, a GET
    /// miss): its bytes are built once per process and copied, which
    /// costs less than building them per request.
    pub fn constant_frame(out: &mut Vec<u8>, id: u64, method: Method, reply: Constant) {
        let body = constant_bodies()[reply as usize].as_slice();
        let header = FrameHeader {
            flags: FLAG_FINAL,
            method,
            body_len: body.len() as u32,
            id,
        };
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(body);
    }

    /// Like [`ReplyWriter::reserve_value`] without zeroing the value's
    /// bytes: appends the frame up to the value; the caller appends exactly
    /// `len` value bytes, then calls [`ReplyWriter::end_value`].
    pub fn begin_value(out: &mut Vec<u8>, id: u64, method: Method, len: usize) {
        assert!(len <= u32::MAX as usize - 64, "a value of {len} bytes");
        let body_len = VALUE_PREFIX.len() + len.next_multiple_of(4);
        let header = FrameHeader {
            flags: FLAG_FINAL,
            method,
            body_len: body_len as u32,
            id,
        };
        out.reserve(HEADER_LEN + body_len);
        out.extend_from_slice(&header.to_bytes());
        out.extend_from_slice(&VALUE_PREFIX[..44]);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }

    /// Ends a frame begun with [`ReplyWriter::begin_value`] whose value
    /// had `len` bytes (pads the body to its declared length).
    pub fn end_value(out: &mut Vec<u8>, len: usize) {
        let pad = len.next_multiple_of(4) - len;
        out.extend_from_slice(&[0u8; 4][..pad]);
    }

    /// [`ReplyWriter::reserve_value`], filled with `value`.
    pub fn value_frame(out: &mut Vec<u8>, id: u64, method: Method, value: &[u8]) {
        Self::reserve_value(out, id, method, value.len()).copy_from_slice(value);
    }
}

/// Replies whose body is always the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constant {
    Applied = 0,
    NotApplied = 1,
    NoValue = 2,
}

fn constant_bodies() -> &'static [Vec<u8>; 3] {
    static BODIES: std::sync::OnceLock<[Vec<u8>; 3]> = std::sync::OnceLock::new();
    BODIES.get_or_init(|| {
        let mut w = ReplyWriter::new();
        let mut body = |make: &dyn Fn(&mut ReplyWriter) -> Body| {
            let b = make(&mut w);
            let mut frame = Vec::new();
            w.finish(&mut frame, 0, Method::None, b);
            frame.split_off(HEADER_LEN)
        };
        [
            body(&|w| w.done(true)),
            body(&|w| w.done(false)),
            body(&|w| w.value(None)),
        ]
    })
}

/// Why a reply frame's body is not a `Reply`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplyError {
    #[error("frame body of {got} bytes, its header says {want}")]
    Length { got: usize, want: u32 },
    #[error("malformed reply: {0}")]
    Invalid(#[from] InvalidFlatbuffer),
}

/// Verifies a reply frame's body (with the default [`Limits`]) and returns
/// the `Reply` table, read in place.
pub fn decode_reply<'a>(
    header: &FrameHeader,
    body: &'a [u8],
) -> Result<schema::Reply<'a>, ReplyError> {
    if body.len() != header.body_len as usize {
        return Err(ReplyError::Length {
            got: body.len(),
            want: header.body_len,
        });
    }
    let opts = Limits::default().verifier_options();
    Ok(flatbuffers::root_with_opts::<schema::Reply>(&opts, body)?)
}
