//! CLIENT PAUSE's process-wide state: one word, "paused until" (Unix ms)
//! and whether every command or only writes wait, read with one Relaxed
//! load per command by every thread. As in Redis, a pause holds every
//! client's matching commands, the pausing client's too; a held command
//! is not consumed: its connection parks until the pause ends
//! (`command/session.rs`, `thread.rs`).
//!
//! A transaction that keeps conflicting holds every client's writes the
//! same way while it runs again (`command/write_hold.rs`): a bit of the
//! same word, with no end time (released by that transaction), so a
//! command still pays one load.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// The word's bit: every command waits (else only writes).
const ALL: u64 = 1;
/// The word's bit: a transaction holds every client's writes.
const WRITES_HELD: u64 = 2;
/// The pause's end (Unix ms) is the word shifted right this far.
const UNTIL_SHIFT: u32 = 2;

#[derive(Debug, Default)]
pub struct Pause {
    /// `until_ms << UNTIL_SHIFT | WRITES_HELD? | ALL?`; 0 when nothing
    /// holds commands.
    word: AtomicU64,
    /// Connections held now, on every thread (INFO `blocked_clients`
    /// counts them, as Redis counts its postponed clients).
    held: AtomicUsize,
}

impl Pause {
    /// Pauses until `until_ms` (never earlier than a pause in effect, as
    /// Redis keeps the later end); `all`: every command, else writes.
    pub fn pause(&self, until_ms: u64, all: bool) {
        let _ = self.word.fetch_update(Relaxed, Relaxed, |w| {
            let until = until_ms.max(w >> UNTIL_SHIFT);
            Some(until << UNTIL_SHIFT | w & WRITES_HELD | if all { ALL } else { 0 })
        });
    }

    /// Ends the pause (a transaction's hold of writes stays).
    pub fn unpause(&self) {
        self.word.fetch_and(WRITES_HELD, Relaxed);
    }

    /// When a pause in effect at `now_ms` would hold a command (`write`:
    /// it may change data), the time it ends (`u64::MAX`: when the
    /// transaction holding writes ends).
    #[inline]
    pub fn holds(&self, now_ms: u64, write: bool) -> Option<u64> {
        let w = self.word.load(Relaxed);
        let until = w >> UNTIL_SHIFT;
        if until > now_ms && (write || w & ALL != 0) {
            return Some(until);
        }
        (write && w & WRITES_HELD != 0).then_some(u64::MAX)
    }

    /// Holds every client's writes for a transaction; false when another
    /// transaction holds them.
    pub fn hold_writes(&self) -> bool {
        // ORDERING: Relaxed: a thread that misses the hold for a while
        // runs a write the transaction then conflicts with and runs again
        // (its commit validates; the hold only speeds it along).
        self.word.fetch_or(WRITES_HELD, Relaxed) & WRITES_HELD == 0
    }

    /// Ends the hold `hold_writes` took.
    pub fn release_writes(&self) {
        self.word.fetch_and(!WRITES_HELD, Relaxed);
    }

    /// Whether a transaction holds every client's writes now.
    #[inline]
    pub fn writes_held(&self) -> bool {
        self.word.load(Relaxed) & WRITES_HELD != 0
    }

    /// A connection parks on the pause.
    pub fn hold_one(&self) {
        self.held.fetch_add(1, Relaxed);
    }

    /// A held connection resumed or closed.
    pub fn release_one(&self) {
        self.held.fetch_sub(1, Relaxed);
    }

    /// Connections held now.
    pub fn held(&self) -> usize {
        self.held.load(Relaxed)
    }

    /// The end of the pause in effect at `now_ms`, if any.
    pub fn until(&self, now_ms: u64) -> Option<u64> {
        let until = self.word.load(Relaxed) >> UNTIL_SHIFT;
        (until > now_ms).then_some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_pauses_hold_writes_only_and_end() {
        let p = Pause::default();
        assert_eq!(p.holds(0, true), None);
        p.pause(1000, false);
        assert_eq!(p.holds(500, true), Some(1000));
        assert_eq!(p.holds(500, false), None);
        assert_eq!(p.holds(1000, true), None);
        p.pause(800, true);
        assert_eq!(p.holds(900, false), Some(1000), "the later end stays");
        p.unpause();
        assert_eq!(p.holds(500, true), None);
    }

    #[test]
    fn a_transaction_holds_writes_until_it_releases_them() {
        let p = Pause::default();
        assert!(p.hold_writes());
        assert!(!p.hold_writes(), "one holder at a time");
        assert_eq!(p.holds(500, true), Some(u64::MAX));
        assert_eq!(p.holds(500, false), None, "reads go on");
        assert_eq!(p.until(500), None, "no pause with an end time");
        p.release_writes();
        assert_eq!(p.holds(500, true), None);
        assert!(p.hold_writes());
    }
}
