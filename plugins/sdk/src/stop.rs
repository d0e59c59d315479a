//! Graceful stop. A plugin process: SIGTERM and SIGINT set a flag and make
//! a descriptor readable, so a plugin parked in `poll` wakes up, finishes and
//! commits what it has read, and exits 0. An inline plugin (a module in the
//! server) installs no signal handlers: the server sets a flag it owns and
//! signals an eventfd (see `citadel_proto::inline_abi`).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

/// Whose flag says "stop".
#[derive(Debug)]
enum Flag {
    /// Set by this process's signal handlers.
    Signals(Arc<AtomicBool>),
    /// The server's, for an inline plugin: valid until the module's serve
    /// call returns, which outlasts every `StopSignal` made in it.
    Host(*const AtomicBool),
}

// SAFETY: `Flag::Host` points at an `AtomicBool` (Sync) that the server
// keeps alive for the whole serve call; only atomic loads go through it.
unsafe impl Send for Flag {}

#[derive(Debug)]
pub(crate) struct StopSignal {
    flag: Flag,
    wake: OwnedFd,
}

impl StopSignal {
    pub(crate) fn install() -> io::Result<Self> {
        let flag = Arc::new(AtomicBool::new(false));
        let (wake, notify) = UnixStream::pair()?;
        notify.set_nonblocking(true)?;
        for sig in [SIGTERM, SIGINT] {
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
            signal_hook::low_level::pipe::register(sig, notify.try_clone()?)?;
        }
        Ok(Self {
            flag: Flag::Signals(flag),
            wake: wake.into(),
        })
    }

    /// The server's stop flag and eventfd (inline plugins).
    ///
    /// # Safety
    /// `flag` must point at an `AtomicBool` and `fd` be an open descriptor,
    /// both valid until the inline serve call that received them returns.
    pub(crate) unsafe fn host(flag: *const AtomicBool, fd: RawFd) -> io::Result<Self> {
        // SAFETY: the caller guarantees `fd` is open for now; we keep our
        // own duplicate, so its later closing does not matter.
        let wake = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
        Ok(Self {
            flag: Flag::Host(flag),
            wake,
        })
    }

    pub(crate) fn requested(&self) -> bool {
        match &self.flag {
            // ORDERING: a flag only; nothing else is published through it.
            Flag::Signals(f) => f.load(Ordering::Relaxed),
            // SAFETY: see `Flag::Host`; the pointer is valid while serving.
            // ORDERING: Relaxed; the server's Release store is paired with
            // the eventfd write, which wakes a parked loop to look again.
            Flag::Host(f) => unsafe { &**f }.load(Ordering::Relaxed),
        }
    }

    /// A plugin process checks that its parent (the server) still lives;
    /// an inline plugin lives in the server.
    pub(crate) fn watches_parent(&self) -> bool {
        matches!(self.flag, Flag::Signals(_))
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }
}
