//! The connection layer of overload protection: besides maxclients, a
//! limit on concurrent connections per source IP address and a limit on
//! accepts per second (all threads together). A refused connection gets
//! one `-OVERLOAD connection ...` line and is closed, as maxclients does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// Why an accepted connection was refused (reported to the service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    MaxClients,
    PerAddress,
    AcceptRate,
}

/// The burst of the accept-rate bucket: this fraction of a second.
const BURST_PER_SECOND: u64 = 10;

/// Connections per address and the accept-rate bucket, shared by every
/// thread (touched once per accept and close, never per request).
pub struct ConnectionLimits {
    per_address: Mutex<HashMap<IpAddr, u32>>,
    /// The accept bucket's theoretical arrival time (GCRA), ns since `epoch`.
    accept_tat_ns: AtomicU64,
    epoch: Instant,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            per_address: Mutex::new(HashMap::new()),
            accept_tat_ns: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }
}

impl ConnectionLimits {
    /// Admits a connection from `ip` (None: a Unix socket, not limited by
    /// address) under `per_address` (0: none) and `rate` accepts per
    /// second (0: none); an admitted TCP connection is counted until
    /// [`ConnectionLimits::release`].
    pub fn admit(&self, ip: Option<IpAddr>, per_address: usize, rate: u64) -> Result<(), Refused> {
        if rate > 0 && !self.take_accept_token(rate) {
            return Err(Refused::AcceptRate);
        }
        let Some(ip) = ip else {
            return Ok(());
        };
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if per_address > 0 && *n as usize >= per_address {
            return Err(Refused::PerAddress);
        }
        *n += 1;
        Ok(())
    }

    /// A connection from `ip` admitted by [`ConnectionLimits::admit`] closed.
    pub fn release(&self, ip: IpAddr) {
        let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&ip);
            }
        }
    }

    fn take_accept_token(&self, rate: u64) -> bool {
        let step = 1_000_000_000 / rate;
        let burst = step * (rate / BURST_PER_SECOND).max(1);
        let now = self.epoch.elapsed().as_nanos() as u64;
        // ORDERING: Relaxed: the word is the bucket's whole state.
        let mut tat = self.accept_tat_ns.load(Ordering::Relaxed);
        loop {
            let start = tat.max(now);
            if start - now > burst - step {
                return false;
            }
            let next = start + step;
            match self.accept_tat_ns.compare_exchange_weak(
                tat,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => tat = seen,
            }
        }
    }
}

/// The line a refused connection gets before it is closed.
pub fn refusal_line(why: Refused, ip: Option<IpAddr>, per_address: usize, rate: u64) -> Vec<u8> {
    let text = match why {
        Refused::MaxClients => "ERR max number of clients reached".to_string(),
        Refused::PerAddress => format!(
            "OVERLOAD connection too many connections from {} (limit {per_address}), retry later",
            ip.map_or_else(|| "this address".to_string(), |ip| ip.to_string())
        ),
        Refused::AcceptRate => {
            format!("OVERLOAD connection accept rate over {rate}/s, retry later")
        }
    };
    format!("-{text}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_address_counts_are_released_and_the_rate_has_a_burst() {
        let limits = ConnectionLimits::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(limits.admit(Some(ip), 2, 0).is_ok());
        assert!(limits.admit(Some(ip), 2, 0).is_ok());
        assert_eq!(limits.admit(Some(ip), 2, 0), Err(Refused::PerAddress));
        assert!(limits
            .admit(Some("10.0.0.2".parse().unwrap()), 2, 0)
            .is_ok());
        limits.release(ip);
        assert!(limits.admit(Some(ip), 2, 0).is_ok());
        assert!(
            limits.admit(None, 2, 0).is_ok(),
            "Unix sockets are not limited"
        );
        // 20/s: a burst of 2, then refused.
        let rated = ConnectionLimits::default();
        let passed = (0..5).filter(|_| rated.admit(None, 0, 20).is_ok()).count();
        assert_eq!(passed, 2);
    }
}
