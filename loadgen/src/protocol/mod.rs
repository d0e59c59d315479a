//! Wire protocols. A protocol encodes requests into a connection's send buffer and parses
//! replies incrementally from its receive buffer, classifying each as hit, miss, ok or error.
//!
//! Two shapes of protocol exist. [`InOrder`] ones (RESP, memcache) answer each request with
//! one reply, in request order, so a reply is matched to the oldest request in flight.
//! [`Protocol`] is what the driver speaks: requests carry an id, one reply frame may answer
//! several requests (a batch), replies may come in any order (Citadel's RPC, `rpc.rs`).
//! Every `InOrder` protocol is a `Protocol` through one blanket impl.
//!
//! Adding a protocol means: implement one of the two traits in a new file, add a
//! [`ProtocolKind`] variant, and one arm in [`with_protocol`]. The driver is generic over
//! `Protocol`, so each protocol gets its own monomorphised event loop.

pub mod memcache_binary;
pub mod memcache_text;
pub mod op;
pub mod resp;
pub mod rpc;

use std::ops::Range;

use thiserror::Error;

pub use op::{Collection, OpKind};

/// One request, borrowed from the workload's reused buffers.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub op: OpKind,
    /// The key; for MGET every key, concatenated.
    pub key: &'a [u8],
    /// MGET only: where each key of `key` ends (empty: `key` is one key).
    pub key_ends: &'a [usize],
    /// The value for SET, LPUSH, RPUSH and HSET; empty otherwise.
    pub value: &'a [u8],
    /// SADD, HSET, ZADD: the element's number (`element:N`, and ZADD's score).
    pub element: u64,
}

/// How a complete reply is classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// GET found the key.
    Hit,
    /// GET did not find the key.
    Miss,
    /// A write succeeded.
    Ok,
    /// An MGET's array: this many keys found and this many missing.
    Keys { hits: u32, misses: u32 },
    /// The server answered with an error; the range is the message within the parsed buffer.
    ServerError(Range<usize>),
    /// A well-formed reply the operation should never produce (e.g. NOT_STORED, an integer).
    Unexpected,
}

/// One complete reply at the front of the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Bytes the reply occupies.
    pub len: usize,
    pub outcome: Outcome,
}

/// The byte stream cannot be parsed: the connection is out of sync and must be closed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("malformed {protocol} reply: {what}")]
pub struct ProtocolError {
    pub protocol: &'static str,
    pub what: &'static str,
}

/// A protocol whose replies come one per request, in request order.
pub trait InOrder: Send + Sync + Clone + 'static {
    /// Short name for reports.
    fn name(&self) -> &'static str;

    /// Appends the encoding of `req` to `out` (no allocation once `out` has grown).
    fn encode(&self, req: &Request<'_>, out: &mut Vec<u8>);

    /// Parses the reply to `op` at the front of `buf`: `Ok(None)` when it is incomplete.
    fn parse(&self, op: OpKind, buf: &[u8]) -> Result<Option<Reply>, ProtocolError>;
}

/// Which request in flight an [`Answer`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The oldest one (in-order protocols).
    Oldest,
    /// The one sent with this id.
    Id(u64),
}

/// The outcome of one request, as found in a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub to: Target,
    /// The operation the reply says it answers; `None` when it cannot say (an error).
    pub op: Option<OpKind>,
    pub outcome: Outcome,
}

/// The protocol interface of the driver. One value per worker thread (it may keep
/// encoder state, e.g. a reusable FlatBuffers builder or a batch being filled).
pub trait Protocol: Send + Clone + 'static {
    /// Short name for reports.
    fn name(&self) -> &'static str;

    /// Encodes request `id` into `out`, or holds it back to batch it with the next ones
    /// (then [`Protocol::flush`] writes them). Ids of one connection are consecutive.
    /// No allocation once `out` and the encoder have grown.
    fn encode(&mut self, id: u64, req: &Request<'_>, out: &mut Vec<u8>);

    /// Writes out any requests held back. The driver calls it after queueing a
    /// connection's requests, before it touches another connection or sends.
    fn flush(&mut self, _out: &mut Vec<u8>) {}

    /// Parses the reply unit (reply, frame) at the front of `buf`, calls `each` for every
    /// request it answers, and returns its length; `Ok(None)` when it is incomplete.
    /// `oldest` is the operation of the oldest request in flight.
    fn parse(
        &self,
        oldest: OpKind,
        buf: &[u8],
        each: &mut impl FnMut(Answer),
    ) -> Result<Option<usize>, ProtocolError>;
}

impl<T: InOrder> Protocol for T {
    fn name(&self) -> &'static str {
        InOrder::name(self)
    }

    fn encode(&mut self, _id: u64, req: &Request<'_>, out: &mut Vec<u8>) {
        InOrder::encode(self, req, out);
    }

    fn parse(
        &self,
        oldest: OpKind,
        buf: &[u8],
        each: &mut impl FnMut(Answer),
    ) -> Result<Option<usize>, ProtocolError> {
        let Some(reply) = InOrder::parse(self, oldest, buf)? else {
            return Ok(None);
        };
        each(Answer {
            to: Target::Oldest,
            op: Some(oldest),
            outcome: reply.outcome,
        });
        Ok(Some(reply.len))
    }
}

/// Which protocol to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProtocolKind {
    /// RESP2 (also understands RESP3 replies): Redis, Valkey, Citadel.
    Resp,
    /// memcached text protocol.
    #[value(alias = "memcache-text")]
    Memcache,
    /// memcached binary protocol.
    MemcacheBinary,
    /// Citadel's RPC: 24-byte header + FlatBuffers frames, replies matched by request id
    /// (server flag `--rpc-port`); `--batch N` packs N operations into one frame.
    Rpc,
}

impl ProtocolKind {
    pub fn name(self) -> &'static str {
        match self {
            ProtocolKind::Resp => "resp",
            ProtocolKind::Memcache => "memcache",
            ProtocolKind::MemcacheBinary => "memcache-binary",
            ProtocolKind::Rpc => "rpc",
        }
    }
}

/// Something that runs with a concrete protocol type.
pub trait WithProtocol {
    type Output;
    fn call<P: Protocol>(self, proto: P) -> Self::Output;
}

/// Dispatches once from the runtime choice to monomorphised code; `batch` is the number
/// of operations per frame (RPC only; 1 elsewhere).
pub fn with_protocol<F: WithProtocol>(kind: ProtocolKind, batch: usize, f: F) -> F::Output {
    match kind {
        ProtocolKind::Rpc => f.call(rpc::Rpc::new(batch)),
        ProtocolKind::Resp => f.call(resp::Resp),
        ProtocolKind::Memcache => f.call(memcache_text::MemcacheText),
        ProtocolKind::MemcacheBinary => f.call(memcache_binary::MemcacheBinary),
    }
}

/// Position just past the first `\r\n` at or after `from`, if any.
#[inline]
pub(crate) fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rel = buf.get(from..)?.iter().position(|&b| b == b'\n')?;
    Some(from + rel + 1)
}

/// Parses an unsigned decimal.
#[inline]
pub(crate) fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    Some(n)
}

/// What a non-RESP encoder does with a collection operation: never reached, because
/// `driver::validate` refuses them for any other protocol before a request is made.
#[cold]
pub(crate) fn resp_only(op: OpKind) -> ! {
    unreachable!("{op}: RESP only (refused by driver::validate)")
}
