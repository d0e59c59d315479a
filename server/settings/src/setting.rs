//! The definition of one setting, and its type-erased view.

use std::any::Any;

use crate::value::SettingValue;

/// One setting: everything about it in one place (see the crate docs).
pub struct Setting<T: SettingValue> {
    /// Its slot in its table's store (assigned by `settings_table!`; unique
    /// within the table, below its length).
    pub index: usize,
    /// The TOML key; the flag is `--<name>`.
    pub name: &'static str,
    /// Shown in `--help` after the flag (e.g. `SIZE`).
    pub value_name: &'static str,
    /// The default, as text in the setting's own syntax ("" = none).
    pub default: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
    /// The reference file's comment (several sentences; wrapped when printed).
    /// Empty: the help line is used.
    pub doc: &'static str,
    /// An example shown (commented out) in the reference file when the
    /// setting has no default.
    pub example: &'static str,
    /// CONFIG SET may change it while the server runs.
    pub live: bool,
    /// The setting has no default and must be given (table settings).
    pub required: bool,
    /// Only a command-line flag, never a TOML key (e.g. `--fresh`).
    pub flag_only: bool,
    /// Validity beyond parsing (ranges); the message says what is allowed.
    pub check: fn(&T) -> Result<(), String>,
}

impl<T: SettingValue> Setting<T> {
    /// The values every field not given in a table takes.
    pub const BASE: Setting<T> = Setting {
        index: usize::MAX,
        name: "",
        value_name: "VALUE",
        default: "",
        help: "",
        doc: "",
        example: "",
        live: false,
        required: false,
        flag_only: false,
        check: |_| Ok(()),
    };

    /// Parses `text` in the setting's syntax and checks it.
    pub fn parse(&self, text: &str) -> Result<T, String> {
        let v = T::parse(text)?;
        (self.check)(&v)?;
        Ok(v)
    }

    /// The default value (the type's empty value when there is none).
    pub fn default_value(&self) -> T {
        T::parse(self.default)
            .unwrap_or_else(|e| panic!("setting {}: default {:?}: {e}", self.name, self.default))
    }
}

/// The check of a count, size or duration that must not be zero.
pub fn positive<T: Default + PartialEq>(v: &T) -> Result<(), String> {
    if *v == T::default() {
        return Err("must be positive".into());
    }
    Ok(())
}

/// The check of a name that commands use (a plugin's, a pipeline's): 1-64
/// letters, digits, '-' and '_'. (`&String`: the type of a `String`
/// setting's check.)
#[allow(clippy::ptr_arg)]
pub fn identifier(n: &String) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if n.is_empty() || n.len() > 64 || !n.chars().all(ok) {
        return Err("name must be 1-64 characters of letters, digits, '-' and '_'".into());
    }
    Ok(())
}

/// A table of settings: the top level, or the tables of a TOML array.
pub struct Table {
    /// `None` for the top level; `Some("plugin")` for `[[plugin]]`.
    pub section: Option<&'static str>,
    /// What the table is for (the reference file's comment above it).
    pub doc: &'static str,
    pub settings: &'static [&'static dyn AnySetting],
}

impl Table {
    /// The setting called `name` (also accepted with `_` for `-`).
    pub fn find(&self, name: &str) -> Option<&'static dyn AnySetting> {
        let name = name.replace('_', "-");
        self.settings.iter().copied().find(|s| s.name() == name)
    }
}

/// A setting without its type: what the CLI, the file reader, CONFIG and
/// the reference printer work with.
pub trait AnySetting: Sync {
    fn index(&self) -> usize;
    fn name(&self) -> &'static str;
    fn value_name(&self) -> &'static str;
    fn help(&self) -> &'static str;
    fn doc(&self) -> &'static str;
    fn example(&self) -> &'static str;
    fn default_text(&self) -> &'static str;
    fn is_live(&self) -> bool;
    fn is_required(&self) -> bool;
    fn is_flag_only(&self) -> bool;
    /// A switch: a flag without a value (`--fresh`).
    fn is_switch(&self) -> bool;
    fn parse_any(&self, text: &str) -> Result<Box<dyn Any + Send + Sync>, String>;
    fn parse_toml_any(&self, v: &toml::Value) -> Result<Box<dyn Any + Send + Sync>, String>;
    fn default_any(&self) -> Box<dyn Any + Send + Sync>;
    /// The value as text in the setting's syntax (CONFIG GET).
    fn render_any(&self, v: &(dyn Any + Send + Sync)) -> String;
    /// `text` (in the setting's syntax) as a TOML literal.
    fn toml_literal(&self, text: &str) -> String;
}

impl<T: SettingValue> AnySetting for Setting<T> {
    fn index(&self) -> usize {
        self.index
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn value_name(&self) -> &'static str {
        self.value_name
    }
    fn help(&self) -> &'static str {
        self.help
    }
    fn doc(&self) -> &'static str {
        if self.doc.is_empty() {
            self.help
        } else {
            self.doc
        }
    }
    fn example(&self) -> &'static str {
        self.example
    }
    fn default_text(&self) -> &'static str {
        self.default
    }
    fn is_live(&self) -> bool {
        self.live
    }
    fn is_required(&self) -> bool {
        self.required
    }
    fn is_flag_only(&self) -> bool {
        self.flag_only
    }
    fn is_switch(&self) -> bool {
        T::IS_SWITCH
    }
    fn parse_any(&self, text: &str) -> Result<Box<dyn Any + Send + Sync>, String> {
        Ok(Box::new(self.parse(text)?))
    }
    fn parse_toml_any(&self, v: &toml::Value) -> Result<Box<dyn Any + Send + Sync>, String> {
        let v = T::from_toml(v)?;
        (self.check)(&v)?;
        Ok(Box::new(v))
    }
    fn default_any(&self) -> Box<dyn Any + Send + Sync> {
        Box::new(self.default_value())
    }
    fn render_any(&self, v: &(dyn Any + Send + Sync)) -> String {
        v.downcast_ref::<T>().map(T::render).unwrap_or_default()
    }
    fn toml_literal(&self, text: &str) -> String {
        T::toml_literal(text)
    }
}
