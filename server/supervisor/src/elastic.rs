//! The scaler of elastic plugins (`instances = "MIN..MAX"`): every
//! [`SAMPLE_EVERY`] it reads the plugin's request rings' counters, judges
//! the look and applies the rule (both in `scale_rule.rs`): one instance
//! more, or one fewer. Growth takes a spare core (one no server thread and
//! no plugin runs on) when the plugin's cores are automatic; with none
//! spare it logs that and stays.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::pool::{self, SpareCores};
use super::process::{Instance, RingLoad};
use super::scale_rule::{judge, Decision, Look, Samples, SlotLook, SAMPLE_EVERY};

/// One elastic plugin's scaling state.
pub struct Scaler {
    plugin: usize,
    samples: Samples,
    /// When the counters were last read, and each slot's then.
    last: Option<(Instant, Vec<RingLoad>)>,
    /// Each slot's mean handler time (ns), kept across idle samples.
    mean_ns: Vec<u64>,
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
                samples: Samples::new(now),
                last: None,
                mean_ns: vec![0; inst.shared.config.instances],
                starved: false,
            });
        }
    }
    out
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
        if slots.is_empty() {
            return;
        }
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
        let rule = slots[0].shared.config.scaling;
        self.samples.push(&look, now, &rule);
        if !look.busy {
            self.starved = false;
        }
        let range = slots[0].shared.config.running;
        match self.samples.decide(now, &rule, range, look.live, settled) {
            Decision::Stay => {}
            Decision::Grow { busy, total } => {
                let why = format!("{busy}/{total} samples busy: {}", look.why);
                self.grow(slots, spare, look.live, why, now);
            }
            Decision::Shrink { quiet } => {
                let why = format!(
                    "{quiet}/{quiet} samples quiet over {} ms",
                    rule.down_window.as_millis()
                );
                self.shrink(slots, look.live, why, now);
            }
        }
    }

    /// Reads the live instances' ring counters against the last read.
    fn look(&mut self, slots: &[Instance], now: Instant) -> Option<Look> {
        let loads: Vec<RingLoad> = slots.iter().map(Instance::ring_load).collect();
        let (then, before) = self.last.replace((now, loads.clone()))?;
        let elapsed_ns = now.duration_since(then).as_nanos().max(1) as u64;
        let target_ns = slots[0].shared.config.scaling.delay_target.as_nanos() as u64;
        let looks: Vec<SlotLook> = slots
            .iter()
            .zip(loads.iter().zip(&before))
            .map(|(inst, (l, b))| SlotLook {
                delta: RingLoad {
                    full: l.full.saturating_sub(b.full),
                    delivered: l.delivered.saturating_sub(b.delivered),
                    busy_ns: l.busy_ns.saturating_sub(b.busy_ns),
                },
                live: pool::is_live(inst),
                in_flight: inst.status().in_flight.load(Relaxed),
            })
            .collect();
        judge(&looks, &mut self.mean_ns, elapsed_ns, target_ns)
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
                self.samples.changed(now);
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
        self.samples.changed(now);
    }
}
