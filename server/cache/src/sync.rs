//! The atomic types of shared-memory words: std's, or loom's in model builds
//! (`RUSTFLAGS="--cfg loom"`), so the loom tests run the production seqlock,
//! free-list and byte-copy code against loom's memory model.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64};
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64};
