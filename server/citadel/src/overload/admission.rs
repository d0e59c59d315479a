//! One core's admission control (see ARCHITECTURE.md, "Overload
//! protection"): a CoDel-like watch of the queueing delay that raises or
//! lowers a shed level once per control interval.
//!
//! **Delay.** Input that reached the socket just after the previous turn
//! reaped its completions waited through the rest of that turn and through
//! this turn's work so far, so a request's queueing delay is estimated as
//! `previous turn's busy time + time since this turn started`. Idle, turns
//! are microseconds and so is the estimate; saturated, turns run back to
//! back and it is the true age of the oldest unserved input.
//!
//! **Preemption.** The delay that matters is the one this core's own work
//! causes: time the thread spent preempted (a noisy machine) delays its
//! clients too, but shedding cannot win it back. So a long turn's busy time
//! is its thread CPU time, not its wall time: once a turn ran past a
//! quarter of the target, the next turns read the thread's CPU clock at
//! their start and end (a syscall, ~0.2 µs, only while turns are long, so
//! an idle or lightly loaded core never pays it). Time since the turn
//! started is still wall time (a clock read per request would cost too
//! much), so preemption in the middle of a turn still counts.
//!
//! **Control.** CoDel's insight: a delay above target for a moment is a
//! burst, above target for a whole interval is a standing queue. At the end
//! of each control interval the core is *overloaded* if even the smallest
//! delay seen in it was over the target, and not otherwise (nor when it saw
//! nothing). While overloaded, a request is shed when its own delay passes
//! its rank's threshold: `target × (1 + rank / 2)`, from 1× the target for
//! a low-priority client's plugin call to 5× for a high-priority client's
//! read. Lower ranks therefore go first and the shedding deepens only as
//! far as the delay needs; a shed request costs its framing and a short
//! error (`command::admission::shed_from_frame`), so the delay falls back
//! and a drained core sheds nothing.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::rank::Rank;
use super::stats::CoreGauges;

/// How long a delay must stand before the core counts as overloaded.
pub const INTERVAL: Duration = Duration::from_millis(20);
/// The clock is read once per this many requests (and at each turn's
/// start): a vDSO read is ~20 ns, a pipelined GET ~1 µs of CPU.
const CLOCK_EVERY: u8 = 16;

/// A request the core refuses: its delay and the target it is over.
#[derive(Debug, Clone, Copy)]
pub struct Shed {
    pub delay: Duration,
    pub target: Duration,
}

pub struct Admission {
    /// Zero: admission is off.
    target: Duration,
    turn_start: Instant,
    /// The thread's CPU clock at this turn's start, read only while turns
    /// are long (see the module's "Preemption").
    turn_start_cpu: Option<Duration>,
    prev_busy: Duration,
    /// This turn's and the interval's figures.
    interval_end: Instant,
    min_delay: Option<Duration>,
    max_delay: Duration,
    max_turn: Duration,
    /// The last interval's smallest delay was over the target.
    overloaded: bool,
    /// The last clock reading, and requests admitted since.
    clock: Instant,
    since_clock: u8,
}

impl Admission {
    pub fn new(target: Duration) -> Admission {
        let now = Instant::now();
        Admission {
            target,
            turn_start: now,
            turn_start_cpu: None,
            prev_busy: Duration::ZERO,
            interval_end: now + INTERVAL,
            min_delay: None,
            max_delay: Duration::ZERO,
            max_turn: Duration::ZERO,
            overloaded: false,
            clock: now,
            since_clock: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.target.is_zero()
    }

    /// A live change of `overload-delay-target-us` (zero: off).
    pub fn set_target(&mut self, target: Duration) {
        if target != self.target {
            self.target = target;
            self.overloaded = false;
        }
    }

    /// True while the last interval found a standing queue: requests whose
    /// delay passes their rank's threshold are shed.
    #[inline]
    pub fn shedding(&self) -> bool {
        self.overloaded && self.enabled()
    }

    /// The loop woke up: a turn begins.
    pub fn turn_started(&mut self, now: Instant) {
        self.turn_start = now;
        self.clock = now;
        self.since_clock = 0;
        self.turn_start_cpu = if self.prev_busy >= self.target / 4 {
            thread_cpu_time()
        } else {
            None
        };
    }

    /// The turn is over (the loop is about to wait).
    pub fn turn_ended(&mut self, now: Instant) {
        let wall = now.saturating_duration_since(self.turn_start);
        // Preempted time is no queue this core can shed (module doc).
        let cpu = self
            .turn_start_cpu
            .and_then(|start| Some(thread_cpu_time()?.saturating_sub(start)));
        self.prev_busy = cpu.map_or(wall, |cpu| wall.min(cpu));
        self.max_turn = self.max_turn.max(self.prev_busy);
    }

    /// Measures the delay of a request of `rank` arriving now; Some when the
    /// core sheds it. `gauges`: where each interval's figures are published.
    pub fn admit(&mut self, rank: Rank, gauges: Option<&CoreGauges>) -> Result<(), Shed> {
        if !self.enabled() {
            return Ok(());
        }
        self.since_clock += 1;
        if self.since_clock >= CLOCK_EVERY {
            self.clock = Instant::now();
            self.since_clock = 0;
        }
        let now = self.clock;
        let delay = self.prev_busy + now.saturating_duration_since(self.turn_start);
        self.min_delay = Some(self.min_delay.map_or(delay, |m| m.min(delay)));
        self.max_delay = self.max_delay.max(delay);
        if now >= self.interval_end {
            self.end_interval(now, gauges);
        }
        if self.overloaded && delay > threshold(self.target, rank) {
            return Err(Shed {
                delay,
                target: self.target,
            });
        }
        Ok(())
    }

    /// Called at the maintenance tick too, so an idle core's level decays
    /// and its gauges stay current without requests.
    pub fn tick(&mut self, gauges: Option<&CoreGauges>) {
        let now = Instant::now();
        if self.enabled() && now >= self.interval_end {
            self.end_interval(now, gauges);
        }
    }

    fn end_interval(&mut self, now: Instant, gauges: Option<&CoreGauges>) {
        let standing = self.min_delay.unwrap_or(Duration::ZERO);
        self.overloaded = standing > self.target;
        if let Some(g) = gauges {
            // ORDERING: Relaxed: gauges read on their own by INFO.
            g.delay_us.store(standing.as_micros() as u64, Relaxed);
            g.max_delay_us
                .store(self.max_delay.as_micros() as u64, Relaxed);
            g.max_turn_us
                .store(self.max_turn.as_micros() as u64, Relaxed);
            g.overloaded.store(u64::from(self.overloaded), Relaxed);
        }
        self.min_delay = None;
        self.max_delay = Duration::ZERO;
        self.max_turn = Duration::ZERO;
        self.interval_end = now + INTERVAL;
    }
}

/// The delay past which an overloaded core sheds a request of `rank`.
fn threshold(target: Duration, rank: Rank) -> Duration {
    target * (2 + rank.index() as u32) / 2
}

/// `queueing delay 12ms over target 5ms, retry later` (the text after
/// `OVERLOAD core `).
impl std::fmt::Display for Shed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "queueing delay {} over target {}, retry later",
            Millis(self.delay),
            Millis(self.target)
        )
    }
}

/// "12ms", or "0.4ms" below ten.
struct Millis(Duration);

impl std::fmt::Display for Millis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_secs_f64() * 1000.0;
        if ms >= 10.0 {
            write!(f, "{}ms", ms.round() as u64)
        } else {
            write!(f, "{ms:.1}ms")
        }
    }
}

/// This thread's CPU time (user and system); None if the clock failed.
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which lives
    // across the call; CLOCK_THREAD_CPUTIME_ID always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use super::super::rank::CommandClass;
    use super::*;
    use citadel_settings::overload::ClientPriority;

    #[test]
    fn a_standing_delay_sheds_low_ranks_first() {
        let target = Duration::from_millis(10);
        let mut a = Admission::new(target);
        let low = Rank::of(ClientPriority::Low, CommandClass::Compute);
        let high = Rank::of(ClientPriority::High, CommandClass::Read);
        // After a 30 ms turn: 3x the target.
        a.prev_busy = Duration::from_millis(30);
        a.turn_started(Instant::now());
        a.interval_end = Instant::now() - Duration::from_millis(1);
        assert!(!a.overloaded, "not overloaded before an interval ends");
        assert!(a.admit(low, None).is_err(), "the interval ends: overloaded");
        assert!(a.overloaded);
        assert!(a.admit(high, None).is_ok(), "high reads wait up to 5x");
        assert!(a.admit(Rank::UNRANKED, None).is_ok());
        assert!(a.shedding());
        let shed = Shed {
            delay: Duration::from_millis(12),
            target: Duration::from_millis(5),
        };
        assert!(shed
            .to_string()
            .starts_with("queueing delay 12ms over target 5.0ms"));
    }

    #[test]
    fn a_preempted_turn_counts_its_cpu_time_not_its_wall_time() {
        let mut a = Admission::new(Duration::from_millis(1));
        a.prev_busy = Duration::from_millis(2);
        a.turn_started(Instant::now());
        assert!(
            a.turn_start_cpu.is_some(),
            "a long turn before: CPU clock read"
        );
        // Off the CPU for 30 ms, as a preempted thread is.
        std::thread::sleep(Duration::from_millis(30));
        a.turn_ended(Instant::now());
        assert!(
            a.prev_busy < Duration::from_millis(10),
            "{:?} of busy time for a turn that slept",
            a.prev_busy
        );
        // A short turn before: the next one reads no CPU clock.
        a.prev_busy = Duration::from_micros(10);
        a.turn_started(Instant::now());
        assert!(a.turn_start_cpu.is_none());
        a.turn_ended(Instant::now());
    }
}
