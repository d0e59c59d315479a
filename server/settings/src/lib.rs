//! Citadel's settings, each defined once.
//!
//! A setting is one [`Setting`] constant: its name (which is both the TOML
//! key and the command-line flag, `max-value-size` ↔ `--max-value-size`),
//! its type (which brings the unit parsing: sizes in Redis units, counts,
//! addresses ...), its default, a one-line help for `--help`, a longer text
//! for the documented reference file, a validity check, and whether
//! `CONFIG SET` may change it while the server runs. Everything else is
//! derived from those constants:
//!
//! * `citadel --help` ([`cli::command`]) and flag parsing,
//! * the TOML file ([`file`]): top-level keys, `[[plugin]]`,
//!   `[[keyspace]]` and `[[pipeline]]` tables, unknown keys refused,
//! * the resolved values ([`Store`]: defaults < file < flags), read typed
//!   with [`Store::get`], changed live with [`Store::set_text`],
//! * `CONFIG GET`/`CONFIG SET` (the server renders and parses through the
//!   same [`AnySetting`] definitions),
//! * `deploy/citadel.toml`, printed by `citadel --print-config`
//!   ([`reference::render`]) and checked against the file by a test.
//!
//! The tables: [`server`] (top level), [`plugin`] (`[[plugin]]`),
//! [`keyspace`] (`[[keyspace]]`), [`pipeline`] (`[[pipeline]]`).

pub mod cli;
mod error;
pub mod file;
pub mod key_events;
pub mod keyspace;
mod numa;
pub mod pipeline;
pub mod plugin;
pub mod reference;
pub mod server;
mod setting;
mod size;
mod store;
mod value;

pub use error::SettingsError;
pub use numa::{NumaMemory, NumaNode};
pub use setting::{positive, AnySetting, Setting, Table};
pub use size::{parse_size, Size};
pub use store::Store;
pub use value::{Cores, DebugCommand, SettingValue};

/// Declares a table of settings: one `pub const NAME: Setting<Type>` per
/// entry plus `TABLE`, the list of them all in order (which is the order of
/// `--help` and of the reference file). Fields not given take
/// [`Setting::BASE`]'s values.
#[macro_export]
macro_rules! settings_table {
    (
        $table_doc:literal, $section:expr;
        $( $(#[$attr:meta])* $id:ident : $ty:ty = { $($field:ident : $val:expr),* $(,)? } )*
    ) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        enum Position { $($id),* }
        $(
            $(#[$attr])*
            pub const $id: $crate::Setting<$ty> = $crate::Setting {
                index: Position::$id as usize,
                $($field: $val,)*
                ..$crate::Setting::<$ty>::BASE
            };
        )*
        #[doc = $table_doc]
        pub static TABLE: $crate::Table = $crate::Table {
            section: $section,
            doc: $table_doc,
            settings: &[$(&$id),*],
        };
    };
}
