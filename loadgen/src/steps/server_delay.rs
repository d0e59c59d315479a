//! The server's side of an admitted request's latency. A Citadel core keeps a
//! histogram of the queueing delay of every request it admitted (INFO
//! `# Overload`, `core<i>_admitted_delay:lt<µs>=<count>,...`, log2 buckets);
//! read before and after a step, the difference is that step's. Set beside
//! the client's latency (from the intended send time), it tells how much of a
//! high p99 the server's queue explains and how much is the network and the
//! client itself (a saturated load generator sends and reads late). Servers
//! without the histogram (redis-server) simply report none.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Serialize;

use crate::driver::cluster::{read_value, Value};

const TIMEOUT: Duration = Duration::from_secs(2);

/// Admitted requests per bucket (upper bound in µs), summed over the cores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DelayHistogram {
    buckets: BTreeMap<u64, u64>,
}

/// One step's server-side admitted delay.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ServerDelay {
    /// Requests the server admitted during the step (all clients).
    pub admitted: u64,
    /// Upper bounds of the buckets holding the median and the 99th percentile.
    pub p50_us: u64,
    pub p99_us: u64,
}

impl DelayHistogram {
    /// Reads the histogram from the server at `addr` (RESP over TCP); None if it
    /// cannot be reached or has none.
    pub fn read(addr: &str) -> Option<DelayHistogram> {
        let sock = addr.to_socket_addrs().ok()?.next()?;
        let mut s = TcpStream::connect_timeout(&sock, TIMEOUT).ok()?;
        s.set_read_timeout(Some(TIMEOUT)).ok()?;
        s.write_all(b"*2\r\n$4\r\nINFO\r\n$8\r\noverload\r\n")
            .ok()?;
        let Ok(Value::Text(text)) = read_value(&mut BufReader::new(s), 0) else {
            return None;
        };
        let h = DelayHistogram::parse(&text);
        (!h.buckets.is_empty()).then_some(h)
    }

    /// Sums every `core<i>_admitted_delay` line of an INFO text.
    pub fn parse(info: &str) -> DelayHistogram {
        let mut buckets = BTreeMap::new();
        for line in info.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if !(name.starts_with("core") && name.ends_with("_admitted_delay")) {
                continue;
            }
            for pair in value.trim().split(',') {
                let Some((bound, count)) = pair.split_once('=') else {
                    continue;
                };
                let (Some(bound), Ok(count)) = (
                    bound.strip_prefix("lt").and_then(|b| b.parse::<u64>().ok()),
                    count.parse::<u64>(),
                ) else {
                    continue;
                };
                *buckets.entry(bound).or_insert(0) += count;
            }
        }
        DelayHistogram { buckets }
    }

    /// What was admitted between `before` and `self`, as quantiles.
    pub fn since(&self, before: &DelayHistogram) -> Option<ServerDelay> {
        let diff: Vec<(u64, u64)> = (self.buckets.iter())
            .map(|(&b, &n)| (b, n.saturating_sub(*before.buckets.get(&b).unwrap_or(&0))))
            .collect();
        let admitted: u64 = diff.iter().map(|&(_, n)| n).sum();
        if admitted == 0 {
            return None;
        }
        let quantile = |q: f64| {
            let want = (admitted as f64 * q).ceil() as u64;
            let mut seen = 0;
            for &(bound, n) in &diff {
                seen += n;
                if seen >= want {
                    return bound;
                }
            }
            diff.last().map_or(0, |&(b, _)| b)
        };
        Some(ServerDelay {
            admitted,
            p50_us: quantile(0.5),
            p99_us: quantile(0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steps_delay_is_the_difference_summed_over_cores() {
        let before = DelayHistogram::parse(
            "# Overload\r\ncore0:delay_us=0\r\ncore0_admitted_delay:lt1=10,lt4=0\r\n",
        );
        let after = DelayHistogram::parse(
            "core0_admitted_delay:lt1=160,lt4=49,lt1024=1\r\n\
             core1_admitted_delay:lt1=0,lt4=0,lt1024=0\r\nshed_total:3\r\n",
        );
        assert_eq!(
            after.since(&before),
            Some(ServerDelay {
                admitted: 200,
                p50_us: 1,
                p99_us: 4
            })
        );
        assert_eq!(after.since(&after), None);
    }

    #[test]
    fn text_without_the_histogram_has_none() {
        assert!(DelayHistogram::parse("# Overload\r\nshed_total:0\r\n")
            .buckets
            .is_empty());
    }
}
