//! What every thread (and the supervisor) knows about one plugin: its
//! configuration, cores, per-instance process status and call statistics.

use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use super::config::PluginConfig;
use super::stats::CallStats;
use super::versions::Traffic;

/// Life cycle of one plugin process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InstanceState {
    Starting = 0,
    Running = 1,
    /// Crashed; restarting after the backoff delay.
    Backoff = 2,
    /// Hot upgrade: the old process is finishing its request.
    Reloading = 3,
    /// Graceful stop: finishing in-flight work before exiting.
    Stopping = 4,
    Stopped = 5,
    /// An inline instance whose serve call did not return within its stop
    /// timeout: left running, taking no calls (see `inline`).
    Detached = 6,
}

impl InstanceState {
    pub fn name(self) -> &'static str {
        match self {
            InstanceState::Starting => "starting",
            InstanceState::Running => "running",
            InstanceState::Backoff => "backoff",
            InstanceState::Reloading => "reloading",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Detached => "detached",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => InstanceState::Starting,
            1 => InstanceState::Running,
            2 => InstanceState::Backoff,
            3 => InstanceState::Reloading,
            4 => InstanceState::Stopping,
            6 => InstanceState::Detached,
            _ => InstanceState::Stopped,
        }
    }
}

/// One plugin process, as the supervisor reports it.
#[derive(Debug, Default)]
pub struct InstanceStatus {
    /// 0 while no process runs.
    pub pid: AtomicU32,
    state: AtomicU8,
    /// Unexpected exits (crashes, kills) so far.
    pub restarts: AtomicU64,
    /// Hot upgrades so far.
    pub reloads: AtomicU64,
    /// Inline serve calls left running detached past the stop timeout.
    pub detached: AtomicU64,
    /// Calls sent to it and not yet answered (all server threads).
    pub in_flight: AtomicU64,
    /// It takes new calls (false: a spare slot, one warming up, or one
    /// draining before it stops). See [`InstanceStatus::try_enter`].
    active: AtomicBool,
    /// Moving average of its call latency (µs, weight 1/8 per reply; 0
    /// before its first): what latency-aware balancing compares.
    pub ewma_us: AtomicU64,
    /// When it last answered (`clock_ms`): the average fades while it is
    /// not asked (see [`DECAY_HALF_LIFE_MS`]).
    pub observed_ms: AtomicU64,
}

/// An instance's latency average halves for every this many ms it went
/// without a reply, so one that was slow, and so stopped being chosen, is
/// tried again after a while and its average learnt anew instead of
/// keeping it out for good.
pub const DECAY_HALF_LIFE_MS: u64 = 5000;

/// Milliseconds on a process-wide monotonic clock.
pub fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

impl InstanceStatus {
    /// A server thread's claim on this instance for one call: counts the
    /// call in flight, then checks the instance still takes calls (if not,
    /// the count is undone and false returned).
    pub fn try_enter(&self) -> bool {
        // ORDERING: SeqCst pairs with `deactivate`'s SeqCst store and
        // in-flight load (Dekker): either this thread sees the instance
        // inactive, or the supervisor sees this call in flight, never
        // neither, so "inactive and nothing in flight" means no call can
        // still arrive.
        self.in_flight.fetch_add(1, SeqCst);
        if self.active.load(SeqCst) {
            return true;
        }
        self.leave();
        false
    }

    /// Undoes a `try_enter` (the call was not sent, or it ended).
    pub fn leave(&self) {
        self.in_flight.fetch_sub(1, SeqCst);
    }

    pub fn is_active(&self) -> bool {
        // ORDERING: Relaxed; a hint for choosing (try_enter decides).
        self.active.load(Relaxed)
    }

    /// It takes new calls from now on.
    pub fn activate(&self) {
        // ORDERING: SeqCst, as in try_enter (no pairing needed to start
        // sending; kept uniform).
        self.active.store(true, SeqCst);
    }

    /// No new calls; returns the calls still in flight at this moment.
    /// Once it has returned 0 (or `in_flight()` has, after it), no call
    /// will reach the instance again until it is activated.
    pub fn deactivate(&self) -> u64 {
        // ORDERING: SeqCst, paired with try_enter (see there).
        self.active.store(false, SeqCst);
        self.in_flight()
    }

    /// Calls in flight to it (all threads).
    pub fn in_flight(&self) -> u64 {
        // ORDERING: SeqCst, paired with try_enter (see there).
        self.in_flight.load(SeqCst)
    }

    pub fn state(&self) -> InstanceState {
        InstanceState::from_u8(self.state.load(Relaxed))
    }

    pub fn set_state(&self, s: InstanceState) {
        self.state.store(s as u8, Relaxed);
    }

    /// Takes one reply's latency into the moving average (threads race on
    /// it; a lost update only delays the average by one sample).
    pub fn observe_latency(&self, us: u64) {
        let now = clock_ms();
        let old = self.average_at(now);
        let new = if old == 0 {
            us.max(1)
        } else {
            (old * 7 + us) / 8
        };
        self.ewma_us.store(new.max(1), Relaxed);
        self.observed_ms.store(now, Relaxed);
    }

    /// Its balancing cost: the latency average (faded while unasked) ×
    /// (in flight + 1).
    pub fn load_score(&self) -> u64 {
        self.score_at(clock_ms())
    }

    fn score_at(&self, now_ms: u64) -> u64 {
        if !self.is_active() {
            return u64::MAX;
        }
        let average = self.average_at(now_ms).max(1);
        average.saturating_mul(self.in_flight.load(Relaxed) + 1)
    }

    /// The latency average at `now_ms`, halved per half-life since the
    /// last reply.
    fn average_at(&self, now_ms: u64) -> u64 {
        let idle = now_ms.saturating_sub(self.observed_ms.load(Relaxed));
        let halvings = idle / DECAY_HALF_LIFE_MS;
        self.ewma_us
            .load(Relaxed)
            .checked_shr(halvings as u32)
            .unwrap_or(0)
    }
}

pub struct PluginShared {
    pub config: PluginConfig,
    /// CPUs its processes are pinned to; empty = not pinned.
    pub cores: Vec<usize>,
    pub instances: Vec<InstanceStatus>,
    pub stats: CallStats,
    /// Its versions: live weights and per-version statistics.
    pub traffic: Traffic,
    /// Uncommitted request bytes in each server thread's rings (updated by
    /// that thread every maintenance tick).
    pub ring_bytes: Vec<AtomicU64>,
    /// The last change of the running instances (elastic scaling or an
    /// upgrade step) and why, for PLUGIN INFO; empty before the first.
    pub last_change: Mutex<String>,
    /// Instances detached so far (all): a server thread that sees it grow
    /// answers the calls its detached instance never took (see `detach`).
    pub detaches: AtomicU64,
    /// Its entry in the server's shared-memory stats region (set once at
    /// startup when there is one): per-version counts every process reads.
    pub shm: OnceLock<citadel_telemetry::PluginEntry>,
}

impl PluginShared {
    pub fn new(config: PluginConfig, cores: Vec<usize>, threads: usize) -> PluginShared {
        PluginShared {
            instances: (0..config.instances)
                .map(|slot| {
                    let status = InstanceStatus::default();
                    status.active.store(config.starts_running(slot), Relaxed);
                    status
                })
                .collect(),
            last_change: Mutex::new(String::new()),
            detaches: AtomicU64::new(0),
            shm: OnceLock::new(),
            traffic: Traffic::new(&config),
            config,
            cores,
            stats: CallStats::default(),
            ring_bytes: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub fn restarts(&self) -> u64 {
        self.instances
            .iter()
            .map(|i| i.restarts.load(Relaxed))
            .sum()
    }

    pub fn reloads(&self) -> u64 {
        self.instances.iter().map(|i| i.reloads.load(Relaxed)).sum()
    }

    /// Instance `index` is left running detached (an inline serve call
    /// stuck past its stop timeout): it takes no call from now on, and each
    /// server thread answers the calls queued in its rings that it never
    /// took with an error (`citadel_server::plugin`), instead of leaving
    /// them to their timeouts.
    pub fn detach(&self, index: usize) {
        let status = &self.instances[index];
        status.deactivate();
        status.detached.fetch_add(1, Relaxed);
        // ORDERING: SeqCst, after the deactivation: a thread that sees the
        // new count (SeqCst load) sends it no call after that (try_enter
        // sees it inactive), so every call it sent is pending already.
        self.detaches.fetch_add(1, SeqCst);
    }

    pub fn detached(&self) -> u64 {
        self.instances
            .iter()
            .map(|i| i.detached.load(Relaxed))
            .sum()
    }

    /// Instances taking calls now.
    pub fn active_instances(&self) -> usize {
        self.instances.iter().filter(|i| i.is_active()).count()
    }

    pub fn last_change(&self) -> String {
        self.last_change
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records (and logs) a change of the running instances.
    pub fn note_change(&self, what: String) {
        tracing::info!(plugin = %self.config.name, "{what}");
        *self.last_change.lock().unwrap_or_else(|p| p.into_inner()) = what;
    }

    pub fn ring_depth(&self) -> u64 {
        self.ring_bytes.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// The instances worth showing: per version, those not parked, or
    /// (every slot parked: a version at weight 0, or stopped) as many as
    /// it runs; a plugin's spare slots are not shown.
    fn shown(&self) -> impl Iterator<Item = &InstanceStatus> {
        let parked = |i: &InstanceStatus| {
            self.config.spare_slot && i.state() == InstanceState::Stopped && !i.is_active()
        };
        let per = self.config.per_version.max(1);
        let runs = if self.config.spare_slot {
            self.config.running.max
        } else {
            per
        };
        self.instances.chunks(per).flat_map(move |version| {
            let all_parked = version.iter().all(parked);
            version
                .iter()
                .enumerate()
                .filter(move |(k, i)| if all_parked { *k < runs } else { !parked(i) })
                .map(|(_, i)| i)
        })
    }

    /// Per-instance states, comma-separated ("running" for one instance).
    pub fn states(&self) -> String {
        join(self.shown().map(|i| i.state().name().to_string()))
    }

    pub fn pids(&self) -> String {
        join(self.shown().map(|i| i.pid.load(Relaxed).to_string()))
    }

    pub fn cores_text(&self) -> String {
        if self.cores.is_empty() {
            return "shared".into();
        }
        join(self.cores.iter().map(|c| c.to_string()))
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deactivated_instance_takes_no_call_and_reports_the_ones_it_holds() {
        let i = InstanceStatus::default();
        assert!(!i.try_enter(), "inactive from the start");
        assert_eq!(i.in_flight(), 0);
        i.activate();
        assert!(i.try_enter());
        assert_eq!(i.deactivate(), 1, "one call still in flight");
        assert!(!i.try_enter());
        assert_eq!(i.load_score(), u64::MAX, "never chosen while inactive");
        i.leave();
        assert_eq!(i.in_flight(), 0, "drained: safe to stop");
    }

    #[test]
    fn an_unasked_slow_instance_fades_back_into_choice() {
        let slow = InstanceStatus::default();
        slow.ewma_us.store(10_000, Relaxed);
        slow.observed_ms.store(5_000, Relaxed);
        slow.activate();
        let healthy = InstanceStatus::default();
        healthy.activate();
        healthy.ewma_us.store(1_000, Relaxed);
        healthy.in_flight.store(1, Relaxed);
        let healthy_at = |now: u64| {
            healthy.observed_ms.store(now, Relaxed);
            healthy.score_at(now)
        };
        let after = |half_lives: u64| 5_000 + half_lives * DECAY_HALF_LIFE_MS;
        // Just after its last reply it is avoided ...
        assert!(slow.score_at(5_100) > healthy_at(5_100));
        // ... halving each half-life it goes unasked, until it is tried again.
        assert_eq!(slow.score_at(after(1)), 5_000);
        assert!(slow.score_at(after(4)) < healthy_at(after(4)));
        assert_eq!(slow.score_at(after(64)), 1);
    }
}
