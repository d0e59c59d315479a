//! The production pieces the loom models drive (`RUSTFLAGS="--cfg loom"`
//! builds only): seqlock, entries, free list, segments, byte copies.

pub use crate::index::{bucket_off, Entry, Locks};
pub use crate::layout::{Geometry, H_FREE_HEAD, SEGMENT_HEADER_BYTES, SEGMENT_SIZE};
pub use crate::occupancy::Occupancy;
pub use crate::region::{Region, SharedBytes};
pub use crate::segment::{FreeList, Seg, State};
