//! A plugin's instance slots as the supervisor grows, shrinks and upgrades
//! them. A slot is started (on a spare core when the plugin's cores are
//! automatic) and takes calls only once its process has attached to every
//! one of its rings, so no call waits for a process start; it is retired by
//! taking no new calls, waiting until none is in flight (an explicit
//! condition, see `InstanceStatus::try_enter`) and, for a later pipeline
//! stage, until its gated inputs are drained (`inputs.rs`), and only then
//! stopping it, so no call is cut off.

use std::time::{Duration, Instant};

use citadel_settings::Cores;

use super::process::{Instance, Intent, Phase};

/// A started process that has not attached to its rings by then is
/// stopped (and its start counted as failed).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A retiring instance still holding calls after this long is stopped
/// anyway (logged): its calls were sent long before and have timed out
/// or are about to; SIGTERM still lets it finish the ones in hand.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Cores no server thread and no plugin runs on: an elastic instance of a
/// plugin with automatic cores takes one, and gives it back when it stops.
#[derive(Debug, Default)]
pub struct SpareCores(pub Vec<usize>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("no spare core (every core runs a server thread or a plugin)")]
pub struct NoSpareCore;

/// True when a slot of this plugin needs a core of its own to run.
fn needs_core(inst: &Instance) -> bool {
    inst.shared.config.cores == Cores::Auto && !inst.shared.cores.is_empty()
}

impl SpareCores {
    /// A core for `inst` if it needs one: Err when none is spare.
    fn claim(&mut self, inst: &mut Instance) -> Result<(), NoSpareCore> {
        if needs_core(inst) && inst.core.is_none() {
            inst.core = Some(self.0.pop().ok_or(NoSpareCore)?);
        }
        Ok(())
    }

    fn give_back(&mut self, inst: &mut Instance) {
        if let Some(core) = inst.core.take() {
            self.0.push(core);
        }
    }
}

/// True when slot `inst` is free: not running, taking no calls, settled.
pub fn is_free(inst: &Instance) -> bool {
    !inst.is_running() && !inst.status().is_active() && inst.phase == Phase::Steady
}

/// True when `inst` serves calls and is not on its way in or out.
pub fn is_live(inst: &Instance) -> bool {
    inst.status().is_active() && inst.phase == Phase::Steady
}

/// Starts the process of free slot `inst`; it takes calls once attached.
/// `need_core`: fail without a spare core (growth) rather than share the
/// plugin's own cores (an upgrade's replacement may share them).
pub fn start(
    inst: &mut Instance,
    spare: &mut SpareCores,
    need_core: bool,
    why: String,
    now: Instant,
) -> Result<(), NoSpareCore> {
    if let Err(e) = spare.claim(inst) {
        if need_core {
            return Err(e);
        }
    }
    tracing::info!(plugin = %inst.name(), instance = inst.index, core = ?inst.core, %why, "starting an instance");
    inst.intent = Intent::Run;
    inst.restart_at = Some(now);
    inst.phase = Phase::Warming { since: now, why };
    inst.restart_due(now);
    Ok(())
}

/// Takes no new calls on `inst`; it stops once none is in flight.
pub fn retire(inst: &mut Instance, why: String, now: Instant) {
    let in_flight = inst.status().deactivate();
    inst.inputs.close();
    tracing::info!(plugin = %inst.name(), instance = inst.index, in_flight, %why, "retiring an instance");
    inst.phase = Phase::Retiring { since: now, why };
}

/// Moves every slot's phase on; returns true while some slot is warming
/// or retiring (the caller then polls).
pub fn advance(instances: &mut [Instance], spare: &mut SpareCores, now: Instant) -> bool {
    let mut moving = false;
    for inst in instances.iter_mut() {
        match inst.phase.clone() {
            Phase::Steady => {}
            Phase::Warming { since, why } => {
                moving = true;
                if inst.is_attached() {
                    inst.inputs.open();
                    inst.status().activate();
                    inst.phase = Phase::Steady;
                    let shared = inst.shared.clone();
                    let core = inst.core.map(|c| format!(", on spare core {c}"));
                    shared.note_change(format!(
                        "instance {} takes calls ({why}); {} running{}",
                        inst.index,
                        shared.active_instances(),
                        core.unwrap_or_default(),
                    ));
                } else if now.duration_since(since) >= READY_TIMEOUT {
                    tracing::error!(plugin = %inst.name(), instance = inst.index, "the new instance did not attach to its rings in {READY_TIMEOUT:?}; stopping it");
                    inst.phase = Phase::Steady;
                    inst.terminate(Intent::Stop, now);
                }
            }
            Phase::Retiring { since, why } => {
                moving = true;
                let in_flight = inst.status().in_flight();
                let late = now.duration_since(since) >= DRAIN_TIMEOUT;
                if (in_flight == 0 && inst.inputs.drained()) || late {
                    if late {
                        tracing::warn!(plugin = %inst.name(), instance = inst.index, in_flight, "a retiring instance still holds calls after {DRAIN_TIMEOUT:?}; stopping it anyway");
                    }
                    inst.phase = Phase::Steady;
                    inst.terminate(Intent::Stop, now);
                    let shared = inst.shared.clone();
                    shared.note_change(format!(
                        "instance {} stopped ({why}); {} running",
                        inst.index,
                        shared.active_instances(),
                    ));
                }
            }
        }
        if inst.intent == Intent::Stop && !inst.is_running() && inst.core.is_some() {
            spare.give_back(inst);
        }
    }
    moving
}
