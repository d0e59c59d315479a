//! Overlapped upgrade (PLUGIN RELOAD, SIGHUP) of a plugin with spare
//! slots (one per version), process and inline alike, one instance at a
//! time: the new instance starts in a free slot of the old one's version
//! while the old one keeps serving; once the new one takes calls, the old
//! one takes none, finishes the calls it holds (nothing in flight) and
//! stops, and its slot is the spare for the next step. No call waits for
//! a start and none fails. A new instance that never comes up stops the
//! upgrade there; the old instances keep serving.
//!
//! The queue (one upgrade per plugin, a reload asked for during one runs
//! again after it) is shared; how a step starts and ends is the slot
//! kind's ([`UpgradeSlot`]): a process here, an inline thread in
//! `inline/upgrade.rs`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use super::pool::{self, SpareCores};
use super::process::{Instance, Phase};
use super::shared::PluginShared;

/// How far a step has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Pending,
    /// The new instance serves; the old one is retired (or gone).
    Done,
    /// The new instance did not come up: the upgrade stops.
    Failed,
}

/// Which slot: its plugin (config order), its index, the plugin's state.
pub struct SlotId<'a> {
    pub plugin: usize,
    pub index: usize,
    pub shared: &'a Arc<PluginShared>,
}

/// A kind of instance slot an upgrade replaces.
pub trait UpgradeSlot: Sized {
    /// What starting a step needs beyond the slots.
    type Ctx;
    /// A step in progress.
    type Step;
    fn id(&self) -> SlotId<'_>;
    /// It serves calls and is not on its way in or out.
    fn is_live(&self) -> bool;
    /// Nothing runs in it and it takes no calls.
    fn is_free(&self) -> bool;
    /// Starts the replacement of `old` in free slot `free`; None when it
    /// cannot start (the upgrade stops).
    fn begin(
        slots: &mut [Self],
        free: usize,
        old: usize,
        ctx: &mut Self::Ctx,
        now: Instant,
    ) -> Option<Self::Step>;
    /// Moves a step on.
    fn settle(step: &Self::Step, slots: &mut [Self], now: Instant) -> Progress;
}

/// One plugin's upgrade in progress.
struct Upgrade<S> {
    plugin: usize,
    /// Slots still running the old executable or module, in order.
    old: Vec<usize>,
    step: Option<S>,
    /// Another reload was asked for meanwhile: run again when done.
    again: bool,
}

/// The upgrades in progress, one per plugin.
pub struct Upgrades<T: UpgradeSlot>(Vec<Upgrade<T::Step>>);

impl<T: UpgradeSlot> Default for Upgrades<T> {
    fn default() -> Self {
        Upgrades(Vec::new())
    }
}

impl<T: UpgradeSlot> Upgrades<T> {
    /// Starts upgrading the plugin whose slots are `slots`.
    pub fn request(&mut self, slots: &[T]) {
        let plugin = slots[0].id().plugin;
        if let Some(u) = self.0.iter_mut().find(|u| u.plugin == plugin) {
            u.again = true;
            return;
        }
        let name = &slots[0].id().shared.config.name;
        tracing::info!(plugin = %name, "upgrading: new instances start beside the old ones");
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
    pub fn advance(&mut self, slots: &mut [T], ctx: &mut T::Ctx, now: Instant) {
        let plugin = slots[0].id().plugin;
        let Some(at) = self.0.iter().position(|u| u.plugin == plugin) else {
            return;
        };
        if !step(&mut self.0[at], slots, ctx, now) {
            self.0.remove(at);
        }
    }
}

/// Moves `u` on as far as it can now; false once it is over.
fn step<T: UpgradeSlot>(
    u: &mut Upgrade<T::Step>,
    slots: &mut [T],
    ctx: &mut T::Ctx,
    now: Instant,
) -> bool {
    if let Some(s) = &u.step {
        match T::settle(s, slots, now) {
            Progress::Pending => return true,
            Progress::Failed => return false,
            Progress::Done => u.step = None,
        }
    }
    loop {
        let Some(&old) = u.old.first() else {
            if !u.again {
                tracing::info!(plugin = %slots[0].id().shared.config.name, "upgrade done");
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
        // The replacement runs the old one's version (a slot's version is
        // fixed by its index).
        let config = &slots[0].id().shared.config;
        let version = config.version_of(slots[old].id().index);
        let Some(free) = (0..slots.len())
            .find(|&i| slots[i].is_free() && config.version_of(slots[i].id().index) == version)
        else {
            // The slot the last step retired is still draining (or a
            // detached inline thread still holds it).
            return true;
        };
        u.old.remove(0);
        u.step = T::begin(slots, free, old, ctx, now);
        return u.step.is_some();
    }
}

fn live_slots<T: UpgradeSlot>(slots: &[T]) -> Vec<usize> {
    (0..slots.len()).filter(|&i| slots[i].is_live()).collect()
}

/// A process slot: the new process warms up in the free slot and takes
/// calls once attached to its rings (`pool::advance`); then the old one
/// retires (drains, then stops).
impl UpgradeSlot for Instance {
    type Ctx = SpareCores;
    /// (the new slot, the slot it replaces)
    type Step = (usize, usize);

    fn id(&self) -> SlotId<'_> {
        SlotId {
            plugin: self.plugin,
            index: self.index,
            shared: &self.shared,
        }
    }

    fn is_live(&self) -> bool {
        pool::is_live(self)
    }

    fn is_free(&self) -> bool {
        pool::is_free(self)
    }

    fn begin(
        slots: &mut [Self],
        free: usize,
        old: usize,
        spare: &mut SpareCores,
        now: Instant,
    ) -> Option<(usize, usize)> {
        let why = format!("upgrade of instance {old}");
        // A replacement may share the plugin's own cores when no spare one
        // is left: never a server thread's.
        let _ = pool::start(&mut slots[free], spare, false, why, now);
        Some((free, old))
    }

    fn settle(&(new, old): &(usize, usize), slots: &mut [Self], now: Instant) -> Progress {
        if slots[new].phase != Phase::Steady {
            return Progress::Pending;
        }
        if !slots[new].status().is_active() {
            slots[0].shared.note_change(
                "upgrade stopped: the new process did not start; the old ones keep serving".into(),
            );
            return Progress::Failed;
        }
        slots[new].status().reloads.fetch_add(1, Relaxed);
        if pool::is_live(&slots[old]) {
            let why = format!("upgraded: instance {new} took over");
            pool::retire(&mut slots[old], why, now);
        }
        Progress::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::two_versions_for_tests;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum State {
        Live,
        Free,
        Warming,
        Draining,
    }

    /// A slot whose start and drain the test moves by hand.
    struct Fake {
        index: usize,
        shared: Arc<PluginShared>,
        state: State,
    }

    impl UpgradeSlot for Fake {
        /// The (new, old) pairs started, in order.
        type Ctx = Vec<(usize, usize)>;
        type Step = (usize, usize);

        fn id(&self) -> SlotId<'_> {
            SlotId {
                plugin: 0,
                index: self.index,
                shared: &self.shared,
            }
        }

        fn is_live(&self) -> bool {
            self.state == State::Live
        }

        fn is_free(&self) -> bool {
            self.state == State::Free
        }

        fn begin(
            slots: &mut [Self],
            free: usize,
            old: usize,
            started: &mut Self::Ctx,
            _: Instant,
        ) -> Option<(usize, usize)> {
            slots[free].state = State::Warming;
            started.push((free, old));
            Some((free, old))
        }

        fn settle(&(new, old): &(usize, usize), slots: &mut [Self], _: Instant) -> Progress {
            slots[new].state = State::Live;
            slots[old].state = State::Draining;
            Progress::Done
        }
    }

    /// Two versions of two instances and a spare each.
    fn slots() -> Vec<Fake> {
        let c = two_versions_for_tests(2);
        let shared = Arc::new(PluginShared::new(c, Vec::new(), 1));
        (0..shared.config.instances)
            .map(|index| Fake {
                index,
                state: if shared.config.starts_running(index) {
                    State::Live
                } else {
                    State::Free
                },
                shared: shared.clone(),
            })
            .collect()
    }

    /// Runs the upgrades to the end (a drained slot is free at the next
    /// turn); the replacements started.
    fn run(upgrades: &mut Upgrades<Fake>, slots: &mut [Fake]) -> Vec<(usize, usize)> {
        let mut started = Vec::new();
        while upgrades.is_busy() {
            upgrades.advance(slots, &mut started, Instant::now());
            for s in slots.iter_mut().filter(|s| s.state == State::Draining) {
                s.state = State::Free;
            }
        }
        started
    }

    #[test]
    fn each_instance_is_replaced_in_a_free_slot_of_its_version() {
        use State::{Free, Live};
        let mut slots = slots();
        let mut upgrades = Upgrades::default();
        upgrades.request(&slots);
        assert_eq!(
            run(&mut upgrades, &mut slots),
            [(2, 0), (0, 1), (5, 3), (3, 4)]
        );
        let states: Vec<State> = slots.iter().map(|s| s.state).collect();
        assert_eq!(states, [Live, Free, Live, Live, Free, Live]);
        // A reload asked for during one runs again after it.
        upgrades.request(&slots);
        upgrades.request(&slots);
        assert_eq!(run(&mut upgrades, &mut slots).len(), 8);
    }
}
