//! `[[keyspace]]` tables of the TOML config file: which keys are loaded
//! through which loader plugin, and how long the results live.
//!
//! ```toml
//! [[keyspace]]
//! prefix = "user:"           # GET/MGET/GETEX misses of keys with this prefix are loaded
//! loader = "pg"              # the [[plugin]] that loads them (LoadRequest -> LoadReply)
//! ttl-ms = 300000            # TTL of a loaded value when the loader sends none
//! ttl-jitter-ms = 30000      # up to this much is added at random (default ttl/10)
//! negative-ttl-ms = 5000     # how long "not found" is remembered (0: not cached)
//! stale-ms = 0               # stale window: on an origin failure serve a value this
//!                            # long past its TTL instead of the error (0: never)
//! max-loads = 1024           # loads in flight toward the loader (all threads)
//! breaker-failures = 10      # consecutive failures that open the circuit breaker
//! breaker-open-ms = 1000     # misses fail fast (or go stale) this long, then one trial
//! ```
//! Keyspaces that share a loader share its limit and breaker (the first
//! keyspace's values count).

use serde::Deserialize;

pub const DEFAULT_TTL_MS: u64 = 300_000;
pub const DEFAULT_NEGATIVE_TTL_MS: u64 = 5_000;
pub const DEFAULT_MAX_LOADS: u64 = 1024;
pub const DEFAULT_BREAKER_FAILURES: u32 = 10;
pub const DEFAULT_BREAKER_OPEN_MS: u64 = 1_000;

/// One `[[keyspace]]` table as written; unknown keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeyspaceFile {
    prefix: String,
    loader: String,
    #[serde(alias = "ttl_ms")]
    ttl_ms: Option<u64>,
    #[serde(alias = "ttl_jitter_ms")]
    ttl_jitter_ms: Option<u64>,
    #[serde(alias = "negative_ttl_ms")]
    negative_ttl_ms: Option<u64>,
    #[serde(alias = "stale_ms")]
    stale_ms: Option<u64>,
    #[serde(alias = "max_loads")]
    max_loads: Option<u64>,
    #[serde(alias = "breaker_failures")]
    breaker_failures: Option<u32>,
    #[serde(alias = "breaker_open_ms")]
    breaker_open_ms: Option<u64>,
}

/// A validated `[[keyspace]]` (times in milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyspaceConfig {
    pub prefix: Vec<u8>,
    pub loader: String,
    pub ttl_ms: u64,
    pub ttl_jitter_ms: u64,
    pub negative_ttl_ms: u64,
    pub stale_ms: u64,
    pub max_loads: u64,
    pub breaker_failures: u32,
    pub breaker_open_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyspaceConfigError {
    #[error("keyspace {prefix:?}: {reason}")]
    Invalid { prefix: String, reason: String },
}

fn invalid(prefix: &str, reason: impl Into<String>) -> KeyspaceConfigError {
    KeyspaceConfigError::Invalid {
        prefix: prefix.to_string(),
        reason: reason.into(),
    }
}

/// Validates every table against the configured plugin names; prefixes
/// must be unique.
pub fn resolve(
    files: Vec<KeyspaceFile>,
    plugins: &[&str],
) -> Result<Vec<KeyspaceConfig>, KeyspaceConfigError> {
    let mut out: Vec<KeyspaceConfig> = Vec::with_capacity(files.len());
    for f in files {
        let k = resolve_one(f, plugins)?;
        if out.iter().any(|o| o.prefix == k.prefix) {
            return Err(invalid(&f_prefix(&k), "defined twice"));
        }
        out.push(k);
    }
    Ok(out)
}

fn f_prefix(k: &KeyspaceConfig) -> String {
    String::from_utf8_lossy(&k.prefix).into_owned()
}

fn resolve_one(f: KeyspaceFile, plugins: &[&str]) -> Result<KeyspaceConfig, KeyspaceConfigError> {
    let p = f.prefix.as_str();
    if !plugins.iter().any(|n| n.eq_ignore_ascii_case(&f.loader)) {
        return Err(invalid(
            p,
            format!("loader {:?} is not a configured [[plugin]]", f.loader),
        ));
    }
    let ttl_ms = f.ttl_ms.unwrap_or(DEFAULT_TTL_MS);
    if ttl_ms == 0 {
        return Err(invalid(p, "ttl-ms must be positive"));
    }
    let max_loads = f.max_loads.unwrap_or(DEFAULT_MAX_LOADS);
    let breaker_failures = f.breaker_failures.unwrap_or(DEFAULT_BREAKER_FAILURES);
    let breaker_open_ms = f.breaker_open_ms.unwrap_or(DEFAULT_BREAKER_OPEN_MS);
    if max_loads == 0 || breaker_failures == 0 || breaker_open_ms == 0 {
        return Err(invalid(
            p,
            "max-loads, breaker-failures and breaker-open-ms must be positive",
        ));
    }
    Ok(KeyspaceConfig {
        prefix: f.prefix.into_bytes(),
        loader: f.loader,
        ttl_ms,
        ttl_jitter_ms: f.ttl_jitter_ms.unwrap_or(ttl_ms / 10),
        negative_ttl_ms: f.negative_ttl_ms.unwrap_or(DEFAULT_NEGATIVE_TTL_MS),
        stale_ms: f.stale_ms.unwrap_or(0),
        max_loads,
        breaker_failures,
        breaker_open_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<KeyspaceConfig>, String> {
        #[derive(Deserialize)]
        struct F {
            keyspace: Vec<KeyspaceFile>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        resolve(f.keyspace, &["pg"]).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_errors() {
        let k = parse("[[keyspace]]\nprefix = \"u:\"\nloader = \"pg\"\nttl-ms = 1000\n").unwrap();
        assert_eq!(k[0].prefix, b"u:");
        assert_eq!((k[0].ttl_ms, k[0].ttl_jitter_ms), (1000, 100));
        assert_eq!(k[0].negative_ttl_ms, DEFAULT_NEGATIVE_TTL_MS);
        let err = parse("[[keyspace]]\nprefix = \"u:\"\nloader = \"nope\"\n").unwrap_err();
        assert!(err.contains("not a configured"), "{err}");
        let err = parse("[[keyspace]]\nprefix = \"u:\"\nloader = \"pg\"\ncolor = 1\n").unwrap_err();
        assert!(err.contains("color"), "{err}");
        let twice = "[[keyspace]]\nprefix = \"u:\"\nloader = \"pg\"\n";
        assert!(parse(&format!("{twice}{twice}"))
            .unwrap_err()
            .contains("twice"));
    }
}
