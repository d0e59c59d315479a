//! Citadel's cache engine: one memory-mapped file holding a multi-level hash
//! index over a segment-structured value log.
//!
//! * [`Cache`] is the shared, thread-safe store (one per process, behind an `Arc`).
//! * [`CacheHandle`] is a per-thread writer: it owns that thread's active
//!   segments and statistics, so the data path takes no global lock.
//! * [`CacheReader`] reads values of a live cache file from another process
//!   (a plugin next to the server), read-only and without a lock.
//!
//! Reads are optimistic (seqlock-validated) and never write a shared cache line
//! except a rare, probabilistic frequency bump. Writes lock only the key's home
//! bucket. See ARCHITECTURE.md ("Cache engine") for the layout and protocol.
//!
//! Bytes in the mapping are never borrowed as `&[u8]`: another thread may
//! be rewriting them. Items hand out [`SharedBytes`], read by copying with
//! atomic word loads (region/shared.rs); writes take [`Part`]s, so a value
//! can be built from an existing one without an extra allocation.
//!
//! Module layering (each uses only modules to its left):
//!
//! ```text
//! sync, clock, error, stats, owned, policy, segment_budget → region → changes → layout → index → occupancy → segment → item
//!   → lookup → cache → memory_cap → journal → writer → evict → alloc → put → update → set_one → txn → handle
//!   → scan → recover → store → reader
//! ```
//! `sync` picks std or loom atomics; `owned` the contract between a big
//! collection's root and its page items; `region` owns the mapping and all
//! `unsafe`; `occupancy` the summary that lets SCAN skip empty index; `lookup` the optimistic, read-only item lookup; `cache` the
//! shared state; `memory_cap` a live cap below the file's size (`CONFIG SET
//! maxmemory`); `journal` makes multi-key writes crash-atomic;
//! `writer` a thread's segments and bookkeeping; `policy` what eviction
//! may drop (`maxmemory-policy`); `evict` makes room;
//! `alloc` gets segments (free list, else eviction); `put` writes items;
//! `update` is the multi-key transaction; `set_one` its one-key
//! unconditional write (SET); `txn` stretches one over many
//! calls (MULTI/EXEC, scripts); `handle` the per-thread API;
//! `reader` a read-only view of a live cache file for other processes.

mod alloc;
mod bucket_tags;
mod cache;
mod changes;
#[doc(hidden)]
pub mod checked_editable;
pub mod checked_value;
mod clock;
mod edit;
mod error;
mod evict;
mod expire_cursor;
mod expire_scan;
mod handle;
mod index;
mod item;
mod journal;
mod layout;
mod lookup;
mod memory_cap;
pub mod namespace;
mod occupancy;
pub mod owned;
mod policy;
mod put;
mod random_key;
mod reader;
mod recover;
mod region;
mod scan;
mod segment;
mod segment_budget;
mod set_one;
mod sparse_keys;
mod stats;
mod store;
mod sync;
mod txn;
mod update;
mod update_one;
mod writer;

#[cfg(loom)]
#[doc(hidden)]
pub mod loom_model;

pub use cache::Cache;
pub use changes::KeyChange;
pub use clock::unix_millis;
pub use edit::{
    region_of as editable_region_of, EditRefused, InPlaceEdit, EDIT_GUARD, EDIT_TRAILER,
};
pub use error::{HandleError, OpenError, ReadError, ReaderOpenError, WriteError};
pub use handle::CacheHandle;
pub use index::KeyHash;
pub use item::{Chunks, ItemRef, PutOptions, ValueKind};
pub use policy::EvictionPolicy;
pub use reader::{CacheReader, ValueView};
#[cfg(not(loom))]
pub use region::MemoryPolicy;
pub use region::{HugePages, Part, SharedBytes};
pub use stats::CacheStats;
pub use store::{AttachReport, CacheConfig};
pub use txn::Watch;
pub use update::Changes;
