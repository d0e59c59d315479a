//! The supervisor thread: waits on every plugin's pidfd and its control
//! doorbell; restarts crashed plugins after their backoff, replaces them on
//! reload, and drains them at shutdown (inline plugins' threads too).

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use citadel_proto::ring::wait_any;
use citadel_proto::{EventFd, SpinPolicy, Wakeup};

use super::gray;
use super::hub::Control;
use super::inline::{self, InlineInstance};
use super::process::{Instance, Intent};
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
) {
    let mut shutting_down = false;
    let mut next_check = Instant::now() + gray::CHECK_EVERY;
    let rules = gray::has_rules(&instances);
    loop {
        let now = Instant::now();
        while let Ok(c) = control.try_recv() {
            match c {
                Control::Reload(which) if !shutting_down => {
                    for inst in instances
                        .iter_mut()
                        .filter(|i| which.is_none_or(|w| plugin_index(i) == w))
                    {
                        tracing::info!(plugin = %inst.name(), instance = inst.index, "reloading plugin");
                        inst.terminate(Intent::Reload, now);
                    }
                    for inst in inline
                        .iter_mut()
                        .filter(|i| which.is_none_or(|w| i.plugin == w))
                    {
                        tracing::info!(plugin = %inst.name(), instance = inst.index, "reloading inline plugin");
                        inst.reload();
                    }
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
            gray::check_rollbacks(&instances, now);
            next_check = now + gray::CHECK_EVERY;
        }
        let draining = !stop_restarts && gray::reconcile(&mut instances, now);
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
        if draining {
            timer = Some(now + POLL_WAIT);
        }
        wait(&instances, &doorbell, now, timer);
    }
}

fn plugin_index(inst: &Instance) -> usize {
    inst.plugin
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
