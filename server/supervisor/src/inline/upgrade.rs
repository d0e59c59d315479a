//! An inline slot's steps of an overlapped upgrade (the queue is
//! `crate::upgrade`'s): the new module's serve thread starts on the free
//! slot (its own rings) and takes the new calls at once; the old slot
//! takes none from then on (`InstanceStatus::deactivate`, the drain
//! process instances use), its thread serves what it holds, and is stopped
//! once nothing is in flight. A module that does not load stops the
//! upgrade there, the old threads keep serving.
//!
//! A call stuck in an old handler holds the drain for at most the plugin's
//! `stop-timeout-ms`; the thread is then asked to stop and, if it still has
//! not returned one stop timeout later, left detached (see `super`).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::super::pool::DRAIN_TIMEOUT;
use super::super::shared::InstanceState;
use super::super::upgrade::{Progress, SlotId, UpgradeSlot, Upgrades};
use super::InlineInstance;

pub type InlineUpgrades = Upgrades<InlineInstance>;

impl UpgradeSlot for InlineInstance {
    type Ctx = ();
    /// (the slot draining, when its drain is given up on)
    type Step = (usize, Instant);

    fn id(&self) -> SlotId<'_> {
        SlotId {
            plugin: self.plugin,
            index: self.index,
            shared: &self.shared,
        }
    }

    fn is_live(&self) -> bool {
        InlineInstance::is_live(self)
    }

    fn is_free(&self) -> bool {
        InlineInstance::is_free(self)
    }

    fn begin(
        slots: &mut [Self],
        free: usize,
        old: usize,
        _: &mut (),
        now: Instant,
    ) -> Option<(usize, Instant)> {
        let started = slots[free]
            .load()
            .map_err(|e| e.to_string())
            .and_then(|m| slots[free].start(m).map_err(|e| e.to_string()));
        if let Err(e) = started {
            slots[0].shared.note_change(format!(
                "upgrade stopped: instance {free} cannot serve the new module ({e}); the old ones keep serving"
            ));
            slots[free].status().deactivate();
            return None;
        }
        slots[free].status().reloads.fetch_add(1, Relaxed);
        let retiring = &mut slots[old];
        retiring.retiring = true;
        retiring.status().deactivate();
        retiring.inputs.close();
        retiring.status().set_state(InstanceState::Stopping);
        let give_up = now + retiring.shared.config.stop_timeout;
        slots[0].shared.note_change(format!(
            "upgraded: instance {free} took over from instance {old}"
        ));
        Some((old, give_up))
    }

    fn settle(&(old, give_up): &(usize, Instant), slots: &mut [Self], now: Instant) -> Progress {
        if drained(&mut slots[old], give_up, now) {
            Progress::Done
        } else {
            Progress::Pending
        }
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
        // A later stage's inputs: calls the stage before still has open in
        // them finish there (bounded as a process slot's drain is).
        if !old.inputs.drained() && now < give_up + DRAIN_TIMEOUT {
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
