//! Configuration of the `citadel` binary: command-line flags (clap) merged
//! over an optional TOML file (`--config FILE`) merged over the defaults.
//!
//! Every flag has a TOML key of the same name (`--max-value-size` is
//! `max-value-size`; the snake_case spelling is accepted too). Sizes use
//! Redis units: `b`, `k` (1000), `kb` (1024), `m`, `mb`, `g`, `gb`,
//! case-insensitive; in TOML a size may also be a plain integer of bytes.
//! `deploy/citadel.toml` documents every key with its default.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

pub const DEFAULT_PORT: u16 = 6379;
pub const DEFAULT_BIND: &str = "127.0.0.1";
pub const DEFAULT_MAXMEMORY: u64 = 1 << 30;
pub const DEFAULT_MAXCLIENTS: usize = 10_000;
pub const DEFAULT_MAX_VALUE_SIZE: u64 = 64 << 20;
pub const DEFAULT_CLIENT_OUTPUT_LIMIT: u64 = 256 << 20;
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// The cache engine allows at most this many writer handles, one per thread.
pub const MAX_THREADS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid {key} {value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error(
        "refusing to listen on non-loopback address {0} without a password: \
         set --requirepass (or requirepass in the config file), or bind 127.0.0.1"
    )]
    UnprotectedBind(IpAddr),
    #[error(transparent)]
    Plugin(#[from] crate::supervisor::config::PluginConfigError),
    #[error(transparent)]
    Keyspace(#[from] crate::readthrough::KeyspaceConfigError),
}

/// Command-line flags. Every flag is optional so that the config file and the
/// defaults can fill in what is not given.
#[derive(Debug, Default, Parser)]
#[command(
    name = "citadel",
    version,
    about = "Citadel: a Redis-compatible cache server on io_uring"
)]
pub struct Cli {
    /// TOML config file with the same keys as these flags (flags win).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// TCP port to listen on [default: 6379].
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on [default: 127.0.0.1]; a non-loopback address needs --requirepass.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
    /// Server threads, each pinned to one CPU [default: one per CPU this process may use].
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Size of the cache file, e.g. 64mb, 1gb [default: 1gb].
    #[arg(long, value_name = "SIZE")]
    pub maxmemory: Option<String>,
    /// Path of the cache file [default: /dev/shm/citadel-<port>.cache].
    #[arg(long, value_name = "PATH")]
    pub cache_file: Option<PathBuf>,
    /// Recreate the cache file, discarding the keys in it.
    #[arg(long)]
    pub fresh: bool,
    /// Password clients must send with AUTH before other commands.
    #[arg(long, value_name = "PASSWORD")]
    pub requirepass: Option<String>,
    /// Most concurrent client connections; extra ones are refused [default: 10000].
    #[arg(long, value_name = "N")]
    pub maxclients: Option<usize>,
    /// Largest value a client may store, e.g. 64mb [default: 64mb].
    #[arg(long, value_name = "SIZE")]
    pub max_value_size: Option<String>,
    /// Per-client limit of unsent replies; a client past it is dropped [default: 256mb].
    #[arg(long, value_name = "SIZE")]
    pub client_output_limit: Option<String>,
    /// Log filter: error, warn, info, debug, trace (or a tracing directive) [default: info].
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
}

/// A size in the TOML file: `"64mb"` or a plain byte count.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

impl fmt::Display for SizeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeValue::Bytes(n) => write!(f, "{n}"),
            SizeValue::Text(s) => f.write_str(s),
        }
    }
}

/// The TOML file; unknown keys are an error so typos do not go unnoticed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    port: Option<u16>,
    bind: Option<String>,
    threads: Option<usize>,
    maxmemory: Option<SizeValue>,
    #[serde(alias = "cache_file")]
    cache_file: Option<PathBuf>,
    fresh: Option<bool>,
    requirepass: Option<String>,
    maxclients: Option<usize>,
    #[serde(alias = "max_value_size")]
    max_value_size: Option<SizeValue>,
    #[serde(alias = "client_output_limit")]
    client_output_limit: Option<SizeValue>,
    #[serde(alias = "log_level")]
    log_level: Option<String>,
    /// `[[plugin]]` tables (see `supervisor::config`).
    plugin: Option<Vec<crate::supervisor::config::PluginFile>>,
    /// `[[keyspace]]` tables (see `readthrough::config`).
    keyspace: Option<Vec<crate::readthrough::KeyspaceFile>>,
}

/// The resolved, validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub port: u16,
    pub bind: IpAddr,
    /// `None`: one thread per CPU in the process's affinity mask.
    pub threads: Option<usize>,
    pub maxmemory: u64,
    pub cache_file: PathBuf,
    pub fresh: bool,
    pub requirepass: Option<String>,
    pub maxclients: usize,
    pub max_value_size: u64,
    pub client_output_limit: u64,
    pub log_level: String,
    pub config_file: Option<PathBuf>,
    /// `[[plugin]]` tables, validated.
    pub plugins: Vec<crate::supervisor::config::PluginConfig>,
    /// `[[keyspace]]` tables (read-through), validated against `plugins`.
    pub keyspaces: Vec<crate::readthrough::KeyspaceConfig>,
}

impl Config {
    /// Parses the process's arguments (clap exits on `--help` or a bad flag).
    pub fn from_args() -> Result<Config, ConfigError> {
        Config::resolve(Cli::parse())
    }

    /// Merges flags over the file named by `--config` over the defaults.
    pub fn resolve(cli: Cli) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let port = cli.port.or(file.port).unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err(invalid("port", "0", "must be 1-65535"));
        }
        let bind_text = cli
            .bind
            .or(file.bind)
            .unwrap_or_else(|| DEFAULT_BIND.into());
        let bind: IpAddr = match bind_text.as_str() {
            "localhost" => IpAddr::from([127, 0, 0, 1]),
            text => text
                .parse()
                .map_err(|_| invalid("bind", &bind_text, "not an IPv4 or IPv6 address"))?,
        };
        let threads = cli.threads.or(file.threads);
        if let Some(n) = threads {
            if n == 0 || n > MAX_THREADS {
                return Err(invalid(
                    "threads",
                    &n.to_string(),
                    &format!("must be 1-{MAX_THREADS}"),
                ));
            }
        }
        let maxmemory = size(
            "maxmemory",
            cli.maxmemory,
            file.maxmemory,
            DEFAULT_MAXMEMORY,
        )?;
        let max_value_size = size(
            "max-value-size",
            cli.max_value_size,
            file.max_value_size,
            DEFAULT_MAX_VALUE_SIZE,
        )?;
        let client_output_limit = size(
            "client-output-limit",
            cli.client_output_limit,
            file.client_output_limit,
            DEFAULT_CLIENT_OUTPUT_LIMIT,
        )?;
        for (key, value) in [
            ("maxmemory", maxmemory),
            ("max-value-size", max_value_size),
            ("client-output-limit", client_output_limit),
        ] {
            if value == 0 {
                return Err(invalid(key, "0", "must be positive"));
            }
        }
        if max_value_size > u32::MAX as u64 {
            return Err(invalid(
                "max-value-size",
                &max_value_size.to_string(),
                "must be below 4gb",
            ));
        }
        let maxclients = cli
            .maxclients
            .or(file.maxclients)
            .unwrap_or(DEFAULT_MAXCLIENTS);
        if maxclients == 0 {
            return Err(invalid("maxclients", "0", "must be positive"));
        }
        let requirepass = cli.requirepass.or(file.requirepass);
        if requirepass.as_deref() == Some("") {
            return Err(invalid("requirepass", "", "must not be empty"));
        }
        if !bind.is_loopback() && requirepass.is_none() {
            return Err(ConfigError::UnprotectedBind(bind));
        }
        let log_level = cli
            .log_level
            .or(file.log_level)
            .unwrap_or_else(|| DEFAULT_LOG_LEVEL.into());
        if log_level.trim().is_empty() {
            return Err(invalid("log-level", &log_level, "must not be empty"));
        }
        let cache_file = cli
            .cache_file
            .or(file.cache_file)
            .unwrap_or_else(|| PathBuf::from(format!("/dev/shm/citadel-{port}.cache")));
        let plugins = crate::supervisor::config::resolve(file.plugin.unwrap_or_default())?;
        let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
        let keyspaces =
            crate::readthrough::config::resolve(file.keyspace.unwrap_or_default(), &names)?;
        Ok(Config {
            port,
            bind,
            threads,
            maxmemory,
            cache_file,
            fresh: cli.fresh || file.fresh.unwrap_or(false),
            requirepass,
            maxclients,
            max_value_size,
            client_output_limit,
            log_level,
            config_file: cli.config,
            plugins,
            keyspaces,
        })
    }
}

fn invalid(key: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        // toml's message spans several lines (it quotes the source); keep one.
        message: e.message().to_string(),
    })
}

fn size(
    key: &'static str,
    flag: Option<String>,
    file: Option<SizeValue>,
    default: u64,
) -> Result<u64, ConfigError> {
    let value = match (flag, file) {
        (Some(text), _) | (None, Some(SizeValue::Text(text))) => text,
        (None, Some(SizeValue::Bytes(n))) => return Ok(n),
        (None, None) => return Ok(default),
    };
    parse_size(&value).ok_or_else(|| {
        invalid(
            key,
            &value,
            "expected a size such as 1048576, 512kb, 64mb or 1gb",
        )
    })
}

/// Parses a Redis-style size: digits then an optional unit among b, k, kb,
/// m, mb, g, gb (case-insensitive; k/m/g are powers of 1000, kb/mb/gb of 1024).
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return None;
    }
    let number: u64 = text[..digits].parse().ok()?;
    let multiplier: u64 = match text[digits..].trim() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("citadel").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("64mb"), Some(64 << 20));
        assert_eq!(parse_size("64MB"), Some(64 << 20));
        assert_eq!(parse_size("1k"), Some(1000));
        assert_eq!(parse_size("1Gb"), Some(1 << 30));
        assert_eq!(parse_size("2g"), Some(2_000_000_000));
        assert_eq!(parse_size("5b"), Some(5));
        assert_eq!(parse_size("mb"), None);
        assert_eq!(parse_size("1tb"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999999999999gb"), None);
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(cli(&[])).unwrap();
        assert_eq!(c.port, 6379);
        assert_eq!(c.bind, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.maxmemory, 1 << 30);
        assert_eq!(c.cache_file, PathBuf::from("/dev/shm/citadel-6379.cache"));
        assert_eq!(c.maxclients, 10_000);
        assert_eq!(c.max_value_size, 64 << 20);
        assert!(!c.fresh && c.threads.is_none() && c.requirepass.is_none());
    }

    #[test]
    fn flags_win_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "port = 7000\nmaxmemory = \"2mb\"\nmax_value_size = 4096\nthreads = 2\nfresh = true\n",
        )
        .unwrap();
        let c =
            Config::resolve(cli(&["--config", path.to_str().unwrap(), "--port", "7001"])).unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.maxmemory, 2 << 20);
        assert_eq!(c.max_value_size, 4096);
        assert_eq!(c.threads, Some(2));
        assert!(c.fresh);
        assert_eq!(c.cache_file, PathBuf::from("/dev/shm/citadel-7001.cache"));
    }

    #[test]
    fn example_config_documents_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("citadel.toml");
        std::fs::write(&path, include_str!("../../deploy/citadel.toml")).unwrap();
        let from_file = Config::resolve(cli(&["--config", path.to_str().unwrap()])).unwrap();
        let defaults = Config::resolve(cli(&[])).unwrap();
        assert_eq!(
            Config {
                config_file: None,
                ..from_file
            },
            defaults
        );
    }

    #[test]
    fn rejects_bad_values() {
        assert!(Config::resolve(cli(&["--maxmemory", "lots"])).is_err());
        assert!(Config::resolve(cli(&["--threads", "0"])).is_err());
        assert!(Config::resolve(cli(&["--bind", "nowhere"])).is_err());
        assert!(matches!(
            Config::resolve(cli(&["--bind", "0.0.0.0"])),
            Err(ConfigError::UnprotectedBind(_))
        ));
        assert!(Config::resolve(cli(&["--bind", "0.0.0.0", "--requirepass", "x"])).is_ok());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "prot = 1\n").unwrap();
        let err = Config::resolve(cli(&["--config", path.to_str().unwrap()])).unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
    }
}
