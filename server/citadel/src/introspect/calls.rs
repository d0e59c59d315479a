//! One thread's command statistics: calls, time, rejected and failed
//! calls and a latency histogram per command (by the command table's
//! global index), and error replies by their code. Written only by the
//! thread's loop (a load and a store, no read-modify-write), read by INFO
//! from any thread. CONFIG RESETSTAT does not write them: it records a
//! baseline that readers subtract, so a reset never races the writer.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use citadel_telemetry::layout::LATENCY_BUCKETS;

/// Room for every command and subcommand of the table (a test checks).
pub const MAX_COMMANDS: usize = 512;

/// Latency histogram: bucket 0 holds everything under 1024 ns, then four
/// buckets per power of two (about 19% wide at most) up to ~69 s.
pub const BUCKETS: usize = 1 + 4 * 26;

/// Error codes counted without a lock (the others go to a small map).
const KNOWN_ERRORS: &[&str] = &[
    "ERR",
    "WRONGTYPE",
    "NOAUTH",
    "WRONGPASS",
    "OOM",
    "NOPROTO",
    "INVALIDOBJ",
    "NOPERM",
    "EXECABORT",
    "NOSCRIPT",
    "BUSY",
    "LOADING",
    // Shed requests: counted without the lock the other codes take.
    "OVERLOAD",
];

/// `OVERLOAD`'s place in `KNOWN_ERRORS` (a shed counts it there directly).
const OVERLOAD_ERROR: usize = KNOWN_ERRORS.len() - 1;

/// Redis stops adding error codes to errorstats past this many.
const MAX_ERROR_CODES: usize = 128;

struct CommandCounters {
    calls: AtomicU64,
    nanos: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    histogram: [AtomicU64; BUCKETS],
}

impl Default for CommandCounters {
    fn default() -> Self {
        CommandCounters {
            calls: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            histogram: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// One command's numbers (a thread's, or summed over threads).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandTotals {
    pub calls: u64,
    pub nanos: u64,
    pub rejected: u64,
    pub failed: u64,
    pub histogram: Vec<u64>,
}

/// Everything `CallStats` counts, as plain numbers.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// By global command index (`MAX_COMMANDS` entries).
    pub commands: Vec<CommandTotals>,
    pub error_replies: u64,
    /// (error code, count), in first-seen order.
    pub errors: Vec<(String, u64)>,
}

/// The single writer's increment: cheaper than `fetch_add` (no lock prefix).
#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}

/// The histogram bucket of a duration.
#[inline]
pub fn bucket(nanos: u64) -> usize {
    if nanos < 1024 {
        return 0;
    }
    let octave = 63 - nanos.leading_zeros() as usize; // >= 10
    let quarter = (nanos >> (octave - 2)) as usize & 3;
    (1 + (octave - 10) * 4 + quarter).min(BUCKETS - 1)
}

/// The largest duration (ns) bucket `b` holds.
pub fn bucket_upper(b: usize) -> u64 {
    if b == 0 {
        return 1023;
    }
    let (octave, quarter) = (10 + (b - 1) / 4, (b - 1) % 4);
    ((4 + quarter as u64 + 1) << (octave - 2)) - 1
}

pub struct CallStats {
    commands: Box<[CommandCounters]>,
    error_replies: AtomicU64,
    known_errors: [AtomicU64; KNOWN_ERRORS.len()],
    other_errors: Mutex<Vec<(String, u64)>>,
    baseline: Mutex<Option<Totals>>,
}

impl Default for CallStats {
    fn default() -> Self {
        CallStats {
            commands: (0..MAX_COMMANDS).map(|_| Default::default()).collect(),
            error_replies: AtomicU64::new(0),
            known_errors: std::array::from_fn(|_| AtomicU64::new(0)),
            other_errors: Mutex::new(Vec::new()),
            baseline: Mutex::new(None),
        }
    }
}

impl std::fmt::Debug for CallStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallStats")
    }
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CallStats {
    /// Command `cmd` ran for `nanos`; `failed`: it answered an error.
    #[inline]
    pub fn ran(&self, cmd: usize, nanos: u64, failed: bool) {
        self.ran_many(cmd, 1, nanos, u64::from(failed), bucket(nanos));
    }

    /// `calls` runs of command `cmd` took `nanos` in all, each in histogram
    /// bucket `bucket` (see [`bucket`]); `failed` of them answered an error.
    #[inline]
    pub fn ran_many(&self, cmd: usize, calls: u64, nanos: u64, failed: u64, bucket: usize) {
        let Some(c) = self.commands.get(cmd) else {
            return;
        };
        bump(&c.calls, calls);
        bump(&c.nanos, nanos);
        if let Some(h) = c.histogram.get(bucket) {
            bump(h, calls);
        }
        if failed > 0 {
            bump(&c.failed, failed);
        }
    }

    /// A blocked run of command `cmd` (counted once, when it blocked)
    /// ended in an error: XGROUP DESTROY or DEL under a blocked
    /// XREADGROUP, CLIENT UNBLOCK ERROR. Redis counts it failed.
    pub fn failed_after_block(&self, cmd: usize) {
        if let Some(c) = self.commands.get(cmd) {
            bump(&c.failed, 1);
        }
    }

    /// Command `cmd` was refused before it ran (arity, auth, state).
    pub fn rejected(&self, cmd: usize) {
        if let Some(c) = self.commands.get(cmd) {
            bump(&c.rejected, 1);
        }
    }

    /// An error reply went out: `line` starts with `-CODE`.
    pub fn error_reply(&self, line: &[u8]) {
        bump(&self.error_replies, 1);
        let body = line.strip_prefix(b"-").unwrap_or(line);
        let end = body
            .iter()
            .position(|&c| c == b' ' || c == b'\r')
            .unwrap_or(body.len());
        let code = &body[..end];
        if let Some(i) = KNOWN_ERRORS.iter().position(|k| k.as_bytes() == code) {
            bump(&self.known_errors[i], 1);
            return;
        }
        let code = String::from_utf8_lossy(code);
        let mut others = locked(&self.other_errors);
        if let Some((_, n)) = others.iter_mut().find(|(k, _)| *k == code) {
            *n += 1;
        } else if others.len() < MAX_ERROR_CODES {
            others.push((code.into_owned(), 1));
        }
    }

    /// A shed's `-OVERLOAD` reply went out: `error_reply` without the
    /// search for its code (~70 instructions of a refusal's few hundred).
    pub fn overload_reply(&self) {
        bump(&self.error_replies, 1);
        bump(&self.known_errors[OVERLOAD_ERROR], 1);
    }

    /// The counters as they are (no baseline subtracted).
    fn raw(&self) -> Totals {
        let commands = self
            .commands
            .iter()
            .map(|c| CommandTotals {
                calls: c.calls.load(Relaxed),
                nanos: c.nanos.load(Relaxed),
                rejected: c.rejected.load(Relaxed),
                failed: c.failed.load(Relaxed),
                histogram: c.histogram.iter().map(|h| h.load(Relaxed)).collect(),
            })
            .collect();
        let mut errors: Vec<(String, u64)> = KNOWN_ERRORS
            .iter()
            .zip(&self.known_errors)
            .map(|(k, n)| (k.to_string(), n.load(Relaxed)))
            .collect();
        errors.extend(locked(&self.other_errors).iter().cloned());
        Totals {
            commands,
            error_replies: self.error_replies.load(Relaxed),
            errors,
        }
    }

    /// Calls that answered no error, of the commands `counted` picks (by
    /// global index), ever (RESETSTAT does not zero it): the writes a
    /// save's `rdb_changes_since_last_save` counts.
    pub fn succeeded(&self, counted: impl Fn(usize) -> bool) -> u64 {
        self.commands
            .iter()
            .enumerate()
            .filter(|(i, _)| counted(*i))
            .map(|(_, c)| c.calls.load(Relaxed).saturating_sub(c.failed.load(Relaxed)))
            .sum()
    }

    /// The numbers since the last reset.
    pub fn totals(&self) -> Totals {
        let mut t = self.raw();
        if let Some(base) = &*locked(&self.baseline) {
            t.subtract(base);
        }
        t
    }

    /// CONFIG RESETSTAT: what is counted now becomes the zero.
    pub fn reset(&self) {
        let now = self.raw();
        *locked(&self.baseline) = Some(now);
    }
}

impl Totals {
    fn subtract(&mut self, base: &Totals) {
        for (c, b) in self.commands.iter_mut().zip(&base.commands) {
            c.calls = c.calls.saturating_sub(b.calls);
            c.nanos = c.nanos.saturating_sub(b.nanos);
            c.rejected = c.rejected.saturating_sub(b.rejected);
            c.failed = c.failed.saturating_sub(b.failed);
            for (h, bh) in c.histogram.iter_mut().zip(&b.histogram) {
                *h = h.saturating_sub(*bh);
            }
        }
        self.error_replies = self.error_replies.saturating_sub(base.error_replies);
        for (code, n) in &mut self.errors {
            if let Some((_, bn)) = base.errors.iter().find(|(k, _)| k == code) {
                *n = n.saturating_sub(*bn);
            }
        }
    }

    /// Adds another thread's numbers.
    pub fn add(&mut self, other: &Totals) {
        if self.commands.is_empty() {
            *self = other.clone();
            return;
        }
        for (c, o) in self.commands.iter_mut().zip(&other.commands) {
            c.calls += o.calls;
            c.nanos += o.nanos;
            c.rejected += o.rejected;
            c.failed += o.failed;
            for (h, oh) in c.histogram.iter_mut().zip(&o.histogram) {
                *h += oh;
            }
        }
        self.error_replies += other.error_replies;
        for (code, n) in &other.errors {
            match self.errors.iter_mut().find(|(k, _)| k == code) {
                Some((_, mine)) => *mine += n,
                None => self.errors.push((code.clone(), *n)),
            }
        }
    }
}

impl CommandTotals {
    /// The duration (ns) below which `p` (0-100) percent of calls ran:
    /// the upper edge of the bucket holding that rank.
    pub fn percentile(&self, p: f64) -> u64 {
        let total: u64 = self.histogram.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in self.histogram.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return bucket_upper(b);
            }
        }
        bucket_upper(BUCKETS - 1)
    }
}

/// The telemetry's latency bucket (`citadel_telemetry::layout::
/// latency_bucket`, one per power of two from 1 µs) of every duration in
/// commandstats' bucket `b` (four per power of two, see [`bucket`]),
/// so a tally needs no second key.
pub fn telemetry_bucket(b: usize) -> usize {
    b.div_ceil(4).min(LATENCY_BUCKETS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_hold_their_values() {
        for ns in [0, 1023, 1024, 1500, 2047, 2048, 5000, 1 << 20, 123_456_789] {
            let b = bucket(ns);
            assert!(ns <= bucket_upper(b), "{ns} above bucket {b}");
            if b > 0 {
                assert!(ns > bucket_upper(b - 1), "{ns} fits bucket {}", b - 1);
            }
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn reset_subtracts_and_errors_count_by_code() {
        let s = CallStats::default();
        s.ran(3, 1500, false);
        s.ran(3, 900, true);
        s.rejected(3);
        s.error_reply(b"-ERR syntax error\r\n");
        s.error_reply(b"-MYERR custom\r\n");
        let t = s.totals();
        let c = &t.commands[3];
        assert_eq!((c.calls, c.nanos, c.rejected, c.failed), (2, 2400, 1, 1));
        assert_eq!(c.percentile(50.0), 1023);
        assert_eq!(c.percentile(100.0), bucket_upper(bucket(1500)));
        assert_eq!(t.error_replies, 2);
        let count = |code: &str| t.errors.iter().find(|(k, _)| k == code).map(|e| e.1);
        assert_eq!((count("ERR"), count("MYERR")), (Some(1), Some(1)));
        // A shed counts as the line it sends would.
        s.overload_reply();
        s.error_reply(b"-OVERLOAD core queueing delay 2.0ms over target 1.0ms\r\n");
        let t = s.totals();
        assert_eq!((t.error_replies, count_in(&t, "OVERLOAD")), (4, Some(2)));
        s.reset();
        s.ran(3, 10, false);
        let t = s.totals();
        assert_eq!((t.commands[3].calls, t.error_replies), (1, 0));
        // Counted at once: as `ran` for each (500, 600 and 1500 ns).
        s.ran_many(3, 2, 1100, 0, bucket(500));
        s.ran_many(3, 1, 1500, 0, bucket(1500));
        let c = &s.totals().commands[3];
        assert_eq!((c.calls, c.nanos, c.failed), (4, 2610, 0));
        assert_eq!((c.histogram[0], c.histogram[bucket(1500)]), (3, 1));
    }

    fn count_in(t: &Totals, code: &str) -> Option<u64> {
        t.errors.iter().find(|(k, _)| k == code).map(|e| e.1)
    }

    #[test]
    fn telemetry_buckets_follow_from_commandstats_buckets() {
        let mut nanos = 1u64;
        while nanos < u64::MAX / 3 {
            for n in [nanos - 1, nanos, nanos + 1, nanos / 2 * 3] {
                let b = bucket(n);
                assert_eq!(
                    telemetry_bucket(b),
                    citadel_telemetry::layout::latency_bucket(n),
                    "{n}"
                );
            }
            nanos *= 2;
        }
    }
}
