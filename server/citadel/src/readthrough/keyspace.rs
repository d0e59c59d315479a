//! The configured keyspaces: which one a key belongs to (the longest
//! matching prefix) and the expiry of what a load stores.

use citadel_cache::PutOptions;

use super::config::KeyspaceConfig;
use crate::plugin::PluginId;

/// A keyspace ready to serve: its config, its loader's plugin and the
/// index of that loader's breaker.
#[derive(Debug, Clone)]
pub struct Keyspace {
    pub config: KeyspaceConfig,
    pub plugin: PluginId,
    pub loader: usize,
}

/// Keyspaces, longest prefix first.
#[derive(Debug, Default)]
pub struct Keyspaces {
    list: Vec<Keyspace>,
}

impl Keyspaces {
    pub fn new(mut list: Vec<Keyspace>) -> Keyspaces {
        list.sort_by_key(|k| std::cmp::Reverse(k.config.prefix.len()));
        Keyspaces { list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The keyspace of `key` (the longest matching prefix).
    pub fn find(&self, key: &[u8]) -> Option<usize> {
        self.list
            .iter()
            .position(|k| key.starts_with(&k.config.prefix))
    }

    pub fn get(&self, index: usize) -> &Keyspace {
        &self.list[index]
    }

    pub fn iter(&self) -> impl Iterator<Item = &Keyspace> {
        self.list.iter()
    }
}

impl Keyspace {
    /// How a value loaded at `now_ms` is stored: fresh for the TTL (the
    /// loader's, else the keyspace's) plus `jitter` (0..=1 of the
    /// configured jitter, so keys loaded together do not expire together),
    /// then kept for the stale window.
    pub fn value_options(&self, now_ms: u64, loader_ttl_ms: u64, jitter: f64) -> PutOptions {
        let c = &self.config;
        let ttl = if loader_ttl_ms > 0 {
            loader_ttl_ms
        } else {
            c.ttl_ms
        };
        let fresh_until = now_ms + ttl + (c.ttl_jitter_ms as f64 * jitter) as u64;
        PutOptions {
            expire_at: Some(fresh_until + c.stale_ms),
            soft_expire_at: (c.stale_ms > 0).then_some(fresh_until),
            ..PutOptions::default()
        }
    }

    /// How a "not found" is remembered; None when negative caching is off.
    pub fn negative_options(&self, now_ms: u64) -> Option<PutOptions> {
        (self.config.negative_ttl_ms > 0).then(|| PutOptions {
            expire_at: Some(now_ms + self.config.negative_ttl_ms),
            soft_expire_at: None,
            negative: true,
            ..PutOptions::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(prefix: &str, stale_ms: u64) -> Keyspace {
        Keyspace {
            config: KeyspaceConfig {
                prefix: prefix.as_bytes().to_vec(),
                loader: "pg".into(),
                ttl_ms: 1000,
                ttl_jitter_ms: 100,
                negative_ttl_ms: 50,
                stale_ms,
                max_loads: 1,
                breaker_failures: 1,
                breaker_open_ms: 1,
            },
            plugin: 0,
            loader: 0,
        }
    }

    #[test]
    fn longest_prefix_wins() {
        let k = Keyspaces::new(vec![ks("u", 0), ks("user:", 0), ks("", 0)]);
        assert_eq!(k.get(k.find(b"user:1").unwrap()).config.prefix, b"user:");
        assert_eq!(k.get(k.find(b"us").unwrap()).config.prefix, b"u");
        assert_eq!(k.get(k.find(b"x").unwrap()).config.prefix, b"");
        assert!(Keyspaces::new(vec![ks("a", 0)]).find(b"b").is_none());
    }

    #[test]
    fn expiry_with_jitter_and_stale_window() {
        let o = ks("u", 0).value_options(10_000, 0, 0.5);
        assert_eq!((o.expire_at, o.soft_expire_at), (Some(11_050), None));
        let o = ks("u", 500).value_options(10_000, 2000, 1.0);
        assert_eq!(
            (o.expire_at, o.soft_expire_at),
            (Some(12_600), Some(12_100))
        );
        let n = ks("u", 0).negative_options(10).unwrap();
        assert!(n.negative && n.expire_at == Some(60));
    }
}
