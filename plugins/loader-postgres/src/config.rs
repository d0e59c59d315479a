//! Command-line flags (each also readable from a `CITADEL_PG_*` variable).

use std::time::Duration;

use clap::Parser;

/// Citadel loader plugin for PostgreSQL: answers the server's read-through
/// loads (cache misses) with one query per key and, with --listen-channel,
/// turns NOTIFY payloads into cache invalidations. Started by the Citadel
/// server, which passes its rings in CITADEL_PLUGIN_* variables.
#[derive(Clone, Debug, Parser)]
#[command(name = "citadel-loader-postgres", version, args_override_self = true)]
pub struct Config {
    /// libpq-style connection string or URL, e.g.
    /// "host=127.0.0.1 port=5432 user=citadel dbname=app" or
    /// "postgresql://citadel@127.0.0.1/app".
    #[arg(long, env = "CITADEL_PG_DSN", hide_env_values = true)]
    pub dsn: String,

    /// The load query: one parameter ($1, the key: text or bytea) and the
    /// value in the first column of the first row (bytea or text). No row, or
    /// a NULL value, means the key does not exist.
    #[arg(
        long,
        env = "CITADEL_PG_QUERY",
        default_value = "SELECT v FROM kv WHERE k = $1"
    )]
    pub query: String,

    /// Connections used for loads (each pipelines concurrent queries).
    #[arg(long, env = "CITADEL_PG_POOL_SIZE", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub pool_size: u16,

    /// Most loads in flight on one connection (pipelined); more wait for one.
    #[arg(long, env = "CITADEL_PG_PIPELINE_DEPTH", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub pipeline_depth: u16,

    /// Longest a load may take, waiting for a connection included; past it the
    /// query is cancelled and the server gets an OriginTimeout error.
    #[arg(long, env = "CITADEL_PG_QUERY_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub query_timeout_ms: u64,

    /// Longest one connection attempt may take.
    #[arg(long, env = "CITADEL_PG_CONNECT_TIMEOUT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connect_timeout_ms: u64,

    /// Longest pause between reconnection attempts while the database is
    /// down (the pause doubles from 50 ms up to this).
    #[arg(long, env = "CITADEL_PG_RECONNECT_MAX_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub reconnect_max_ms: u64,

    /// LISTEN on this channel; each NOTIFY payload is a key to invalidate.
    #[arg(long, env = "CITADEL_PG_LISTEN_CHANNEL")]
    pub listen_channel: Option<String>,

    /// TTL returned with every loaded value (0: the server's default).
    #[arg(long, env = "CITADEL_PG_TTL_MS", default_value_t = 0)]
    pub ttl_ms: u64,

    /// Tokio worker threads for database I/O.
    #[arg(long, env = "CITADEL_PG_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

impl Config {
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn reconnect_max(&self) -> Duration {
        Duration::from_millis(self.reconnect_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_with_defaults() {
        let c = Config::try_parse_from(["x", "--dsn", "host=h"]).unwrap();
        assert_eq!(c.query, "SELECT v FROM kv WHERE k = $1");
        assert_eq!((c.pool_size, c.query_timeout_ms, c.ttl_ms), (4, 1000, 0));
        assert!(c.listen_channel.is_none());
        assert!(Config::try_parse_from(["x", "--dsn", "h", "--pool-size", "0"]).is_err());
    }
}
