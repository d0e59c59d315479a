//! One load, start to answer: the time budget (the query timeout, cut short
//! by the request's deadline), the query, and the reply it becomes.

use std::time::Duration;

use citadel_plugin::Reply;
use citadel_proto::envelope::unix_ms;

use crate::error::LoadError;
use crate::pool::Pool;

#[derive(Clone, Debug)]
pub struct Loader {
    pool: Pool,
    query_timeout: Duration,
    ttl_ms: u64,
}

impl Loader {
    pub fn new(pool: Pool, query_timeout: Duration, ttl_ms: u64) -> Self {
        Self {
            pool,
            query_timeout,
            ttl_ms,
        }
    }

    /// The reply to a load of `key` (`deadline_ms`: unix ms, 0 = none):
    /// `LoadReply` or `ErrorReply`. A value too large for the reply ring
    /// (`max_payload` bytes) is an `OriginError`.
    pub async fn answer(&self, key: &[u8], deadline_ms: u64, max_payload: usize) -> Reply {
        let budget = budget(self.query_timeout, deadline_ms, unix_ms());
        let reply = match self.pool.load(key, budget).await {
            Ok(Some(value)) => Reply::load_found(&value, self.ttl_ms),
            Ok(None) => Reply::load_absent(),
            Err(e) => {
                tracing::debug!(key = %String::from_utf8_lossy(key), "load failed: {e}");
                Reply::load_failed(&e)
            }
        };
        if reply.payload.len() <= max_payload {
            return reply;
        }
        let why = format!(
            "reply of {} bytes exceeds the reply ring's {max_payload}",
            reply.payload.len()
        );
        Reply::load_failed(&LoadError::Origin(why))
    }
}

fn budget(timeout: Duration, deadline_ms: u64, now_ms: u64) -> Duration {
    if deadline_ms == 0 {
        timeout
    } else {
        timeout.min(Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_cuts_the_budget_short() {
        let t = Duration::from_millis(1000);
        assert_eq!(budget(t, 0, 5), t);
        assert_eq!(budget(t, 10_300, 10_000), Duration::from_millis(300));
        assert_eq!(budget(t, 99_000, 10_000), t);
        assert_eq!(budget(t, 9_000, 10_000), Duration::ZERO);
    }
}
