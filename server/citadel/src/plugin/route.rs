//! Where one call goes: which version of the plugin (by weight: smooth
//! weighted round robin, or weighted rendezvous hashing of the key when
//! the call names one, so a key stays on its version while the weights
//! stand), then which of that version's instances (power of two choices
//! over EWMA latency × (in flight + 1), or round robin). And what a
//! finished call adds to its version's and instance's statistics.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use citadel_settings::plugin_versions::Balance;
use citadel_supervisor::{PluginShared, Traffic};

/// One server thread's choice state for one plugin.
pub(super) struct Route {
    /// Smooth weighted round robin: each version's running credit.
    credit: Vec<i64>,
    /// Round robin: the next instance (within its version) per version.
    next: Vec<usize>,
    rng: u64,
}

/// How a finished call ended, for the statistics (the stats region's
/// own enum, so counting there needs no mapping).
pub(super) use citadel_telemetry::CallEnd as Ending;

impl Route {
    pub(super) fn new(versions: usize, thread: usize) -> Route {
        Route {
            credit: vec![0; versions],
            next: vec![0; versions],
            // Any odd non-zero seed; per thread so threads do not pick alike.
            rng: 0x9e37_79b9_7f4a_7c15 ^ ((thread as u64 + 1) << 17),
        }
    }

    /// The version of this call; `key`: the key it names, if any.
    pub(super) fn version(&mut self, traffic: &Traffic, key: Option<&[u8]>) -> usize {
        if traffic.versions.len() == 1 {
            return 0;
        }
        let weights = traffic.weights();
        match key {
            Some(k) => rendezvous(&weights, xxhash_rust::xxh3::xxh3_64(k)),
            None => self.smooth(&weights),
        }
    }

    /// Smooth weighted round robin (nginx's): deterministic, and over any
    /// run of calls each version's share is within one call of its weight.
    fn smooth(&mut self, weights: &[u32]) -> usize {
        let total: i64 = weights.iter().map(|w| i64::from(*w)).sum();
        let mut best = 0;
        for (v, w) in weights.iter().enumerate() {
            if *w == 0 {
                self.credit[v] = 0;
                continue;
            }
            self.credit[v] += i64::from(*w);
            if weights[best] == 0 || self.credit[v] > self.credit[best] {
                best = v;
            }
        }
        self.credit[best] -= total;
        best
    }

    /// The first instance (within `version`, 0..per_version) to try. Only
    /// instances taking calls are chosen from (a spare, warming or draining
    /// slot is none: two random picks that could land on one would send the
    /// other pick, however slow, its calls).
    pub(super) fn instance(&mut self, shared: &PluginShared, version: usize) -> usize {
        let per = shared.config.per_version.max(1);
        if per == 1 {
            return 0;
        }
        let base = version * per;
        let active = |i: &usize| shared.instances[base + i].is_active();
        match shared.config.balance {
            Balance::RoundRobin => {
                let next = self.next[version] % per;
                (next..per).chain(0..next).find(active).unwrap_or(next)
            }
            Balance::Latency => {
                let live = (0..per).filter(active).count();
                if live <= 1 {
                    return (0..per).find(active).unwrap_or(0);
                }
                let a = (self.random() % live as u64) as usize;
                let b = (a + 1 + (self.random() % (live as u64 - 1)) as usize) % live;
                let nth = |k: usize| (0..per).filter(active).nth(k).unwrap_or(0);
                let (a, b) = (nth(a), nth(b));
                let score = |i: usize| shared.instances[base + i].load_score();
                if score(b) < score(a) {
                    b
                } else {
                    a
                }
            }
        }
    }

    /// The call went to instance `chosen` of `version`: round robin moves on.
    pub(super) fn sent(&mut self, shared: &PluginShared, version: usize, chosen: usize) {
        self.next[version] = (chosen + 1) % shared.config.per_version.max(1);
    }

    /// xorshift64.
    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
}

/// Weighted rendezvous hashing: each version with weight draws a score
/// from the key's hash; the lowest `-ln(u) / weight` wins. A version's
/// share is its weight's, and changing one weight moves only the keys
/// that must move.
fn rendezvous(weights: &[u32], hash: u64) -> usize {
    let mut best = (f64::INFINITY, 0);
    for (v, w) in weights.iter().enumerate() {
        if *w == 0 {
            continue;
        }
        let h = xxhash_rust::xxh3::xxh3_64_with_seed(&hash.to_le_bytes(), v as u64 + 1);
        // In (0, 1]: 53 bits, never 0.
        let u = ((h >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let score = -u.ln() / f64::from(*w);
        if score < best.0 {
            best = (score, v);
        }
    }
    best.1
}

/// Instance `instance` (the lane index) of `shared` was sent a call (the
/// instance counted it already, `InstanceStatus::try_enter`).
pub(super) fn started(shared: &PluginShared, instance: usize) {
    let v = shared.config.version_of(instance);
    shared.traffic.versions[v]
        .stats
        .in_flight
        .fetch_add(1, Relaxed);
    if let Some(shm) = shared.shm.get() {
        shm.enter(v);
    }
}

/// A call left instance `instance` unanswered, sent again elsewhere
/// (`stranded.rs`): not counted as ended.
pub(super) fn moved(shared: &PluginShared, instance: usize) {
    shared.instances[instance].leave();
    let v = shared.config.version_of(instance);
    shared.traffic.versions[v]
        .stats
        .in_flight
        .fetch_sub(1, Relaxed);
    if let Some(shm) = shared.shm.get() {
        shm.leave(v);
    }
}

/// A call to instance `instance` ended after `elapsed`.
pub(super) fn finished(shared: &PluginShared, instance: usize, elapsed: Duration, how: Ending) {
    let inst = &shared.instances[instance];
    inst.leave();
    let version = shared.config.version_of(instance);
    if let Some(shm) = shared.shm.get() {
        shm.ended(version, elapsed.as_nanos() as u64, how);
    }
    let stats = &shared.traffic.versions[version].stats;
    stats.in_flight.fetch_sub(1, Relaxed);
    match how {
        Ending::Timeout => {
            // A timeout says the instance is slow: count it at the timeout.
            inst.observe_latency(elapsed.as_micros() as u64);
            stats.timeouts.fetch_add(1, Relaxed);
            return;
        }
        Ending::Error => {
            stats.errors.fetch_add(1, Relaxed);
        }
        Ending::Ok => {}
    }
    inst.observe_latency(elapsed.as_micros() as u64);
    stats.processed.fetch_add(1, Relaxed);
    stats.latency.record(elapsed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_weights_are_exact_and_spread() {
        let mut r = Route::new(2, 0);
        let weights = [90, 10];
        let picks: Vec<usize> = (0..100).map(|_| r.smooth(&weights)).collect();
        assert_eq!(picks.iter().filter(|v| **v == 1).count(), 10);
        // Spread out, not ten in a row.
        assert!(picks.windows(2).all(|w| !(w[0] == 1 && w[1] == 1)));
        assert!((0..50).all(|_| r.smooth(&[0, 5]) == 1));
    }

    #[test]
    fn rendezvous_follows_weights_and_is_stable() {
        let n = 20_000u64;
        let to_b = (0..n).filter(|k| rendezvous(&[80, 20], *k) == 1).count() as f64;
        assert!((to_b / n as f64 - 0.2).abs() < 0.02, "{to_b}");
        // Raising b's weight only moves keys to b.
        assert!((0..n).all(|k| rendezvous(&[80, 20], k) != 1 || rendezvous(&[80, 40], k) == 1));
        assert!((0..100).all(|k| rendezvous(&[0, 1], k) == 1));
    }
}
