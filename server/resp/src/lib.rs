//! The Redis serialization protocol: the request parser (RESP multibulk and
//! inline commands) and the reply encoder (RESP2 and RESP3).
//!
//! The request side is a hand-written parser rather than `redis_protocol`'s
//! decoder: clients only ever send arrays of bulk strings or inline lines, and
//! `decode_range` builds a `Vec` of frames per command, while we need
//! allocation-free, resumable parsing (argument spans borrowed from the input,
//! kept across partial reads) and Redis's exact protocol-error texts.

pub mod ext_float;
pub mod frame;
pub mod inline;
pub mod num;
pub mod parse;
pub mod write;

pub use parse::{Parsed, ProtocolError, RequestParser};
pub use write::Reply;

#[cfg(test)]
mod tests;
