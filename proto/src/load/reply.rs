//! The loader's answers: `LoadReply { found, value, ttl_ms }` (envelope kind
//! `Reply`) or `ErrorReply { code, message }` (kind `Error`, status = code).

use flatbuffers::{FlatBufferBuilder, InvalidFlatbuffer};

use super::LoadFailure;
use crate::envelope::{Envelope, STATUS_DEADLINE};
use crate::schema::{ErrorReply, ErrorReplyArgs, LoadReply, LoadReplyArgs};
use crate::{Format, Kind};

/// What the origin said about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// `ttl_ms` 0: the keyspace's default TTL.
    Found {
        value: Vec<u8>,
        ttl_ms: u64,
    },
    Absent,
}

/// [`Fetched`], borrowing the value from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchedRef<'a> {
    Found { value: &'a [u8], ttl_ms: u64 },
    Absent,
}

impl FetchedRef<'_> {
    pub fn to_owned(self) -> Fetched {
        match self {
            Self::Found { value, ttl_ms } => Fetched::Found {
                value: value.to_vec(),
                ttl_ms,
            },
            Self::Absent => Fetched::Absent,
        }
    }
}

/// Why a `Kind::Reply` payload is not a `LoadReply`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplyError {
    #[error("malformed LoadReply: {0}")]
    Malformed(#[from] InvalidFlatbuffer),
}

/// Why a reply record carries no value ([`decode_record`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    /// The loader answered an `ErrorReply`.
    #[error(transparent)]
    Failed(LoadFailure),
    /// The plugin's SDK found the request past its deadline.
    #[error("the request's deadline passed before the loader took it")]
    Deadline,
    /// The plugin's SDK skipped the request after it crashed the plugin.
    #[error(
        "abandoned after {attempts} attempts: it crashed the loader each time (poison request)"
    )]
    Poison { attempts: u16 },
    /// An error reply that is not an `ErrorReply` (e.g. a handler panic).
    #[error("loader failed: {0}")]
    Plugin(String),
    #[error(transparent)]
    Malformed(#[from] ReplyError),
    #[error("unexpected reply kind {0:?}")]
    UnexpectedKind(Kind),
}

/// Encodes `LoadReply { found: true, value, ttl_ms }` (0: the server's
/// default TTL) into `fbb` (reset first).
pub fn encode_found<'b>(
    fbb: &'b mut FlatBufferBuilder<'static>,
    value: &[u8],
    ttl_ms: u64,
) -> &'b [u8] {
    fbb.reset();
    let value = fbb.create_vector(value);
    let reply = LoadReply::create(
        fbb,
        &LoadReplyArgs {
            found: true,
            value: Some(value),
            ttl_ms,
        },
    );
    fbb.finish(reply, None);
    fbb.finished_data()
}

/// Encodes `LoadReply { found: false }`: the key does not exist.
pub fn encode_absent<'b>(fbb: &'b mut FlatBufferBuilder<'static>) -> &'b [u8] {
    fbb.reset();
    let reply = LoadReply::create(fbb, &LoadReplyArgs::default());
    fbb.finish(reply, None);
    fbb.finished_data()
}

/// Encodes `ErrorReply { code, message }` for `failure`; send it as a
/// `Kind::Error` record with status `failure.code().0`.
pub fn encode_failure<'b>(
    fbb: &'b mut FlatBufferBuilder<'static>,
    failure: &LoadFailure,
) -> &'b [u8] {
    fbb.reset();
    let message = fbb.create_string(&failure.to_string());
    let reply = ErrorReply::create(
        fbb,
        &ErrorReplyArgs {
            code: failure.code().0,
            message: Some(message),
        },
    );
    fbb.finish(reply, None);
    fbb.finished_data()
}

/// Verifies a `Kind::Reply` payload as a `LoadReply`. `found` without a
/// value is an empty value.
pub fn decode_reply_ref(payload: &[u8]) -> Result<FetchedRef<'_>, ReplyError> {
    let reply = flatbuffers::root::<LoadReply>(payload)?;
    if !reply.found() {
        return Ok(FetchedRef::Absent);
    }
    Ok(FetchedRef::Found {
        value: reply.value().map_or(&[][..], |v| v.bytes()),
        ttl_ms: reply.ttl_ms(),
    })
}

/// [`decode_reply_ref`], with the value copied.
pub fn decode_reply(payload: &[u8]) -> Result<Fetched, ReplyError> {
    decode_reply_ref(payload).map(FetchedRef::to_owned)
}

/// Verifies a `Kind::Error` payload as an `ErrorReply`.
pub fn decode_error_reply(payload: &[u8]) -> Result<LoadFailure, ReplyError> {
    let e = flatbuffers::root::<ErrorReply>(payload)?;
    Ok(LoadFailure::from_code(
        e.code(),
        e.message().unwrap_or_default(),
    ))
}

/// Interprets a whole reply record to a `LoadRequest`: its envelope
/// (kind, format, status, attempt) and payload.
pub fn decode_record(envelope: &Envelope, payload: &[u8]) -> Result<Fetched, RecordError> {
    match envelope.kind {
        Kind::Reply => Ok(decode_reply(payload)?),
        Kind::Abandoned => Err(RecordError::Poison {
            attempts: envelope.attempt.saturating_sub(1).max(1),
        }),
        Kind::Error if envelope.status == STATUS_DEADLINE => Err(RecordError::Deadline),
        Kind::Error if envelope.format == Format::FlatBuffer => {
            Err(RecordError::Failed(decode_error_reply(payload)?))
        }
        Kind::Error => Err(RecordError::Plugin(
            String::from_utf8_lossy(payload).into_owned(),
        )),
        kind => Err(RecordError::UnexpectedKind(kind)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(kind: Kind, format: Format, status: u32) -> Envelope {
        Envelope {
            kind,
            format,
            status,
            ..Envelope::reply(7)
        }
    }

    #[test]
    fn replies_round_trip() {
        let mut fbb = FlatBufferBuilder::new();
        let found = encode_found(&mut fbb, b"v\x00\xff", 5000).to_vec();
        let want = Fetched::Found {
            value: b"v\x00\xff".to_vec(),
            ttl_ms: 5000,
        };
        assert_eq!(decode_reply(&found), Ok(want.clone()));
        let env = envelope(Kind::Reply, Format::FlatBuffer, 0);
        assert_eq!(decode_record(&env, &found), Ok(want));
        let empty = encode_found(&mut fbb, b"", 0).to_vec();
        assert_eq!(
            decode_reply_ref(&empty),
            Ok(FetchedRef::Found {
                value: b"",
                ttl_ms: 0
            })
        );
        let absent = encode_absent(&mut fbb).to_vec();
        assert_eq!(decode_reply(&absent), Ok(Fetched::Absent));
        assert!(matches!(
            decode_reply(b"junk"),
            Err(ReplyError::Malformed(_))
        ));
    }

    #[test]
    fn failures_decode_typed() {
        let mut fbb = FlatBufferBuilder::new();
        let down = LoadFailure::Unavailable("connection refused".into());
        let bytes = encode_failure(&mut fbb, &down).to_vec();
        assert_eq!(decode_error_reply(&bytes), Ok(down.clone()));
        let env = envelope(Kind::Error, Format::FlatBuffer, down.code().0);
        assert_eq!(decode_record(&env, &bytes), Err(RecordError::Failed(down)));
        let deadline = envelope(Kind::Error, Format::Raw, STATUS_DEADLINE);
        assert_eq!(
            decode_record(&deadline, b"late"),
            Err(RecordError::Deadline)
        );
        let panicked = envelope(Kind::Error, Format::Raw, 2);
        assert_eq!(
            decode_record(&panicked, b"handler panicked"),
            Err(RecordError::Plugin("handler panicked".into()))
        );
        let poison = Envelope {
            attempt: 4,
            ..envelope(Kind::Abandoned, Format::Raw, 1)
        };
        assert_eq!(
            decode_record(&poison, b""),
            Err(RecordError::Poison { attempts: 3 })
        );
        let odd = envelope(Kind::Control, Format::Raw, 0);
        assert_eq!(
            decode_record(&odd, b""),
            Err(RecordError::UnexpectedKind(Kind::Control))
        );
    }
}
