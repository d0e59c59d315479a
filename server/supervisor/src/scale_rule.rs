//! The elastic scaler's rule, apart from the instances it acts on (so it
//! is unit-tested on synthetic samples; `elastic.rs` reads the counters
//! and applies it).
//!
//! A look at the counters gives one sample: *busy* when a live instance's
//! request ring was found full since the last look, or a new call would
//! queue past the delay target (the least loaded live instance's calls in
//! flight × its mean handler time); *quiet* when neither holds and the
//! handler time would have kept one fewer instance at most half busy.
//! Grow when over half the samples of the up window were busy; shrink
//! when every sample of the (longer) down window was quiet; both only
//! once the window is covered by samples taken since the last change, and
//! at least the cool-down after it (the hysteresis).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use citadel_settings::instances::InstanceRange;

use super::config::ScaleRule;
use super::process::RingLoad;

/// How often a plugin's load is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One slot's share of a look: its counters' growth since the last look.
#[derive(Debug, Clone, Copy, Default)]
pub struct SlotLook {
    pub delta: RingLoad,
    /// It serves calls (not starting, retiring or stopped).
    pub live: bool,
    /// Its calls in flight now.
    pub in_flight: u64,
}

/// What one look at the counters says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    pub live: usize,
    pub busy: bool,
    pub quiet: bool,
    pub why: String,
}

/// Judges one look over `elapsed_ns`; `mean_ns`: each slot's mean handler
/// time, updated from the slots that handled records (kept across idle
/// looks). None when no slot is live.
pub fn judge(
    slots: &[SlotLook],
    mean_ns: &mut [u64],
    elapsed_ns: u64,
    target_ns: u64,
) -> Option<Look> {
    let (mut live, mut full, mut busy_ns) = (0, 0, 0);
    let mut delay_ns = u64::MAX;
    for (slot, mean) in slots.iter().zip(mean_ns.iter_mut()) {
        if let Some(m) = slot.delta.busy_ns.checked_div(slot.delta.delivered) {
            *mean = m;
        }
        if !slot.live {
            continue;
        }
        live += 1;
        full += slot.delta.full;
        busy_ns += slot.delta.busy_ns;
        delay_ns = delay_ns.min(slot.in_flight.saturating_mul(*mean));
    }
    if live == 0 {
        return None;
    }
    let delay_over = delay_ns > target_ns;
    let why = if full > 0 {
        format!("request ring full {full} times")
    } else {
        format!(
            "queueing {} us over the {} us target",
            delay_ns / 1000,
            target_ns / 1000
        )
    };
    Some(Look {
        live,
        busy: full > 0 || delay_over,
        // One fewer would have been at most half busy.
        quiet: full == 0 && !delay_over && busy_ns * 2 <= (live as u64 - 1) * elapsed_ns.max(1),
        why,
    })
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    busy: bool,
    quiet: bool,
}

/// What the rule says after a sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Stay,
    /// (busy samples, samples) of the up window.
    Grow {
        busy: usize,
        total: usize,
    },
    /// Samples of the down window, every one quiet.
    Shrink {
        quiet: usize,
    },
}

/// A plugin's recent samples and its last change.
#[derive(Debug)]
pub struct Samples {
    samples: VecDeque<Sample>,
    last_change: Instant,
}

impl Samples {
    pub fn new(now: Instant) -> Samples {
        Samples {
            samples: VecDeque::new(),
            last_change: now,
        }
    }

    /// Adds the sample `look` taken at `now`, forgetting those older than
    /// both windows.
    pub fn push(&mut self, look: &Look, now: Instant, rule: &ScaleRule) {
        self.samples.push_back(Sample {
            at: now,
            busy: look.busy,
            quiet: look.quiet,
        });
        let keep = rule.up_window.max(rule.down_window);
        while self
            .samples
            .front()
            .is_some_and(|s| now.duration_since(s.at) > keep)
        {
            self.samples.pop_front();
        }
    }

    /// The rule at `now` for `live` instances in `range`; `settled`: no
    /// instance is starting, retiring or being upgraded.
    pub fn decide(
        &self,
        now: Instant,
        rule: &ScaleRule,
        range: InstanceRange,
        live: usize,
        settled: bool,
    ) -> Decision {
        if !settled || now.duration_since(self.last_change) < rule.cooldown {
            return Decision::Stay;
        }
        let (busy, total) = self.count(now, rule.up_window, |s| s.busy);
        if live < range.max && self.covers(now, rule.up_window) && busy * 2 > total {
            return Decision::Grow { busy, total };
        }
        let (quiet, total) = self.count(now, rule.down_window, |s| s.quiet);
        if live > range.min && self.covers(now, rule.down_window) && quiet == total && total > 0 {
            return Decision::Shrink { quiet };
        }
        Decision::Stay
    }

    /// The instance count changed at `now`: the windows start afresh.
    pub fn changed(&mut self, now: Instant) {
        self.samples.clear();
        self.last_change = now;
    }

    /// True when samples taken since the last change span `window`.
    fn covers(&self, now: Instant, window: Duration) -> bool {
        now.duration_since(self.last_change) >= window
            && self
                .samples
                .front()
                .is_some_and(|s| now.duration_since(s.at) + SAMPLE_EVERY >= window)
    }

    /// (samples within `window` for which `pred` holds, samples within it).
    fn count(
        &self,
        now: Instant,
        window: Duration,
        pred: impl Fn(&Sample) -> bool,
    ) -> (usize, usize) {
        let recent = self
            .samples
            .iter()
            .filter(|s| now.duration_since(s.at) <= window);
        recent.fold((0, 0), |(yes, all), s| {
            (yes + usize::from(pred(s)), all + 1)
        })
    }
}

#[cfg(test)]
mod tests;
