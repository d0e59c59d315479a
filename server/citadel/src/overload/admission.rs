//! One core's admission control (see ARCHITECTURE.md, "Overload
//! protection"): a CoDel-like watch of the queueing delay that raises or
//! lowers a shed level once per control interval.
//!
//! **Delay.** A request's queueing delay is estimated as the age of the
//! oldest input this turn reaped plus the time since the turn started (the
//! sojourn of the oldest unserved request). That age is bounded by how the
//! loop got here: if its wait blocked (the loop was idle), everything it
//! reaped arrived during the wait and woke it, so the age is ~0; if the
//! wait returned at once, input may have reached the socket just after the
//! previous turn reaped, and waited through that whole turn and the wait,
//! so the age is their sum. Idle or lightly loaded, the estimate is
//! microseconds; saturated, turns run back to back and it is the true age
//! of the oldest unserved input.
//!
//! **A read's own work.** Commands that arrived in one read are judged by
//! the delay at the read's start: the time the core spent on the read's
//! earlier commands is taken out (`own`, the command clock's time on this
//! pass). They arrived together and wait behind nobody but their own
//! sender, so a FLUSHALL, a long script or a big KEYS never gets the
//! commands sent with it refused on a core that had nothing else to do,
//! as in Redis. A later read of the same connection counts the whole
//! delay (input that waited in the socket behind the connection's earlier
//! reads cannot be told from an open-loop flood, which must be shed),
//! unless the connection is alone on the core (`alone.rs`: the only one
//! open, or no other one sent shallow input lately): then nobody who
//! minds waits behind it and its delay is all its own work.
//!
//! **Blocked or preempted.** Every figure is wall time: a request that
//! waited through a preemption (a noisy machine) is as late to its client
//! as one that waited behind work, and shedding input that is already
//! stale is what lets a starved core catch up on fresh input. What must not
//! count is a core that went idle being mistaken for one that queued. After
//! a long turn (over `LONG_TURN`, so the cost is under 0.5%) the core asks
//! the kernel whether its wait slept (the thread's voluntary context
//! switches, one `getrusage` before and one after): a wait that was
//! preempted, not blocked, is no idle; so does every turn while the core
//! sheds. After a short turn otherwise, a wait counts as idle when it
//! lasted over `IDLE_WAIT` (a short turn leaves no backlog, so a preempted
//! wait mistaken for idle admits only what it delayed).
//!
//! **Control.** CoDel's insight: a delay above target for a moment is a
//! burst, above target for a whole interval is a standing queue. At the end
//! of each control interval the core is *overloaded* if even the smallest
//! delay seen in it was over the target, or if it was overloaded and shed
//! at least a quarter of the interval's requests (`STAY_SHARE`); not
//! otherwise (nor when it saw nothing). The
//! second rule is CoDel's "stay in the dropping state": shedding drains the
//! queue, so an overloaded core idles for microseconds between bursts of
//! refusals and its smallest delay falls under the target although the
//! offered load has not. Without it the core left the overload at every
//! interval's end and admitted everything up to the most patient rank's
//! threshold until the next flip (open loop at 3x, 500 µs target: admitted
//! delays up to 2.5 ms plus overrun for every rank, instead of 1.75 ms for a
//! normal read and less for lower ranks). An interval with fewer refusals
//! (the load fell under ~1.33x) ends the overload: with heavy requests at a
//! tenth of capacity, one stall could start an overload that a refusal an
//! interval (a low-priority request behind two others) then kept alive,
//! shedding 8% at 0.1x (1 MiB BITCOUNTs, 500 µs target). While
//! overloaded, a request is shed when its own delay passes its rank's
//! threshold: `target × (1 + rank / 2)`, from 1× the target for a
//! low-priority client's plugin call to 5× for a high-priority client's
//! read. Within a turn the delay only grows, so a turn admits its oldest
//! input up to the threshold and sheds the rest: the work admitted per turn
//! is bounded by the threshold, and the next turn (its reaped input already
//! that old) sheds at once what it cannot serve in time. A shed request
//! costs its framing and a short error
//! (`command::admission::shed_from_frame`), so the delay falls back and a
//! drained core sheds nothing.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::rank::Rank;
use super::stats::{delay_bucket, CoreGauges, DELAY_BUCKETS};

/// An overloaded core stays overloaded through an interval in which it
/// refused at least one request for every this many it admitted.
const STAY_SHARE: u32 = 3;
/// How long a delay must stand before the core counts as overloaded.
pub const INTERVAL: Duration = Duration::from_millis(20);
/// The clock is read once per this many requests (and at each turn's
/// start): a reading and the bookkeeping after it are ~600 instructions,
/// a pipelined GET ~1,400 (at 16, protection cost a core that was not
/// overloaded 3.5% of its instructions; at 32, ~2%). A span of unmeasured
/// requests that brings the delay near the target switches to a reading
/// per request (`close_left`), so a longer span never overruns it.
const CLOCK_EVERY: u8 = 32;
/// ... and at every request while shedding, when each read decides between a
/// shed and a served request: 4 heavy commands between readings (BITCOUNTs
/// of 256 KiB, ~80 µs each) overran a threshold by 0.3 ms; a reading costs
/// ~20 ns next to a refusal's ~7 µs.
const CLOCK_EVERY_SHEDDING: u8 = 1;
/// After a short turn, a wait at least this long blocked: the loop was idle
/// (see the module's "Blocked or preempted").
const IDLE_WAIT: Duration = Duration::from_micros(20);
/// A turn after which the wait is checked for sleeping: long next to the two
/// `getrusage` calls (~0.3 µs each).
const LONG_TURN: Duration = Duration::from_micros(100);

/// A request the core refuses: its delay and the target it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shed {
    pub delay: Duration,
    pub target: Duration,
}

pub struct Admission {
    /// Zero: admission is off.
    target: Duration,
    turn_start: Instant,
    prev_busy: Duration,
    /// The thread's voluntary context switches when the previous turn ended,
    /// read only after a long turn (the module's "Blocked or preempted").
    rested_switches: Option<u64>,
    /// When the previous turn ended (the loop went to wait).
    rested: Instant,
    /// The estimated age of this turn's oldest input at the turn's start.
    queued: Duration,
    /// This turn's and the interval's figures.
    interval_end: Instant,
    min_delay: Option<Duration>,
    max_delay: Duration,
    max_turn: Duration,
    /// The last interval's smallest delay was over the target.
    overloaded: bool,
    /// Requests this interval refused.
    shed: u32,
    /// The last clock reading, and requests admitted since.
    clock: Instant,
    since_clock: u8,
    /// Nonzero while the delay runs close to the target: readings to go,
    /// each at one request, before a run of readings that are not close
    /// ends that (see `admit_measured`).
    close_left: u8,
    /// Requests the core may still admit at the last reading without
    /// looking (`admit`'s fast path): nonzero only while admission is on
    /// and the core is not shedding, so nothing would be refused.
    fast_left: u8,
    /// Requests admitted at `delay_bucket` and not yet in `admitted`.
    run: u32,
    /// The core's delay at `clock` (before a read's own work is taken out)
    /// and the histogram bucket of the request that read it: between two
    /// clock readings every request sees the same delay, so it is worked
    /// out once per reading, not per request. Stale after a turn starts.
    delay: Duration,
    delay_bucket: usize,
    measured: bool,
    /// Admitted requests by delay bucket this interval (published at its end).
    admitted: [u32; DELAY_BUCKETS],
    /// The connection whose input runs now is alone on the core (nobody
    /// waits behind it): its delay is all its own work (`alone.rs`).
    alone: bool,
}

impl Admission {
    pub fn new(target: Duration) -> Admission {
        let now = Instant::now();
        Admission {
            target,
            turn_start: now,
            prev_busy: Duration::ZERO,
            rested_switches: None,
            rested: now,
            queued: Duration::ZERO,
            interval_end: now + INTERVAL,
            min_delay: None,
            max_delay: Duration::ZERO,
            max_turn: Duration::ZERO,
            overloaded: false,
            shed: 0,
            clock: now,
            since_clock: 0,
            close_left: 0,
            fast_left: 0,
            run: 0,
            delay: Duration::ZERO,
            delay_bucket: 0,
            measured: false,
            admitted: [0; DELAY_BUCKETS],
            alone: false,
        }
    }

    pub fn enabled(&self) -> bool {
        !self.target.is_zero()
    }

    pub fn target(&self) -> Duration {
        self.target
    }

    /// The last clock reading (this turn's start or later): a time that
    /// costs no reading, behind the clock by at most a turn.
    pub fn last_reading(&self) -> Instant {
        self.clock
    }

    /// A request that may have waited `age` before the core could see it
    /// (read after a hold) is shed when that passes its rank's threshold,
    /// whatever the turn's own delay, and even if the overload just ended:
    /// it is later already than the core would admit it (admitted, such
    /// requests set the admitted p99 at 3x: 2.4 ms, 1.9 ms without holds).
    pub fn shed_stale(&mut self, rank: Rank, age: Duration) -> Option<Shed> {
        if age.is_zero() || age <= threshold(self.target, rank) || !self.enabled() {
            return None;
        }
        self.shed += 1;
        Some(Shed {
            delay: age,
            target: self.target,
        })
    }

    /// A live change of `overload-delay-target-us` (zero: off).
    pub fn set_target(&mut self, target: Duration) {
        if target != self.target {
            self.target = target;
            self.overloaded = false;
            self.fast_left = 0;
        }
    }

    /// True while the last interval found a standing queue: requests whose
    /// delay passes their rank's threshold are shed.
    #[inline]
    pub fn shedding(&self) -> bool {
        self.overloaded && self.enabled()
    }

    /// Whether a request of `rank` would be shed now, by the last clock
    /// reading (nothing measured or counted): a batch that is, is not worth
    /// prefetching.
    #[inline]
    pub fn would_shed(&self, rank: Rank) -> bool {
        self.shedding() && !self.alone && self.delay_at(self.clock) > threshold(self.target, rank)
    }

    /// The core starts a pass over a connection's input; `alone`: no
    /// other connection can be waiting behind it (`alone.rs`). When that ends,
    /// the next request reads the clock afresh: the last reading may be
    /// from before a long command of the connection that was alone.
    #[inline]
    pub fn pass_began(&mut self, alone: bool) {
        if self.alone && !alone {
            self.fast_left = 0;
            self.since_clock = CLOCK_EVERY;
            self.measured = false;
        }
        self.alone = alone;
    }

    /// The delay a request is judged by at the last reading: the core's,
    /// less `own`, the work on the earlier commands of its read; nothing
    /// while its connection is alone on the core.
    #[inline]
    fn judged(&self, own: Duration) -> Duration {
        if self.alone {
            Duration::ZERO
        } else {
            self.delay.saturating_sub(own)
        }
    }

    #[inline]
    fn delay_at(&self, now: Instant) -> Duration {
        self.queued + now.saturating_duration_since(self.turn_start)
    }

    /// The loop woke up: a turn begins.
    pub fn turn_started(&mut self, now: Instant) {
        let wait = now.saturating_duration_since(self.rested);
        let idle = match self.rested_switches.take() {
            Some(before) => voluntary_switches().is_some_and(|n| n != before),
            None => wait >= IDLE_WAIT,
        };
        // Idle: what woke the loop just arrived (module doc, "Delay").
        self.queued = if idle {
            Duration::ZERO
        } else {
            self.prev_busy + wait
        };
        self.turn_start = now;
        self.clock = now;
        self.since_clock = 0;
        self.fast_left = 0;
        self.measured = false;
    }

    /// The turn is over (the loop is about to wait).
    pub fn turn_ended(&mut self, now: Instant) {
        self.prev_busy = now.saturating_duration_since(self.turn_start);
        self.max_turn = self.max_turn.max(self.prev_busy);
        self.rested = now;
        // While shedding every turn asks: a short turn that shed all it
        // reaped, then a preempted wait, must not pass for idle and end the
        // overload.
        if self.prev_busy >= LONG_TURN || self.overloaded {
            self.rested_switches = voluntary_switches();
        }
    }

    /// Measures the delay of a request of `rank` arriving now, less `own`,
    /// the time the core spent on the earlier commands of the same read
    /// (module doc, "A read's own work"); Err when the core sheds it.
    /// `gauges`: where each interval's figures are published.
    #[inline]
    pub fn admit(
        &mut self,
        rank: Rank,
        own: Duration,
        gauges: Option<&CoreGauges>,
    ) -> Result<(), Shed> {
        if self.admit_unmeasured() {
            return Ok(());
        }
        self.admit_measured(rank, own, gauges)
    }

    /// The common case, whatever the rank: the core is not shedding and no
    /// clock reading is due, so the request is admitted at the last
    /// reading's delay (a few instructions; the request's rank, class and
    /// quotas need not even be worked out). False: ask [`Admission::admit`].
    #[inline]
    pub fn admit_unmeasured(&mut self) -> bool {
        if self.fast_left == 0 {
            return false;
        }
        self.fast_left -= 1;
        self.run += 1;
        true
    }

    fn admit_measured(
        &mut self,
        rank: Rank,
        own: Duration,
        gauges: Option<&CoreGauges>,
    ) -> Result<(), Shed> {
        if !self.enabled() {
            return Ok(());
        }
        let limit = threshold(self.target, rank);
        // Within a turn the delay only grows: a request whose threshold the
        // last reading's delay already passes is shed without a new reading
        // (under callgrind at 3x: ~440 of a refusal's ~1,200 instructions
        // in this path, and one rendering of the error line per turn, not
        // per refusal, since its delay stays the same).
        // (An earlier reading, less this read's own work, is at most this
        // request's delay now: within a turn the delay only grows.)
        if self.overloaded && self.measured && self.judged(own) > limit {
            self.shed += 1;
            return Err(self.shed_now(own));
        }
        self.since_clock += 1;
        if self.since_clock >= self.clock_every() {
            let now = Instant::now();
            // Close: another reading's span of requests admitted unmeasured
            // could carry the delay past the lowest threshold (the target),
            // so the clock is read at every request and a threshold is
            // overrun by at most one request's work (16 BITCOUNTs of
            // 256 KiB, ~80 µs each, overran it by 1.3 ms). A reading costs
            // ~20 ns. Far from the target (a core that is not loaded, or a
            // 60 s target) nothing changes. (A turn's start resets the
            // clock: a span is never the wait.)
            let span = now.saturating_duration_since(self.clock);
            // (The core's whole delay, not this read's: the requests that
            // follow may be other reads'.)
            // (Nobody else's requests follow while a connection is alone.)
            let close = !self.alone && self.delay_at(now) + span >= self.target;
            self.close_left = if close {
                CLOCK_EVERY
            } else {
                self.close_left.saturating_sub(1)
            };
            self.clock = now;
            self.since_clock = 0;
            self.measured = false;
        }
        if !self.measured {
            self.measure(own, gauges);
        }
        if self.overloaded && self.judged(own) > limit {
            self.shed += 1;
            return Err(self.shed_now(own));
        }
        self.run += 1;
        if !self.overloaded {
            // The rest of this reading's requests take the fast path; the
            // count is taken now, so the next slow one reads the clock.
            let every = self.clock_every();
            self.fast_left = every.saturating_sub(self.since_clock + 1);
            self.since_clock = every - 1;
        }
        Ok(())
    }

    /// The refusal at the last reading's delay, less `own` work.
    fn shed_now(&self, own: Duration) -> Shed {
        Shed {
            delay: self.judged(own),
            target: self.target,
        }
    }

    /// Requests per clock reading.
    #[inline]
    fn clock_every(&self) -> u8 {
        if self.overloaded || self.close_left > 0 {
            CLOCK_EVERY_SHEDDING
        } else {
            CLOCK_EVERY
        }
    }

    /// Moves the requests admitted at the current delay into the interval's
    /// histogram (before that delay or the interval changes).
    fn settle_run(&mut self) {
        self.admitted[self.delay_bucket] += std::mem::take(&mut self.run);
    }

    /// The delay at the last clock reading, less the reading request's
    /// `own` work, into the interval's figures (once per reading: the
    /// requests in between see the same one).
    #[cold]
    fn measure(&mut self, own: Duration, gauges: Option<&CoreGauges>) {
        self.settle_run();
        let now = self.clock;
        let raw = self.delay_at(now);
        self.delay = raw;
        let delay = self.judged(own);
        if raw >= self.target && !self.alone {
            // The core is behind, whatever this read's own share: the
            // requests next (maybe other reads') are measured each.
            self.close_left = CLOCK_EVERY;
        }
        self.min_delay = Some(self.min_delay.map_or(delay, |m| m.min(delay)));
        self.max_delay = self.max_delay.max(delay);
        if now >= self.interval_end {
            self.end_interval(now, gauges);
        }
        // A delay past even the most patient rank's threshold is no burst
        // to wait out until the interval ends: an overloaded core would
        // admit none of it. Without this, a core that saw one idle wait in
        // an interval admitted everything for the next 20 ms, however late
        // (open loop at 3x: admitted delays of 16-32 ms at a 1 ms target).
        if !self.overloaded && delay > threshold(self.target, Rank::MOST_PATIENT) {
            self.overloaded = true;
        }
        self.delay_bucket = delay_bucket(delay.as_micros() as u64);
        self.measured = true;
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
        self.settle_run();
        let standing = self.min_delay.unwrap_or(Duration::ZERO);
        let admitted: u32 = self.admitted.iter().sum();
        let shed = std::mem::take(&mut self.shed);
        self.overloaded =
            standing > self.target || (self.overloaded && shed * STAY_SHARE >= admitted);
        if self.overloaded {
            self.fast_left = 0;
        }
        if let Some(g) = gauges {
            // ORDERING: Relaxed: gauges read on their own by INFO.
            g.delay_us.store(standing.as_micros() as u64, Relaxed);
            g.max_delay_us
                .store(self.max_delay.as_micros() as u64, Relaxed);
            g.max_turn_us
                .store(self.max_turn.as_micros() as u64, Relaxed);
            g.overloaded.store(u64::from(self.overloaded), Relaxed);
            for (sum, n) in g.admitted.iter().zip(&self.admitted) {
                if *n > 0 {
                    sum.fetch_add(u64::from(*n), Relaxed);
                }
            }
        }
        self.admitted = [0; DELAY_BUCKETS];
        self.min_delay = None;
        self.max_delay = Duration::ZERO;
        self.max_turn = Duration::ZERO;
        self.interval_end = now + INTERVAL;
    }
}

#[cfg(test)]
impl Admission {
    /// A core that sheds, at the start of a turn whose input is `queued` old.
    pub(super) fn shedding_with(&mut self, queued: Duration) {
        let now = Instant::now();
        self.overloaded = true;
        self.queued = queued;
        (self.turn_start, self.clock, self.since_clock) = (now, now, 0);
        self.measured = false;
        self.interval_end = now + Duration::from_secs(60);
    }
}

/// The delay past which an overloaded core sheds a request of `rank`.
fn threshold(target: Duration, rank: Rank) -> Duration {
    target * (2 + rank.index() as u32) / 2
}

impl Shed {
    /// Appends `queueing delay 12ms over target 5ms, retry later` (the text
    /// after `OVERLOAD core `) as bytes: no float formatting and no
    /// `core::fmt`, which cost more than serving a GET (a shed must cost
    /// far less than executing).
    pub fn write_text(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"queueing delay ");
        push_millis(self.delay, out);
        out.extend_from_slice(b" over target ");
        push_millis(self.target, out);
        out.extend_from_slice(b", retry later");
    }
}

impl std::fmt::Display for Shed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = Vec::with_capacity(64);
        self.write_text(&mut text);
        f.write_str(&String::from_utf8_lossy(&text))
    }
}

/// "12ms" (rounded), or "0.4ms" below ten (rounded to a tenth).
fn push_millis(d: Duration, out: &mut Vec<u8>) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut digits = [0u8; 21];
    if us >= 10_000 {
        out.extend_from_slice(citadel_resp::num::fmt_u64(
            &mut digits,
            us / 1000 + u64::from(us % 1000 >= 500),
        ));
    } else {
        let tenths = (us + 50) / 100;
        out.extend_from_slice(citadel_resp::num::fmt_u64(&mut digits, tenths / 10));
        out.push(b'.');
        out.push(b'0' + (tenths % 10) as u8);
    }
    out.extend_from_slice(b"ms");
}

/// This thread's voluntary context switches (times it slept); None if
/// `getrusage` failed.
fn voluntary_switches() -> Option<u64> {
    // SAFETY: an all-zero rusage is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into `usage`, which lives across
    // the call; RUSAGE_THREAD exists on Linux since 2.6.26.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    (rc == 0).then_some(usage.ru_nvcsw as u64)
}

#[cfg(test)]
mod tests {
    use super::super::rank::CommandClass;
    use super::*;
    use citadel_settings::overload::ClientPriority;

    #[test]
    fn a_shed_reads_in_whole_milliseconds_or_tenths_below_ten() {
        let text = |delay_us: u64, target_us: u64| {
            let shed = Shed {
                delay: Duration::from_micros(delay_us),
                target: Duration::from_micros(target_us),
            };
            assert_eq!(shed.to_string().into_bytes(), {
                let mut bytes = Vec::new();
                shed.write_text(&mut bytes);
                bytes
            });
            shed.to_string()
        };
        assert_eq!(
            text(12_400, 5_000),
            "queueing delay 12ms over target 5.0ms, retry later"
        );
        assert_eq!(text(12_500, 1_000).split(' ').nth(2), Some("13ms"));
        assert_eq!(text(449, 250).split(' ').nth(2), Some("0.4ms"));
        assert_eq!(text(9_960, 250).split(' ').nth(2), Some("10.0ms"));
        assert_eq!(text(0, 250).split(' ').nth(5), Some("0.3ms,"));
    }

    #[test]
    fn between_clock_readings_a_core_that_does_not_shed_admits_without_a_look() {
        let mut a = Admission::new(Duration::from_millis(1));
        let read = Rank::of(ClientPriority::Normal, CommandClass::Read);
        a.turn_started(Instant::now());
        assert!(!a.admit_unmeasured(), "a turn's first request is measured");
        assert!(a.admit(read, Duration::ZERO, None).is_ok());
        let fast = std::iter::from_fn(|| a.admit_unmeasured().then_some(())).count();
        assert_eq!(fast, usize::from(CLOCK_EVERY) - 2, "until the next reading");
        assert!(
            a.admit(read, Duration::ZERO, None).is_ok(),
            "that one reads the clock"
        );
        let fast = std::iter::from_fn(|| a.admit_unmeasured().then_some(())).count();
        assert_eq!(fast, usize::from(CLOCK_EVERY) - 1);
        // Every admitted request is in the interval's histogram once it ends.
        a.interval_end = Instant::now();
        a.tick(None);
        assert_eq!(a.admitted.iter().sum::<u32>(), 0, "published and reset");
        let gauges = CoreGauges::default();
        let mut b = Admission::new(Duration::from_millis(1));
        b.turn_started(Instant::now());
        assert!(b.admit(read, Duration::ZERO, None).is_ok());
        while b.admit_unmeasured() {}
        b.interval_end = Instant::now();
        b.tick(Some(&gauges));
        let counted: u64 = gauges.admitted.iter().map(|n| n.load(Relaxed)).sum();
        assert_eq!(counted, u64::from(CLOCK_EVERY) - 1);
        // A shedding core looks at every request.
        b.shedding_with(Duration::ZERO);
        assert!(b.admit(read, Duration::ZERO, None).is_ok());
        assert!(!b.admit_unmeasured());
    }

    #[test]
    fn close_to_the_target_the_clock_is_read_at_every_request() {
        // Targets no stall of the test machine reaches: nothing is shed
        // and no interval ends.
        let mut a = Admission::new(Duration::from_secs(1));
        a.interval_end = Instant::now() + Duration::from_secs(3600);
        let read = Rank::of(ClientPriority::Normal, CommandClass::Read);
        a.turn_started(Instant::now());
        assert!(a.admit(read, Duration::ZERO, None).is_ok());
        while a.admit_unmeasured() {}
        // The turn's input is as old as the target: close.
        a.queued = Duration::from_secs(1);
        assert!(a.admit(read, Duration::ZERO, None).is_ok());
        assert!(!a.admit_unmeasured(), "close: the next one is measured");
        // Readings far from it end that after CLOCK_EVERY of them, not at
        // the first (a mix of cheap and heavy commands does not flap).
        a.queued = Duration::ZERO;
        for left in (0..CLOCK_EVERY).rev() {
            a.clock = Instant::now();
            assert!(a.admit(read, Duration::ZERO, None).is_ok());
            assert_eq!(a.close_left, left);
            assert_eq!(a.admit_unmeasured(), left == 0, "{left} to go");
        }
    }

    #[test]
    fn a_delay_past_every_threshold_sheds_before_the_interval_ends() {
        let target = Duration::from_millis(1);
        let mut a = Admission::new(target);
        let low = Rank::of(ClientPriority::Low, CommandClass::Compute);
        // 4 ms behind: past the low rank's threshold, within the most
        // patient one's (5x): a burst, admitted until the interval ends.
        a.prev_busy = Duration::from_millis(4);
        let now = Instant::now();
        a.rested = now;
        a.turn_started(now);
        assert!(a.admit(low, Duration::ZERO, None).is_ok());
        assert!(!a.overloaded);
        // 8 ms behind: no rank would be admitted; shed now.
        a.prev_busy = Duration::from_millis(8);
        let now = Instant::now();
        a.rested = now;
        a.turn_started(now);
        assert!(a.admit(low, Duration::ZERO, None).is_err());
        assert!(a.overloaded);
    }

    #[test]
    fn a_reads_own_work_is_no_queueing_delay() {
        let target = Duration::from_millis(1);
        let mut a = Admission::new(target);
        let low = Rank::of(ClientPriority::Low, CommandClass::Compute);
        // An idle core ran the first 8 ms of a read (past every threshold,
        // 5 ms): the read's next command is as late only by its own.
        let start = Instant::now();
        a.turn_started(start);
        a.turn_start = start - Duration::from_millis(8);
        assert!(a.admit(low, Duration::from_millis(8), None).is_ok());
        assert!(!a.overloaded, "self-inflicted: no overload");
        // Another read waited behind all of it: measured (not admitted at
        // the last reading) and shed at once.
        assert!(!a.admit_unmeasured());
        let shed = a.admit(low, Duration::ZERO, None).unwrap_err();
        assert!(shed.delay >= Duration::from_millis(8), "{shed:?}");
        assert!(a.overloaded);
    }

    #[test]
    fn a_connection_alone_on_its_core_is_judged_by_no_delay() {
        let mut a = Admission::new(Duration::from_millis(1));
        let low = Rank::of(ClientPriority::Low, CommandClass::Compute);
        // Its earlier reads took 8 ms (past every threshold, 5 ms), and the
        // loop did not wait idle since.
        a.prev_busy = Duration::from_millis(8);
        let now = Instant::now();
        a.rested = now;
        a.turn_started(now);
        a.pass_began(true);
        assert!(a.admit(low, Duration::ZERO, None).is_ok());
        assert!(!a.overloaded, "its own work: no overload");
        // A second connection opened: input is judged by the whole delay,
        // measured afresh (not admitted at the last reading).
        a.pass_began(false);
        assert!(!a.admit_unmeasured());
        let shed = a.admit(low, Duration::ZERO, None).unwrap_err();
        assert!(shed.delay >= Duration::from_millis(8), "{shed:?}");
    }

    #[test]
    fn a_standing_delay_sheds_low_ranks_first() {
        let target = Duration::from_millis(10);
        let mut a = Admission::new(target);
        let low = Rank::of(ClientPriority::Low, CommandClass::Compute);
        let high = Rank::of(ClientPriority::High, CommandClass::Read);
        // After a 30 ms turn: 3x the target.
        a.prev_busy = Duration::from_millis(30);
        let now = Instant::now();
        a.rested = now;
        a.turn_started(now);
        a.interval_end = Instant::now() - Duration::from_millis(1);
        assert!(!a.overloaded, "not overloaded before an interval ends");
        assert!(
            a.admit(low, Duration::ZERO, None).is_err(),
            "the interval ends: overloaded"
        );
        assert!(a.overloaded);
        assert!(
            a.admit(high, Duration::ZERO, None).is_ok(),
            "high reads wait up to 5x"
        );
        assert!(a.admit(Rank::UNRANKED, Duration::ZERO, None).is_ok());
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
    fn a_refusal_the_last_reading_decides_reads_no_clock() {
        // Delays no stall of the test machine spans: 200 ms behind, past a
        // low-priority call's threshold (100 ms), under a high-priority
        // read's (500 ms).
        let mut a = Admission::new(Duration::from_millis(100));
        let low = Rank::of(ClientPriority::Low, CommandClass::Compute);
        let high = Rank::of(ClientPriority::High, CommandClass::Read);
        a.shedding_with(Duration::from_millis(200));
        let first = a.admit(low, Duration::ZERO, None).unwrap_err();
        let read_at = a.clock;
        for _ in 0..3 {
            assert_eq!(
                a.admit(low, Duration::ZERO, None),
                Err(first),
                "the same delay"
            );
        }
        assert_eq!(a.clock, read_at, "no reading for a refusal it decides");
        assert_eq!(a.shed, 4);
        std::thread::sleep(Duration::from_millis(1));
        assert!(
            a.admit(high, Duration::ZERO, None).is_ok(),
            "a rank it may admit is measured"
        );
        assert!(a.clock > read_at);
        // A new turn measures its first request again.
        a.shedding_with(Duration::ZERO);
        assert!(a.admit(low, Duration::ZERO, None).is_ok());
    }

    #[test]
    fn an_overload_stays_only_while_its_refusals_are_a_real_share() {
        let mut a = Admission::new(Duration::from_millis(1));
        let end = |a: &mut Admission, shed: u32, admitted: u32| {
            a.overloaded = true;
            (a.shed, a.admitted[0]) = (shed, admitted);
            a.end_interval(Instant::now(), None);
            a.shedding()
        };
        // Offered 3x: two refused for each admitted.
        assert!(end(&mut a, 20, 10));
        // At the share: one refused for three admitted (offered ~1.33x).
        assert!(end(&mut a, 10, 30));
        // Light load behind one stall: one refusal an interval among ten.
        assert!(!end(&mut a, 1, 10), "a stray refusal keeps no overload");
        assert!(!end(&mut a, 0, 10));
    }

    #[test]
    fn an_idle_wait_clears_the_queue_estimate_and_the_overload() {
        let target = Duration::from_millis(1);
        let mut a = Admission::new(target);
        let read = Rank::of(ClientPriority::Normal, CommandClass::Read);
        // Back-to-back turns of 5 ms: the oldest input waited a whole turn.
        let t0 = Instant::now();
        a.prev_busy = Duration::from_millis(5);
        a.rested = t0;
        a.turn_started(t0 + Duration::from_micros(5));
        assert!(a.queued >= Duration::from_millis(5), "{:?}", a.queued);
        a.interval_end = t0;
        assert!(
            a.admit(read, Duration::ZERO, None).is_err(),
            "a standing 5 ms queue sheds"
        );
        // The same turn, but the loop waited 2 ms for input: it was idle,
        // what it reaped had just arrived.
        a.rested = Instant::now();
        a.turn_started(a.rested + Duration::from_millis(2));
        assert_eq!(a.queued, Duration::ZERO);
        a.interval_end = Instant::now();
        assert!(a.admit(read, Duration::ZERO, None).is_ok());
        assert!(
            a.shedding(),
            "the interval shed: its idle wait is the shedding's, not the load's"
        );
        // The next interval sheds nothing: the load fell, the overload ends.
        a.interval_end = Instant::now();
        assert!(a.admit(read, Duration::ZERO, None).is_ok());
        assert!(
            !a.shedding(),
            "an interval with an idle wait and no refusal is no standing queue"
        );
    }

    #[test]
    fn a_wait_after_a_long_turn_is_idle_only_if_the_thread_slept() {
        let mut a = Admission::new(Duration::from_millis(1));
        // A long turn, then a wait that sleeps: idle.
        let start = Instant::now();
        a.turn_started(start);
        a.turn_ended(start + LONG_TURN);
        assert!(
            a.rested_switches.is_some(),
            "a long turn reads the switches"
        );
        std::thread::sleep(Duration::from_millis(2));
        a.turn_started(Instant::now());
        assert_eq!(a.queued, Duration::ZERO);
        // A long turn, then a wait that never sleeps (spins, as a preempted
        // thread never sleeps either): the input may have waited it all.
        let start = Instant::now();
        a.turn_started(start);
        a.turn_ended(start + LONG_TURN);
        while start.elapsed() < Duration::from_millis(2) {
            std::hint::spin_loop();
        }
        let now = Instant::now();
        a.turn_started(now);
        // The thread may be switched out while spinning on a busy machine;
        // it never sleeps, so the wait still counts.
        assert!(
            a.queued >= LONG_TURN + Duration::from_micros(500),
            "{:?}",
            a.queued
        );
        // A short turn, then a wait over IDLE_WAIT: idle without asking.
        a.turn_ended(now + Duration::from_micros(10));
        assert!(a.rested_switches.is_none());
        a.turn_started(now + Duration::from_micros(10) + IDLE_WAIT);
        assert_eq!(a.queued, Duration::ZERO);
    }
}
