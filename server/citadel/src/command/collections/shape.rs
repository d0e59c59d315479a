//! What a hash or a set is to the code they share (`linear.rs`), and when
//! each is paged. It sits below every module that stores one, so the
//! whole-value path (`whole.rs`) and the per-entry path (`linear.rs`)
//! agree on the form without importing each other's commands.

use std::ops::Range;

use citadel_cache::ValueKind;
use citadel_collections::paged::Built;
use citadel_collections::{hash, linear_hash, set, zset, Corrupt, Packed};

use crate::collection_limits;
use crate::command::error::CmdError;

/// A packed hash or set past this many entries (or its type's listpack or
/// intset limit, if larger: `Shape::packed_max`) becomes paged: a packed
/// value of a few KiB is cheaper to rewrite than a root and its pages are
/// to plan.
pub const PAGED_ENTRIES: u64 = 1024;
/// ... or past this many bytes.
pub const PAGED_BYTES: usize = 128 * 1024;

/// A hash or a set, to the code both share.
#[derive(Clone, Copy)]
pub struct Shape {
    pub kind: ValueKind,
    /// Elements per entry (2 for a hash, 1 for a set).
    pub arity: usize,
    pub build: fn(Packed<'_>, u64) -> Result<Built, Corrupt>,
    /// Most entries a packed value keeps (the settings may raise it).
    pub packed_max: fn() -> u64,
}

impl Shape {
    pub fn stays_packed(&self, count: u64, bytes: usize) -> bool {
        count <= (self.packed_max)() && bytes <= PAGED_BYTES
    }

    /// The pages a packed value is stored in, if past the paging limits
    /// (`whole::paged_form`).
    pub fn paged_range(&self, packed: &[u8]) -> Result<Option<Range<u64>>, CmdError> {
        let view = Packed::parse(packed)?;
        let count = (view.len() / self.arity) as u64;
        if self.stays_packed(count, packed.len()) {
            return Ok(None);
        }
        Ok(Some(linear_hash::build_range(view, self.arity)?))
    }
}

pub const HASH: Shape = Shape {
    kind: ValueKind::Hash,
    arity: hash::paged::ARITY,
    build: hash::paged::build,
    packed_max: hash_packed_max,
};

pub const SET: Shape = Shape {
    kind: ValueKind::Set,
    arity: set::paged::ARITY,
    build: set::paged::build,
    packed_max: set_packed_max,
};

/// Never below the listpack limit, so a paged hash is a hashtable in
/// Redis too.
fn hash_packed_max() -> u64 {
    PAGED_ENTRIES.max(collection_limits::hash_listpack_entries() as u64)
}

/// Never below the intset limit, so a paged set is a hashtable in Redis
/// too.
fn set_packed_max() -> u64 {
    PAGED_ENTRIES.max(set::intset_max_entries() as u64)
}

/// Whether a sorted set of `count` members in `bytes` stays packed: past
/// the same limits as a hash (above Redis's listpack limit, so a paged
/// sorted set is a skiplist in Redis too) it is paged (`zset::paged`).
pub fn zset_stays_packed(count: u64, bytes: usize) -> bool {
    count <= PAGED_ENTRIES.max(zset::listpack_entries() as u64) && bytes <= PAGED_BYTES
}

/// The pages a packed sorted set is stored in, if past the paging limits.
pub fn zset_paged_range(packed: &[u8]) -> Result<Option<Range<u64>>, CmdError> {
    let view = Packed::parse(packed)?;
    if zset_stays_packed((view.len() / 2) as u64, packed.len()) {
        return Ok(None);
    }
    Ok(Some(zset::paged::build_range(view)?))
}
