//! The atomics of the ring cursors and the sleeping flag: std's, or loom's
//! under `--cfg loom`, so the loom models (`proto/tests/loom_ring.rs`) check
//! the production producer, consumer and parking code, not a copy of it.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64};
pub(crate) use std::sync::atomic::Ordering;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64};
