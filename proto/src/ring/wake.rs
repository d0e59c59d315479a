//! Wake-ups: adaptive spinning, then parking on an eventfd.
//!
//! The consumer parks only after spinning finds nothing. To park it sets its
//! ring's `sleeping` flag, issues a SeqCst fence, re-checks the producer's
//! head and only then blocks in `poll` on the eventfd. The producer, after
//! publishing, issues a SeqCst fence and writes the eventfd only if it sees
//! the flag set, so while both sides are busy no message costs a system call.
//!
//! ORDERING: this is the store-buffering (Dekker) pattern. Consumer:
//! `sleeping = 1; fence(SeqCst); load head`. Producer: `store head;
//! fence(SeqCst); load sleeping`. The two SeqCst fences are totally ordered,
//! so at least one side sees the other's store: either the consumer sees the
//! new head and does not block, or the producer sees `sleeping == 1` and
//! writes the eventfd (whose counter keeps the wake-up until it is read).

#[cfg(not(loom))]
use std::io;
#[cfg(not(loom))]
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
#[cfg(not(loom))]
use std::time::{Duration, Instant};

use super::consumer::Consumer;
use crate::sync::{fence, Ordering};
#[cfg(not(loom))]
use crate::sys;

/// An eventfd used as a doorbell (non-blocking, close-on-exec).
#[cfg(not(loom))]
#[derive(Debug)]
pub struct EventFd(OwnedFd);

#[cfg(not(loom))]
impl EventFd {
    pub fn new() -> io::Result<Self> {
        sys::eventfd().map(Self)
    }

    /// Wraps an eventfd this process owns (e.g. inherited from the server).
    pub fn from_owned(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Rings the bell.
    pub fn signal(&self) -> io::Result<()> {
        sys::eventfd_signal(self.0.as_fd())
    }

    /// Clears pending rings without blocking; returns how many there were.
    pub fn drain(&self) -> io::Result<u64> {
        sys::eventfd_drain(self.0.as_fd())
    }

    pub fn try_clone(&self) -> io::Result<Self> {
        self.0.try_clone().map(Self)
    }
}

#[cfg(not(loom))]
impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// How long a waiting consumer stays awake before it parks.
#[derive(Clone, Copy, Debug)]
pub struct SpinPolicy {
    /// Busy-poll iterations (each one `spin_loop` hint) before yielding.
    pub spins: u32,
    /// `yield_now` iterations before parking on the eventfd.
    pub yields: u32,
}

impl Default for SpinPolicy {
    fn default() -> Self {
        Self {
            spins: 4096,
            yields: 16,
        }
    }
}

impl SpinPolicy {
    /// Park at once (for tests of the parking path, and idle plugins).
    pub const PARK_AT_ONCE: Self = Self {
        spins: 0,
        yields: 0,
    };
}

/// Why waiting failed.
#[cfg(not(loom))]
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    #[error("waiting on eventfd: {0}")]
    Poll(io::Error),
}

/// What ended a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// At least one ring has records to read.
    Data,
    /// The extra descriptor with this index became readable (e.g. a stop signal).
    Extra(usize),
    TimedOut,
}

/// Waits until one of `rings` has records to read, one of `extra` is
/// readable, or `timeout` passes (None: no limit): spins, yields, then parks.
#[cfg(not(loom))]
pub fn wait_any(
    rings: &[&Consumer],
    extra: &[BorrowedFd<'_>],
    policy: SpinPolicy,
    timeout: Option<Duration>,
) -> Result<Wakeup, WaitError> {
    let any_data = || rings.iter().any(|c| c.has_unread());
    for _ in 0..policy.spins {
        if any_data() {
            return Ok(Wakeup::Data);
        }
        std::hint::spin_loop();
    }
    for _ in 0..policy.yields {
        if any_data() {
            return Ok(Wakeup::Data);
        }
        std::thread::yield_now();
    }
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        if !prepare_park(rings) {
            return Ok(Wakeup::Data);
        }
        let remaining = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(r) => Some(r),
                None => {
                    clear_sleeping(rings);
                    return Ok(Wakeup::TimedOut);
                }
            },
            None => None,
        };
        let mut fds: Vec<BorrowedFd<'_>> = rings.iter().map(|c| c.eventfd().as_fd()).collect();
        fds.extend_from_slice(extra);
        let ready = sys::poll_readable(&fds, remaining);
        clear_sleeping(rings);
        let ready = ready.map_err(WaitError::Poll)?;
        for (c, r) in rings.iter().zip(&ready) {
            if *r {
                c.eventfd().drain().map_err(WaitError::Poll)?;
            }
        }
        if let Some(i) = ready[rings.len()..].iter().position(|r| *r) {
            return Ok(Wakeup::Extra(i));
        }
        if any_data() {
            return Ok(Wakeup::Data);
        }
    }
}

#[cfg(not(loom))]
impl Consumer {
    /// Waits for records: spins per `policy`, then parks on the eventfd.
    pub fn wait(&self, policy: SpinPolicy, timeout: Option<Duration>) -> Result<Wakeup, WaitError> {
        wait_any(&[self], &[], policy, timeout)
    }
}

/// The consumer's half of the handshake in the module comment: sets each
/// ring's sleeping flag, fences, and checks for data one last time. Returns
/// true if the caller may block on the eventfds: any record published from
/// now on rings one. Returns false (flags cleared) if data is there.
pub fn prepare_park(rings: &[&Consumer]) -> bool {
    prepare_park_all(rings.iter().copied())
}

/// [`prepare_park`] over any rings (e.g. the reply rings of every plugin
/// lane of a server thread): one fence for all of them.
pub fn prepare_park_all<'a, I>(rings: I) -> bool
where
    I: Iterator<Item = &'a Consumer> + Clone,
{
    for c in rings.clone() {
        // ORDERING: see the module comment; SeqCst store + fence below.
        c.ring().sleeping().store(1, Ordering::SeqCst);
        // ORDERING: Relaxed; a statistic.
        c.ring()
            .counter(super::Counter::Empty)
            .fetch_add(1, Ordering::Relaxed);
    }
    fence(Ordering::SeqCst);
    if rings.clone().any(|c| c.has_unread()) {
        clear_sleeping_all(rings);
        return false;
    }
    true
}

/// Clears the sleeping flags after a wake-up.
pub fn clear_sleeping(rings: &[&Consumer]) {
    clear_sleeping_all(rings.iter().copied())
}

/// [`clear_sleeping`] over any rings.
pub fn clear_sleeping_all<'a>(rings: impl Iterator<Item = &'a Consumer>) {
    for c in rings {
        // ORDERING: Relaxed; a producer that still sees 1 only sends one
        // spurious wake-up, which the eventfd counter absorbs.
        c.ring().sleeping().store(0, Ordering::Relaxed);
    }
}
