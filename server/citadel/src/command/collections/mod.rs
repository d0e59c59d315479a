//! The collection commands: one module per type, each with its own table
//! rows (`COMMANDS`, joined to the main table by `table::top_level`), over
//! the shared helpers in `value.rs` and the encodings of
//! `citadel-collections`.

use super::table::CommandDef;

pub mod encoding;
pub mod events;
mod few;
pub mod hash;
pub mod linear;
pub mod list;
pub mod paged;
pub mod set;
pub mod shape;
pub mod small_form;
pub mod sort;
pub mod stream;
pub mod value;
pub mod whole;
pub mod zset;

/// Each collection type's command rows.
pub static TABLES: &[&[CommandDef]] = &[
    hash::COMMANDS,
    list::COMMANDS,
    set::COMMANDS,
    sort::COMMANDS,
    stream::COMMANDS,
    zset::COMMANDS,
    zset::GEO_COMMANDS,
];
