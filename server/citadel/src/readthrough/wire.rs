//! The server's side of the loader protocol (`citadel_proto::load`, which
//! encodes and decodes it for the server and every loader): a
//! `LoadRequest` written in place into the request ring, and what a plugin
//! call's outcome means for the load.

use citadel_proto::load::{self, LoadFailure};

use super::error::LoadError;
use crate::plugin::{CallError, Outcome};

pub use citadel_proto::load::Fetched;

/// Bytes of the `LoadRequest` for `key` (what to reserve in the ring).
pub fn request_len(key: &[u8]) -> usize {
    load::request_len(key.len(), load::DEFAULT_COMMAND.len())
}

/// Writes `LoadRequest { key, command: GET }` into `dst` (sized with
/// [`request_len`]); returns its length.
pub fn write_request(dst: &mut [u8], key: &[u8]) -> usize {
    load::write_request(dst, key, load::DEFAULT_COMMAND).unwrap_or_else(|e| {
        // Sized by request_len and keys are far below the format's limit.
        tracing::error!("encoding a LoadRequest: {e}");
        0
    })
}

/// Interprets the loader's answer.
pub fn decode(outcome: Outcome, loader: &str) -> Result<Fetched, LoadError> {
    match outcome {
        Outcome::Reply { payload, .. } => load::decode_reply(&payload).map_err(|e| {
            LoadError::Origin(format!("loader '{loader}' sent a malformed LoadReply: {e}"))
        }),
        Outcome::Failed(e) => Err(failure(e, loader)),
        Outcome::Pipeline(_) => Err(LoadError::Origin(format!(
            "loader '{loader}' answered with pipeline results"
        ))),
    }
}

/// A plugin call's failure as a load error.
pub fn failure(e: CallError, loader: &str) -> LoadError {
    match e {
        CallError::Coded { code, message } => match LoadFailure::from_code(code, &message) {
            LoadFailure::Unavailable(m) => LoadError::Unavailable(m),
            LoadFailure::Timeout(m) => LoadError::Timeout(m),
            LoadFailure::Origin(m) => LoadError::Origin(m),
            other => LoadError::Origin(other.to_string()),
        },
        CallError::Timeout(ms) => {
            LoadError::Timeout(format!("loader '{loader}' did not answer within {ms} ms"))
        }
        other => LoadError::Unavailable(format!("loader '{loader}' {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use citadel_proto::schema::ErrorCode;
    use citadel_proto::Format;
    use flatbuffers::FlatBufferBuilder;

    #[test]
    fn round_trip() {
        let mut buf = vec![0u8; request_len(b"user:1")];
        let n = write_request(&mut buf, b"user:1");
        let req = load::decode_request(Format::FlatBuffer, &buf[..n]).unwrap();
        assert_eq!(req.key, b"user:1");

        let mut fbb = FlatBufferBuilder::new();
        let payload = load::encode_found(&mut fbb, b"v1", 7).to_vec();
        let got = decode(
            Outcome::Reply {
                format: Format::FlatBuffer,
                payload,
            },
            "pg",
        );
        assert_eq!(
            got,
            Ok(Fetched::Found {
                value: b"v1".to_vec(),
                ttl_ms: 7
            })
        );
        let down = CallError::Coded {
            code: ErrorCode::OriginUnavailable.0,
            message: "origin unavailable: connection refused".into(),
        };
        let e = decode(Outcome::Failed(down), "pg").unwrap_err();
        assert_eq!(e.to_string(), "origin unavailable: connection refused");
        let e = decode(Outcome::Failed(CallError::Timeout(5)), "pg").unwrap_err();
        assert!(e.to_string().starts_with("origin timeout"), "{e}");
    }
}
