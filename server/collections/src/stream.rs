//! Streams (Redis's append-only log of `ms-seq` entries, each a list of
//! field, value pairs), stored as a paged root: the common root header,
//! the stream's metadata and a directory of its pages, each page a run of
//! entries in ID order (`page.rs`). A page is Redis's stream node: it
//! takes new entries while it holds fewer than [`node_max_entries`]
//! (counting the ones deleted from it) and fewer than
//! [`node_max_bytes`] (Redis's `stream-node-max-entries` and
//! `stream-node-max-bytes`), so whole-node trimming (`MAXLEN ~`) removes
//! what Redis removes. Appending touches the root and the last page; finding
//! an ID is a binary search of the directory, then one page.

mod entries;
pub mod group;
pub mod id;
pub mod page;
pub mod pel;
mod reader;
pub mod root;
pub mod whole;

pub use group::{Consumer, Group, PelPage};
pub use id::{parse_id, StreamId};
pub use page::Entry;
pub use pel::Pending;
pub use root::{PageInfo, StreamMeta, StreamRoot, Trim, TrimArgs};
pub use whole::WholeStream;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Redis's `stream-node-max-entries` default.
pub const NODE_MAX_ENTRIES: u64 = 100;
/// Redis's `stream-node-max-bytes` default.
pub const NODE_MAX_BYTES: u64 = 4096;
/// Redis's largest node (STREAM_LISTPACK_MAX_SIZE): the byte limit when
/// the setting is 0 or above it.
const NODE_BYTES_CAP: u64 = 1 << 30;

/// The server's settings of those names, pushed here when they change
/// ([`set_node_limits`]).
static MAX_ENTRIES: AtomicU64 = AtomicU64::new(NODE_MAX_ENTRIES);
static MAX_BYTES: AtomicU64 = AtomicU64::new(NODE_MAX_BYTES);

/// Sets `stream-node-max-entries` and `stream-node-max-bytes` (for the
/// whole process; 0 is Redis's "no limit").
pub fn set_node_limits(entries: u64, bytes: u64) {
    MAX_ENTRIES.store(entries, Relaxed);
    MAX_BYTES.store(bytes, Relaxed);
}

/// Entries (deleted ones counted) a page holds before a new one starts;
/// `stream-node-max-entries` (0: no limit).
pub fn node_max_entries() -> u64 {
    match MAX_ENTRIES.load(Relaxed) {
        0 => u64::MAX,
        n => n,
    }
}

/// The setting itself (0 when unlimited): approximate trimming's default
/// LIMIT is 100 times it, as Redis's.
pub fn node_max_entries_setting() -> u64 {
    MAX_ENTRIES.load(Relaxed)
}

/// Bytes a page stays below; `stream-node-max-bytes`, 1 GiB when 0 or
/// more (as Redis caps it).
pub fn node_max_bytes() -> u64 {
    match MAX_BYTES.load(Relaxed) {
        0 => NODE_BYTES_CAP,
        n => n.min(NODE_BYTES_CAP),
    }
}
