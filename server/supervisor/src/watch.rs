//! The supervisor thread: waits on every plugin's pidfd and its control
//! doorbell; restarts crashed plugins after their backoff, replaces them on
//! reload, and drains them at shutdown (inline plugins' threads too).

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_proto::ring::wait_any;
use citadel_proto::{EventFd, SpinPolicy, Wakeup};

use super::elastic;
use super::gray;
use super::hub::Control;
use super::inline::{self, InlineInstance, InlineUpgrades};
use super::pool::{self, SpareCores};
use super::process::{Instance, Intent, Phase};
use super::scale_rule::SAMPLE_EVERY;
use super::shared::PluginShared;
use super::upgrade::{UpgradeSlot, Upgrades};
use super::StopFlag;

/// Longest wait without a timer; also the poll period when pidfds are missing.
const IDLE_WAIT: Duration = Duration::from_secs(1);
const POLL_WAIT: Duration = Duration::from_millis(20);

pub fn run(
    mut instances: Vec<Instance>,
    mut inline: Vec<InlineInstance>,
    control: Receiver<Control>,
    doorbell: EventFd,
    stopping: StopFlag,
    mut spare: SpareCores,
) {
    let mut shutting_down = false;
    let mut scalers = elastic::scalers(&instances, Instant::now());
    let mut upgrades = Upgrades::<Instance>::default();
    let mut inline_upgrades = InlineUpgrades::default();
    let mut next_check = Instant::now() + gray::CHECK_EVERY;
    let plugins = every_plugin(&instances, &inline);
    let rules = gray::has_rules(&plugins);
    loop {
        let now = Instant::now();
        while let Ok(c) = control.try_recv() {
            match c {
                Control::Reload(which) if !shutting_down => {
                    reload(&mut instances, &mut upgrades, which, |inst| {
                        tracing::info!(plugin = %inst.name(), instance = inst.index, "reloading plugin");
                        inst.terminate(Intent::Reload, now);
                    });
                    reload(&mut inline, &mut inline_upgrades, which, |inst| {
                        tracing::info!(plugin = %inst.name(), instance = inst.index, "reloading inline plugin");
                        inst.reload();
                    });
                }
                Control::Reload(_) | Control::Weights => {}
                Control::Shutdown => {
                    shutting_down = true;
                    for inst in &mut instances {
                        inst.terminate(Intent::Stop, now);
                    }
                    inline::stop_all(&mut inline);
                }
            }
        }
        let stop_restarts = shutting_down || stopping();
        if rules && !stop_restarts && now >= next_check {
            gray::check_rollbacks(&plugins, now);
            next_check = now + gray::CHECK_EVERY;
        }
        let draining = !stop_restarts
            && (gray::reconcile(&mut instances, now) | inline::reconcile(&mut inline, now));
        let mut moving = false;
        if !stop_restarts {
            let process_of = plugin_ids(&instances);
            for p in dedup(&process_of) {
                let slots = &mut instances[slots_of(&process_of, p)];
                upgrades.advance(slots, &mut spare, now);
            }
            if inline_upgrades.is_busy() {
                let inline_of = plugin_ids(&inline);
                for p in dedup(&inline_of) {
                    inline_upgrades.advance(&mut inline[slots_of(&inline_of, p)], &mut (), now);
                }
            }
            moving = pool::advance(&mut instances, &mut spare, now);
            for scaler in &mut scalers {
                let p = scaler.plugin();
                let slots = &mut instances[slots_of(&process_of, p)];
                let settled =
                    !upgrades.is_upgrading(p) && slots.iter().all(|i| i.phase == Phase::Steady);
                scaler.tick(slots, &mut spare, settled, now);
            }
        }
        for inst in &mut instances {
            if let Some(status) = inst.try_reap() {
                inst.exited(status, stop_restarts, now);
            }
            if inst.kill_at.is_some_and(|t| t <= now) {
                inst.kill();
            }
            if !stop_restarts {
                inst.restart_due(now);
            }
        }
        if shutting_down && instances.iter().all(|i| !i.is_running()) {
            return;
        }
        let mut timer = rules.then_some(next_check);
        if !scalers.is_empty() && !stop_restarts {
            timer = Some(timer.map_or(now + SAMPLE_EVERY, |t| t.min(now + SAMPLE_EVERY)));
        }
        if draining || moving || upgrades.is_busy() || inline_upgrades.is_busy() {
            timer = Some(now + POLL_WAIT);
        }
        wait(&instances, &doorbell, now, timer);
    }
}

/// Reload of plugin `which` (None: all), process or inline: an
/// overlapped upgrade where the plugin has a spare slot, else each
/// instance replaced in place by `in_place` (its calls wait in the rings
/// for the new one).
fn reload<T: UpgradeSlot>(
    slots: &mut [T],
    upgrades: &mut Upgrades<T>,
    which: Option<usize>,
    mut in_place: impl FnMut(&mut T),
) {
    let plugins = plugin_ids(slots);
    for p in dedup(&plugins) {
        if which.is_some_and(|w| w != p) {
            continue;
        }
        let slots = &mut slots[slots_of(&plugins, p)];
        if slots[0].id().shared.config.spare_slot {
            upgrades.request(slots);
            continue;
        }
        slots.iter_mut().for_each(&mut in_place);
    }
}

/// Every plugin once, process and inline (its first instance's state).
fn every_plugin(instances: &[Instance], inline: &[InlineInstance]) -> Vec<Arc<PluginShared>> {
    let process = instances.iter().filter(|i| i.index == 0).map(|i| &i.shared);
    let inline = inline.iter().filter(|i| i.index == 0).map(|i| &i.shared);
    process.chain(inline).cloned().collect()
}

/// Each slot's plugin, in order.
fn plugin_ids<T: UpgradeSlot>(slots: &[T]) -> Vec<usize> {
    slots.iter().map(|i| i.id().plugin).collect()
}

/// `plugins` (kept together, in order), each once.
fn dedup(plugins: &[usize]) -> Vec<usize> {
    let mut out = plugins.to_vec();
    out.dedup();
    out
}

/// Plugin `p`'s slots (the supervisor keeps them together, in order).
fn slots_of(plugins: &[usize], p: usize) -> std::ops::Range<usize> {
    let start = plugins
        .iter()
        .position(|&q| q == p)
        .unwrap_or(plugins.len());
    let len = plugins[start..].iter().take_while(|&&q| q == p).count();
    start..start + len
}

/// Sleeps until a plugin exits, a control request arrives or a timer is due.
fn wait(instances: &[Instance], doorbell: &EventFd, now: Instant, timer: Option<Instant>) {
    let mut timeout = if instances.iter().all(Instance::watched) {
        IDLE_WAIT
    } else {
        POLL_WAIT
    };
    for t in instances
        .iter()
        .flat_map(|i| [i.restart_at, i.kill_at])
        .chain([timer])
        .flatten()
    {
        timeout = timeout.min(t.saturating_duration_since(now));
    }
    let mut fds: Vec<BorrowedFd<'_>> = vec![doorbell.as_fd()];
    fds.extend(instances.iter().filter_map(Instance::pidfd));
    match wait_any(&[], &fds, SpinPolicy::PARK_AT_ONCE, Some(timeout)) {
        Ok(Wakeup::Extra(0)) => {
            let _ = doorbell.drain();
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!("plugin supervisor wait: {e}");
            std::thread::sleep(POLL_WAIT);
        }
    }
}
