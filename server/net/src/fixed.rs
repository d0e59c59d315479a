//! Registered (fixed) files: each connection's socket is also entered in the
//! ring's sparse file table at its slab slot, and its recv and send SQEs
//! name it by that index, so the kernel takes no file reference per
//! operation (`fget`/`fput`, an atomic pair each in a multi-threaded
//! process, ~2% of a pipeline-1 request's kernel profile).
//!
//! The plain descriptor stays open and owned by the connection: accept,
//! setsockopt, shutdown and the refusal path use it. The table holds its own
//! reference to the socket, so a slot is emptied before the descriptor is
//! closed (else the close would not end the connection), and only once no
//! operation on it is in flight; a reused slot is overwritten by the next
//! connection's registration, so it never names an old socket.

use std::os::fd::RawFd;

use io_uring::IoUring;

/// Most table entries per ring (8 bytes of kernel memory each); slots past
/// the table (or every slot, if the kernel refuses it) use the plain
/// descriptor.
const MAX_ENTRIES: u32 = 1 << 16;

pub struct FixedFiles {
    /// Entries in the registered table (0: none registered).
    entries: u32,
}

impl FixedFiles {
    /// Registers an empty table with a slot for each of `maxclients`
    /// connections (a thread's slots in use never outnumber the clients
    /// admitted), as far as the open-file limit (the kernel refuses a larger
    /// table) and `MAX_ENTRIES` allow. A limit raised later at run time
    /// leaves the slots past the table on their descriptors.
    pub fn register(uring: &IoUring, maxclients: usize) -> FixedFiles {
        let entries = nofile_limit()
            .min(maxclients as u64)
            .min(u64::from(MAX_ENTRIES)) as u32;
        if entries == 0 {
            return FixedFiles { entries };
        }
        match uring.submitter().register_files_sparse(entries) {
            Ok(()) => FixedFiles { entries },
            Err(e) => {
                tracing::debug!("no registered file table ({e}): sockets are named by descriptor");
                FixedFiles { entries: 0 }
            }
        }
    }

    /// Enters `fd` at `slot`; false when it stays unregistered (the slot is
    /// past the table, or the kernel refused), so its SQEs name the descriptor.
    pub fn enter(&self, uring: &IoUring, slot: u32, fd: RawFd) -> bool {
        if slot >= self.entries {
            return false;
        }
        match uring.submitter().register_files_update(slot, &[fd]) {
            Ok(1) => true,
            Ok(_) => false,
            Err(e) => {
                tracing::debug!(slot, "registering a socket: {e}");
                false
            }
        }
    }

    /// Empties `slot`, which no in-flight operation uses any more. False if
    /// the kernel refused: the table still holds the socket open, so the
    /// caller shuts it down for the peer to see the end.
    pub fn remove(&self, uring: &IoUring, slot: u32) -> bool {
        match uring.submitter().register_files_update(slot, &[-1]) {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(slot, "unregistering a socket: {e}");
                false
            }
        }
    }
}

/// The soft RLIMIT_NOFILE now in force (0 if unknown).
fn nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    use io_uring::{opcode, types};

    use super::*;

    #[test]
    fn sends_by_slot_and_the_slot_holds_the_socket_until_removed() {
        let mut uring = crate::uring::create().unwrap();
        let files = FixedFiles::register(&uring, 64);
        assert!(files.entries > 0, "the table was refused");
        let (mut peer, ours) = UnixStream::pair().unwrap();
        assert!(files.enter(&uring, 3, ours.as_raw_fd()));
        assert!(!files.enter(&uring, files.entries, ours.as_raw_fd()));

        let sqe = opcode::Send::new(types::Fixed(3), b"hi".as_ptr(), 2)
            .build()
            .user_data(7);
        // SAFETY: the static bytes and the registered socket outlive the
        // completion, which is waited for right here.
        unsafe { uring.submission().push(&sqe) }.unwrap();
        uring.submit_and_wait(1).unwrap();
        let cqe = uring.completion().next().unwrap();
        assert_eq!((cqe.user_data(), cqe.result()), (7, 2));
        let mut got = [0u8; 2];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");

        // Closing the descriptor alone does not end the connection ...
        drop(ours);
        peer.set_nonblocking(true).unwrap();
        let err = peer.read(&mut got).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::WouldBlock);
        // ... emptying the slot does.
        assert!(files.remove(&uring, 3));
        peer.set_nonblocking(false).unwrap();
        assert_eq!(peer.read(&mut got).unwrap(), 0);
    }
}
