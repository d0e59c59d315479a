//! Hot-key detection: each core samples one keyed command in N into its
//! own ring-bucket counters ([`sketch`]) and keeps a short top list
//! ([`recorder`]), published each time its ring advances and every 1024
//! samples; readers
//! (HOTKEYS, INFO, OBJECT FREQ, the metrics exporter through
//! [`HotKeys::top`]) merge the cores' lists and re-count each candidate
//! over every core. Also the per-key write rate limit ([`write_limit`]).
//!
//! On the command path this costs one decrement per command; the sampled
//! one hashes its keys and bumps two counters per key (single-writer
//! relaxed stores, no lock); a lock is taken once per time slice or 1024
//! samples, by the owner, to publish its list.

mod recorder;
mod sketch;
mod write_limit;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use crate::command_clock::monotonic_nanos;

pub use recorder::{Candidate, Recorder, MAX_LISTED_KEY};
use sketch::CoreSketch;
pub use sketch::SLICES;
pub use write_limit::WriteLimit;

/// With detection off, a core re-reads `hotkeys-sample` every this many
/// commands.
const OFF_RECHECK: u32 = 4096;

/// One hot key as readers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct HotKey {
    pub key: Vec<u8>,
    /// Estimated accesses over the window (samples × the sampling period).
    pub hits: u64,
    /// `hits` per second of the window (of the time counted, while the
    /// server is younger than one window).
    pub rate: f64,
}

struct Core {
    sketch: CoreSketch,
    /// The core's top list as of its ring's last advance.
    published: Mutex<Vec<Candidate>>,
}

/// The process-wide registry: every core's counters and published list.
pub struct HotKeys {
    /// CLOCK_MONOTONIC (`monotonic_nanos`) when the registry started: the
    /// command path passes the command clock's reading, not a clock read
    /// of its own.
    epoch: u64,
    /// Sample one keyed command in this many; 0: off.
    period: AtomicU32,
    window_secs: AtomicU32,
    /// Nanoseconds per slice (window / [`SLICES`], whole milliseconds).
    slice_nanos: AtomicU64,
    /// Candidates each core keeps (`hotkeys-top`, live: each core's list
    /// follows at its next sample).
    capacity: AtomicUsize,
    cores: Box<[Core]>,
    pub writes: WriteLimit,
    /// Writes refused by the per-key write limit.
    pub shed_writes: AtomicU64,
}

impl HotKeys {
    pub fn new(threads: usize) -> HotKeys {
        let hk = HotKeys {
            epoch: monotonic_nanos(),
            period: AtomicU32::new(0),
            window_secs: AtomicU32::new(10),
            slice_nanos: AtomicU64::new(1_000_000_000),
            capacity: AtomicUsize::new(32),
            cores: (0..threads)
                .map(|_| Core {
                    sketch: CoreSketch::default(),
                    published: Mutex::new(Vec::new()),
                })
                .collect(),
            writes: WriteLimit::default(),
            shed_writes: AtomicU64::new(0),
        };
        hk.configure(8, 10, 32, 0);
        hk
    }

    /// Applies the live settings (at start and after CONFIG SET).
    pub fn configure(&self, period: u32, window_secs: u32, top: usize, write_limit: u64) {
        let window_secs = window_secs.max(1);
        self.period.store(period, Relaxed);
        self.window_secs.store(window_secs, Relaxed);
        let slice_ms = u64::from(window_secs) * 1000 / SLICES as u64;
        self.slice_nanos.store(slice_ms.max(1) * 1_000_000, Relaxed);
        self.capacity.store(top.max(1), Relaxed);
        self.writes.set_limit(write_limit);
    }

    /// The sampling period (0: off).
    pub fn period(&self) -> u32 {
        self.period.load(Relaxed)
    }

    pub fn window_secs(&self) -> u32 {
        self.window_secs.load(Relaxed)
    }

    /// The number of the time slice since the registry started that holds
    /// `now` (a `monotonic_nanos` reading).
    fn slice_at(&self, now: u64) -> u64 {
        now.saturating_sub(self.epoch) / self.slice_nanos.load(Relaxed)
    }

    /// The nanoseconds since the registry started.
    fn age_nanos(&self) -> u64 {
        monotonic_nanos().saturating_sub(self.epoch)
    }

    /// Core `core`'s sample: counts `keys` (the sampled command's, which
    /// ran at `now`, a `monotonic_nanos` reading such as the command
    /// clock's) and restarts the countdown of `rec`, that core's recorder.
    pub fn record<'a>(
        &self,
        core: usize,
        rec: &mut Recorder,
        now: u64,
        keys: impl FnOnce(&mut dyn FnMut(&'a [u8])),
    ) {
        self.record_hashed(core, rec, now, |count| {
            keys(&mut |key| count(key_hash(key), key))
        });
    }

    /// `record` for one key whose [`key_hash`] the caller has already
    /// (the batched GET/SET path's, from the cache's prefetch).
    pub fn record_one(&self, core: usize, rec: &mut Recorder, now: u64, hash: u64, key: &[u8]) {
        self.record_hashed(core, rec, now, |count| count(hash, key));
    }

    /// `record` with each key given with its hash.
    #[inline]
    fn record_hashed<'a>(
        &self,
        core: usize,
        rec: &mut Recorder,
        now: u64,
        keys: impl FnOnce(&mut dyn FnMut(u64, &'a [u8])),
    ) {
        let period = self.period();
        rec.rearm(if period == 0 { OFF_RECHECK } else { period });
        let Some(c) = self.cores.get(core) else {
            return;
        };
        if period == 0 {
            return;
        }
        // A reading a little older than one this core already counted
        // (a command's start, after a later sample) must not look like a
        // window change, which empties the ring: never go back.
        let now = self.slice_at(rec.latest(now));
        let capacity = self.capacity.load(Relaxed);
        let mut advanced = false;
        keys(&mut |hash, key| {
            advanced |= rec.sample(&c.sketch, capacity, hash, key, now);
        });
        if rec.publish_due(advanced) {
            if let Ok(mut published) = c.published.lock() {
                rec.publish_into(&mut published);
            }
        }
    }

    /// The `k` keys with the most estimated accesses over the window, over
    /// every core, most first.
    pub fn top(&self, k: usize) -> Vec<HotKey> {
        let period = u64::from(self.period());
        if period == 0 || k == 0 {
            return Vec::new();
        }
        let now = self.slice_at(monotonic_nanos());
        let mut candidates: Vec<(u64, Vec<u8>)> = Vec::new();
        for core in self.cores.iter() {
            let Ok(published) = core.published.lock() else {
                continue;
            };
            for c in published.iter() {
                if !candidates
                    .iter()
                    .any(|(h, key)| *h == c.hash && *key == c.key)
                {
                    candidates.push((c.hash, c.key.clone()));
                }
            }
        }
        let seconds = self.counted_secs();
        let mut out: Vec<HotKey> = candidates
            .into_iter()
            .map(|(hash, key)| {
                let hits = self.samples(hash, now) * period;
                HotKey {
                    key,
                    hits,
                    rate: hits as f64 / seconds,
                }
            })
            .filter(|h| h.hits > 0)
            .collect();
        out.sort_by(|a, b| b.hits.cmp(&a.hits).then_with(|| a.key.cmp(&b.key)));
        out.truncate(k);
        out
    }

    /// Estimated accesses of `key` over the window, on every core (0 when
    /// detection is off).
    pub fn hits(&self, key: &[u8]) -> u64 {
        let period = u64::from(self.period());
        if period == 0 {
            return 0;
        }
        self.samples(key_hash(key), self.slice_at(monotonic_nanos())) * period
    }

    fn samples(&self, hash: u64, now: u64) -> u64 {
        self.cores
            .iter()
            .map(|c| u64::from(c.sketch.estimate(hash, now)))
            .sum()
    }

    /// The seconds the window's counts cover: the window, or the time
    /// since start while shorter.
    fn counted_secs(&self) -> f64 {
        let window = f64::from(self.window_secs());
        (self.age_nanos() as f64 / 1e9).clamp(0.001, window)
    }

    /// The per-key write limit's check for one write of `key`: None when
    /// admitted, else the limit it passed (the write is shed).
    pub fn refuse_write(&self, key: &[u8]) -> Option<u64> {
        let limit = self.writes.limit()?;
        let second = (self.age_nanos() / 1_000_000_000) as u32;
        if self.writes.admit(key_hash(key), second, limit) {
            return None;
        }
        self.shed_writes.fetch_add(1, Relaxed);
        Some(limit)
    }
}

/// A key's hash for the sketches and the write limit: the cache's own
/// (`KeyHash`), so a command the cache already hashed the key for is
/// sampled without hashing it again (`HotKeys::record_one`).
pub fn key_hash(key: &[u8]) -> u64 {
    citadel_cache::KeyHash::of(key).into()
}

/// Redis's logarithmic LFU counter (lfu-log-factor 10, 5 for a new key)
/// for `hits` accesses: about 5 + sqrt(hits / 5), at most 255 (Redis's
/// table: 100 hits → 10, 1K → 18, 100K → 142, 1M → 255).
pub fn lfu_counter(hits: u64) -> u8 {
    if hits == 0 {
        return 0;
    }
    (5.0 + (hits as f64 / 5.0).sqrt()).min(255.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_at_one_percent_of_traffic_is_in_the_top_ten() {
        // 100,000 distinct keys on 4 cores, one key at 1% of the accesses
        // (each core publishes its list every 1024 samples).
        let hk = HotKeys::new(4);
        hk.configure(1, 10, 32, 0);
        let mut recs: Vec<Recorder> = (0..4).map(|_| Recorder::default()).collect();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let keys: Vec<Vec<u8>> = (0..100_000)
            .map(|i| format!("key:{i}").into_bytes())
            .collect();
        for i in 0..400_000usize {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key: &[u8] = if i % 100 == 0 {
                b"hot"
            } else {
                &keys[(x % 100_000) as usize]
            };
            let core = i % 4;
            hk.record(core, &mut recs[core], monotonic_nanos(), |f| f(key));
        }
        let top = hk.top(10);
        let hot = top.iter().position(|h| h.key == b"hot");
        assert_eq!(hot, Some(0), "{top:?}");
        assert!(top[0].hits >= 4000, "{top:?}");
        assert_eq!(hk.hits(b"hot"), top[0].hits);
    }

    #[test]
    fn lfu_counter_follows_redis_table() {
        assert_eq!(lfu_counter(100), 9);
        assert_eq!(lfu_counter(1_000), 19);
        assert_eq!(lfu_counter(1_000_000), 255);
    }
}
