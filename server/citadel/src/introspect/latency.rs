//! The latency monitor (LATENCY): per event, the worst latency of each
//! second it happened in (the last 160), and the all-time maximum. Only
//! commands past `latency-monitor-threshold` reach it, so one lock for the
//! process is enough.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

/// Samples kept per event, as Redis's LATENCY_TS_LEN.
const HISTORY: usize = 160;

#[derive(Debug, Clone, Default)]
pub struct Event {
    /// (Unix seconds, worst latency in ms that second), oldest first.
    pub samples: VecDeque<(u64, u64)>,
    pub max_ms: u64,
}

#[derive(Debug, Default)]
pub struct Monitor {
    events: Mutex<BTreeMap<&'static str, Event>>,
}

impl Monitor {
    fn locked(&self) -> MutexGuard<'_, BTreeMap<&'static str, Event>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `event` took `ms` at `unix_secs`.
    pub fn record(&self, event: &'static str, unix_secs: u64, ms: u64) {
        let mut events = self.locked();
        let e = events.entry(event).or_default();
        e.max_ms = e.max_ms.max(ms);
        match e.samples.back_mut() {
            Some((t, worst)) if *t == unix_secs => *worst = (*worst).max(ms),
            _ => {
                e.samples.push_back((unix_secs, ms));
                if e.samples.len() > HISTORY {
                    e.samples.pop_front();
                }
            }
        }
    }

    /// Every event with samples, by name.
    pub fn events(&self) -> Vec<(&'static str, Event)> {
        self.locked()
            .iter()
            .map(|(name, e)| (*name, e.clone()))
            .collect()
    }

    /// Forgets the named events (all when `names` is empty); how many
    /// had samples.
    pub fn reset(&self, names: &[&[u8]]) -> usize {
        let mut events = self.locked();
        if names.is_empty() {
            let n = events.len();
            events.clear();
            return n;
        }
        let before = events.len();
        events.retain(|name, _| {
            !names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        });
        before - events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_keeps_the_worst() {
        let m = Monitor::default();
        m.record("command", 100, 5);
        m.record("command", 100, 9);
        m.record("command", 101, 3);
        let events = m.events();
        let e = &events[0].1;
        assert_eq!(e.samples, [(100, 9), (101, 3)]);
        assert_eq!(e.max_ms, 9);
        assert_eq!(m.reset(&[b"COMMAND"]), 1);
        assert!(m.events().is_empty());
    }
}
