//! The scaler of elastic plugins (`instances = "MIN..MAX"`).
//!
//! Every [`SAMPLE_EVERY`] it looks at the plugin's live instances: a sample
//! is *busy* when one of their request rings was found full since the last
//! look, or when a new call would queue longer than the delay target (the
//! least loaded instance's calls in flight × its mean handler time, both
//! read from the rings' counters); it is *quiet* when the instances' total
//! handler time would have kept one fewer instance at most half busy. One
//! instance more when over half the samples of the up window were busy;
//! one fewer when every sample of the (longer) down window was quiet; at
//! least the cool-down between two changes, and the windows start afresh
//! after each. Growth takes a spare core (one no server thread and no
//! plugin runs on) when the plugin's cores are automatic; with none spare
//! it logs that and stays.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::pool::{self, SpareCores};
use super::process::{Instance, RingLoad};

/// How often a plugin's load is sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    busy: bool,
    quiet: bool,
}

/// One elastic plugin's scaling state.
pub struct Scaler {
    plugin: usize,
    samples: VecDeque<Sample>,
    /// When the counters were last read, and each slot's then.
    last: Option<(Instant, Vec<RingLoad>)>,
    /// Each slot's mean handler time (ns), kept across idle samples.
    mean_ns: Vec<u64>,
    last_change: Instant,
    /// Logged that no spare core is left (once per busy spell).
    starved: bool,
}

/// One scaler per elastic plugin.
pub fn scalers(instances: &[Instance], now: Instant) -> Vec<Scaler> {
    let mut out: Vec<Scaler> = Vec::new();
    for inst in instances.iter().filter(|i| i.index == 0) {
        if inst.shared.config.running.is_elastic() {
            out.push(Scaler {
                plugin: inst.plugin,
                samples: VecDeque::new(),
                last: None,
                mean_ns: vec![0; inst.shared.config.instances],
                last_change: now,
                starved: false,
            });
        }
    }
    out
}

/// What one look at the counters says.
struct Look {
    live: usize,
    busy: bool,
    quiet: bool,
    why: String,
}

impl Scaler {
    pub fn plugin(&self) -> usize {
        self.plugin
    }

    /// Samples the plugin if due and grows or shrinks it; `settled`: no
    /// instance of it is starting, retiring or being upgraded.
    pub fn tick(
        &mut self,
        slots: &mut [Instance],
        spare: &mut SpareCores,
        settled: bool,
        now: Instant,
    ) {
        if self
            .last
            .as_ref()
            .is_some_and(|(at, _)| now.duration_since(*at) < SAMPLE_EVERY)
        {
            return;
        }
        let Some(look) = self.look(slots, now) else {
            return;
        };
        self.samples.push_back(Sample {
            at: now,
            busy: look.busy,
            quiet: look.quiet,
        });
        let rule = slots[0].shared.config.scaling;
        let keep = rule.up_window.max(rule.down_window);
        while self
            .samples
            .front()
            .is_some_and(|s| now.duration_since(s.at) > keep)
        {
            self.samples.pop_front();
        }
        if !look.busy {
            self.starved = false;
        }
        let range = slots[0].shared.config.running;
        if !settled || now.duration_since(self.last_change) < rule.cooldown {
            return;
        }
        let (busy, total) = self.count(now, rule.up_window, |s| s.busy);
        let covered = |window: Duration| {
            now.duration_since(self.last_change) >= window
                && self
                    .samples
                    .front()
                    .is_some_and(|s| now.duration_since(s.at) + SAMPLE_EVERY >= window)
        };
        if look.live < range.max && covered(rule.up_window) && busy * 2 > total {
            let why = format!("{busy}/{total} samples busy: {}", look.why);
            self.grow(slots, spare, look.live, why, now);
            return;
        }
        let (quiet, total) = self.count(now, rule.down_window, |s| s.quiet);
        if look.live > range.min && covered(rule.down_window) && quiet == total && total > 0 {
            let why = format!(
                "{total}/{total} samples quiet over {} ms",
                rule.down_window.as_millis()
            );
            self.shrink(slots, look.live, why, now);
        }
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

    /// Reads the live instances' ring counters against the last read.
    fn look(&mut self, slots: &[Instance], now: Instant) -> Option<Look> {
        let loads: Vec<RingLoad> = slots.iter().map(Instance::ring_load).collect();
        let (then, before) = self.last.replace((now, loads.clone()))?;
        let elapsed_ns = now.duration_since(then).as_nanos().max(1) as u64;
        let target_ns = slots[0].shared.config.scaling.delay_target.as_nanos() as u64;
        let (mut live, mut full, mut busy_ns) = (0, 0, 0);
        let mut delay_ns = u64::MAX;
        for (i, inst) in slots.iter().enumerate() {
            let f = loads[i].full.saturating_sub(before[i].full);
            let d = loads[i].delivered.saturating_sub(before[i].delivered);
            let b = loads[i].busy_ns.saturating_sub(before[i].busy_ns);
            if let Some(mean) = b.checked_div(d) {
                self.mean_ns[i] = mean;
            }
            if !pool::is_live(inst) {
                continue;
            }
            live += 1;
            full += f;
            busy_ns += b;
            let waiting = inst.status().in_flight.load(Relaxed);
            delay_ns = delay_ns.min(waiting.saturating_mul(self.mean_ns[i]));
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
            quiet: full == 0 && !delay_over && busy_ns * 2 <= (live as u64 - 1) * elapsed_ns,
            why,
        })
    }

    fn changed(&mut self, now: Instant) {
        self.samples.clear();
        self.last_change = now;
    }

    fn grow(
        &mut self,
        slots: &mut [Instance],
        spare: &mut SpareCores,
        live: usize,
        why: String,
        now: Instant,
    ) {
        let Some(free) = slots.iter().position(pool::is_free) else {
            return;
        };
        let why = format!("scale up {live} -> {}: {why}", live + 1);
        match pool::start(&mut slots[free], spare, true, why, now) {
            Ok(()) => {
                self.starved = false;
                self.changed(now);
            }
            Err(e) => {
                if !self.starved {
                    let shared = slots[0].shared.clone();
                    shared.note_change(format!("stays at {live} instances: busy, but {e}"));
                    tracing::warn!(plugin = %shared.config.name, "busy, but {e}: staying at {live} instances");
                    self.starved = true;
                }
            }
        }
    }

    fn shrink(&mut self, slots: &mut [Instance], live: usize, why: String, now: Instant) {
        // The last live slot goes (slot 0 stays the steady first).
        let Some(last) = slots.iter().rposition(pool::is_live) else {
            return;
        };
        pool::retire(
            &mut slots[last],
            format!("scale down {live} -> {}: {why}", live - 1),
            now,
        );
        self.changed(now);
    }
}
