//! The mapped file, and the only module with `unsafe` code: it turns offsets
//! into atomics and copies bytes in and out of the shared mapping.
//!
//! Every other module addresses the file by byte offset. Concurrency rules
//! (who may write which range, and how readers validate) are enforced by the
//! callers: see ARCHITECTURE.md, "Cache engine". No `&[u8]` into the mapping
//! exists: bytes that another thread may write at the same moment are only
//! ever touched with atomic word accesses (see `shared.rs`).

mod huge_pages;
#[cfg(not(loom))]
mod mapped;
#[cfg(loom)]
mod model;
mod reserve;
mod shared;

pub use huge_pages::HugePages;
#[cfg(not(loom))]
pub use mapped::{MemoryPolicy, Region};
#[cfg(loom)]
pub use model::Region;
pub use reserve::{reserve, ReserveError};
pub use shared::{Part, SharedBytes};
