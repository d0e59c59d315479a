//! The resolved values of one table (the top level, or one `[[plugin]]`),
//! read typed by any thread; live settings may be changed while running.

use std::any::Any;
use std::sync::{Arc, RwLock};

use crate::setting::{AnySetting, Setting, Table};
use crate::value::SettingValue;

type Value = Arc<dyn Any + Send + Sync>;

pub struct Store {
    table: &'static Table,
    values: Vec<RwLock<Value>>,
    /// Set by the file or a flag (not the default).
    given: Vec<bool>,
}

impl Store {
    /// Every setting of `table` at its default.
    pub fn defaults(table: &'static Table) -> Store {
        // By index, which is not always the display position (a table's
        // part takes the first indices: see `settings_table!`).
        let mut values: Vec<Option<Value>> = vec![None; table.settings.len()];
        for s in table.settings {
            values[s.index()] = Some(Value::from(s.default_any()));
        }
        Store {
            table,
            values: values
                .into_iter()
                .map(|v| RwLock::new(v.expect("every index has a setting")))
                .collect(),
            given: vec![false; table.settings.len()],
        }
    }

    pub fn table(&self) -> &'static Table {
        self.table
    }

    /// The current value of `s` (a setting of this store's table).
    pub fn get<T: SettingValue>(&self, s: &Setting<T>) -> T {
        debug_assert!(
            self.table
                .settings
                .iter()
                .any(|t| t.index() == s.index && t.name() == s.name),
            "wrong table"
        );
        let v = self.values[s.index]
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        v.downcast_ref::<T>()
            .cloned()
            .unwrap_or_else(|| s.default_value())
    }

    /// True when the file or a flag gave `s` (rather than its default).
    pub fn is_given(&self, s: &dyn AnySetting) -> bool {
        self.given[s.index()]
    }

    /// The current value of `s` in its text syntax (CONFIG GET).
    pub fn render(&self, s: &dyn AnySetting) -> String {
        let v = self.values[s.index()]
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        s.render_any(v.as_ref())
    }

    /// Stores an already parsed and checked value of `s`.
    pub(crate) fn put(&self, s: &dyn AnySetting, v: Box<dyn Any + Send + Sync>) {
        *self.values[s.index()]
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Value::from(v);
    }

    pub(crate) fn mark_given(&mut self, s: &dyn AnySetting) {
        self.given[s.index()] = true;
    }

    /// Parses and stores `text` for `s` while the server runs (CONFIG SET);
    /// only live settings may change. The error says why the text is wrong.
    pub fn set_live(&self, s: &dyn AnySetting, text: &str) -> Result<(), String> {
        if !s.is_live() {
            return Err("not settable at run time; change the configuration and restart".into());
        }
        let v = s.parse_any(text)?;
        self.put(s, v);
        Ok(())
    }

    /// Checks, before any of them is applied, that every `(setting, text)`
    /// would be accepted by [`Store::set_live`].
    pub fn validate_live(&self, s: &dyn AnySetting, text: &str) -> Result<(), String> {
        if !s.is_live() {
            return Err("not settable at run time; change the configuration and restart".into());
        }
        s.parse_any(text).map(|_| ())
    }
}
