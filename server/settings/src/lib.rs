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
//! The tables: [`server`] (top level, with the [`cluster`] settings as a
//! part), [`plugin`] (`[[plugin]]`),
//! [`keyspace`] (`[[keyspace]]`), [`pipeline`] (`[[pipeline]]`).

pub mod cli;
pub mod cluster;
mod error;
mod eviction;
pub mod file;
pub mod hotkeys;
pub mod instances;
pub mod key_events;
pub mod keyspace;
pub mod metrics;
mod numa;
pub mod overload;
pub mod pipeline;
pub mod plugin;
pub mod plugin_placement;
pub mod plugin_versions;
pub mod reference;
pub mod rewrite;
pub mod server;
mod setting;
mod size;
mod store;
mod value;

pub use error::SettingsError;
pub use eviction::MaxmemoryPolicy;
pub use numa::{NumaMemory, NumaNode};
pub use setting::{positive, AnySetting, Setting, Table};
pub use size::{parse_size, Size};
pub use store::Store;
pub use value::{Cores, DebugCommand, SettingValue};

/// Declares a table of settings: one `pub const NAME: Setting<Type>` per
/// entry, `SETTINGS` (this module's own, in order) and `TABLE`, which lists
/// them followed by the settings of the modules named in `parts` (declared
/// with [`settings_part!`]): the order of `--help` and of the reference
/// file. Fields not given take [`Setting::BASE`]'s values.
///
/// Store indices: the parts' settings take the first ones (0.., each part
/// after the one before it: its `first` is the earlier parts' total), the
/// table's own follow, so a part needs nothing of the table that lists it
/// (no module cycle); the display order is the table's own first.
#[macro_export]
macro_rules! settings_table {
    (
        $table_doc:literal, $section:expr $(, parts: [$($part:path),+ $(,)?])?;
        $($body:tt)*
    ) => {
        $crate::settings_part! { first: 0 $($(+ $part.len())+)?; $($body)* }
        const ALL_LEN: usize = SETTINGS.len() $($(+ $part.len())+)?;
        static ALL: [&'static dyn $crate::AnySetting; ALL_LEN] =
            $crate::concat_settings(&[SETTINGS $($(, $part)+)?]);
        #[doc = $table_doc]
        pub static TABLE: $crate::Table = $crate::Table {
            section: $section,
            doc: $table_doc,
            settings: &ALL,
        };
    };
}

/// Declares settings that belong to another module's table (its `parts`),
/// kept in a file of their own (e.g. `cluster.rs` for the top level):
/// `first` is their first store index (0 for a part; see
/// [`settings_table!`]).
#[macro_export]
macro_rules! settings_part {
    (
        first: $first:expr;
        $( $(#[$attr:meta])* $id:ident : $ty:ty = { $($field:ident : $val:expr),* $(,)? } )*
    ) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        enum Position { $($id),* }
        $(
            $(#[$attr])*
            pub const $id: $crate::Setting<$ty> = $crate::Setting {
                index: $first + Position::$id as usize,
                $($field: $val,)*
                ..$crate::Setting::<$ty>::BASE
            };
        )*
        /// This module's settings, in order.
        pub const SETTINGS: &[&'static dyn $crate::AnySetting] = &[$(&$id),*];
    };
}

/// `parts` one after the other (a table's own settings, then its parts');
/// `N` must be their total length (checked when the table is compiled).
pub const fn concat_settings<const N: usize>(
    parts: &[&[&'static dyn AnySetting]],
) -> [&'static dyn AnySetting; N] {
    let mut out = [parts[0][0]; N];
    let (mut at, mut p) = (0, 0);
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[at] = parts[p][i];
            at += 1;
            i += 1;
        }
        p += 1;
    }
    assert!(at == N, "concat_settings: N is not the total length");
    out
}
