//! The TOML file: top-level keys of the server table, and arrays of tables
//! (`[[plugin]]`, `[[keyspace]]`) each read with its own table. Keys are
//! kebab-case (`max-value-size`); snake_case is accepted too. Unknown keys
//! are an error, so a typo never goes unnoticed.

use std::path::Path;

use crate::error::SettingsError;
use crate::setting::Table;
use crate::store::Store;

/// Reads and parses the file (nothing is validated yet).
pub fn read(path: &Path) -> Result<toml::Table, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| SettingsError::Parse {
        path: path.to_path_buf(),
        // toml's message spans several lines (it quotes the source); keep one.
        message: e.message().to_string(),
    })
}

/// `table`'s settings from `toml` over their defaults. Keys naming one of
/// `sections` are left to [`sections`]; `where_` names the place in errors.
pub fn load(
    table: &'static Table,
    toml: &toml::Table,
    sections: &[&'static Table],
    where_: &str,
) -> Result<Store, SettingsError> {
    let mut store = Store::defaults(table);
    for (key, value) in toml {
        if sections.iter().any(|t| t.section == Some(key.as_str())) {
            continue;
        }
        let setting = table
            .find(key)
            .filter(|s| !s.is_flag_only())
            .ok_or_else(|| SettingsError::UnknownKey {
                where_: where_.to_string(),
                key: key.clone(),
            })?;
        let v = setting
            .parse_toml_any(value)
            .map_err(|reason| SettingsError::Invalid {
                key: setting.name().to_string(),
                value: value.to_string(),
                reason,
            })?;
        store.put(setting, v);
        store.mark_given(setting);
    }
    for s in table.settings.iter().filter(|s| s.is_required()) {
        if !store.is_given(*s) {
            return Err(SettingsError::Missing {
                where_: where_.to_string(),
                key: s.name().to_string(),
            });
        }
    }
    Ok(store)
}

/// Every `[[<section>]]` table of `toml`, each read with `table`.
pub fn sections(table: &'static Table, toml: &toml::Table) -> Result<Vec<Store>, SettingsError> {
    let section = table.section.expect("a section table");
    let Some(value) = toml.get(section) else {
        return Ok(Vec::new());
    };
    let bad = || SettingsError::Invalid {
        key: section.to_string(),
        value: value.type_str().to_string(),
        reason: format!("expected [[{section}]] tables"),
    };
    let items = value.as_array().ok_or_else(bad)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let t = item.as_table().ok_or_else(bad)?;
            load(table, t, &[], &format!("[[{section}]] #{}", i + 1))
        })
        .collect()
}
