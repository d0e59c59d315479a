//! Streams (Redis's append-only log of `ms-seq` entries, each a list of
//! field, value pairs), stored as a paged root: the common root header,
//! the stream's metadata and a directory of its pages, each page a run of
//! entries in ID order (`page.rs`). A page is Redis's stream node: it
//! takes new entries while it holds fewer than [`NODE_MAX_ENTRIES`]
//! (counting the ones deleted from it) and fewer than
//! [`NODE_MAX_BYTES`], so whole-node trimming (`MAXLEN ~`) removes what
//! Redis removes. Appending touches the root and the last page; finding
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

/// Redis's `stream-node-max-entries` default.
pub const NODE_MAX_ENTRIES: u32 = 100;
/// Redis's `stream-node-max-bytes` default.
pub const NODE_MAX_BYTES: u32 = 4096;
