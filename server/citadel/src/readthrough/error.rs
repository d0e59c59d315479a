//! Why a load gave no value. Clients get `-ERR <this text>`.

/// A failed load, as waiting clients see it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The origin (or the loader plugin) could not be reached.
    #[error("origin unavailable: {0}")]
    Unavailable(String),
    /// The origin or the loader did not answer in time.
    #[error("origin timeout: {0}")]
    Timeout(String),
    /// The origin answered with an error retrying will not fix.
    #[error("origin error: {0}")]
    Origin(String),
    /// The breaker is open after consecutive failures: failed at once.
    #[error("origin unavailable: circuit breaker open for loader '{loader}' after {failures} consecutive failures (last: {last})")]
    BreakerOpen {
        loader: String,
        failures: u32,
        last: String,
    },
    /// Too many loads in flight toward the loader: failed at once.
    #[error("origin unavailable: {0} loads in flight toward the loader (max-loads), retry later")]
    Overloaded(u64),
}

impl LoadError {
    /// Refused at once because the loader is saturated or its breaker is
    /// open: shed (`-OVERLOAD downstream ...`).
    pub fn is_shed(&self) -> bool {
        matches!(
            self,
            LoadError::Overloaded(_) | LoadError::BreakerOpen { .. }
        )
    }

    /// Counts toward the circuit breaker (the origin looks unhealthy).
    pub fn trips_breaker(&self) -> bool {
        matches!(self, LoadError::Unavailable(_) | LoadError::Timeout(_))
    }
}
