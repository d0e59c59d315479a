//! Open-loop schedule: each connection owns a fixed timetable of intended send times.
//! Latency is measured from the intended time, so a request that could not be sent on time
//! (server stalled, pipeline full) is charged for the wait: no coordinated omission.

/// Intended send times `base + k * interval` for k = 0, 1, 2, ...
#[derive(Debug, Clone)]
pub struct Schedule {
    base_ns: u64,
    interval_ns: f64,
    k: u64,
}

impl Schedule {
    /// Schedule for connection `conn` of `conns` sharing `rate` requests per second in
    /// total; connections are staggered evenly inside one interval.
    pub fn new(start_ns: u64, rate: f64, conn: u64, conns: u64) -> Schedule {
        let interval_ns = 1e9 * conns as f64 / rate;
        let offset = interval_ns * conn as f64 / conns as f64;
        Schedule {
            base_ns: start_ns + offset as u64,
            interval_ns,
            k: 0,
        }
    }

    /// When the next request is due.
    #[inline]
    pub fn due(&self) -> u64 {
        self.base_ns + (self.k as f64 * self.interval_ns) as u64
    }

    /// Moves to the following slot.
    #[inline]
    pub fn advance(&mut self) {
        self.k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_rate_over_connections() {
        // 1000 ops/s over 4 connections: each every 4 ms, staggered by 1 ms.
        let mut s = Schedule::new(0, 1000.0, 1, 4);
        assert_eq!(s.due(), 1_000_000);
        s.advance();
        assert_eq!(s.due(), 5_000_000);
        let mut s = Schedule::new(0, 3.0, 0, 1);
        for _ in 0..3_000 {
            s.advance();
        }
        // No drift from accumulating rounded intervals.
        assert_eq!(s.due(), 1_000_000_000_000);
    }
}
