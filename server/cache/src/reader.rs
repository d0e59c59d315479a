//! `CacheReader`: reads values of a live cache file from another process
//! (a plugin that decodes a cached video next to the server: "compute moves
//! to the data").
//!
//! The reader maps the file read-only (`PROT_READ`, shared), takes no lock
//! (the server holds an exclusive `flock`; a reader neither needs nor
//! blocks it) and never writes the mapping: not even the frequency bump a
//! server read makes. Its lookup is the server's own (lookup.rs), bracketed
//! by the home bucket's seqlock; a `ValueView` remembers the version it was
//! validated at, so a caller that reads a value over a long time checks
//! `still_valid` at the end. Bytes are copied out with atomic word loads
//! (`SharedBytes`), never borrowed: a read that races a rewrite returns
//! garbage (which validation rejects), never out-of-bounds memory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{ReadError, ReaderOpenError};
use crate::index::{KeyHash, Locks};
use crate::item::ItemRef;
use crate::layout::{Geometry, HeaderProblem, HEADER_BYTES, LAYOUT_VERSION};
use crate::lookup::{Found, Items};
use crate::region::Region;

/// Failed validations spun through before a read starts yielding and
/// watching the clock.
const SPINS: u32 = 64;

/// A read-only view of a cache file that a server process owns and writes.
pub struct CacheReader {
    region: Region,
    geo: Geometry,
    path: PathBuf,
    busy_timeout: Duration,
    /// Keeps the descriptor the mapping was made from (no lock is held).
    _file: File,
}

/// A value found by [`CacheReader::get`]: read it with
/// [`ValueView::read_at`], then check [`ValueView::still_valid`].
#[derive(Clone, Copy)]
pub struct ValueView<'r> {
    reader: &'r CacheReader,
    item: ItemRef<'r>,
    home: u64,
}

impl CacheReader {
    /// Opens `path` read-only and checks its header (magic, layout version,
    /// geometry checksum, and that the file holds the whole geometry).
    pub fn open(path: &Path) -> Result<CacheReader, ReaderOpenError> {
        let io = |source| ReaderOpenError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len < HEADER_BYTES as u64 {
            return Err(ReaderOpenError::NotACacheFile {
                path: path.to_path_buf(),
                reason: "file too short for a header",
            });
        }
        let len = usize::try_from(len).map_err(|_| ReaderOpenError::Geometry {
            path: path.to_path_buf(),
            reason: "file larger than the address space".into(),
        })?;
        let region = Region::map_read_only(&file, len).map_err(io)?;
        let geo = Geometry::read_header(&region).map_err(|p| match p {
            HeaderProblem::NotCache(reason) => ReaderOpenError::NotACacheFile {
                path: path.to_path_buf(),
                reason,
            },
            HeaderProblem::Version(found) => ReaderOpenError::LayoutMismatch {
                path: path.to_path_buf(),
                found,
                expected: LAYOUT_VERSION,
            },
            HeaderProblem::Corrupt(reason) => ReaderOpenError::Geometry {
                path: path.to_path_buf(),
                reason,
            },
        })?;
        Ok(CacheReader {
            region,
            geo,
            path: path.to_path_buf(),
            busy_timeout: Duration::from_secs(1),
            _file: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long `get` keeps retrying while the key's home bucket is locked
    /// or keeps changing (default 1 s) before it returns `ReadError::Busy`.
    pub fn set_busy_timeout(&mut self, timeout: Duration) {
        self.busy_timeout = timeout;
    }

    fn locks(&self) -> Locks<'_> {
        Locks {
            region: &self.region,
            geo: &self.geo,
        }
    }

    fn items(&self) -> Items<'_> {
        Items {
            region: &self.region,
            geo: &self.geo,
            // A reader cannot know whether the server recovered from a
            // crash: it always honours the suspect flags.
            verify_suspect: true,
        }
    }

    /// Looks `key` up: `Ok(None)` when it is absent, expired or a
    /// negative-cache marker. The result comes from a seqlock-validated
    /// attempt. `Err(Busy)` when the home bucket stayed locked (a writer
    /// that died holding it leaves it so until the server attaches again)
    /// or kept changing for the busy timeout.
    pub fn get(&self, key: &[u8]) -> Result<Option<ValueView<'_>>, ReadError> {
        let h = KeyHash::of(key);
        let home = h.home(&self.geo);
        let (locks, items) = (self.locks(), self.items());
        let now = crate::clock::unix_millis();
        let mut failed = 0u32;
        let mut since: Option<Instant> = None;
        loop {
            if let Some(v) = locks.try_read_begin(home) {
                let found = items.lookup(h, key, v, now, false);
                if locks.read_validate(home, v) {
                    return Ok(match found {
                        Found::Hit(_, _, item) => Some(ValueView {
                            reader: self,
                            item,
                            home,
                        }),
                        Found::Miss | Found::Expired(..) => None,
                    });
                }
            }
            failed += 1;
            if failed < SPINS {
                std::hint::spin_loop();
                continue;
            }
            let waited = since.get_or_insert_with(Instant::now).elapsed();
            if waited >= self.busy_timeout {
                return Err(ReadError::Busy { waited });
            }
            std::thread::yield_now();
        }
    }
}

impl ValueView<'_> {
    /// The value's length in bytes.
    pub fn len(&self) -> u64 {
        self.item.value_len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Absolute expiry in Unix ms, or None when the key has no TTL.
    pub fn expire_at(&self) -> Option<u64> {
        self.item.expire_at()
    }

    /// The home bucket's version this view was validated at
    /// (`ItemRef::version`).
    pub fn version(&self) -> u64 {
        self.item.version()
    }

    /// Copies value bytes `[offset, offset + n)` into the front of `buf`,
    /// where `n = min(buf.len(), len - offset)` (0 at or past the end), and
    /// returns `n`. Works for values stored inline and in chunk segments;
    /// copies with atomic word loads. If the value changed since `get` the
    /// bytes may be garbage (never out of bounds): check `still_valid`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> usize {
        let len = self.len();
        if offset >= len {
            return 0;
        }
        let n = (buf.len() as u64).min(len - offset) as usize;
        let mut at = 0;
        for piece in self.item.value_range(offset as usize, n) {
            piece.copy_to(&mut buf[at..at + piece.len()]);
            at += piece.len();
        }
        // The pieces stop early only when a rewritten chunk table names no
        // segment: the value changed, which `still_valid` reports.
        buf[at..n].fill(0);
        n
    }

    /// True while the item is unchanged since `get`: its home bucket's
    /// seqlock version is the same. Every byte read before this call returned
    /// true was the value's. (A change of a neighbouring key in the same home
    /// bucket also makes it false: retry.)
    pub fn still_valid(&self) -> bool {
        self.reader
            .locks()
            .read_validate(self.home, self.item.version())
    }

    /// xxh3-64 (seed 0) of the whole value, streamed in pieces (nothing of
    /// the value's size is allocated): `ItemRef::content_hash`. None if the
    /// value changed while it was hashed.
    pub fn content_hash(&self) -> Option<u64> {
        let hash = self.item.content_hash();
        self.still_valid().then_some(hash)
    }
}

impl std::fmt::Debug for ValueView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueView")
            .field("len", &self.len())
            .field("version", &self.version())
            .finish()
    }
}

impl std::fmt::Debug for CacheReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheReader")
            .field("path", &self.path)
            .field("file_size", &self.geo.file_size)
            .finish()
    }
}
