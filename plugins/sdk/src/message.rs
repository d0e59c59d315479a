//! What a handler sees and returns.

use citadel_proto::envelope::{STATUS_HANDLER_FAILED, STATUS_OK};
pub use citadel_proto::{Format, Kind};

/// One request, borrowed in place from the request ring (no copy).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub id: u64,
    /// `Kind::Request` expects a reply; other kinds (e.g. `Invalidation`)
    /// are delivered to the handler too, and its reply is discarded.
    pub kind: Kind,
    pub format: Format,
    /// Unix milliseconds; 0 = none. Requests past their deadline are answered
    /// with an error by the SDK without calling the handler.
    pub deadline_ms: u64,
    /// Which delivery this is (1 = first; more after a plugin crash).
    pub attempt: u16,
    /// Index of the ring pair (server thread) it came from.
    pub pair: usize,
    pub payload: &'a [u8],
}

/// A handler's answer; its payload is copied into the reply ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub kind: Kind,
    pub format: Format,
    pub status: u32,
    pub payload: Vec<u8>,
    /// In a pipeline stage with a next stage: answer the server directly
    /// (the call's final answer; later stages skip it) instead of passing
    /// the reply on. Errors always go to the server.
    pub to_server: bool,
}

impl Reply {
    /// A successful raw-bytes reply.
    pub fn ok(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            kind: Kind::Reply,
            format: Format::Raw,
            status: STATUS_OK,
            payload: payload.into(),
            to_server: false,
        }
    }

    /// A pipeline stage's final answer for its call, sent to the server
    /// even if there is a next stage (which then never sees the call).
    pub fn final_answer(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            to_server: true,
            ..Self::ok(payload)
        }
    }

    /// A successful reply whose payload is a finished FlatBuffer.
    pub fn flatbuffer(payload: impl Into<Vec<u8>>) -> Self {
        Self {
            format: Format::FlatBuffer,
            ..Self::ok(payload)
        }
    }

    /// A failure the server reports to its client (`status` != 0).
    pub fn error(status: u32, message: impl Into<Vec<u8>>) -> Self {
        Self {
            kind: Kind::Error,
            status,
            ..Self::ok(message)
        }
    }

    /// The error a request gets when its handler failed (`STATUS_HANDLER_FAILED`).
    pub fn handler_failed(why: &str) -> Self {
        Self::error(STATUS_HANDLER_FAILED, why.as_bytes())
    }
}

impl From<Vec<u8>> for Reply {
    fn from(v: Vec<u8>) -> Self {
        Self::ok(v)
    }
}

impl From<&[u8]> for Reply {
    fn from(v: &[u8]) -> Self {
        Self::ok(v)
    }
}

impl From<String> for Reply {
    fn from(v: String) -> Self {
        Self::ok(v)
    }
}

impl From<&str> for Reply {
    fn from(v: &str) -> Self {
        Self::ok(v)
    }
}

/// Replies of a batch handler: push one per request, in request order.
/// Requests left without a reply are answered with a handler-failed error.
#[derive(Debug, Default)]
pub struct Replies {
    items: Vec<Reply>,
}

impl Replies {
    pub fn push(&mut self, reply: impl Into<Reply>) {
        self.items.push(reply.into());
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    /// The reply for request `i`.
    pub(crate) fn take(&mut self, i: usize) -> Reply {
        match self.items.get_mut(i) {
            Some(r) => std::mem::replace(r, Reply::ok(Vec::new())),
            None => Reply::handler_failed("batch handler returned no reply for this request"),
        }
    }
}
