//! Single-producer single-consumer rings of variable-length records in
//! shared memory. See [`layout`] for the memory format and [`wake`] for the
//! wake-up protocol.
//!
//! # Trust boundary: reading memory another process may write
//!
//! The consumer reads records in place. Under the SPSC protocol the
//! producer never writes a published, uncommitted record, so a `&[u8]` over
//! it ([`Record::payload`]) is sound. The server, though, reads *reply*
//! rings whose producer is a plugin process: a buggy or hostile plugin can
//! write a record while the server reads it. Two rules keep the server
//! sound and in bounds whatever a plugin does:
//!
//! * Every field the consumer *decides* on (cursors, a record's length and
//!   padding marker, the header) is read from ring memory with atomic loads
//!   exactly once and checked before use, so a concurrent writer cannot
//!   change a length between its check and its use (no double fetch) and
//!   no check can be bypassed; a failed check is [`ReadError::Corrupt`].
//! * The payload of a ring written by an untrusted process should be
//!   copied out with [`Record::copy_payload`] /
//!   [`Record::copy_payload_into`], which use relaxed atomic 8-byte loads
//!   (payloads start 8-aligned and are padded to 8 bytes, so whole words
//!   never leave the record). Atomic loads of memory another process writes
//!   are defined behaviour; a plain `memcpy` from a `&[u8]` the other side
//!   mutates is a data race (undefined behaviour in Rust's model, and in
//!   practice lets the compiler re-read bytes it already checked). Volatile
//!   reads would stop re-reads but are still racy in the model; relaxed
//!   atomics cost the same plain `mov`s on x86-64 and are defined. The
//!   copy is what the server keeps anyway (it outlives the commit), so
//!   reading it atomically costs nothing extra. Decoding then works on the
//!   private copy, where the FlatBuffers verifier's checks stay true.
//!
//! The plugin side reads request rings written by the server (trusted) and
//! uses the zero-copy [`Record::payload`].

pub mod consumer;
mod gate;
pub mod layout;
#[cfg(not(loom))]
mod memory;
#[cfg(loom)]
mod model;
pub mod producer;
pub mod record;
pub mod wake;

pub use consumer::{CommitError, Consumer, ReadError};
pub use gate::OpenCall;

/// A ring's statistics counters (see `layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    /// The producer found no room.
    Full,
    /// The consumer parked with nothing to read.
    Empty,
    /// Records handed to the consumer's handler (every delivery).
    Delivered,
    /// Nanoseconds the consumer's handlers spent on its records.
    BusyNs,
    /// Records whose handler time fell in latency bucket n (see
    /// [`latency_bucket`]).
    Latency(usize),
}

/// Buckets of the per-record handler time histogram: bucket 0 is under
/// 64 µs, bucket n (1..=12) is [64 µs << (n-1), 64 µs << n), bucket 13 is
/// 262 ms and more.
pub const LATENCY_BUCKETS: usize = 14;

/// The histogram bucket of a handler time.
pub fn latency_bucket(nanos: u64) -> usize {
    let units = nanos / 64_000;
    if units == 0 {
        return 0;
    }
    ((64 - units.leading_zeros()) as usize).min(LATENCY_BUCKETS - 1)
}

/// The upper bound (µs) of latency bucket `n` (the last: its lower bound).
pub fn latency_bucket_top_us(n: usize) -> u64 {
    match n {
        n if n + 1 >= LATENCY_BUCKETS => 64 << (LATENCY_BUCKETS - 2),
        n => 64 << n,
    }
}

/// A ring's statistics, read from its shared memory: what a pipeline
/// stage's bottleneck advice is computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounters {
    pub full: u64,
    pub empty: u64,
    pub delivered: u64,
    pub busy_ns: u64,
    /// Records per handler-time bucket ([`latency_bucket`]).
    pub latency: [u64; LATENCY_BUCKETS],
}

impl RingCounters {
    /// Adds another ring's counters (a stage's rings on every thread).
    pub fn add(&mut self, other: &RingCounters) {
        self.full += other.full;
        self.empty += other.empty;
        self.delivered += other.delivered;
        self.busy_ns += other.busy_ns;
        for (a, b) in self.latency.iter_mut().zip(&other.latency) {
            *a += b;
        }
    }

    /// The handler time (µs, a bucket's upper bound) under which a share
    /// `q` of the records finished; 0 when none was handled.
    pub fn latency_quantile_us(&self, q: f64) -> u64 {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return 0;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (n, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= want {
                return latency_bucket_top_us(n);
            }
        }
        latency_bucket_top_us(LATENCY_BUCKETS - 1)
    }
}

pub use layout::LayoutError;
#[cfg(not(loom))]
pub use memory::Ring;
#[cfg(loom)]
pub use model::{EventFd, Ring};
pub use producer::{Grant, NotifyError, Producer, ReserveError, SendError};
pub use record::Record;
pub use wake::{
    clear_sleeping, clear_sleeping_all, prepare_park, prepare_park_all, SpinPolicy, Wakeup,
};
#[cfg(not(loom))]
pub use wake::{wait_any, EventFd, WaitError};

#[cfg(test)]
mod counter_tests {
    use super::*;

    #[test]
    fn latency_buckets_double() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(63_999), 0);
        assert_eq!(latency_bucket(64_000), 1);
        assert_eq!(latency_bucket(127_999), 1);
        assert_eq!(latency_bucket(128_000), 2);
        assert_eq!(latency_bucket(100_000_000), 11); // 100 ms in [65.5, 131) ms
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
        let mut c = RingCounters::default();
        c.latency[1] = 90;
        c.latency[11] = 10;
        assert_eq!(c.latency_quantile_us(0.5), 128);
        assert_eq!(c.latency_quantile_us(0.99), 131_072);
    }
}
