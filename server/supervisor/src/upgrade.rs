//! Overlapped upgrade (PLUGIN RELOAD, SIGHUP) of a plugin with a spare
//! slot: one instance at a time, the new process starts in a free slot
//! while the old one keeps serving; once the new one has attached to its
//! rings it takes the new calls, the old one takes none, finishes the calls
//! it holds (nothing in flight) and stops. No call waits for a process
//! start and none fails. If the new process never attaches, the upgrade
//! stops there and the old instances keep serving.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::pool::{self, SpareCores};
use super::process::{Instance, Phase};

/// One plugin's upgrade in progress.
pub struct Upgrade {
    plugin: usize,
    /// Slots still running the old executable.
    old: Vec<usize>,
    /// The replacement warming up and the slot it replaces.
    step: Option<(usize, usize)>,
    /// Another reload was asked for meanwhile: run again when done.
    again: bool,
}

#[derive(Default)]
pub struct Upgrades(Vec<Upgrade>);

impl Upgrades {
    /// Starts upgrading the plugin whose slots are `slots`.
    pub fn request(&mut self, slots: &[Instance]) {
        let plugin = slots[0].plugin;
        if let Some(u) = self.0.iter_mut().find(|u| u.plugin == plugin) {
            u.again = true;
            return;
        }
        tracing::info!(plugin = %slots[0].name(), "upgrading: new processes start beside the old ones");
        self.0.push(Upgrade {
            plugin,
            old: live_slots(slots),
            step: None,
            again: false,
        });
    }

    pub fn is_busy(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn is_upgrading(&self, plugin: usize) -> bool {
        self.0.iter().any(|u| u.plugin == plugin)
    }

    /// Moves the upgrade of the plugin whose slots are `slots` on.
    pub fn advance(&mut self, slots: &mut [Instance], spare: &mut SpareCores, now: Instant) {
        let plugin = slots[0].plugin;
        let Some(at) = self.0.iter().position(|u| u.plugin == plugin) else {
            return;
        };
        let u = &mut self.0[at];
        if let Some((new, old)) = u.step {
            if slots[new].phase != Phase::Steady {
                return;
            }
            u.step = None;
            if !slots[new].status().is_active() {
                let shared = slots[0].shared.clone();
                shared.note_change(
                    "upgrade stopped: the new process did not start; the old ones keep serving"
                        .into(),
                );
                self.0.remove(at);
                return;
            }
            slots[new].status().reloads.fetch_add(1, Relaxed);
            if pool::is_live(&slots[old]) {
                let why = format!("upgraded: instance {new} took over");
                pool::retire(&mut slots[old], why, now);
            }
        }
        let Some(&old) = u.old.first() else {
            if u.again {
                u.again = false;
                u.old = live_slots(slots);
            } else {
                tracing::info!(plugin = %slots[0].name(), "upgrade done");
                self.0.remove(at);
            }
            return;
        };
        if !pool::is_live(&slots[old]) {
            u.old.remove(0);
            return;
        }
        let Some(free) = slots.iter().position(pool::is_free) else {
            // The slot the last step retired is still draining.
            return;
        };
        u.old.remove(0);
        let why = format!("upgrade of instance {old}");
        // A replacement may share the plugin's own cores when no spare one
        // is left: never a server thread's.
        let _ = pool::start(&mut slots[free], spare, false, why, now);
        u.step = Some((free, old));
    }
}

fn live_slots(slots: &[Instance]) -> Vec<usize> {
    (0..slots.len())
        .filter(|&i| pool::is_live(&slots[i]))
        .collect()
}
