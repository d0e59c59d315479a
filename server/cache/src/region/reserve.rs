//! The cache file's whole size, reserved on its file system before it is
//! mapped. A file of that size is otherwise sparse: its pages are taken
//! when first written, through the mapping, and a file system that runs
//! out of room then (a tmpfs like /dev/shm smaller than maxmemory) can
//! only answer with SIGBUS, which kills the server at its first writes
//! past the room there was. Reserved up front, the shortage is an error
//! at start, and no page is first touched (zeroed by the kernel) while a
//! request waits.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Why the file's space could not be reserved.
#[derive(Debug)]
pub enum ReserveError {
    /// The file system has no room for `len` bytes.
    NoSpace,
    Io(std::io::Error),
}

/// Reserves `len` bytes of `file` (already at least that long) on its
/// file system. Ranges already held cost nothing; a file system that
/// cannot reserve (no `fallocate`) is left as before.
pub fn reserve(file: &File, len: u64) -> Result<(), ReserveError> {
    let Ok(len) = libc::off_t::try_from(len) else {
        return Err(ReserveError::NoSpace);
    };
    // SAFETY: fallocate on a descriptor we own, mode 0 (allocate, size
    // unchanged past `len` already set); no memory is involved.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EFBIG) => Err(ReserveError::NoSpace),
        // Not supported here (some file systems): pages come on first write.
        Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => Ok(()),
        _ => Err(ReserveError::Io(e)),
    }
}
