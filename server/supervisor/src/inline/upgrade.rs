//! Overlapped reload (PLUGIN RELOAD, SIGHUP) of an inline plugin with a
//! spare slot, one instance at a time: the new module's serve thread starts
//! on the free slot (its own rings) and takes the new calls at once; the
//! old slot takes none from then on (`InstanceStatus::deactivate`, the
//! drain process instances use), its thread serves what it holds, and is
//! stopped once nothing is in flight. The freed slot is the spare for the
//! next step. A module that does not load stops the upgrade there, the old
//! threads keep serving.
//!
//! A call stuck in an old handler holds the drain for at most the plugin's
//! `stop-timeout-ms`; the thread is then asked to stop and, if it still has
//! not returned one stop timeout later, left detached (see `super`).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::super::shared::InstanceState;
use super::InlineInstance;

/// One plugin's upgrade in progress.
struct Upgrade {
    plugin: usize,
    /// Slots still serving the old module, in order.
    old: Vec<usize>,
    /// The slot draining, and when its drain is given up on.
    draining: Option<(usize, Instant)>,
    /// Another reload was asked for meanwhile: run again when done.
    again: bool,
}

#[derive(Default)]
pub struct InlineUpgrades(Vec<Upgrade>);

impl InlineUpgrades {
    /// Starts upgrading the plugin whose slots are `slots`.
    pub fn request(&mut self, slots: &[InlineInstance]) {
        let plugin = slots[0].plugin;
        if let Some(u) = self.0.iter_mut().find(|u| u.plugin == plugin) {
            u.again = true;
            return;
        }
        tracing::info!(plugin = %slots[0].name(), "upgrading inline plugin: the new module serves beside the old one");
        self.0.push(Upgrade {
            plugin,
            old: live_slots(slots),
            draining: None,
            again: false,
        });
    }

    pub fn is_busy(&self) -> bool {
        !self.0.is_empty()
    }

    /// Moves the upgrade of the plugin whose slots are `slots` on.
    pub fn advance(&mut self, slots: &mut [InlineInstance], now: Instant) {
        let plugin = slots[0].plugin;
        let Some(at) = self.0.iter().position(|u| u.plugin == plugin) else {
            return;
        };
        if !step(&mut self.0[at], slots, now) {
            self.0.remove(at);
        }
    }
}

/// Moves `u` on as far as it can now; false once it is over.
fn step(u: &mut Upgrade, slots: &mut [InlineInstance], now: Instant) -> bool {
    if let Some((old, give_up)) = u.draining {
        if !drained(&mut slots[old], give_up, now) {
            return true;
        }
        u.draining = None;
    }
    loop {
        let Some(&old) = u.old.first() else {
            if !u.again {
                tracing::info!(plugin = %slots[0].name(), "inline upgrade done");
                return false;
            }
            u.again = false;
            u.old = live_slots(slots);
            continue;
        };
        if !slots[old].is_live() {
            u.old.remove(0);
            continue;
        }
        let Some(free) = slots.iter().position(InlineInstance::is_free) else {
            // A detached thread still holds the only free slot's rings.
            return true;
        };
        let started = slots[free]
            .load()
            .map_err(|e| e.to_string())
            .and_then(|m| slots[free].start(m).map_err(|e| e.to_string()));
        if let Err(e) = started {
            slots[0].shared.note_change(format!(
                "upgrade stopped: instance {free} cannot serve the new module ({e}); the old ones keep serving"
            ));
            slots[free].status().deactivate();
            return false;
        }
        u.old.remove(0);
        slots[free].status().reloads.fetch_add(1, Relaxed);
        let retiring = &mut slots[old];
        retiring.retiring = true;
        retiring.status().deactivate();
        retiring.status().set_state(InstanceState::Stopping);
        let give_up = now + retiring.shared.config.stop_timeout;
        u.draining = Some((old, give_up));
        slots[0].shared.note_change(format!(
            "upgraded: instance {free} took over from instance {old}"
        ));
        return true;
    }
}

/// Moves slot `old`'s drain on: once nothing is in flight (or `give_up`
/// passed) its thread is asked to stop; true once it has returned or was
/// detached.
fn drained(old: &mut InlineInstance, give_up: Instant, now: Instant) -> bool {
    if old.running.is_some() {
        let held = old.status().in_flight();
        if held > 0 && now < give_up {
            return false;
        }
        if held > 0 {
            tracing::warn!(plugin = %old.name(), instance = old.index, in_flight = held, "inline upgrade: calls still in flight at the stop timeout; stopping the old thread anyway");
        }
        old.request_stop(now);
    }
    if !old.stop_settled(now) {
        return false;
    }
    old.retiring = false;
    true
}

fn live_slots(slots: &[InlineInstance]) -> Vec<usize> {
    (0..slots.len()).filter(|&i| slots[i].is_live()).collect()
}
