//! The types a setting can have, each with its syntax: parsing from a flag,
//! a TOML value or a `CONFIG SET` argument, and rendering for `CONFIG GET`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::size::Size;

pub trait SettingValue: Clone + Send + Sync + 'static {
    /// A flag that takes no value (`--fresh`).
    const IS_SWITCH: bool = false;
    /// Parses the setting's text syntax.
    fn parse(text: &str) -> Result<Self, String>;
    /// The value in the setting's text syntax.
    fn render(&self) -> String;
    /// From a TOML value: strings in the text syntax, plus what TOML
    /// writes natively for the type (integers, booleans, arrays).
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => Self::parse(s),
            toml::Value::Integer(i) => Self::parse(&i.to_string()),
            toml::Value::Boolean(b) => Self::parse(if *b { "yes" } else { "no" }),
            other => Err(format!("unexpected {}", other.type_str())),
        }
    }
    /// `text` (this type's syntax) as a TOML literal.
    fn toml_literal(text: &str) -> String {
        quote(text)
    }
}

fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl SettingValue for $t {
            fn parse(text: &str) -> Result<Self, String> {
                let t = text.trim();
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err("expected a non-negative integer".into());
                }
                t.parse().map_err(|_| format!("must be at most {}", <$t>::MAX))
            }
            fn render(&self) -> String {
                self.to_string()
            }
            fn toml_literal(text: &str) -> String {
                text.to_string()
            }
        }
    )*};
}
unsigned!(u16, u32, u64, usize);

/// Signed integers (Redis's `slowlog-log-slower-than`: negative disables).
impl SettingValue for i64 {
    fn parse(text: &str) -> Result<Self, String> {
        text.trim()
            .parse()
            .map_err(|_| "expected an integer".to_string())
    }
    fn render(&self) -> String {
        self.to_string()
    }
    fn toml_literal(text: &str) -> String {
        text.to_string()
    }
}

impl SettingValue for bool {
    const IS_SWITCH: bool = true;
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "1" => Ok(true),
            "no" | "false" | "off" | "0" => Ok(false),
            _ => Err("expected yes or no".into()),
        }
    }
    fn render(&self) -> String {
        if *self { "yes" } else { "no" }.into()
    }
    fn toml_literal(text: &str) -> String {
        Self::parse(text).unwrap_or(false).to_string()
    }
}

impl SettingValue for String {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.to_string())
    }
    fn render(&self) -> String {
        self.clone()
    }
}

impl SettingValue for PathBuf {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(PathBuf::from(text))
    }
    fn render(&self) -> String {
        self.display().to_string()
    }
}

impl SettingValue for IpAddr {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "localhost" => Ok(IpAddr::from([127, 0, 0, 1])),
            t => t
                .parse()
                .map_err(|_| "not an IPv4 or IPv6 address".to_string()),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for Size {
    fn parse(text: &str) -> Result<Self, String> {
        crate::size::parse_size(text)
            .map(Size)
            .ok_or_else(|| "expected a size such as 1048576, 512kb, 64mb or 1gb".into())
    }
    fn render(&self) -> String {
        self.0.to_string()
    }
    fn toml_literal(text: &str) -> String {
        if text.bytes().all(|b| b.is_ascii_digit()) {
            text.to_string()
        } else {
            quote(text)
        }
    }
}

/// Absent when empty (`""` as text, or the key left out).
impl<T: SettingValue> SettingValue for Option<T> {
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            Ok(None)
        } else {
            T::parse(text).map(Some)
        }
    }
    fn render(&self) -> String {
        self.as_ref().map(T::render).unwrap_or_default()
    }
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        T::from_toml(v).map(Some)
    }
    fn toml_literal(text: &str) -> String {
        T::toml_literal(text)
    }
}

/// A list of words: a TOML array of strings (text: space-separated).
impl SettingValue for Vec<String> {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(text.split_whitespace().map(str::to_string).collect())
    }
    fn render(&self) -> String {
        self.join(" ")
    }
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        let toml::Value::Array(items) = v else {
            return Err("expected an array of strings".into());
        };
        items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| "expected an array of strings".into())
    }
    fn toml_literal(text: &str) -> String {
        let words: Vec<String> = text.split_whitespace().map(quote).collect();
        format!("[{}]", words.join(", "))
    }
}

/// Environment variables: a TOML table of strings (text: `K=V` words).
impl SettingValue for BTreeMap<String, String> {
    fn parse(text: &str) -> Result<Self, String> {
        text.split_whitespace()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| format!("{kv:?}: expected NAME=VALUE"))
            })
            .collect()
    }
    fn render(&self) -> String {
        let pairs: Vec<String> = self.iter().map(|(k, v)| format!("{k}={v}")).collect();
        pairs.join(" ")
    }
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        let toml::Value::Table(t) = v else {
            return Err("expected a table of strings, e.g. { RUST_LOG = \"info\" }".into());
        };
        t.iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => Ok((k.clone(), s.to_string())),
                None => Err(format!("{k}: expected a string")),
            })
            .collect()
    }
    fn toml_literal(text: &str) -> String {
        let pairs: Vec<String> = Self::parse(text)
            .unwrap_or_default()
            .iter()
            .map(|(k, v)| format!("{k} = {}", quote(v)))
            .collect();
        format!("{{ {} }}", pairs.join(", "))
    }
}

/// Which CPUs a plugin's processes run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cores {
    /// Take `instances` cores from the end of the allowed set.
    Auto,
    /// Exactly these (server threads keep off them).
    List(Vec<usize>),
    /// Not pinned.
    Unpinned,
}

impl SettingValue for Cores {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("auto") {
            return Ok(Cores::Auto);
        }
        if t.eq_ignore_ascii_case("none") {
            return Ok(Cores::Unpinned);
        }
        let list: Option<Vec<usize>> = t
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|c| c.trim().parse().ok())
            .collect();
        match list {
            Some(l) if !l.is_empty() => Ok(Cores::List(l)),
            _ => Err(format!(
                "{t:?}: expected a list of CPU numbers, \"auto\" or \"none\""
            )),
        }
    }
    fn render(&self) -> String {
        match self {
            Cores::Auto => "auto".into(),
            Cores::Unpinned => "none".into(),
            Cores::List(l) => {
                let l: Vec<String> = l.iter().map(usize::to_string).collect();
                l.join(",")
            }
        }
    }
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::Array(items) if items.is_empty() => Err("cores: empty list".into()),
            toml::Value::Array(items) => items
                .iter()
                .map(|i| i.as_integer().and_then(|n| usize::try_from(n).ok()))
                .collect::<Option<Vec<usize>>>()
                .map(Cores::List)
                .ok_or_else(|| "cores: expected CPU numbers".into()),
            toml::Value::String(s) => Self::parse(s),
            other => Err(format!("cores: unexpected {}", other.type_str())),
        }
    }
}

/// Whether the DEBUG command is allowed (as Redis's `enable-debug-command`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugCommand {
    No,
    Yes,
    /// Only from loopback connections.
    Local,
}

impl SettingValue for DebugCommand {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "no" => Ok(DebugCommand::No),
            "yes" => Ok(DebugCommand::Yes),
            "local" => Ok(DebugCommand::Local),
            _ => Err("expected no, yes or local".into()),
        }
    }
    fn render(&self) -> String {
        match self {
            DebugCommand::No => "no",
            DebugCommand::Yes => "yes",
            DebugCommand::Local => "local",
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntaxes() {
        assert_eq!(u16::parse("6379"), Ok(6379));
        assert!(u16::parse("70000").is_err() && u16::parse("-1").is_err());
        assert_eq!(bool::parse("Yes"), Ok(true));
        assert_eq!(Option::<u64>::parse(""), Ok(None));
        assert_eq!(IpAddr::parse("localhost"), Ok(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(Size::parse("64mb"), Ok(Size(64 << 20)));
        assert_eq!(Cores::parse("[1, 2]"), Ok(Cores::List(vec![1, 2])));
        assert_eq!(Cores::parse("auto"), Ok(Cores::Auto));
        assert!(Cores::parse("some").is_err());
        let env = BTreeMap::<String, String>::parse("A=1 B=x").unwrap();
        assert_eq!(env.render(), "A=1 B=x");
        assert_eq!(
            <BTreeMap<String, String>>::toml_literal("A=1"),
            "{ A = \"1\" }"
        );
        assert_eq!(<Vec<String>>::toml_literal("-c x"), "[\"-c\", \"x\"]");
        assert_eq!(Size::toml_literal("1gb"), "\"1gb\"");
        assert_eq!(DebugCommand::parse("local"), Ok(DebugCommand::Local));
    }
}
