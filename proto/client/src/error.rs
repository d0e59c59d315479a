//! The client's typed errors.

use std::io;

use citadel_proto::rpc::{ErrorCode, FrameError, ReplyError};

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an `Error` reply (e.g. `NotInteger`,
    /// `Deadline`, `Plugin`, `Auth`). The connection stays usable.
    #[error("server error {code:?}: {message}")]
    Server { code: ErrorCode, message: String },
    /// Cluster mode: another node serves the key's slot (`ErrorCode::Moved`);
    /// `addr` is that node's RPC `host:port` (empty when it has none). A
    /// [`ClusterClient`](crate::ClusterClient) follows it.
    #[error("slot {slot} is served by {addr}")]
    Moved { slot: u16, addr: String },
    /// Connecting or writing failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The server sent something this client cannot read; the connection
    /// is closed.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// No answer within the call's deadline (the request may still run).
    #[error("no reply within the deadline")]
    Timeout,
    /// The connection closed (the server exited, or the client was shut
    /// down) before the answer came.
    #[error("connection closed")]
    Closed,
    /// The request is larger than the transport carries (a shared-memory
    /// ring's record limit, see `ClientOptions::shm_ring`); nothing was
    /// sent and the connection stays usable.
    #[error("request frame of {len} bytes exceeds the transport's limit of {max}")]
    TooLarge { len: usize, max: usize },
    /// Discovery found no live local server and no remote fallback is set.
    #[error("no server to connect to: {0}")]
    NoServer(String),
    /// The request cannot be encoded as asked (e.g. a `Batch` in a batch).
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
}

impl Error {
    /// True when the connection failed (as opposed to the server refusing
    /// the request or a deadline passing): worth a reconnect, and a retry
    /// of an idempotent call.
    pub fn is_transport(&self) -> bool {
        matches!(self, Self::Io(_) | Self::Closed)
    }

    /// The server's error code, if this is a server error.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => Some(*code),
            Self::Moved { .. } => Some(ErrorCode::Moved),
            _ => None,
        }
    }
}

/// Why a reply from the server cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("bad reply body: {0}")]
    Reply(#[from] ReplyError),
    #[error("reply frame with unknown method {0}")]
    UnknownMethod(u8),
    #[error("reply without an answer")]
    MissingAnswer,
    #[error("answered with {got}, expected {expected}")]
    UnexpectedAnswer {
        got: &'static str,
        expected: &'static str,
    },
    #[error("ring record of {record} bytes holds a frame of {frame}")]
    RecordLength { record: usize, frame: usize },
    #[error("batch of {sent} operations answered with {got} outcomes")]
    BatchLength { sent: usize, got: usize },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
