//! Why a load failed, as the server is told: a `LoadFailure` of the
//! loader protocol (`citadel_proto::load`), each variant one `ErrorCode`.

pub use citadel_proto::load::LoadFailure as LoadError;
use tokio_postgres::error::SqlState;

/// No answer within the load's time budget of `ms` milliseconds.
pub fn timed_out(ms: u64) -> LoadError {
    LoadError::Timeout(format!("no answer within {ms} ms"))
}

/// Classifies an error of a query: lost connections, shutdowns and
/// resource shortages are `Unavailable`, cancellations `Timeout`
/// (`timeout_ms` is the budget that ran out), the rest `Origin`.
pub fn from_query(e: &tokio_postgres::Error, timeout_ms: u64) -> LoadError {
    let Some(db) = e.as_db_error() else {
        return LoadError::Unavailable(describe(e));
    };
    let code = db.code();
    let class = &code.code()[..2];
    if *code == SqlState::QUERY_CANCELED {
        timed_out(timeout_ms)
    } else if matches!(class, "08" | "53" | "57" | "58") {
        // connection exception, insufficient resources, operator
        // intervention (shutdown), system error
        LoadError::Unavailable(db.message().to_string())
    } else {
        LoadError::Origin(format!("{} ({})", db.message(), code.code()))
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
    use citadel_proto::schema::ErrorCode;

    #[test]
    fn messages_name_the_cause_and_codes_follow_the_schema() {
        let e = LoadError::Unavailable("connection refused".into());
        assert_eq!(e.to_string(), "origin unavailable: connection refused");
        assert_eq!(e.code(), ErrorCode::OriginUnavailable);
        assert_eq!(timed_out(250).code(), ErrorCode::OriginTimeout);
        assert_eq!(
            timed_out(250).to_string(),
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
