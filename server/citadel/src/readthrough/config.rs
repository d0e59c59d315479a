//! A validated `[[keyspace]]`: the typed view read-through uses, built
//! from the table's settings (`citadel_settings::keyspace`, where every key,
//! default and check is defined).

use citadel_settings::keyspace as key;
use citadel_settings::Store;

/// Times in milliseconds.
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

/// Every `[[keyspace]]` table, checked against the configured plugin
/// names; prefixes must be unique.
pub fn resolve(
    tables: &[Store],
    plugins: &[&str],
) -> Result<Vec<KeyspaceConfig>, KeyspaceConfigError> {
    let mut out: Vec<KeyspaceConfig> = Vec::with_capacity(tables.len());
    for t in tables {
        let k = from_table(t);
        let invalid = |reason: String| KeyspaceConfigError::Invalid {
            prefix: String::from_utf8_lossy(&k.prefix).into_owned(),
            reason,
        };
        if !plugins.iter().any(|n| n.eq_ignore_ascii_case(&k.loader)) {
            let reason = format!("loader {:?} is not a configured [[plugin]]", k.loader);
            return Err(invalid(reason));
        }
        if out.iter().any(|o| o.prefix == k.prefix) {
            return Err(invalid("defined twice".into()));
        }
        out.push(k);
    }
    Ok(out)
}

fn from_table(t: &Store) -> KeyspaceConfig {
    let ttl_ms = t.get(&key::TTL_MS);
    KeyspaceConfig {
        prefix: t.get(&key::PREFIX).into_bytes(),
        loader: t.get(&key::LOADER),
        ttl_ms,
        ttl_jitter_ms: t.get(&key::TTL_JITTER_MS).unwrap_or(ttl_ms / 10),
        negative_ttl_ms: t.get(&key::NEGATIVE_TTL_MS),
        stale_ms: t.get(&key::STALE_MS),
        max_loads: t.get(&key::MAX_LOADS),
        breaker_failures: t.get(&key::BREAKER_FAILURES),
        breaker_open_ms: t.get(&key::BREAKER_OPEN_MS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use citadel_settings::file;

    fn parse(text: &str) -> Result<Vec<KeyspaceConfig>, String> {
        let toml: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let tables = file::sections(&key::TABLE, &toml).map_err(|e| e.to_string())?;
        resolve(&tables, &["pg"]).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_errors() {
        let k = parse("[[keyspace]]\nprefix = \"u:\"\nloader = \"pg\"\nttl-ms = 1000\n").unwrap();
        assert_eq!(k[0].prefix, b"u:");
        assert_eq!((k[0].ttl_ms, k[0].ttl_jitter_ms), (1000, 100));
        assert_eq!(k[0].negative_ttl_ms, 5000);
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
