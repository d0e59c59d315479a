//! The read-only side: another process (`citadel-top`, a test) maps the
//! region file and copies snapshots out of it, never writing a byte.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::snapshot::Snapshot;
use crate::view::{LayoutError, View};
use crate::words::as_words;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("stats file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("stats file {path}: {source}")]
    Layout { path: PathBuf, source: LayoutError },
}

pub struct Reader {
    map: Mmap,
}

impl Reader {
    /// Maps `path` read-only and checks its header; a server that
    /// recreates the file later replaces it (rename), so this mapping stays
    /// valid (and stale): reopen when the writer pid changes.
    pub fn open(path: &Path) -> Result<Reader, ReadError> {
        let file = File::open(path).map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: only ever read, through atomics (see `words::as_words`).
        let map = unsafe { Mmap::map(&file) }.map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        View::check(as_words(&map)).map_err(|source| ReadError::Layout {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Reader { map })
    }

    pub fn snapshot(&self) -> Snapshot {
        View::check(as_words(&self.map))
            .map(|v| v.snapshot())
            .unwrap_or_default()
    }
}
