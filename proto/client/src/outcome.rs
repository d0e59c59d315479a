//! Reading reply frames into owned values: the [`Outcome`] of any request,
//! and its typed views.

use std::time::Duration;

use citadel_proto::rpc::{decode_reply, schema, ErrorCode};

use crate::error::{Error, ProtocolError, Result};
use crate::frame::Frame;

/// The answer to one operation, owned.
#[derive(Debug)]
pub enum Outcome {
    /// GET: the value, if the key exists.
    Value(Option<Vec<u8>>),
    /// SET, EXPIRE, MSET: whether it was done.
    Done(bool),
    /// DELETE, EXISTS, INCR, TTL.
    Int(i64),
    /// MGET: one slot per key.
    Values(Vec<Option<Vec<u8>>>),
    ScanPage(ScanPage),
    /// CALL's final reply.
    CallReply(Vec<u8>),
    Stats(Vec<(String, StatValue)>),
    Welcome(Welcome),
    /// One streamed result of a pipeline call.
    Partial(Partial),
    /// A batch: one result per operation, in order.
    Batch(Vec<Result<Outcome>>),
}

/// One page of a SCAN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Where to continue; 0 when the scan is complete.
    pub cursor: u64,
    pub keys: Vec<Vec<u8>>,
}

/// A statistic's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatValue {
    Int(i64),
    Text(String),
}

/// HELLO's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Welcome {
    pub version: u32,
    /// E.g. "citadel 0.1.0".
    pub server: String,
    /// The subset of the asked features that the server grants.
    pub features: Vec<String>,
}

/// One streamed result of a pipeline call (the JSON of one frame).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Partial {
    pub index: u32,
    pub data: Vec<u8>,
}

/// A key's time to live (TTL's answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// No such key.
    Missing,
    /// The key exists without a TTL.
    Persistent,
    Expires(Duration),
}

impl Ttl {
    fn from_wire(ms: i64) -> Self {
        match ms {
            -2 => Self::Missing,
            ms if ms < 0 => Self::Persistent,
            ms => Self::Expires(Duration::from_millis(ms as u64)),
        }
    }
}

/// Decodes the answer of `$t` (a `Reply` or an `Outcome` table).
macro_rules! decode_answer {
    ($t:expr) => {{
        let t = $t;
        match t.answer_type() {
            schema::Answer::Value => t.answer_as_value().map(|v| Ok(Outcome::Value(value(v)))),
            schema::Answer::Done => t.answer_as_done().map(|d| Ok(Outcome::Done(d.applied()))),
            schema::Answer::Int => t.answer_as_int().map(|i| Ok(Outcome::Int(i.value()))),
            schema::Answer::Values => t.answer_as_values().map(|v| {
                let values = v.values().into_iter().flatten().map(value).collect();
                Ok(Outcome::Values(values))
            }),
            schema::Answer::ScanPage => t.answer_as_scan_page().map(|p| {
                let keys = p.keys().into_iter().flatten();
                Ok(Outcome::ScanPage(ScanPage {
                    cursor: p.cursor(),
                    keys: keys.map(|k| bytes(k.key())).collect(),
                }))
            }),
            schema::Answer::CallReply => t
                .answer_as_call_reply()
                .map(|c| Ok(Outcome::CallReply(bytes(c.payload())))),
            schema::Answer::StatsReply => t.answer_as_stats_reply().map(|s| {
                let stats = s.stats().into_iter().flatten().map(stat).collect();
                Ok(Outcome::Stats(stats))
            }),
            schema::Answer::Welcome => t.answer_as_welcome().map(|w| {
                Ok(Outcome::Welcome(Welcome {
                    version: w.version(),
                    server: w.server().unwrap_or_default().to_string(),
                    features: strings(w.features()),
                }))
            }),
            schema::Answer::Partial => t.answer_as_partial().map(|p| {
                Ok(Outcome::Partial(Partial {
                    index: p.index(),
                    data: bytes(p.data()),
                }))
            }),
            schema::Answer::Error => t.answer_as_error().map(|e| {
                Err(match e.code() {
                    ErrorCode::Moved => Error::Moved {
                        slot: e.slot(),
                        addr: e.address().unwrap_or_default().to_string(),
                    },
                    code => Error::Server {
                        code,
                        message: e.message().unwrap_or_default().to_string(),
                    },
                })
            }),
            schema::Answer::BatchReply => t.answer_as_batch_reply().map(|b| {
                let outcomes = b.outcomes().into_iter().flatten();
                Ok(Outcome::Batch(outcomes.map(batch_outcome).collect()))
            }),
            _ => None,
        }
        .unwrap_or(Err(Error::Protocol(ProtocolError::MissingAnswer)))
    }};
}

type Bytes<'a> = flatbuffers::Vector<'a, u8>;
type StrList<'a> = flatbuffers::Vector<'a, flatbuffers::ForwardsUOffset<&'a str>>;

fn bytes(v: Option<Bytes<'_>>) -> Vec<u8> {
    v.map_or_else(Vec::new, |v| v.bytes().to_vec())
}

fn value(v: schema::Value<'_>) -> Option<Vec<u8>> {
    v.found().then(|| bytes(v.value()))
}

fn strings(v: Option<StrList<'_>>) -> Vec<String> {
    v.into_iter().flatten().map(str::to_string).collect()
}

fn stat(s: schema::Stat<'_>) -> (String, StatValue) {
    let value = match s.text() {
        Some(t) => StatValue::Text(t.to_string()),
        None => StatValue::Int(s.value()),
    };
    (s.name().unwrap_or_default().to_string(), value)
}

fn batch_outcome(o: schema::Outcome<'_>) -> Result<Outcome> {
    decode_answer!(o)
}

impl Frame {
    /// The frame's answer; an `Error` reply is `Err(Error::Server)`.
    pub(crate) fn into_outcome(self) -> Result<Outcome> {
        let reply = decode_reply(&self.header, &self.body).map_err(ProtocolError::from)?;
        decode_answer!(reply)
    }
}

/// The typed view of an outcome, or the mismatch as a protocol error.
macro_rules! expect {
    ($outcome:expr, $variant:ident) => {
        match $outcome {
            Outcome::$variant(v) => Ok(v),
            other => Err(Error::Protocol(ProtocolError::UnexpectedAnswer {
                got: other.kind(),
                expected: stringify!($variant),
            })),
        }
    };
}

impl Outcome {
    /// The variant's name (for errors).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Value(_) => "Value",
            Self::Done(_) => "Done",
            Self::Int(_) => "Int",
            Self::Values(_) => "Values",
            Self::ScanPage(_) => "ScanPage",
            Self::CallReply(_) => "CallReply",
            Self::Stats(_) => "Stats",
            Self::Welcome(_) => "Welcome",
            Self::Partial(_) => "Partial",
            Self::Batch(_) => "Batch",
        }
    }

    pub fn into_value(self) -> Result<Option<Vec<u8>>> {
        expect!(self, Value)
    }

    pub fn into_done(self) -> Result<bool> {
        expect!(self, Done)
    }

    pub fn into_int(self) -> Result<i64> {
        expect!(self, Int)
    }

    pub fn into_values(self) -> Result<Vec<Option<Vec<u8>>>> {
        expect!(self, Values)
    }

    pub fn into_scan_page(self) -> Result<ScanPage> {
        expect!(self, ScanPage)
    }

    pub fn into_call_reply(self) -> Result<Vec<u8>> {
        expect!(self, CallReply)
    }

    pub fn into_stats(self) -> Result<Vec<(String, StatValue)>> {
        expect!(self, Stats)
    }

    pub fn into_welcome(self) -> Result<Welcome> {
        expect!(self, Welcome)
    }

    pub fn into_batch(self) -> Result<Vec<Result<Outcome>>> {
        expect!(self, Batch)
    }

    /// TTL's answer.
    pub fn into_ttl(self) -> Result<Ttl> {
        self.into_int().map(Ttl::from_wire)
    }

    /// A count (DELETE, EXISTS): never negative.
    pub fn into_count(self) -> Result<u64> {
        self.into_int().map(|n| n.max(0) as u64)
    }
}
