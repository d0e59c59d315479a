//! One load, start to answer: the time budget (the query timeout, cut short
//! by the request's deadline), the query, and the reply it becomes.

use std::time::Duration;

use citadel_proto::envelope::unix_ms;

use crate::pool::Pool;
use crate::wire::Answer;

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

    /// The answer to a load of `key` (`deadline_ms`: unix ms, 0 = none).
    pub async fn answer(&self, key: &[u8], deadline_ms: u64) -> Answer {
        let budget = budget(self.query_timeout, deadline_ms, unix_ms());
        match self.pool.load(key, budget).await {
            Ok(value) => Answer::loaded(value.as_deref(), self.ttl_ms),
            Err(e) => {
                tracing::debug!(key = %String::from_utf8_lossy(key), "load failed: {e}");
                Answer::failed(&e)
            }
        }
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
