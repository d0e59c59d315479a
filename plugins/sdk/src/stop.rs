//! Graceful stop: SIGTERM and SIGINT set a flag and make a descriptor
//! readable, so a plugin parked in `poll` wakes up, finishes and commits what
//! it has read, and exits 0.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};

#[derive(Debug)]
pub(crate) struct StopSignal {
    flag: Arc<AtomicBool>,
    wake: UnixStream,
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
        Ok(Self { flag, wake })
    }

    pub(crate) fn requested(&self) -> bool {
        // ORDERING: a flag only; nothing else is published through it.
        self.flag.load(Ordering::Relaxed)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }
}
