//! The loader protocol (proto/schema/cache.fbs): a `LoadRequest` for a
//! key, and what the reply means: `LoadReply { found, value, ttl_ms }`, or
//! a failure (an `ErrorReply` code, a timeout, a crashed plugin).

use citadel_proto::schema::{ErrorCode, LoadReply, LoadRequest, LoadRequestArgs};
use flatbuffers::FlatBufferBuilder;

use super::error::LoadError;
use crate::plugin::{CallError, Outcome};

/// What the origin said about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Found { value: Vec<u8>, ttl_ms: u64 },
    Absent,
}

/// Encodes `LoadRequest { key, command }` into `fbb`; returns the bytes.
pub fn encode<'b>(fbb: &'b mut FlatBufferBuilder<'static>, key: &[u8]) -> &'b [u8] {
    fbb.reset();
    let key = fbb.create_vector(key);
    let command = fbb.create_string("GET");
    let req = LoadRequest::create(
        fbb,
        &LoadRequestArgs {
            key: Some(key),
            command: Some(command),
            args: None,
        },
    );
    fbb.finish(req, None);
    fbb.finished_data()
}

/// Interprets the loader's answer.
pub fn decode(outcome: Outcome, loader: &str) -> Result<Fetched, LoadError> {
    match outcome {
        Outcome::Reply { payload, .. } => {
            let reply = flatbuffers::root::<LoadReply>(&payload).map_err(|e| {
                LoadError::Origin(format!("loader '{loader}' sent a malformed LoadReply: {e}"))
            })?;
            if !reply.found() {
                return Ok(Fetched::Absent);
            }
            Ok(Fetched::Found {
                value: reply
                    .value()
                    .map(|v| v.bytes().to_vec())
                    .unwrap_or_default(),
                ttl_ms: reply.ttl_ms(),
            })
        }
        Outcome::Failed(e) => Err(failure(e, loader)),
    }
}

/// A plugin call's failure as a load error.
pub fn failure(e: CallError, loader: &str) -> LoadError {
    let strip = |m: String, prefix: &str| m.strip_prefix(prefix).map(str::to_string).unwrap_or(m);
    match e {
        CallError::Coded { code, message } => match ErrorCode(code) {
            ErrorCode::OriginUnavailable => {
                LoadError::Unavailable(strip(message, "origin unavailable: "))
            }
            ErrorCode::OriginTimeout => LoadError::Timeout(strip(message, "origin timeout: ")),
            _ => LoadError::Origin(message),
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
    use citadel_proto::schema::LoadReplyArgs;
    use citadel_proto::Format;

    #[test]
    fn round_trip() {
        let mut fbb = FlatBufferBuilder::new();
        let bytes = encode(&mut fbb, b"user:1").to_vec();
        let req = flatbuffers::root::<LoadRequest>(&bytes).unwrap();
        assert_eq!(req.key().unwrap().bytes(), b"user:1");

        let mut fbb = FlatBufferBuilder::new();
        let v = fbb.create_vector(&b"v1"[..]);
        let r = LoadReply::create(
            &mut fbb,
            &LoadReplyArgs {
                found: true,
                value: Some(v),
                ttl_ms: 7,
            },
        );
        fbb.finish(r, None);
        let payload = fbb.finished_data().to_vec();
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
