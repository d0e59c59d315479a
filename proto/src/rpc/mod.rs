//! The RPC front door's protocol (issue 11): frames of a fixed header and a
//! FlatBuffers body (`proto/schema/rpc.fbs`), verified and read in place.
//!
//! ```text
//! offset  size  field
//!      0     1  magic, b'C'
//!      1     1  version, 1
//!      2     1  flags: FINAL 1 | PARTIAL 2 | BATCH 4 | ERROR 8 (others ignored)
//!      3     1  method: the `Op` union's discriminant (Get 1 .. Batch 14;
//!               0 only in an error reply to a frame whose method is unknown)
//!      4     4  body length, u32 LE (the FlatBuffers bytes after the header)
//!      8     8  request id, u64 LE (chosen by the client, echoed by replies)
//!     16     8  reserved: written as zero, ignored when read
//!     24     …  body: a `Request` (client → server) or a `Reply` (server → client)
//! ```
//!
//! A request is one frame (flags 0, or BATCH for a `Batch`). Its body is a
//! `Request { deadline_ms, priority, op }`; the request id is the header's
//! alone. Replies may come in any order (many requests in flight on one
//! connection) and name their request by id and method: one frame with
//! FINAL set ends a request; a streamed call first sends frames with
//! PARTIAL (a `Partial { index, data }` each). An error reply is a `Reply`
//! holding an `Error { code, message }` (a cluster's `Moved` also its
//! `slot` and the owner's RPC `address`) with FINAL | ERROR; a batch is
//! answered by one `BatchReply` frame (FINAL | BATCH) with an `Outcome` per
//! operation, in order.
//!
//! Reading: [`FrameHeader::parse`] on the receive buffer says whether a
//! whole frame is there (`Ok(None)`: read more) and how long it is; a
//! [`FrameError`] says which error to answer and whether the stream must be
//! closed ([`FrameError::must_close`]). [`decode_request`] verifies the body
//! with bounded [`Limits`] and returns a [`Request`] whose keys and values
//! borrow the receive buffer. Writing: a [`ReplyWriter`] (the server) or a
//! [`RequestWriter`] (clients, tests) appends whole frames to a `Vec<u8>`.

mod frame;
mod reply;
mod request;
#[cfg(not(loom))]
pub mod shm;
mod write;

#[cfg(test)]
mod tests;

pub use frame::{
    peek_body_len, peek_frame_id, peek_frame_len, peek_id, FrameError, FrameHeader, Method,
    HEADER_LEN,
};
pub use reply::{decode_reply, Body, Constant, ReplyError, ReplyWriter, StatValue};
pub use request::{
    decode_request, decode_request_with, Batch, Keys, Op, Pairs, Request, RequestError, Strs,
};
pub use write::{OpBody, RequestWriter};

/// The FlatBuffers tables and enums of `proto/schema/rpc.fbs`.
pub mod schema {
    pub use crate::generated::rpc::*;
}

pub use schema::{Condition, ErrorCode};

/// The header's first byte.
pub const MAGIC: u8 = b'C';
/// The version of the header and the schema this build speaks.
pub const VERSION: u8 = 1;
/// Flag: the last frame of a request's answer.
pub const FLAG_FINAL: u8 = 1;
/// Flag: one streamed result (`Partial`); more frames follow.
pub const FLAG_PARTIAL: u8 = 2;
/// Flag: a `Batch` request or its `BatchReply`.
pub const FLAG_BATCH: u8 = 4;
/// Flag: the body is an `Error` reply.
pub const FLAG_ERROR: u8 = 8;
/// Default [`Limits::max_frame`]: a 64 MiB value plus room for its key and
/// the tables around it.
pub const DEFAULT_MAX_FRAME: usize = (64 << 20) + (64 << 10);

/// Bounds on what a peer may make us buffer and verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame (header and body) accepted; longer is `TooLarge`.
    pub max_frame: usize,
    /// Deepest table nesting the verifier follows (a request is 3 deep, a
    /// batched one 5).
    pub max_depth: usize,
    /// Most tables one body may hold (a batch's operations and keys count).
    pub max_tables: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            max_depth: 16,
            max_tables: 1 << 20,
        }
    }
}

impl Limits {
    /// The verifier's options: these bounds, and an apparent size (what
    /// shared offsets could make a body look like when expanded) of at most
    /// `max_frame`, so that a small body cannot cost a large walk.
    pub fn verifier_options(&self) -> flatbuffers::VerifierOptions {
        flatbuffers::VerifierOptions {
            max_depth: self.max_depth,
            max_tables: self.max_tables,
            max_apparent_size: self.max_frame,
            ignore_missing_null_terminator: false,
        }
    }
}
