//! A plugin's versions side by side (gray release): each version's live
//! weight and call statistics, the weight changes of PLUGIN WEIGHT /
//! PROMOTE / ROLLBACK, and the automatic rollback rule's check.
//!
//! Weights are atomics the server threads read per call; a change is made
//! under `Traffic`'s lock (one change at a time) and then the supervisor
//! is asked to reconcile the processes (a version at weight 0 is drained
//! and stopped, one given weight again is started).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Instant;

use citadel_settings::plugin_versions::{RollbackRule, MAX_WEIGHT};

use super::config::PluginConfig;
use super::stats::CallStats;

/// Calls a version must have had in the window before the rule judges it.
pub const MIN_CALLS_TO_JUDGE: u64 = 20;

#[derive(Debug)]
pub struct VersionShared {
    pub name: String,
    pub weight: AtomicU32,
    pub stats: CallStats,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WeightError {
    #[error("no such version '{0}'")]
    NoSuchVersion(String),
    #[error("weight must be an integer 0-{MAX_WEIGHT}")]
    BadWeight,
    #[error("every version would have weight 0")]
    AllZero,
    #[error("no previous weights to roll back to")]
    NoPrevious,
}

/// What a weight change remembers: the weights before it (ROLLBACK goes
/// back to them) and which version is the baseline.
#[derive(Debug)]
struct History {
    previous: Option<(Vec<u32>, usize)>,
    baseline: usize,
}

/// One look at a version's counters (auto-rollback's window).
#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    calls: u64,
    failures: u64,
    latency: Vec<u64>,
}

#[derive(Debug)]
pub struct Traffic {
    pub versions: Vec<VersionShared>,
    history: Mutex<History>,
    /// Automatic rollbacks so far, and the last one's reason.
    pub rollbacks: AtomicU64,
    pub last_rollback: Mutex<String>,
    samples: Mutex<Vec<VecDeque<Sample>>>,
}

impl Traffic {
    pub fn new(config: &PluginConfig) -> Traffic {
        let versions: Vec<VersionShared> = config
            .versions
            .iter()
            .map(|v| VersionShared {
                name: v.name.clone(),
                weight: AtomicU32::new(v.weight),
                stats: CallStats::default(),
            })
            .collect();
        // The baseline: the heaviest version (the first of equals).
        let baseline = (0..versions.len())
            .max_by_key(|&i| (config.versions[i].weight, std::cmp::Reverse(i)))
            .unwrap_or(0);
        Traffic {
            samples: Mutex::new(vec![VecDeque::new(); versions.len()]),
            versions,
            history: Mutex::new(History {
                previous: None,
                baseline,
            }),
            rollbacks: AtomicU64::new(0),
            last_rollback: Mutex::new(String::new()),
        }
    }

    pub fn find(&self, name: &[u8]) -> Result<usize, WeightError> {
        self.versions
            .iter()
            .position(|v| v.name.as_bytes() == name)
            .ok_or_else(|| WeightError::NoSuchVersion(String::from_utf8_lossy(name).into()))
    }

    pub fn weights(&self) -> Vec<u32> {
        self.versions
            .iter()
            .map(|v| v.weight.load(Relaxed))
            .collect()
    }

    pub fn baseline(&self) -> usize {
        self.lock().baseline
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self, weights: &[u32]) {
        for (v, w) in self.versions.iter().zip(weights) {
            v.weight.store(*w, Relaxed);
        }
    }

    /// Applies `change` to the weights, remembering the ones before it.
    fn change(&self, change: impl FnOnce(&mut Vec<u32>, &mut usize)) -> Result<(), WeightError> {
        let mut h = self.lock();
        let before = self.weights();
        let mut weights = before.clone();
        let mut baseline = h.baseline;
        change(&mut weights, &mut baseline);
        if weights.iter().all(|w| *w == 0) {
            return Err(WeightError::AllZero);
        }
        h.previous = Some((before, h.baseline));
        h.baseline = baseline;
        self.store(&weights);
        Ok(())
    }

    /// PLUGIN WEIGHT: version `v` gets `weight`, the others keep theirs.
    pub fn set_weight(&self, v: usize, weight: u32) -> Result<(), WeightError> {
        if weight > MAX_WEIGHT {
            return Err(WeightError::BadWeight);
        }
        self.change(|w, _| w[v] = weight)
    }

    /// PLUGIN PROMOTE: version `v` takes every call and becomes the baseline.
    pub fn promote(&self, v: usize) -> Result<(), WeightError> {
        self.change(|w, baseline| {
            w.iter_mut().for_each(|x| *x = 0);
            w[v] = 100;
            *baseline = v;
        })
    }

    /// PLUGIN ROLLBACK: back to the weights before the last change (which
    /// ROLLBACK again undoes).
    pub fn rollback(&self) -> Result<(), WeightError> {
        let mut h = self.lock();
        let (weights, baseline) = h.previous.take().ok_or(WeightError::NoPrevious)?;
        h.previous = Some((self.weights(), h.baseline));
        h.baseline = baseline;
        self.store(&weights);
        Ok(())
    }

    /// Takes one look at every version's counters and returns the versions
    /// (with the reason) that break `rule` over its window: only versions
    /// with weight other than the baseline are judged. Called about once a
    /// second by the supervisor thread.
    pub fn check(&self, rule: &RollbackRule, now: Instant) -> Vec<(usize, String)> {
        let baseline = self.baseline();
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let mut broken = Vec::new();
        for (i, v) in self.versions.iter().enumerate() {
            let s = &v.stats;
            let timeouts = s.timeouts.load(Relaxed);
            let now_sample = Sample {
                at: now,
                calls: s.processed.load(Relaxed) + timeouts,
                failures: s.errors.load(Relaxed) + timeouts,
                latency: s.latency.counts(),
            };
            let window = &mut samples[i];
            while window
                .front()
                .is_some_and(|f| now.duration_since(f.at).as_secs() > rule.window_s)
            {
                window.pop_front();
            }
            let judged = i != baseline && v.weight.load(Relaxed) > 0;
            if let (true, Some(first)) = (judged, window.front()) {
                if let Some(reason) = breaks(rule, first, &now_sample) {
                    broken.push((i, reason));
                }
            }
            window.push_back(now_sample);
        }
        broken
    }

    /// The automatic rollback of version `v`: its weight goes to the
    /// baseline (remembered as a change, so ROLLBACK undoes it).
    pub fn auto_rollback(&self, v: usize, reason: &str) -> Result<(), WeightError> {
        self.change(|w, baseline| {
            w[*baseline] += w[v];
            w[v] = 0;
        })?;
        self.rollbacks.fetch_add(1, Relaxed);
        let text = format!("{} {reason}", self.versions[v].name);
        *self.last_rollback.lock().unwrap_or_else(|p| p.into_inner()) = text;
        Ok(())
    }
}

/// Why the calls between `from` and `to` break `rule`, if they do.
fn breaks(rule: &RollbackRule, from: &Sample, to: &Sample) -> Option<String> {
    let calls = to.calls.saturating_sub(from.calls);
    if calls < MIN_CALLS_TO_JUDGE {
        return None;
    }
    let failures = to.failures.saturating_sub(from.failures);
    let rate = failures as f64 / calls as f64;
    if rule.error_rate.is_some_and(|limit| rate > limit) {
        return Some(format!("error rate {rate:.3} over {calls} calls"));
    }
    let diff: Vec<u64> = to
        .latency
        .iter()
        .zip(&from.latency)
        .map(|(a, b)| a.saturating_sub(*b))
        .collect();
    let p99_us = super::stats::quantile_of(&diff, 0.99);
    if rule.p99_ms.is_some_and(|limit| p99_us > limit * 1000) {
        return Some(format!("p99 {} ms over {calls} calls", p99_us / 1000));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{for_tests, VersionConfig};
    use std::time::Duration;

    fn two_versions() -> Traffic {
        let mut c = for_tests("p", citadel_settings::Cores::Unpinned, 1);
        let mut v2: VersionConfig = c.versions[0].clone();
        c.versions[0].weight = 90;
        v2.name = "v2".into();
        v2.weight = 10;
        c.versions.push(v2);
        Traffic::new(&c)
    }

    #[test]
    fn weight_promote_rollback() {
        let t = two_versions();
        assert_eq!((t.weights(), t.baseline()), (vec![90, 10], 0));
        t.set_weight(1, 50).unwrap();
        assert_eq!(t.weights(), vec![90, 50]);
        t.promote(1).unwrap();
        assert_eq!((t.weights(), t.baseline()), (vec![0, 100], 1));
        t.rollback().unwrap();
        assert_eq!((t.weights(), t.baseline()), (vec![90, 50], 0));
        assert_eq!(t.set_weight(0, 0), Ok(()));
        assert_eq!(t.set_weight(1, 0), Err(WeightError::AllZero));
        assert_eq!(
            t.find(b"nope"),
            Err(WeightError::NoSuchVersion("nope".into()))
        );
    }

    #[test]
    fn a_failing_version_breaks_the_rule() {
        let t = two_versions();
        let rule = RollbackRule {
            error_rate: Some(0.05),
            p99_ms: None,
            window_s: 10,
        };
        let start = Instant::now();
        assert!(t.check(&rule, start).is_empty());
        let s = &t.versions[1].stats;
        s.processed.fetch_add(100, Relaxed);
        s.errors.fetch_add(10, Relaxed);
        let broken = t.check(&rule, start + Duration::from_secs(1));
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].0, 1);
        t.auto_rollback(1, &broken[0].1).unwrap();
        assert_eq!(t.weights(), vec![100, 0]);
        assert!(t.check(&rule, start + Duration::from_secs(2)).is_empty());
    }
}
