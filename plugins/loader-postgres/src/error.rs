//! Why a load failed, as the server is told: each kind maps to an
//! `ErrorCode` of `proto/schema/cache.fbs`.

use citadel_proto::schema::ErrorCode;
use tokio_postgres::error::SqlState;

/// A failed load. Cloneable: while the database is down every request fails
/// with the same remembered cause.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The database could not be reached, or dropped the connection.
    #[error("origin unavailable: {0}")]
    Unavailable(String),
    /// No answer within the load's time budget.
    #[error("origin timeout: no answer within {0} ms")]
    Timeout(u64),
    /// The database answered with an error that a retry will not fix.
    #[error("origin error: {0}")]
    Origin(String),
    /// The request itself was unusable.
    #[error("bad request: {0}")]
    BadRequest(String),
}

impl LoadError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable(_) => ErrorCode::OriginUnavailable,
            Self::Timeout(_) => ErrorCode::OriginTimeout,
            Self::Origin(_) => ErrorCode::OriginError,
            Self::BadRequest(_) => ErrorCode::BadRequest,
        }
    }

    /// Classifies an error of a query: lost connections, shutdowns and
    /// resource shortages are `Unavailable`, cancellations `Timeout`
    /// (`timeout_ms` is the budget that ran out), the rest `Origin`.
    pub fn from_query(e: &tokio_postgres::Error, timeout_ms: u64) -> Self {
        let Some(db) = e.as_db_error() else {
            return Self::Unavailable(describe(e));
        };
        let code = db.code();
        let class = &code.code()[..2];
        if *code == SqlState::QUERY_CANCELED {
            Self::Timeout(timeout_ms)
        } else if matches!(class, "08" | "53" | "57" | "58") {
            // connection exception, insufficient resources, operator
            // intervention (shutdown), system error
            Self::Unavailable(db.message().to_string())
        } else {
            Self::Origin(format!("{} ({})", db.message(), code.code()))
        }
    }
}

/// An error with its causes, e.g. "error connecting to server: Connection
/// refused (os error 111)".
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_cause_and_codes_follow_the_schema() {
        let e = LoadError::Unavailable("connection refused".into());
        assert_eq!(e.to_string(), "origin unavailable: connection refused");
        assert_eq!(e.code(), ErrorCode::OriginUnavailable);
        assert_eq!(LoadError::Timeout(250).code(), ErrorCode::OriginTimeout);
        assert_eq!(
            LoadError::Timeout(250).to_string(),
            "origin timeout: no answer within 250 ms"
        );
        assert_eq!(LoadError::Origin(String::new()).code().0, 18);
        assert_eq!(LoadError::BadRequest(String::new()).code().0, 19);
    }

    #[test]
    fn describe_joins_causes_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(describe(&e), "outer: inner");
    }
}
