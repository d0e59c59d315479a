//! Collection values (hashes, lists, sets, sorted sets) as the cache stores
//! them. The cache engine knows a value's kind (`citadel_cache::ValueKind`)
//! but not its layout; the server's commands decode, edit and re-encode
//! values through this crate, which knows nothing of either.
//!
//! Every value starts with an encoding byte, so a scalable form can join
//! the compact one without rewriting stored data:
//!
//! ```text
//! encoding:u8 (0 = packed) | count:varint | (len:varint | bytes) x count
//! ```
//!
//! *Packed* is the listpack-like form: one contiguous item, elements in
//! order, each prefixed by its length. Each type lays its elements out in
//! it (see `packed.rs`): a hash as field, value pairs; a set as members; a
//! list as elements, head first; a sorted set as member, score pairs in
//! (score, member) order. Parsing is bounds-checked: a torn or corrupt
//! value is an error, never a panic or an out-of-bounds read.

pub mod decimal;
pub mod hash;
pub mod linear_hash;
pub mod list;
pub mod packed;
pub mod paged;
pub mod rdb;
pub mod sample;
pub mod set;
pub mod stream;
pub mod zset;

pub use hash::HashView;
pub use list::ListView;
pub use packed::{Corrupt, Packed, PackedWriter};
pub use set::{SetEncoding, SetView};
pub use zset::{LexRange, ScoreRange, ZSetEdit};
