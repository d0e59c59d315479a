//! Citadel's cache engine: one memory-mapped file holding a multi-level hash
//! index over a segment-structured value log.
//!
//! * [`Cache`] is the shared, thread-safe store (one per process, behind an `Arc`).
//! * [`CacheHandle`] is a per-thread writer: it owns that thread's active
//!   segments and statistics, so the data path takes no global lock.
//!
//! Reads are optimistic (seqlock-validated) and never write a shared cache line
//! except a rare, probabilistic frequency bump. Writes lock only the key's home
//! bucket. See ARCHITECTURE.md ("Cache engine") for the layout and protocol.

#[doc(hidden)]
pub mod checked_value;
mod clock;
mod error;
mod evict;
mod handle;
mod index;
mod item;
mod layout;
mod region;
mod scan;
mod segment;
mod stats;
mod store;
mod update;
mod writer;

pub use clock::unix_millis;
pub use error::{HandleError, OpenError, WriteError};
pub use handle::{CacheHandle, Changes};
pub use item::{ItemRef, PutOptions};
pub use stats::CacheStats;
pub use store::{AttachReport, Cache, CacheConfig};
