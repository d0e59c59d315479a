//! Waiting for a change in the discovery directory: inotify on the
//! directory, an eventfd to be woken for shutdown, and a timeout (a server
//! killed with -9 leaves its record behind: only a periodic look at its
//! pid notices).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What ended a [`DirWatch::wait`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Something in the directory changed.
    Changed,
    /// The timeout passed quietly.
    Quiet,
    /// [`Waker::wake`] was called: stop watching.
    Stopped,
}

pub(crate) struct DirWatch {
    inotify: File,
    wake: Arc<File>,
    dir: PathBuf,
    /// False until the directory exists (and again if it is removed).
    watching: bool,
}

/// Wakes a [`DirWatch::wait`] from another thread.
pub(crate) struct Waker(Arc<File>);

impl Waker {
    pub(crate) fn wake(&self) {
        // Cannot fail but for an overflowing counter, which wakes anyway.
        let _ = (&*self.0).write(&1u64.to_ne_bytes());
    }
}

/// A new non-blocking, close-on-exec descriptor from a syscall's result.
fn owned(fd: libc::c_int) -> io::Result<File> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by the kernel and nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Events that change which records exist or what they say.
const EVENTS: u32 = libc::IN_CREATE
    | libc::IN_CLOSE_WRITE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF;

impl DirWatch {
    pub(crate) fn new(dir: &Path) -> io::Result<(DirWatch, Waker)> {
        // SAFETY: plain syscalls without pointers.
        let inotify = owned(unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) })?;
        // SAFETY: as above.
        let wake = owned(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
        let wake = Arc::new(wake);
        let mut watch = DirWatch {
            inotify,
            wake: Arc::clone(&wake),
            dir: dir.to_path_buf(),
            watching: false,
        };
        watch.watching = watch.add_watch();
        Ok((watch, Waker(wake)))
    }

    fn add_watch(&self) -> bool {
        let Ok(path) = std::ffi::CString::new(self.dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: `path` is a NUL-terminated string that outlives the call.
        let wd =
            unsafe { libc::inotify_add_watch(self.inotify.as_raw_fd(), path.as_ptr(), EVENTS) };
        wd >= 0
    }

    /// Waits up to `timeout` for a change or a wake-up.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Wait {
        if !self.watching {
            // The directory may have appeared since: report it as a change.
            self.watching = self.add_watch();
            if self.watching {
                return Wait::Changed;
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: self.inotify.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.wake.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `fds` is a valid array of two pollfds for the call's duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        if n <= 0 {
            // Timeout, or EINTR: either way, a quiet round.
            return Wait::Quiet;
        }
        if fds[1].revents != 0 {
            return Wait::Stopped;
        }
        if self.drain_lost_watch() {
            self.watching = false;
        }
        Wait::Changed
    }

    /// Reads every pending event; true if the watch itself is gone (the
    /// directory was removed or moved).
    fn drain_lost_watch(&mut self) -> bool {
        let mut lost = false;
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = self.inotify.read(&mut buf) {
            let mut at = 0;
            // Each event: wd i32, mask u32, cookie u32, len u32, name[len].
            while at + 16 <= n {
                let field = |i: usize| {
                    u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap_or_default())
                };
                let mask = field(4);
                lost |= mask & (libc::IN_IGNORED | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF) != 0;
                at += 16 + field(12) as usize;
            }
        }
        lost
    }
}
