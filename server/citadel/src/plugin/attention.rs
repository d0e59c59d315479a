//! When a server thread may block with plugin calls out: the server's half
//! of the reply rings' sleeping-flag handshake (`citadel_proto::ring::wake`).
//!
//! While the thread's loop runs turns, its reply rings' flags are clear, so
//! a plugin publishes replies without writing the eventfd. For
//! [`ATTENTIVE`] after it sent a call to, or read a reply from, a plugin
//! pinned to cores of its own, with calls still out, the thread does not
//! block (the loop polls again at once): a plugin that answers within that
//! window costs neither side an eventfd write or read. Not for a plugin
//! without cores of its own (`cores = "none"`): polling would take CPU
//! time from the very plugin it waits for (on a 2-CPU host with echo
//! unpinned it halved calls/s and doubled CPU per call). Only when the
//! loop is about to block does the thread
//! set every reply ring's flag, fence, and look at each ring once more
//! (the Dekker pair): a reply published after that look sees the flag and
//! rings the eventfd the loop's io_uring polls. The next poll clears them.

use std::cell::Cell;
use std::time::{Duration, Instant};

use citadel_proto::ring::{clear_sleeping_all, prepare_park_all, Consumer};
use citadel_supervisor::PluginShared;

/// How long after its last plugin traffic a thread with calls out keeps
/// polling instead of blocking (a fast plugin answers well within it; a
/// slow one costs the thread at most this much polling per call).
pub const ATTENTIVE: Duration = Duration::from_micros(50);

pub(super) struct Attention {
    /// The flags were set by `before_block` and not cleared since.
    parked: Cell<bool>,
    /// Poll without blocking until then while calls are out.
    until: Instant,
}

impl Attention {
    pub(super) fn new() -> Attention {
        Attention {
            parked: Cell::new(false),
            until: Instant::now(),
        }
    }

    /// A call was sent to `plugin`, or a reply read from it, at `now`.
    pub(super) fn traffic(&mut self, plugin: &PluginShared, now: Instant) {
        if !plugin.cores.is_empty() {
            self.until = now + ATTENTIVE;
        }
    }

    /// The start of a poll: the loop is awake, the flags come down.
    pub(super) fn awake<'a>(&self, rings: impl Iterator<Item = &'a Consumer>) {
        if self.parked.take() {
            clear_sleeping_all(rings);
        }
    }

    /// The loop is about to block: Some(now) when it must poll again at
    /// once (attentive, or a reply is waiting), None when the rings let it
    /// block (their flags are set: any reply from now on rings an eventfd).
    pub(super) fn before_block<'a, I>(&self, calls_out: bool, rings: I) -> Option<Instant>
    where
        I: Iterator<Item = &'a Consumer> + Clone,
    {
        let now = Instant::now();
        if calls_out && now < self.until {
            return Some(now);
        }
        self.parked.set(true);
        if prepare_park_all(rings) {
            None
        } else {
            Some(now)
        }
    }
}
