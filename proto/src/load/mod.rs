//! The read-through loader protocol (`proto/schema/cache.fbs`), encoded and
//! decoded in one place for the server and every loader plugin:
//!
//! ```text
//! server -> loader   Kind::Request, Format::FlatBuffer   LoadRequest { key, command }
//! loader -> server   Kind::Reply                          LoadReply { found, value, ttl_ms }
//!                    Kind::Error, status = code           ErrorReply { code, message }
//!                    Kind::Invalidation, id 0 (unsolicited) Invalidation { keys, resync }
//! ```
//!
//! Decoding runs the FlatBuffers verifier and returns typed values and
//! typed errors ([`RequestError`], [`ReplyError`], [`RecordError`],
//! [`InvalidationError`]). A failed load is a [`LoadFailure`]; its text is
//! what the server shows its client (`origin unavailable: ...`), and
//! [`LoadFailure::from_code`] turns an `ErrorReply` back into the same value.

mod failure;
mod invalidation;
mod reply;
mod request;

pub use failure::LoadFailure;
pub use invalidation::{
    decode_invalidation, encode_invalidation, InvalidationError, InvalidationRef,
};
pub use reply::{
    decode_error_reply, decode_record, decode_reply, decode_reply_ref, encode_absent,
    encode_failure, encode_found, Fetched, FetchedRef, RecordError, ReplyError,
};
pub use request::{
    decode_request, encode_request, request_len, write_request, EncodeError, LoadRequestRef,
    RequestError, DEFAULT_COMMAND,
};
