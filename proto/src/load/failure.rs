//! Why a load failed, as the loader tells the server: each variant is one
//! `ErrorCode` of the schema, and its text is what the client sees.

use crate::schema::ErrorCode;

/// A failed load (an `ErrorReply`). The display text is the message sent in
/// the `ErrorReply`, e.g. `origin unavailable: connection refused`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadFailure {
    /// The origin could not be reached, or dropped the connection
    /// (`OriginUnavailable`: counts against the server's circuit breaker,
    /// may serve a stale value).
    #[error("origin unavailable: {0}")]
    Unavailable(String),
    /// The origin did not answer in time (`OriginTimeout`, same handling).
    #[error("origin timeout: {0}")]
    Timeout(String),
    /// The origin answered with an error a retry will not fix (`OriginError`).
    #[error("origin error: {0}")]
    Origin(String),
    /// The request was unusable (`BadRequest`).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A code this build does not know (`Unknown` included).
    #[error("loader error {code}: {message}")]
    Other { code: u32, message: String },
}

impl LoadFailure {
    /// The `ErrorReply.code` (and envelope status) of this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable(_) => ErrorCode::OriginUnavailable,
            Self::Timeout(_) => ErrorCode::OriginTimeout,
            Self::Origin(_) => ErrorCode::OriginError,
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Other { code, .. } => ErrorCode(*code),
        }
    }

    /// The failure an `ErrorReply { code, message }` describes. The
    /// message's conventional prefix (`origin unavailable: ` for
    /// `OriginUnavailable`, ...) is dropped, so that
    /// `from_code(f.code().0, &f.to_string()) == f`.
    pub fn from_code(code: u32, message: &str) -> Self {
        let detail = |prefix: &str| message.strip_prefix(prefix).unwrap_or(message).to_string();
        match ErrorCode(code) {
            ErrorCode::OriginUnavailable => Self::Unavailable(detail("origin unavailable: ")),
            ErrorCode::OriginTimeout => Self::Timeout(detail("origin timeout: ")),
            ErrorCode::OriginError => Self::Origin(detail("origin error: ")),
            ErrorCode::BadRequest => Self::BadRequest(detail("bad request: ")),
            _ => {
                let prefix = format!("loader error {code}: ");
                Self::Other {
                    code,
                    message: detail(&prefix),
                }
            }
        }
    }

    /// True for failures that say the origin is unhealthy (unavailable or
    /// too slow), as opposed to an answer that was an error.
    pub fn is_origin_down(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_schema_and_messages_round_trip() {
        let cases = [
            (LoadFailure::Unavailable("connection refused".into()), 16),
            (LoadFailure::Timeout("no answer within 250 ms".into()), 17),
            (
                LoadFailure::Origin("relation \"kv\" does not exist".into()),
                18,
            ),
            (
                LoadFailure::BadRequest("LoadRequest without a key".into()),
                19,
            ),
            (
                LoadFailure::Other {
                    code: 99,
                    message: "x".into(),
                },
                99,
            ),
        ];
        for (f, code) in cases {
            assert_eq!(f.code().0, code);
            assert_eq!(LoadFailure::from_code(code, &f.to_string()), f);
        }
        assert_eq!(
            LoadFailure::Unavailable("refused".into()).to_string(),
            "origin unavailable: refused"
        );
        // A message without the prefix is kept whole.
        assert_eq!(
            LoadFailure::from_code(17, "slow"),
            LoadFailure::Timeout("slow".into())
        );
        assert!(LoadFailure::Timeout(String::new()).is_origin_down());
        assert!(!LoadFailure::Origin(String::new()).is_origin_down());
    }
}
