//! Verified, in-place decoding of a request frame's body: a [`Request`]
//! whose keys, values and strings borrow the receive buffer.

use flatbuffers::{ForwardsUOffset, InvalidFlatbuffer, Vector};

use super::frame::{FrameHeader, Method};
use super::schema::{self, Condition, ErrorCode};
use super::Limits;

/// Decodes the operation of `$t` (a `Request` or an `Operation` table).
macro_rules! decode_op {
    ($t:expr) => {{
        let t = $t;
        let missing = |method, field| RequestError::MissingField { method, field };
        let key = |k: Option<Vector<'a, u8>>, m| k.map(|k| k.bytes()).ok_or(missing(m, "key"));
        match t.op_type() {
            schema::Op::NONE => None,
            schema::Op::Get => t.op_as_get().map(|o| {
                Ok(Op::Get {
                    key: key(o.key(), Method::Get)?,
                })
            }),
            schema::Op::Set => t.op_as_set().map(|o| {
                let condition = o.condition();
                if condition.0 > Condition::ENUM_MAX {
                    return Err(RequestError::BadCondition(condition.0));
                }
                Ok(Op::Set {
                    key: key(o.key(), Method::Set)?,
                    value: bytes(o.value()),
                    ttl_ms: o.ttl_ms(),
                    condition,
                })
            }),
            schema::Op::Delete => t.op_as_delete().map(|o| Ok(Op::Delete(Keys(o.keys())))),
            schema::Op::Exists => t.op_as_exists().map(|o| Ok(Op::Exists(Keys(o.keys())))),
            schema::Op::Expire => t.op_as_expire().map(|o| {
                Ok(Op::Expire {
                    key: key(o.key(), Method::Expire)?,
                    ttl_ms: o.ttl_ms(),
                })
            }),
            schema::Op::Ttl => t.op_as_ttl().map(|o| {
                Ok(Op::Ttl {
                    key: key(o.key(), Method::Ttl)?,
                })
            }),
            schema::Op::Incr => t.op_as_incr().map(|o| {
                Ok(Op::Incr {
                    key: key(o.key(), Method::Incr)?,
                    by: o.by(),
                })
            }),
            schema::Op::MGet => t.op_as_mget().map(|o| Ok(Op::MGet(Keys(o.keys())))),
            schema::Op::MSet => t.op_as_mset().map(|o| Ok(Op::MSet(Pairs(o.pairs())))),
            schema::Op::Scan => t.op_as_scan().map(|o| {
                Ok(Op::Scan {
                    cursor: o.cursor(),
                    pattern: o.match_(),
                    count: o.count(),
                })
            }),
            schema::Op::Call => t.op_as_call().map(|o| {
                Ok(Op::Call {
                    name: o.name().ok_or(missing(Method::Call, "name"))?,
                    payload: bytes(o.payload()),
                    options: o.options().unwrap_or(""),
                })
            }),
            schema::Op::Stats => t.op_as_stats().map(|o| {
                Ok(Op::Stats {
                    section: o.section(),
                })
            }),
            schema::Op::Hello => t.op_as_hello().map(|o| {
                Ok(Op::Hello {
                    version: o.version(),
                    client_name: o.client_name(),
                    password: o.password(),
                    features: Strs(o.features()),
                })
            }),
            schema::Op::Batch => t.op_as_batch().map(|o| Ok(Op::Batch(Batch(o.ops())))),
            other => Some(Err(RequestError::UnknownOp(other.0))),
        }
        .unwrap_or(Err(RequestError::MissingOp))
    }};
}

/// Why a frame's body is not a usable request. [`RequestError::code`] is the
/// `Error` reply's code; none of these desynchronise the stream.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    #[error("frame body of {got} bytes, its header says {want}")]
    Length { got: usize, want: u32 },
    #[error("malformed request: {0}")]
    Invalid(#[from] InvalidFlatbuffer),
    #[error("request without an operation")]
    MissingOp,
    #[error("operation {0} is unknown to this server")]
    UnknownOp(u8),
    #[error("frame header says {header:?}, the body holds {body:?}")]
    MethodMismatch { header: Method, body: Method },
    #[error("{method:?} without its {field}")]
    MissingField { method: Method, field: &'static str },
    #[error("SET condition {0} is unknown")]
    BadCondition(u8),
    #[error("a Batch inside a Batch")]
    NestedBatch,
}

impl RequestError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::UnknownOp(_) => ErrorCode::UnknownMethod,
            _ => ErrorCode::BadFrame,
        }
    }
}

/// A verified request, borrowing the frame's body.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The frame header's request id.
    pub id: u64,
    /// Unix milliseconds after which the answer is useless; 0 = none.
    pub deadline_ms: u64,
    pub priority: u8,
    pub op: Op<'a>,
}

impl Request<'_> {
    /// True if the deadline is set and has passed at `now_ms`.
    pub fn expired_at(&self, now_ms: u64) -> bool {
        self.deadline_ms != 0 && now_ms > self.deadline_ms
    }
}

/// One operation. Absent byte fields read as empty (`Set` without a value
/// stores an empty value); fields without which the operation means
/// nothing (GET's key, CALL's name) are [`RequestError::MissingField`].
#[derive(Clone, Copy, Debug)]
pub enum Op<'a> {
    Get {
        key: &'a [u8],
    },
    Set {
        key: &'a [u8],
        value: &'a [u8],
        ttl_ms: u64,
        condition: Condition,
    },
    Delete(Keys<'a>),
    Exists(Keys<'a>),
    Expire {
        key: &'a [u8],
        ttl_ms: u64,
    },
    Ttl {
        key: &'a [u8],
    },
    Incr {
        key: &'a [u8],
        by: i64,
    },
    MGet(Keys<'a>),
    MSet(Pairs<'a>),
    Scan {
        cursor: u64,
        pattern: Option<&'a str>,
        count: u32,
    },
    Call {
        name: &'a str,
        payload: &'a [u8],
        options: &'a str,
    },
    Stats {
        section: Option<&'a str>,
    },
    Hello {
        version: u32,
        client_name: Option<&'a str>,
        password: Option<&'a str>,
        features: Strs<'a>,
    },
    Batch(Batch<'a>),
}

impl Op<'_> {
    pub fn method(&self) -> Method {
        match self {
            Self::Get { .. } => Method::Get,
            Self::Set { .. } => Method::Set,
            Self::Delete(_) => Method::Delete,
            Self::Exists(_) => Method::Exists,
            Self::Expire { .. } => Method::Expire,
            Self::Ttl { .. } => Method::Ttl,
            Self::Incr { .. } => Method::Incr,
            Self::MGet(_) => Method::MGet,
            Self::MSet(_) => Method::MSet,
            Self::Scan { .. } => Method::Scan,
            Self::Call { .. } => Method::Call,
            Self::Stats { .. } => Method::Stats,
            Self::Hello { .. } => Method::Hello,
            Self::Batch(_) => Method::Batch,
        }
    }
}

/// A list of keys in the body (a key entry without bytes reads as empty).
#[derive(Clone, Copy, Debug, Default)]
pub struct Keys<'a>(Option<Vector<'a, ForwardsUOffset<schema::Key<'a>>>>);

impl<'a> Keys<'a> {
    pub fn len(&self) -> usize {
        self.0.map_or(0, |v| v.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> {
        self.0.into_iter().flatten().map(|k| bytes(k.key()))
    }
}

/// MSET's key-value pairs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pairs<'a>(Option<Vector<'a, ForwardsUOffset<schema::Pair<'a>>>>);

impl<'a> Pairs<'a> {
    pub fn len(&self) -> usize {
        self.0.map_or(0, |v| v.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.0
            .into_iter()
            .flatten()
            .map(|p| (bytes(p.key()), bytes(p.value())))
    }
}

/// A list of strings (HELLO's features).
#[derive(Clone, Copy, Debug, Default)]
pub struct Strs<'a>(Option<Vector<'a, ForwardsUOffset<&'a str>>>);

impl<'a> Strs<'a> {
    pub fn len(&self) -> usize {
        self.0.map_or(0, |v| v.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = &'a str> {
        self.0.into_iter().flatten()
    }
}

/// A batch's operations, decoded one by one as they are iterated: a bad
/// operation (e.g. a nested batch) is that operation's error, to be
/// answered in its `Outcome`, not the whole frame's.
#[derive(Clone, Copy, Debug, Default)]
pub struct Batch<'a>(Option<Vector<'a, ForwardsUOffset<schema::Operation<'a>>>>);

impl<'a> Batch<'a> {
    pub fn len(&self) -> usize {
        self.0.map_or(0, |v| v.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = Result<Op<'a>, RequestError>> {
        self.0.into_iter().flatten().map(|o| match decode_op!(o) {
            Ok(Op::Batch(_)) => Err(RequestError::NestedBatch),
            other => other,
        })
    }
}

fn bytes(v: Option<Vector<'_, u8>>) -> &[u8] {
    v.map_or(&[][..], |v| v.bytes())
}

/// [`decode_request_with`] the default [`Limits`].
pub fn decode_request<'a>(
    header: &FrameHeader,
    body: &'a [u8],
) -> Result<Request<'a>, RequestError> {
    decode_request_with(header, body, &Limits::default())
}

/// Verifies `body` (the `header.body_len` bytes after the header) as a
/// `Request` within `limits` and checks that its operation is the header's
/// method. Nothing is copied or allocated (but for the error of a body the
/// verifier refuses).
pub fn decode_request_with<'a>(
    header: &FrameHeader,
    body: &'a [u8],
    limits: &Limits,
) -> Result<Request<'a>, RequestError> {
    if body.len() != header.body_len as usize {
        return Err(RequestError::Length {
            got: body.len(),
            want: header.body_len,
        });
    }
    let opts = limits.verifier_options();
    let table = flatbuffers::root_with_opts::<schema::Request>(&opts, body)?;
    let op = decode_op!(table)?;
    if op.method() != header.method {
        return Err(RequestError::MethodMismatch {
            header: header.method,
            body: op.method(),
        });
    }
    Ok(Request {
        id: header.id,
        deadline_ms: table.deadline_ms(),
        priority: table.priority(),
        op,
    })
}
