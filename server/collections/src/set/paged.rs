//! The paged form of a set: linear hashing (`crate::linear_hash`) over
//! pages of members.

use crate::linear_hash;
use crate::packed::{Corrupt, Packed};
use crate::paged::Built;

/// Elements per entry: the member alone.
pub const ARITY: usize = 1;

/// The paged form of the packed set `packed` under a root of `generation`.
pub fn build(packed: Packed<'_>, generation: u64) -> Result<Built, Corrupt> {
    linear_hash::build(packed, ARITY, generation)
}
