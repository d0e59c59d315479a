//! The core's side of holding refusals (`citadel_net`'s hold.rs): while
//! it sheds, a connection whose every request was refused is held, its
//! refusals and what it sends meanwhile kept back, so that one recv and
//! one send carry several refusals instead of one each (a refusal's
//! kernel share, ~5.6 µs, was most of its cost). The hold is bounded: a
//! refusal waits at most `HOLD_MAX` (plus a turn) for its send. Only a
//! connection that had an input refused less than a hold before is held
//! (`RefusalHold::hold`): one that sends rarely would bring nothing more
//! during it.

use std::time::{Duration, Instant};

use super::ThreadOverload;

/// A hold lasts this many delay targets ...
const HOLD_TARGETS: u32 = 16;
/// ... and at most this long. Open loop at 3x (100 connections, ~70k
/// requests/s) a connection sends a request every ~1.5 ms: a 4 ms hold
/// (a 250 µs target) reads ~3 at once. Past 5x the target (the most
/// patient rank's threshold) everything read after it is refused as stale.
const HOLD_MAX: Duration = Duration::from_millis(5);

impl ThreadOverload {
    /// While the core sheds: how long a connection whose every request was
    /// refused is held, and the time (the last clock reading: a read of the
    /// clock for each refused input cost ~10% of a refusal's instructions).
    pub fn refusal_hold(&self) -> Option<(Duration, Instant)> {
        let hold = || (self.admission.target() * HOLD_TARGETS).min(HOLD_MAX);
        self.shedding()
            .then(|| (hold(), self.admission.last_reading()))
    }
}

/// A connection's side: whether its last input was all refused (and read
/// after a hold), when it last had one refused, and its hold.
#[derive(Debug, Default)]
pub struct RefusalHold {
    all_refused: bool,
    after_hold: bool,
    last_refused: Option<Instant>,
    held: Option<(Instant, Duration)>,
}

impl RefusalHold {
    /// Input is about to run: how long it may have waited in the socket
    /// (zero unless the connection was held; at most the hold). The hold is
    /// over once its input is read.
    pub fn input_age(&mut self) -> Duration {
        self.held
            .take()
            .map_or(Duration::ZERO, |(at, hold)| at.elapsed().min(hold))
    }

    /// `commands` ran, `refused` of them refused from their framing;
    /// `after_hold`: the input was read after a hold.
    pub fn ran(&mut self, commands: u64, refused: u64, after_hold: bool) {
        if commands > 0 {
            self.all_refused = refused == commands;
            self.after_hold = after_hold;
        }
    }

    /// After the input ran: holds the connection for `hold` (the core's
    /// [`ThreadOverload::refusal_hold`], with the time) if all of it was
    /// refused and so was
    /// an input of it less than a hold ago: a hold pays only when the client
    /// sends again within it (else it only adds a cancel, a re-arm and a
    /// turn: under callgrind, with a request every 25 ms a connection, a
    /// refusal cost ~1,500 more instructions). Input read after a hold does
    /// not renew it: one hold per refusal that was not held, so no
    /// connection stays held while others are served.
    pub fn hold(&mut self, hold: Option<(Duration, Instant)>) -> Option<Duration> {
        let refused = std::mem::take(&mut self.all_refused);
        let after_hold = std::mem::take(&mut self.after_hold);
        let (hold, now) = hold.filter(|_| refused)?;
        let previous = self.last_refused.replace(now);
        let recent = previous.is_some_and(|t| now.saturating_duration_since(t) < hold);
        if !recent || after_hold {
            return None;
        }
        self.held = Some((now, hold));
        Some(hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_sends_often_is_held_once_per_fresh_refusal() {
        // A day-long hold: every input of the test is "recent".
        let day = Duration::from_secs(86_400);
        let hold = || Some((day, Instant::now()));
        let mut conn = RefusalHold::default();
        assert_eq!(conn.input_age(), Duration::ZERO, "never held");
        conn.ran(1, 1, false);
        assert_eq!(conn.hold(hold()), None, "a first refusal: no rate known");
        conn.ran(2, 1, false);
        assert_eq!(conn.hold(hold()), None, "a command was served");
        conn.ran(1, 1, false);
        assert_eq!(conn.hold(None), None, "the core no longer sheds");
        conn.ran(2, 2, false);
        assert_eq!(
            conn.hold(hold()),
            Some(day),
            "all refused, the last refusal recent"
        );
        std::thread::sleep(Duration::from_millis(1));
        assert!(conn.input_age() >= Duration::from_millis(1));
        assert_eq!(conn.input_age(), Duration::ZERO, "read once");
        conn.ran(3, 3, true);
        assert_eq!(
            conn.hold(hold()),
            None,
            "not held again for its stale input"
        );
        conn.ran(0, 0, false);
        assert_eq!(conn.hold(hold()), None, "nothing ran");
        conn.ran(1, 1, false);
        assert_eq!(
            conn.hold(hold()),
            Some(day),
            "the next fresh refusal is held"
        );
        // A client that sends rarely: its refusals are a hold apart.
        let brief = Duration::from_nanos(1);
        let mut rare = RefusalHold::default();
        for _ in 0..3 {
            rare.ran(1, 1, false);
            std::thread::sleep(Duration::from_millis(1));
            assert_eq!(rare.hold(Some((brief, Instant::now()))), None);
        }
    }
}
