//! Shared memory regions: a memfd or a file (e.g. under /dev/shm) mapped
//! shared, read-write. A ring lives in one region; everything inside is
//! addressed by offset, so each process may map it at a different address.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use memmap2::MmapRaw;

use crate::sys;

/// Why a region could not be created or mapped.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("creating shared memory {what}: {source}")]
    Create { what: String, source: io::Error },
    #[error("opening shared memory {what}: {source}")]
    Open { what: String, source: io::Error },
    #[error("mapping shared memory: {0}")]
    Map(io::Error),
    #[error("shared memory is {actual} bytes, at least {needed} needed")]
    TooSmall { actual: u64, needed: u64 },
}

/// A shared, read-write mapping of a whole memfd or file.
#[derive(Debug)]
pub struct ShmRegion {
    file: File,
    map: MmapRaw,
}

impl ShmRegion {
    /// Creates an anonymous memfd of `len` zero bytes (close-on-exec; the
    /// supervisor makes it inheritable for the child it passes it to).
    pub fn create_memfd(name: &str, len: u64) -> Result<Self, ShmError> {
        let what = || format!("memfd {name}");
        let fd = sys::memfd_create(name).map_err(|source| ShmError::Create {
            what: what(),
            source,
        })?;
        let file = File::from(fd);
        file.set_len(len).map_err(|source| ShmError::Create {
            what: what(),
            source,
        })?;
        Self::map(file)
    }

    /// Creates (or truncates) `path` to `len` zero bytes and maps it.
    pub fn create_file(path: &Path, len: u64) -> Result<Self, ShmError> {
        let what = || path.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|source| ShmError::Create {
                what: what(),
                source,
            })?;
        file.set_len(len).map_err(|source| ShmError::Create {
            what: what(),
            source,
        })?;
        Self::map(file)
    }

    /// Maps an existing file, e.g. a ring the server created under /dev/shm.
    pub fn open_file(path: &Path) -> Result<Self, ShmError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| ShmError::Open {
                what: path.display().to_string(),
                source,
            })?;
        Self::map(file)
    }

    /// Maps a memfd or file this process owns (e.g. an inherited descriptor).
    pub fn from_fd(fd: OwnedFd) -> Result<Self, ShmError> {
        Self::map(File::from(fd))
    }

    fn map(file: File) -> Result<Self, ShmError> {
        let map = MmapRaw::map_raw(&file).map_err(ShmError::Map)?;
        Ok(Self { file, map })
    }

    /// Start of the mapping. Valid for `len()` bytes while `self` lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The descriptor behind the mapping (to pass to a child process).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// A second descriptor for the same memory (e.g. to keep after handing
    /// one to a child).
    pub fn try_clone_fd(&self) -> io::Result<OwnedFd> {
        self.file.as_fd().try_clone_to_owned()
    }
}
