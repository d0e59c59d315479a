//! Citadel's cache engine (API surface; the implementation lands in the next commits).
//!
//! * [`Cache`] is the shared, thread-safe store (one per process, behind an `Arc`).
//! * [`CacheHandle`] is a per-thread writer: it owns that thread's active
//!   segments and statistics, so the data path takes no global lock.
#![allow(unused_variables)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Current wall-clock time in Unix milliseconds.
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cache file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cache file {path} has layout version {found}, this build uses {expected}; start with --fresh to recreate it")]
    LayoutMismatch { path: PathBuf, found: u32, expected: u32 },
    #[error("cache file {path} is corrupt ({reason}); start with --fresh to recreate it")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cache file {path} was made for {found} bytes but maxmemory is {expected}; start with --fresh to recreate it")]
    SizeMismatch { path: PathBuf, found: u64, expected: u64 },
    #[error("maxmemory {0} bytes is too small (minimum {1})")]
    TooSmall(u64, u64),
}

#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("all {0} cache writer slots are in use")]
    NoFreeSlot(usize),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WriteError {
    #[error("value of {len} bytes exceeds the maximum of {max} bytes")]
    ValueTooLarge { len: u64, max: u64 },
    #[error("item of {len} bytes does not fit in the cache even after eviction")]
    OutOfMemory { len: u64 },
}

#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Path of the mapped file, e.g. /dev/shm/citadel-6379.cache.
    pub path: PathBuf,
    /// Size bound of the whole file (header, index and value store).
    pub max_memory: u64,
    /// Largest accepted value in bytes (default 64 MiB).
    pub max_value_size: u64,
    /// Recreate the file even if it exists (needed after a layout mismatch).
    pub fresh: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            path: PathBuf::from("/dev/shm/citadel-6379.cache"),
            max_memory: 1 << 30,
            max_value_size: 64 << 20,
            fresh: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttachReport {
    /// True when an existing file was attached (keys survived).
    pub warm: bool,
    /// False when the previous owner did not shut down cleanly (recovery ran).
    pub clean: bool,
    pub keys: u64,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    pub file_bytes: u64,
    pub used_bytes: u64,
    pub index_bytes: u64,
    pub keys: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expirations: u64,
    /// (used slots, total slots) per index level.
    pub level_fill: Vec<(u64, u64)>,
    pub segments_total: u64,
    pub segments_free: u64,
}

pub struct Cache {}

impl Cache {
    pub fn open(cfg: CacheConfig) -> Result<(Arc<Cache>, AttachReport), OpenError> {
        todo!()
    }
    /// A per-thread writer handle (at most 64 at once).
    pub fn handle(self: &Arc<Self>) -> Result<CacheHandle, HandleError> {
        todo!()
    }
    /// O(1) number of keys (expired but not yet reclaimed keys included, as in Redis).
    pub fn len(&self) -> u64 {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn stats(&self) -> CacheStats {
        todo!()
    }
    pub fn max_value_size(&self) -> u64 {
        todo!()
    }
    pub fn path(&self) -> &std::path::Path {
        todo!()
    }
    /// Marks the file cleanly shut down. Call after every handle is dropped.
    pub fn close(&self) {
        todo!()
    }
}

/// A validated view of one item. Values above one segment are stored in
/// several chunks, so the value is exposed as chunks.
pub struct ItemRef<'a> {
    _p: std::marker::PhantomData<&'a [u8]>,
}

impl<'a> ItemRef<'a> {
    pub fn key(&self) -> &'a [u8] {
        todo!()
    }
    pub fn value_len(&self) -> usize {
        todo!()
    }
    /// The value's bytes in order (one chunk for values up to ~1 MiB).
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        std::iter::empty()
    }
    /// The value when it is stored in one piece (always for values < ~1 MiB).
    pub fn contiguous(&self) -> Option<&'a [u8]> {
        todo!()
    }
    pub fn write_value_to(&self, out: &mut Vec<u8>) {
        todo!()
    }
    /// Absolute expiry in Unix ms, or None when the key has no TTL.
    pub fn expire_at(&self) -> Option<u64> {
        todo!()
    }
    /// Change counter of the key's bucket: changes whenever this key changes.
    pub fn version(&self) -> u64 {
        todo!()
    }
}

pub struct CacheHandle {}

pub struct Changes {}

impl Changes {
    /// Writes key `i` with the concatenation of `parts`.
    pub fn put(&mut self, i: usize, parts: &[&[u8]], expire_at: Option<u64>) -> Result<(), WriteError> {
        todo!()
    }
    /// Deletes key `i`.
    pub fn delete(&mut self, i: usize) {
        todo!()
    }
}

impl CacheHandle {
    /// Sets the handle's notion of "now" (Unix ms); the server calls this once per loop turn.
    pub fn set_clock(&mut self, now_ms: u64) {}
    pub fn now_ms(&self) -> u64 {
        todo!()
    }
    /// Looks `key` up and calls `f` on it. `f` may run more than once (an
    /// optimistic read that raced a writer is retried); only the result of the
    /// validated call is returned. Expired keys are misses. Counts a hit or a miss.
    pub fn get<R>(&mut self, key: &[u8], f: impl FnMut(&ItemRef<'_>) -> R) -> Option<R> {
        todo!()
    }
    /// Like `get` but counts no hit or miss (EXISTS, TYPE, TTL).
    pub fn peek<R>(&mut self, key: &[u8], f: impl FnMut(&ItemRef<'_>) -> R) -> Option<R> {
        todo!()
    }
    /// Unconditional write.
    pub fn set(&mut self, key: &[u8], value: &[u8], expire_at: Option<u64>) -> Result<(), WriteError> {
        todo!()
    }
    /// Returns true when the key existed (and was not expired).
    pub fn delete(&mut self, key: &[u8]) -> bool {
        todo!()
    }
    /// Atomic read-modify-write over several keys (MSETNX, RENAME, INCR, APPEND ...).
    /// `f` sees the current items (None: absent or expired) and records writes in
    /// `Changes`; they are applied atomically with respect to other writers of
    /// these keys. `f` may run more than once and must not have side effects
    /// other than through `Changes` and its return value.
    pub fn update<R>(
        &mut self,
        keys: &[&[u8]],
        f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes) -> R,
    ) -> Result<R, WriteError> {
        todo!()
    }
    /// Visits up to about `count` index slots from `cursor`, calling `f` for every
    /// live key; returns the next cursor (0 when the scan is complete).
    pub fn scan(&mut self, cursor: u64, count: usize, f: impl FnMut(&ItemRef<'_>)) -> u64 {
        todo!()
    }
    /// Appends a random live key to `out`; false if the cache is empty.
    pub fn random_key(&mut self, out: &mut Vec<u8>) -> bool {
        todo!()
    }
    /// Removes every key.
    pub fn flush_all(&mut self) {
        todo!()
    }
    /// Background upkeep (active expiry of whole segments), bounded work; call
    /// every ~100 ms from each server thread. Returns the keys it expired.
    pub fn maintain(&mut self) -> u64 {
        todo!()
    }
}
