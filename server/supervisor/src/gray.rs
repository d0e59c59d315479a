//! The supervisor's side of a gray release: keeping each version's
//! processes in line with its weight (a version at weight 0 is drained,
//! then stopped; one given weight again is started) and the automatic
//! rollback rule's periodic check.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::process::{Instance, Intent, Phase};
use super::shared::PluginShared;

/// How often the rollback rules are checked.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Starts or drains instances after weight changes; returns true while
/// some instance is draining (the caller polls then).
pub fn reconcile(instances: &mut [Instance], now: Instant) -> bool {
    let mut draining = false;
    for at in 0..instances.len() {
        let shared = instances[at].shared.clone();
        let cfg = &shared.config;
        if cfg.versions.len() < 2 {
            continue;
        }
        let version = &shared.traffic.versions[cfg.version_of(instances[at].index)];
        if version.weight.load(Relaxed) > 0 {
            let short = in_use(instances, at) < cfg.running.max;
            let inst = &mut instances[at];
            if inst.intent == Intent::Stop && !inst.is_running() && short {
                tracing::info!(plugin = %inst.name(), version = %version.name, instance = inst.index, "version has weight again; starting it");
                inst.intent = Intent::Run;
                inst.restart_at = Some(now);
                // It takes calls once attached (`pool::advance`).
                inst.phase = Phase::Warming {
                    since: now,
                    why: format!("version {} has weight again", version.name),
                };
            } else if inst.intent == Intent::Run
                && inst.phase == Phase::Steady
                && !inst.status().is_active()
            {
                // Given weight again while it was draining.
                inst.status().activate();
            }
            continue;
        }
        let inst = &mut instances[at];
        if inst.intent == Intent::Stop || inst.phase != Phase::Steady {
            continue;
        }
        draining = true;
        // No new calls, then none in flight: nothing can reach it any more
        // (`InstanceStatus::try_enter`), so it may stop.
        if inst.status().deactivate() == 0 {
            tracing::info!(plugin = %inst.name(), version = %version.name, instance = inst.index, "version drained at weight 0; stopping it");
            inst.terminate(Intent::Stop, now);
        }
    }
    draining
}

/// The slots of `instances[at]`'s version (same plugin) that run or are on
/// their way in or out. A version with weight starts stopped slots only
/// up to its instance count: the rest are parked spares, kept free for an
/// overlapped upgrade (`upgrade.rs`), not a version at weight 0.
fn in_use(instances: &[Instance], at: usize) -> usize {
    let of = |i: &Instance| (i.plugin, i.shared.config.version_of(i.index));
    let version = of(&instances[at]);
    instances
        .iter()
        .filter(|i| of(i) == version)
        .filter(|i| i.intent != Intent::Stop || i.is_running() || i.phase != Phase::Steady)
        .count()
}

/// Checks every plugin's rollback rule (process and inline alike) and
/// takes each broken version out of traffic.
pub fn check_rollbacks(plugins: &[Arc<PluginShared>], now: Instant) {
    for shared in plugins {
        let Some(rule) = &shared.config.rollback else {
            continue;
        };
        let name = &shared.config.name;
        let traffic = &shared.traffic;
        for (v, reason) in traffic.check(rule, now) {
            let version = &traffic.versions[v].name;
            match traffic.auto_rollback(v, &reason) {
                Ok(()) => {
                    tracing::warn!(plugin = %name, %version, %reason, "automatic rollback: version taken out of traffic")
                }
                Err(e) => {
                    tracing::warn!(plugin = %name, %version, %reason, "automatic rollback not possible: {e}")
                }
            }
        }
    }
}

/// True when some plugin has a rollback rule (the loop wakes to check it).
pub fn has_rules(plugins: &[Arc<PluginShared>]) -> bool {
    plugins.iter().any(|p| p.config.rollback.is_some())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::config::two_versions_for_tests;

    /// Two versions of two instances, each with its spare slot; nothing
    /// is spawned (reconcile only sets intents).
    fn two_versions() -> Vec<Instance> {
        let c = two_versions_for_tests(2);
        let shared = Arc::new(PluginShared::new(c, Vec::new(), 1));
        (0..shared.config.instances)
            .map(|i| {
                let cmd = Command::new("/bin/true");
                let mut inst = Instance::new(shared.clone(), 0, i, cmd, Vec::new());
                if !shared.config.starts_running(i) {
                    inst.park();
                }
                inst
            })
            .collect()
    }

    fn intents(slots: &[Instance]) -> Vec<Intent> {
        slots.iter().map(|i| i.intent).collect()
    }

    #[test]
    fn a_parked_spare_is_not_a_version_at_weight_0() {
        use Intent::{Run, Stop};
        let mut slots = two_versions();
        let now = Instant::now();
        assert_eq!(intents(&slots), [Run, Run, Stop, Run, Run, Stop]);
        // Both versions have weight: the spares stay parked.
        reconcile(&mut slots, now);
        assert_eq!(intents(&slots), [Run, Run, Stop, Run, Run, Stop]);
        // v2 at weight 0: its running slots drain and stop.
        let shared = slots[0].shared.clone();
        let weight = &shared.traffic.versions[1].weight;
        weight.store(0, Relaxed);
        assert!(reconcile(&mut slots, now), "draining");
        assert_eq!(intents(&slots), [Run, Run, Stop, Stop, Stop, Stop]);
        // Weight again: as many start as the version runs, the third slot
        // is its spare again.
        weight.store(50, Relaxed);
        reconcile(&mut slots, now);
        assert_eq!(intents(&slots), [Run, Run, Stop, Run, Run, Stop]);
    }
}
