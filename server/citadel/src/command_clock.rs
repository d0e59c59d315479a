//! The clock that times commands (INFO commandstats, latencystats, SLOWLOG).
//!
//! Reading CLOCK_MONOTONIC is cheap but not free (about 8% of a core serving
//! pipelined GETs went to the two reads around each command). Within one
//! pass over a connection's input, the reading that ends one command also
//! starts the next: the time between them is the next command's own
//! framing and checks, which is its work too. A pass begins and ends with
//! no mark, so a command run from anywhere else (a woken or handed-off
//! command, EXEC's retries) reads the clock afresh and never inherits time
//! spent outside the server's work on it.

/// Monotonic nanoseconds: the time-stamp counter's where the kernel keeps
/// time with it, else CLOCK_MONOTONIC's (`tsc_clock.rs`). A bare clock read
/// is about half of what `Instant::now` and `elapsed` cost together (their
/// checked timespec arithmetic).
#[inline]
pub fn monotonic_nanos() -> u64 {
    crate::tsc_clock::now_nanos()
}

/// Milliseconds on the kernel's coarse monotonic clock: its resolution (a
/// tick, 1-4 ms) is plenty for thresholds of milliseconds (a script's
/// busy time), at about a third of `Instant::elapsed`'s cost.
#[inline]
pub fn coarse_monotonic_ms() -> u64 {
    clock_nanos(libc::CLOCK_MONOTONIC_COARSE) / 1_000_000
}

/// `clock` in nanoseconds (0 if the kernel refused it).
#[inline]
fn clock_nanos(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, a live local.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// One thread's command timing: whether a pass is on, and its last reading.
#[derive(Debug, Default)]
pub struct CommandClock {
    in_pass: bool,
    mark: Option<u64>,
    /// The last command's start (hot-key sampling's time, no read of its own).
    started: u64,
    /// This pass's first command's start and last command's end (0: none
    /// yet): the time the core spent on this connection's input, which
    /// admission does not count as queueing (`Admission::admit`).
    pass_start: u64,
    pass_end: u64,
}

impl CommandClock {
    /// A pass over one connection's input begins (`true`) or ends: the
    /// mark is forgotten either way.
    #[inline]
    pub fn set_pass(&mut self, on: bool) {
        self.in_pass = on;
        self.mark = None;
        (self.pass_start, self.pass_end) = (0, 0);
    }

    /// The time from this pass's first command's start to its last one's
    /// end (zero before one ended): no clock read of its own.
    #[inline]
    pub fn pass_busy(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.pass_end.saturating_sub(self.pass_start))
    }

    /// When the command about to run started: the previous command's end
    /// in this pass, else now.
    #[inline]
    pub fn start(&mut self) -> u64 {
        self.started = match self.mark.take() {
            Some(mark) => mark,
            None => {
                let now = monotonic_nanos();
                if self.pass_start == 0 {
                    self.pass_start = now;
                }
                now
            }
        };
        self.started
    }

    /// When the command running now started (its `start`).
    #[inline]
    pub fn started(&self) -> u64 {
        self.started
    }

    /// The command that started at `started` ended now: its duration in
    /// nanoseconds. Inside a pass, now is kept as the next command's start.
    #[inline]
    pub fn finish(&mut self, started: u64) -> u64 {
        let now = monotonic_nanos();
        if self.in_pass {
            self.mark = Some(now);
            self.pass_end = now;
        }
        now.saturating_sub(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chained_command_starts_where_the_last_ended() {
        let mut clock = CommandClock::default();
        clock.set_pass(true);
        let first = clock.start();
        let took = clock.finish(first);
        let second = clock.start();
        assert_eq!(second, first + took);
        // Taken once: a third start without a finish reads the clock.
        let third = clock.start();
        assert!(third >= second);
        // The pass's work: from its first start to its last end.
        let end = third + clock.finish(third);
        assert_eq!(clock.pass_busy().as_nanos(), u128::from(end - first));
        clock.set_pass(true);
        assert!(clock.pass_busy().is_zero(), "a new pass has done nothing");
    }

    #[test]
    fn outside_a_pass_nothing_is_chained() {
        let mut clock = CommandClock::default();
        clock.set_pass(true);
        let s = clock.start();
        clock.finish(s);
        clock.set_pass(false);
        assert_eq!(clock.mark, None);
        let s = clock.start();
        clock.finish(s);
        assert_eq!(clock.mark, None);
    }
}
