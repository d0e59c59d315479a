//! Replies of a read-through loader, encoded with `citadel_proto::load`
//! (one reusable builder per thread).

use std::cell::RefCell;

use citadel_proto::load::{
    decode_request, encode_absent, encode_failure, encode_found, LoadFailure,
};
use citadel_proto::{Format, Kind};
use flatbuffers::FlatBufferBuilder;

use crate::message::{Reply, Request};

thread_local! {
    static FBB: RefCell<FlatBufferBuilder<'static>> = RefCell::new(FlatBufferBuilder::new());
}

fn with_builder(
    encode: impl for<'b> FnOnce(&'b mut FlatBufferBuilder<'static>) -> &'b [u8],
) -> Vec<u8> {
    FBB.with(|fbb| encode(&mut fbb.borrow_mut()).to_vec())
}

impl Reply {
    /// `LoadReply { found: true, value, ttl_ms }` (`ttl_ms` 0: the
    /// keyspace's default TTL).
    pub fn load_found(value: &[u8], ttl_ms: u64) -> Self {
        Self::flatbuffer(with_builder(|fbb| encode_found(fbb, value, ttl_ms)))
    }

    /// `LoadReply { found: false }`: the key does not exist.
    pub fn load_absent() -> Self {
        Self::flatbuffer(with_builder(encode_absent))
    }

    /// `ErrorReply { code, message }`: kind `Error`, status = code.
    pub fn load_failed(failure: &LoadFailure) -> Self {
        Self {
            kind: Kind::Error,
            format: Format::FlatBuffer,
            status: failure.code().0,
            payload: with_builder(|fbb| encode_failure(fbb, failure)),
            to_server: true,
        }
    }
}

impl<'a> Request<'a> {
    /// The key of this `LoadRequest` (verified), or the `BadRequest` reply
    /// to send instead.
    pub fn load_key(&self) -> Result<&'a [u8], Reply> {
        decode_request(self.format, self.payload)
            .map(|load| load.key)
            .map_err(|e| Reply::load_failed(&LoadFailure::BadRequest(e.to_string())))
    }
}
