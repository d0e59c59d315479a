//! Protecting an origin: per loader, a limit on loads in flight and a
//! circuit breaker. Closed: loads go through; `failures` consecutive
//! unavailable/timeout results open it. Open: new loads fail at once until
//! `open_ms` passed; then one trial load goes through (half-open) and its
//! result closes or re-opens the breaker.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Mutex;

use super::error::LoadError;

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

pub struct Breaker {
    loader: String,
    threshold: u32,
    open_ms: u64,
    state: AtomicU8,
    failures: AtomicU32,
    opened_at_ms: AtomicU64,
    last_error: Mutex<String>,
    /// Times the breaker opened.
    pub trips: AtomicU64,
    in_flight: AtomicU64,
    max_loads: u64,
}

impl Breaker {
    pub fn new(loader: &str, threshold: u32, open_ms: u64, max_loads: u64) -> Breaker {
        Breaker {
            loader: loader.to_string(),
            threshold,
            open_ms,
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            opened_at_ms: AtomicU64::new(0),
            last_error: Mutex::new(String::new()),
            trips: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_loads,
        }
    }

    pub fn state_name(&self) -> &'static str {
        match self.state.load(Relaxed) {
            CLOSED => "closed",
            OPEN => "open",
            _ => "half-open",
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Relaxed)
    }

    /// May a new load start now? On success one in-flight slot is taken
    /// (give it back with `done`).
    pub fn admit(&self, now_ms: u64) -> Result<(), LoadError> {
        match self.state.load(Relaxed) {
            CLOSED => {}
            OPEN if now_ms >= self.opened_at_ms.load(Relaxed) + self.open_ms => {
                // One thread wins the trial; the others keep failing fast.
                if self
                    .state
                    .compare_exchange(OPEN, HALF_OPEN, Relaxed, Relaxed)
                    .is_err()
                {
                    return Err(self.open_error());
                }
                tracing::info!(loader = %self.loader, "circuit breaker half-open: one trial load");
            }
            _ => return Err(self.open_error()),
        }
        self.take_slot()
    }

    /// Takes an in-flight slot without asking the breaker (a restarted load).
    pub fn take_slot(&self) -> Result<(), LoadError> {
        if self.in_flight.fetch_add(1, Relaxed) >= self.max_loads {
            self.in_flight.fetch_sub(1, Relaxed);
            return Err(LoadError::Overloaded(self.max_loads));
        }
        Ok(())
    }

    /// A load ended: `Ok` or its error (only origin trouble counts).
    pub fn done(&self, result: Result<(), &LoadError>, now_ms: u64) {
        self.in_flight.fetch_sub(1, Relaxed);
        match result {
            Err(e) if e.trips_breaker() => self.failed(e, now_ms),
            _ => {
                self.failures.store(0, Relaxed);
                if self.state.swap(CLOSED, Relaxed) != CLOSED {
                    tracing::info!(loader = %self.loader, "circuit breaker closed: the origin answers again");
                }
            }
        }
    }

    fn failed(&self, e: &LoadError, now_ms: u64) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e.to_string();
        let n = self.failures.fetch_add(1, Relaxed) + 1;
        let state = self.state.load(Relaxed);
        if state == HALF_OPEN || (state == CLOSED && n >= self.threshold) {
            self.opened_at_ms.store(now_ms, Relaxed);
            if self.state.swap(OPEN, Relaxed) != OPEN {
                self.trips.fetch_add(1, Relaxed);
                tracing::warn!(loader = %self.loader, failures = n, "circuit breaker open: {e}");
            }
        }
    }

    fn open_error(&self) -> LoadError {
        LoadError::BreakerOpen {
            loader: self.loader.clone(),
            failures: self.failures.load(Relaxed),
            last: self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_fails_fast_trials_and_closes() {
        let b = Breaker::new("pg", 2, 100, 10);
        let down = LoadError::Unavailable("refused".into());
        for _ in 0..2 {
            b.admit(0).unwrap();
            b.done(Err(&down), 0);
        }
        assert_eq!(b.state_name(), "open");
        let e = b.admit(50).unwrap_err();
        assert!(e.to_string().contains("circuit breaker open"), "{e}");
        assert!(e.to_string().contains("refused"), "{e}");
        b.admit(100).unwrap();
        assert_eq!(b.state_name(), "half-open");
        assert!(b.admit(100).is_err(), "only one trial");
        b.done(Err(&down), 100);
        assert_eq!(b.state_name(), "open");
        b.admit(250).unwrap();
        b.done(Ok(()), 250);
        assert_eq!(b.state_name(), "closed");
        assert_eq!(b.in_flight(), 0);
    }

    #[test]
    fn limits_loads_in_flight() {
        let b = Breaker::new("pg", 2, 100, 1);
        b.admit(0).unwrap();
        assert_eq!(b.admit(0), Err(LoadError::Overloaded(1)));
        b.done(Ok(()), 0);
        b.admit(0).unwrap();
    }
}
