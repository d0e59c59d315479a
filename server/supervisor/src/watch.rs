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
use super::upgrade::Upgrades;
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
                    reload(&mut instances, &mut upgrades, which, now);
                    reload_inline(&mut inline, &mut inline_upgrades, which);
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
            let plugins = instances_plugins(&instances);
            for p in plugins_of(&instances) {
                let slots = &mut instances[slots_of(&plugins, p)];
                upgrades.advance(slots, &mut spare, now);
            }
            let inline_of = inline_plugins(&inline);
            for p in dedup(&inline_of) {
                inline_upgrades.advance(&mut inline[slots_of(&inline_of, p)], &mut (), now);
            }
            moving = pool::advance(&mut instances, &mut spare, now);
            for scaler in &mut scalers {
                let p = scaler.plugin();
                let slots = &mut instances[slots_of(&plugins, p)];
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

/// Reload of plugin `which` (None: all): an overlapped upgrade where the
/// plugin has a spare slot, else each process replaced in place (its
/// calls wait in the rings for the new one).
fn reload(
    instances: &mut [Instance],
    upgrades: &mut Upgrades<Instance>,
    which: Option<usize>,
    now: Instant,
) {
    let plugins = instances_plugins(instances);
    for p in plugins_of(instances) {
        if which.is_some_and(|w| w != p) {
            continue;
        }
        let slots = &mut instances[slots_of(&plugins, p)];
        if slots[0].shared.config.spare_slot {
            upgrades.request(slots);
            continue;
        }
        for inst in slots.iter_mut() {
            tracing::info!(plugin = %inst.name(), instance = inst.index, "reloading plugin");
            inst.terminate(Intent::Reload, now);
        }
    }
}

/// Reload of inline plugin `which` (None: all): overlapped where the
/// plugin has a spare slot, else each thread replaced in place.
fn reload_inline(
    inline: &mut [InlineInstance],
    upgrades: &mut InlineUpgrades,
    which: Option<usize>,
) {
    let plugins = inline_plugins(inline);
    for p in dedup(&plugins) {
        if which.is_some_and(|w| w != p) {
            continue;
        }
        let slots = &mut inline[slots_of(&plugins, p)];
        if slots[0].shared.config.spare_slot {
            upgrades.request(slots);
            continue;
        }
        for inst in slots.iter_mut() {
            tracing::info!(plugin = %inst.name(), instance = inst.index, "reloading inline plugin");
            inst.reload();
        }
    }
}

/// Every plugin once, process and inline (its first instance's state).
fn every_plugin(instances: &[Instance], inline: &[InlineInstance]) -> Vec<Arc<PluginShared>> {
    let process = instances.iter().filter(|i| i.index == 0).map(|i| &i.shared);
    let inline = inline.iter().filter(|i| i.index == 0).map(|i| &i.shared);
    process.chain(inline).cloned().collect()
}

/// Each instance's plugin, in order.
fn instances_plugins(instances: &[Instance]) -> Vec<usize> {
    instances.iter().map(|i| i.plugin).collect()
}

/// Each inline instance's plugin, in order.
fn inline_plugins(inline: &[InlineInstance]) -> Vec<usize> {
    inline.iter().map(|i| i.plugin).collect()
}

/// The plugins, each once.
fn plugins_of(instances: &[Instance]) -> Vec<usize> {
    dedup(&instances_plugins(instances))
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
