//! The paged form of a hash: linear hashing (`crate::linear_hash`) over
//! pages of field, value pairs.

use crate::linear_hash;
use crate::packed::{Corrupt, Packed};
use crate::paged::Built;

/// Elements per entry: the field, then its value.
pub const ARITY: usize = 2;

/// The paged form of the packed hash `packed` under a root of `generation`.
pub fn build(packed: Packed<'_>, generation: u64) -> Result<Built, Corrupt> {
    linear_hash::build(packed, ARITY, generation)
}
