//! Whether a connection is alone on its core (ARCHITECTURE.md, "Overload
//! protection", a client's own work): nobody else can be waiting behind
//! its input, so all the delay that input meets is its own making: a slow
//! command and the commands sent with it, however many reads they span
//! (one write of FLUSHALL and 20,000 SETs is some 40 reads of 16 KiB), or
//! a bulk load such as `redis-cli --pipe`. Redis runs it all; so does the
//! core.
//!
//! A connection is alone when it is the only client connection open on
//! the core, or when no other connection sent anything in this activity
//! window or the one before (`WINDOW`, the control interval) and none
//! other has input reaped in this turn. Open but idle connections (a
//! pool's spares, a monitoring client between polls, redis-cli left open
//! in another terminal) wait behind nobody's input: counting them made a
//! 2M-command `redis-cli --pipe` beside one idle connection get 1.6M
//! `-OVERLOAD` replies on an otherwise idle core.
//!
//! The turn's reaped input matters as much as the windows: a lone flood's
//! whole input is often reaped in one turn with another connection's PING
//! (or a second flooder's input) that waits behind it. Judged by activity
//! alone, a flood whose turns outlast two windows was served whole where it
//! must be shed (`tests/overload.rs`), as was an earlier rule, alone since
//! the core idled (2 runs in 6). The loop tells the core whether a turn's
//! receives came from several connections (`Service::readers`).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// An activity window: a connection that sent nothing for one to two of
/// these no longer counts as one that may wait behind another's input.
pub const WINDOW: Duration = Duration::from_millis(20);

/// The client connections of one core (RESP and RPC over the loop): how
/// many are open, and how many sent input in the current activity window
/// and in the one before it.
#[derive(Debug, Clone, Default)]
pub struct CoreConnections(Arc<Counts>);

// ORDERING (every field): Relaxed: counts of one core, written and read by
// that core's thread alone (atomics only so that a session may hold its
// guard wherever a `Send` value may go).
#[derive(Debug, Default)]
struct Counts {
    open: AtomicU32,
    /// The current window's number.
    window: AtomicU64,
    /// Connections that sent input in the current window ...
    active: AtomicU32,
    /// ... and in the window before it.
    active_before: AtomicU32,
    /// This turn's receives came from more than one connection.
    several_readers: AtomicU32,
}

impl CoreConnections {
    /// Counts a connection until the returned guard is dropped.
    pub fn opened(&self) -> OpenConnection {
        self.0.open.fetch_add(1, Relaxed);
        OpenConnection {
            counts: self.0.clone(),
            window: None,
            active_before: false,
        }
    }

    /// Activity window `window` began (numbers only grow; one past the
    /// last carries its count over as the window before).
    pub fn window_began(&self, window: u64) {
        let c = &self.0;
        let current = c.window.load(Relaxed);
        if window != current {
            let carried = if window == current + 1 {
                c.active.load(Relaxed)
            } else {
                0
            };
            c.active_before.store(carried, Relaxed);
            c.active.store(0, Relaxed);
            c.window.store(window, Relaxed);
        }
    }

    /// This turn's receives came from more than one connection (told
    /// before any of them runs).
    pub fn readers(&self, several: bool) {
        self.0.several_readers.store(u32::from(several), Relaxed);
    }

    /// True when at most one connection is open.
    #[inline]
    pub fn alone(&self) -> bool {
        self.0.open.load(Relaxed) <= 1
    }
}

/// A counted connection (held by its session).
#[derive(Debug)]
pub struct OpenConnection {
    counts: Arc<Counts>,
    /// The last window it sent input in.
    window: Option<u64>,
    /// It sent input in the window before `window` too.
    active_before: bool,
}

impl OpenConnection {
    /// The connection's input is about to run: counts it as active in the
    /// current window, and answers whether it is alone on its core (no
    /// other connection open, or none that sent input lately or this turn).
    // (Not inlined: in `Session::process` it tipped the compiler into
    // calling the cache's GET out of line, +16 instructions a pipelined
    // GET.)
    #[inline(never)]
    pub fn input_began(&mut self) -> bool {
        let c = &self.counts;
        let current = c.window.load(Relaxed);
        if self.window != Some(current) {
            self.active_before = self.window.is_some_and(|w| w + 1 == current);
            self.window = Some(current);
            c.active.fetch_add(1, Relaxed);
        }
        if c.open.load(Relaxed) <= 1 {
            return true;
        }
        let others_now = c.active.load(Relaxed).saturating_sub(1);
        let others_before = c
            .active_before
            .load(Relaxed)
            .saturating_sub(u32::from(self.active_before));
        others_now == 0 && others_before == 0 && c.several_readers.load(Relaxed) == 0
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.counts.open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_alone_while_no_other_is_open() {
        let core = CoreConnections::default();
        let mut first = core.opened();
        assert!(core.alone());
        assert!(first.input_began());
        let mut second = core.opened();
        assert!(!core.alone());
        assert!(!second.input_began(), "the first sent input this window");
        drop(first);
        assert!(core.alone(), "the other one closed");
        assert!(second.input_began());
        drop(second);
        assert!(core.alone());
    }

    #[test]
    fn an_idle_connection_beside_it_stops_counting_after_two_windows() {
        let core = CoreConnections::default();
        core.window_began(1);
        let (mut bulk, mut idle) = (core.opened(), core.opened());
        assert!(idle.input_began(), "nobody else sent anything yet");
        assert!(!bulk.input_began(), "the other sent input this window");
        core.window_began(2);
        assert!(!bulk.input_began(), "... and in the window before");
        core.window_began(3);
        assert!(bulk.input_began(), "idle for a whole window");
        core.readers(true);
        assert!(!bulk.input_began(), "another's input was reaped this turn");
        core.readers(false);
        assert!(!idle.input_began(), "the bulk connection is active");
        core.window_began(9);
        assert!(bulk.input_began(), "a gap of windows forgets everyone");
        assert!(!idle.input_began());
    }

    #[test]
    fn its_own_activity_in_the_window_before_is_not_another_connection() {
        let core = CoreConnections::default();
        let _idle = core.opened();
        let mut bulk = core.opened();
        for window in 1..5 {
            core.window_began(window);
            assert!(bulk.input_began(), "window {window}");
            assert!(bulk.input_began(), "window {window}, its next input");
        }
    }
}
