//! Why an RPC request failed, and the wire code each reason is answered
//! with (`ErrorCode` of `proto/schema/rpc.fbs`).

use citadel_proto::rpc::{Body, ErrorCode, ReplyWriter, RequestError};

use crate::command::CmdError;
use crate::plugin::CallError;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("the request's deadline passed before it ran")]
    Deadline,
    #[error("authentication required: send hello with the password first")]
    NoAuth,
    #[error("wrong password")]
    WrongPass,
    #[error("protocol version {0} is not supported (this server speaks 1)")]
    Version(u32),
    #[error("{0} cannot run inside a batch")]
    NotInBatch(&'static str),
    #[error("no such plugin or pipeline '{0}'")]
    NoSuchCall(String),
    #[error("plugin '{name}' {error}")]
    Call { name: String, error: CallError },
    #[error("{0}")]
    Pipeline(String),
    #[error("{0}")]
    Request(#[from] RequestError),
    /// Cluster mode: `slot` is served by the node whose RPC door is at
    /// `addr` (empty: it has none).
    #[error("MOVED {slot} {addr}")]
    Moved { slot: u16, addr: String },
    #[error("CLUSTERDOWN The cluster is down")]
    ClusterDown,
    #[error("CROSSSLOT Keys in request don't hash to the same slot")]
    CrossSlot,
    /// Shed by overload protection: `OVERLOAD <layer> <reason>`, as RESP.
    #[error("{0}")]
    Overload(String),
    /// Proxy mode: the owner of the key's slot did not answer (refused,
    /// timed out, circuit open), or answered what the RPC cannot carry.
    #[error("CLUSTERDOWN forwarding to the slot's node failed: {0}")]
    Forward(String),
    /// What a RESP command would have answered (shared logic).
    #[error("{}", .0.to_string().split_once(' ').map_or(String::new(), |(_, m)| m.to_string()))]
    Command(#[from] CmdError),
}

impl From<citadel_cache::WriteError> for RpcError {
    fn from(e: citadel_cache::WriteError) -> Self {
        RpcError::Command(e.into())
    }
}

impl RpcError {
    /// This error as a reply body: a `Moved` carries its slot and address.
    pub fn body(&self, writer: &mut ReplyWriter) -> Body {
        match self {
            RpcError::Moved { slot, addr } => writer.moved(*slot, addr, &self.to_string()),
            _ => writer.error(self.code(), &self.to_string()),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            RpcError::Deadline => ErrorCode::Deadline,
            RpcError::NoAuth | RpcError::WrongPass => ErrorCode::Auth,
            RpcError::Version(_) => ErrorCode::Version,
            RpcError::NotInBatch(_) => ErrorCode::Invalid,
            RpcError::NoSuchCall(_) | RpcError::Call { .. } | RpcError::Pipeline(_) => match self {
                RpcError::Call {
                    error: CallError::Full | CallError::TooMany(_),
                    ..
                } => ErrorCode::Overloaded,
                RpcError::Call {
                    error: CallError::TooLarge { .. },
                    ..
                } => ErrorCode::TooLarge,
                _ => ErrorCode::Plugin,
            },
            RpcError::Request(e) => e.code(),
            RpcError::Moved { .. } => ErrorCode::Moved,
            RpcError::ClusterDown | RpcError::Forward(_) => ErrorCode::ClusterDown,
            RpcError::CrossSlot => ErrorCode::CrossSlot,
            RpcError::Overload(_) => ErrorCode::Overloaded,
            RpcError::Command(e) => command_code(e),
        }
    }
}

fn command_code(e: &CmdError) -> ErrorCode {
    match e {
        CmdError::NotInteger | CmdError::Overflow | CmdError::DecrementOverflow => {
            ErrorCode::NotInteger
        }
        CmdError::NoSuchKey => ErrorCode::NoSuchKey,
        CmdError::WrongType => ErrorCode::WrongType,
        CmdError::NoAuth | CmdError::WrongPass => ErrorCode::Auth,
        CmdError::ValueTooLarge { .. } | CmdError::KeyTooLarge { .. } | CmdError::StringTooLong => {
            ErrorCode::TooLarge
        }
        CmdError::OutOfMemory => ErrorCode::OutOfMemory,
        CmdError::Moved { .. } => ErrorCode::Moved,
        CmdError::ClusterDown => ErrorCode::ClusterDown,
        CmdError::CrossSlot => ErrorCode::CrossSlot,
        _ => ErrorCode::Invalid,
    }
}
