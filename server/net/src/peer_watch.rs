//! What a thread needs to know of its peers to relieve a stalled one
//! (relief.rs): their heartbeats and their listeners.

use std::os::fd::{BorrowedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::Socket;

use super::stats::LoopStats;
use super::Door;

/// Own ticks (~100 ms each) a peer may go without ticking before its
/// listeners are relieved: a loop turn is microseconds to milliseconds, so
/// this is a thread that is not coming back soon.
pub(super) const STALL_TICKS: u32 = 3;
/// While relieving, how often the peer's listeners are looked at: a new
/// connection to a stalled thread waits at most this long.
pub(super) const RELIEF_POLL: Duration = Duration::from_millis(10);

/// A listener as a peer may take it over: its door, its descriptor and,
/// for a Unix socket, its path.
pub(super) type Listener = (Door, RawFd, Option<Arc<str>>);

/// A duplicate of a peer's listener, with its door and Unix path.
pub(super) type Duplicate = (Door, Socket, Option<Arc<str>>);

/// What every thread may read of every other, for relief.
pub struct Relief {
    /// Per thread: its loop's counters (`ticks` is the heartbeat).
    pub(super) loops: Vec<Arc<LoopStats>>,
    /// Per thread: its listeners' descriptors (door, descriptor, a Unix
    /// socket's path), emptied (under the lock) before it closes them at
    /// shutdown, so a peer never duplicates a descriptor number the
    /// process may have reused.
    listeners: Mutex<Vec<Vec<Listener>>>,
}

impl Relief {
    pub fn new(loops: Vec<Arc<LoopStats>>, listeners: Vec<Vec<Listener>>) -> Relief {
        Relief {
            loops,
            listeners: Mutex::new(listeners),
        }
    }

    /// Thread `thread` is closing its listeners: no peer may take them now.
    pub fn withdraw(&self, thread: usize) {
        let mut all = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mine) = all.get_mut(thread) {
            mine.clear();
        }
    }

    /// Duplicates of thread `peer`'s listeners.
    pub(super) fn duplicate(&self, peer: usize) -> Vec<Duplicate> {
        let all = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let Some(theirs) = all.get(peer) else {
            return Vec::new();
        };
        theirs
            .iter()
            .filter_map(|(door, fd, path)| {
                // SAFETY: `fd` is open: its owner closes it only after
                // `withdraw` removed it, which waits for this lock.
                let borrowed = unsafe { BorrowedFd::borrow_raw(*fd) };
                let dup = borrowed.try_clone_to_owned().ok()?;
                Some((*door, Socket::from(dup), path.clone()))
            })
            .collect()
    }
}

/// One peer as this thread last saw it.
#[derive(Clone, Copy, Default)]
pub(super) struct PeerWatch {
    pub(super) ticks: u64,
    /// Own ticks since its tick counter last moved.
    pub(super) still: u32,
    pub(super) relieving: bool,
}
