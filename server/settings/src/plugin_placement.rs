//! `placement`: where a plugin's handler runs, in its own process (the
//! default, isolated) or inside the server as a loaded module (no process
//! boundary, no isolation).

use crate::value::SettingValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    /// `exec` is an executable; each instance is a process.
    #[default]
    Process,
    /// `exec` is a shared object (the SDK's `export_inline!`); each
    /// instance is a pinned thread inside the server.
    Inline,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Process => "process",
            Placement::Inline => "inline",
        }
    }
}

impl SettingValue for Placement {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "process" => Ok(Placement::Process),
            "inline" => Ok(Placement::Inline),
            _ => Err("expected process or inline".into()),
        }
    }
    fn render(&self) -> String {
        self.name().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_placements() {
        assert_eq!(Placement::parse(" Inline"), Ok(Placement::Inline));
        assert_eq!(Placement::parse("process"), Ok(Placement::Process));
        assert!(Placement::parse("thread").is_err());
        assert_eq!(Placement::Inline.render(), "inline");
    }
}
