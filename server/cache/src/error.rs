//! Error enums, one per operation.

use std::path::PathBuf;
use std::time::Duration;

/// Opening or attaching the cache file.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cache file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cache file {path} has layout version {found}, this build uses {expected}; start with --fresh to recreate it")]
    LayoutMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("cache file {path} is corrupt ({reason}); start with --fresh to recreate it")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cache file {path} was made for {found} bytes, less than maxmemory {expected}: a mapped file cannot grow; start with --fresh to recreate it (its keys are lost) or with maxmemory at most {found}")]
    SizeMismatch {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("cache file {path} is in use by another process")]
    InUse { path: PathBuf },
    #[error("cache file {path}: its file system has no room for {needed} bytes (maxmemory and the index); free space there, put the file elsewhere (--cache-file) or lower maxmemory")]
    NoSpace { path: PathBuf, needed: u64 },
    #[error("maxmemory {0} bytes is too small (minimum {1})")]
    TooSmall(u64, u64),
    #[error("cache file {path} is on hugetlbfs, which cannot hold it (files there take no write() and sizes must be whole huge pages); for huge pages put it on a tmpfs mounted with huge=within_size (README, Performance)")]
    OnHugetlbfs { path: PathBuf },
}

/// Taking a per-thread handle.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    #[error("all {0} cache writer slots are in use")]
    NoFreeSlot(usize),
}

/// Writing an item.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum WriteError {
    #[error("value of {len} bytes exceeds the maximum of {max} bytes")]
    ValueTooLarge { len: u64, max: u64 },
    #[error("key of {len} bytes exceeds the maximum of {max} bytes")]
    KeyTooLarge { len: u64, max: u64 },
    #[error("item of {len} bytes does not fit in the cache even after eviction")]
    OutOfMemory { len: u64 },
}

/// Opening a cache file read-only (`CacheReader::open`).
#[derive(Debug, thiserror::Error)]
pub enum ReaderOpenError {
    #[error("cache file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a Citadel cache file ({reason})")]
    NotACacheFile { path: PathBuf, reason: &'static str },
    #[error("cache file {path} has layout version {found}, this build reads {expected}")]
    LayoutMismatch {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("cache file {path} does not match its header ({reason})")]
    Geometry { path: PathBuf, reason: String },
}

/// Reading a key through a `CacheReader`.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ReadError {
    #[error("the key's bucket stayed locked or kept changing for {waited:?} (a busy writer, or one that died holding it: the server's next attach clears that)")]
    Busy { waited: Duration },
}
