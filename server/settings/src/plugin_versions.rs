//! The value types of a plugin's gray release and balancing keys:
//! `versions` (executables side by side, each with a traffic weight),
//! `balance` (how an instance is chosen) and `rollback` (the automatic
//! rollback rule).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::value::SettingValue;

/// One version of a plugin: its own executable and share of the calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// Letters, digits, '-', '_' and '.'; unique within the plugin.
    pub name: String,
    pub exec: PathBuf,
    /// Relative share of the calls (0-100 as a percentage by convention;
    /// any non-negative integer up to 10000 works, shares are relative).
    pub weight: u32,
    /// Its own arguments (the plugin's `args` when empty).
    pub args: Vec<String>,
    /// Extra environment on top of the plugin's `env`.
    pub env: BTreeMap<String, String>,
}

/// The largest weight a version takes.
pub const MAX_WEIGHT: u32 = 10_000;

/// `versions`: empty means the plugin's `exec` is its only version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PluginVersions(pub Vec<VersionEntry>);

/// The check of a version's name.
pub fn version_name(n: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if n.is_empty() || n.len() > 32 || !n.chars().all(ok) {
        return Err(format!(
            "version name {n:?} must be 1-32 letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

fn weight(n: i64, version: &str) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|w| *w <= MAX_WEIGHT)
        .ok_or_else(|| format!("version {version:?}: weight must be 0-{MAX_WEIGHT}"))
}

fn entry(name: &str, exec: &str, weight: u32) -> Result<VersionEntry, String> {
    version_name(name)?;
    if exec.is_empty() {
        return Err(format!("version {name:?}: exec is empty"));
    }
    Ok(VersionEntry {
        name: name.to_string(),
        exec: PathBuf::from(exec),
        weight,
        args: Vec::new(),
        env: BTreeMap::new(),
    })
}

impl SettingValue for PluginVersions {
    /// `name=exec:weight` words (args and env only from TOML).
    fn parse(text: &str) -> Result<Self, String> {
        text.split_whitespace()
            .map(|word| {
                let bad = || format!("{word:?}: expected NAME=EXEC:WEIGHT");
                let (name, rest) = word.split_once('=').ok_or_else(bad)?;
                let (exec, w) = rest.rsplit_once(':').ok_or_else(bad)?;
                let w = w.parse::<i64>().map_err(|_| bad())?;
                entry(name, exec, weight(w, name)?)
            })
            .collect::<Result<_, _>>()
            .map(PluginVersions)
    }
    fn render(&self) -> String {
        let words: Vec<String> = self
            .0
            .iter()
            .map(|v| format!("{}={}:{}", v.name, v.exec.display(), v.weight))
            .collect();
        words.join(" ")
    }
    /// An array of tables: `[{ name = "v1", exec = "...", weight = 90 }]`.
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        let toml::Value::Array(items) = v else {
            return Err("expected an array of { name, exec, weight } tables".into());
        };
        items
            .iter()
            .map(version_from_toml)
            .collect::<Result<_, _>>()
            .map(PluginVersions)
    }
}

fn version_from_toml(v: &toml::Value) -> Result<VersionEntry, String> {
    let toml::Value::Table(t) = v else {
        return Err("each version is a table { name, exec, weight }".into());
    };
    if let Some(k) = t
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "exec" | "weight" | "args" | "env"))
    {
        return Err(format!(
            "unknown version key {k:?} (name, exec, weight, args, env)"
        ));
    }
    let name = t.get("name").and_then(|v| v.as_str()).unwrap_or_default();
    let exec = t
        .get("exec")
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("version {name:?}: exec (a string) is required"))?;
    let w = match t.get("weight") {
        None => 1,
        Some(w) => weight(
            w.as_integer()
                .ok_or_else(|| format!("version {name:?}: weight must be an integer"))?,
            name,
        )?,
    };
    let mut e = entry(name, exec, w)?;
    if let Some(args) = t.get("args") {
        e.args =
            <Vec<String>>::from_toml(args).map_err(|m| format!("version {name:?}: args: {m}"))?;
    }
    if let Some(env) = t.get("env") {
        e.env = <BTreeMap<String, String>>::from_toml(env)
            .map_err(|m| format!("version {name:?}: env: {m}"))?;
    }
    Ok(e)
}

/// How a call picks one of a version's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    /// In turn (a full ring is skipped).
    RoundRobin,
    /// Power of two choices over EWMA latency × (in flight + 1).
    #[default]
    Latency,
}

impl SettingValue for Balance {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "round-robin" => Ok(Balance::RoundRobin),
            "latency" => Ok(Balance::Latency),
            _ => Err("expected round-robin or latency".into()),
        }
    }
    fn render(&self) -> String {
        match self {
            Balance::RoundRobin => "round-robin",
            Balance::Latency => "latency",
        }
        .into()
    }
}

/// When a version that is not the baseline is taken out of traffic: its
/// error rate or its p99 over the last `window_s` seconds above a limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollbackRule {
    /// Errors / calls (0-1); None: not checked.
    pub error_rate: Option<f64>,
    pub p99_ms: Option<u64>,
    pub window_s: u64,
}

impl Eq for RollbackRule {}

impl RollbackRule {
    fn build(fields: &[(String, f64)]) -> Result<Self, String> {
        let mut rule = RollbackRule {
            error_rate: None,
            p99_ms: None,
            window_s: 10,
        };
        for (k, v) in fields {
            match k.as_str() {
                "error_rate" if (0.0..=1.0).contains(v) => rule.error_rate = Some(*v),
                "error_rate" => return Err("rollback error_rate must be 0-1".into()),
                "p99_ms" if *v >= 1.0 => rule.p99_ms = Some(*v as u64),
                "window_s" if (1.0..=3600.0).contains(v) => rule.window_s = *v as u64,
                "p99_ms" | "window_s" => return Err(format!("rollback {k} must be positive")),
                _ => {
                    return Err(format!(
                        "unknown rollback key {k:?} (error_rate, p99_ms, window_s)"
                    ))
                }
            }
        }
        if rule.error_rate.is_none() && rule.p99_ms.is_none() {
            return Err("rollback needs error_rate and/or p99_ms".into());
        }
        Ok(rule)
    }
}

impl SettingValue for RollbackRule {
    /// `error_rate=0.05,p99_ms=50,window_s=10`.
    fn parse(text: &str) -> Result<Self, String> {
        let fields = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (k, v) = f
                    .split_once('=')
                    .ok_or_else(|| format!("{f:?}: expected KEY=NUMBER"))?;
                let v = v
                    .parse::<f64>()
                    .map_err(|_| format!("{f:?}: expected a number"))?;
                Ok((k.to_string(), v))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Self::build(&fields)
    }
    fn render(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = self.error_rate {
            parts.push(format!("error_rate={r}"));
        }
        if let Some(p) = self.p99_ms {
            parts.push(format!("p99_ms={p}"));
        }
        parts.push(format!("window_s={}", self.window_s));
        parts.join(",")
    }
    /// A table, `{ error_rate = 0.05, p99_ms = 50, window_s = 10 }`, or a
    /// string in the text syntax.
    fn from_toml(v: &toml::Value) -> Result<Self, String> {
        let t = match v {
            toml::Value::String(s) => return Self::parse(s),
            toml::Value::Table(t) => t,
            _ => return Err("expected a table { error_rate, p99_ms, window_s }".into()),
        };
        let fields = t
            .iter()
            .map(|(k, v)| {
                let n = v
                    .as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .ok_or_else(|| format!("rollback {k}: expected a number"))?;
                Ok((k.clone(), n))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Self::build(&fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_text_and_toml() {
        let v = PluginVersions::parse("v1=/bin/a:90 v2=/bin/b:10").unwrap();
        assert_eq!(v.0.len(), 2);
        assert_eq!((v.0[1].name.as_str(), v.0[1].weight), ("v2", 10));
        assert_eq!(v.render(), "v1=/bin/a:90 v2=/bin/b:10");
        let t: toml::Table = toml::from_str(
            "x = [{ name = \"a\", exec = \"sh\", weight = 3, env = { K = \"1\" } }]",
        )
        .unwrap();
        let v = PluginVersions::from_toml(&t["x"]).unwrap();
        assert_eq!(v.0[0].env["K"], "1");
        assert!(PluginVersions::parse("v1=/bin/a").is_err());
        assert!(PluginVersions::parse("v 1=/bin/a:1").is_err());
        assert!(PluginVersions::parse("v1=/bin/a:-1").is_err());
        let bad: toml::Table = toml::from_str("x = [{ name = \"a\", exe = \"sh\" }]").unwrap();
        assert!(PluginVersions::from_toml(&bad["x"]).is_err());
    }

    #[test]
    fn rollback_rule_and_balance() {
        let r = RollbackRule::parse("error_rate=0.05,p99_ms=50,window_s=10").unwrap();
        assert_eq!(
            (r.error_rate, r.p99_ms, r.window_s),
            (Some(0.05), Some(50), 10)
        );
        assert_eq!(RollbackRule::parse(&r.render()).unwrap(), r);
        assert!(RollbackRule::parse("window_s=3").is_err());
        assert!(RollbackRule::parse("error_rate=2").is_err());
        assert_eq!(Balance::parse("round-robin"), Ok(Balance::RoundRobin));
        assert!(Balance::parse("random").is_err());
    }
}
