//! `[[plugin]]` tables of the TOML config file: parsing and validation.
//!
//! ```toml
//! [[plugin]]
//! name = "echo"                      # PLUGIN CALL echo ...
//! exec = "/usr/local/bin/echo-plugin" # a path, or a name looked up in PATH
//! args = []                           # arguments
//! env = { RUST_LOG = "info" }         # extra environment
//! cores = "auto"                      # [2, 3], "auto" or "none"
//! instances = 1                       # processes, each serving every server thread
//! max-inflight = 1024                 # calls awaiting a reply, all threads together
//! timeout-ms = 5000                   # a call unanswered this long fails
//! restart-backoff-ms = 100            # first restart delay, doubled per crash
//! restart-backoff-max-ms = 5000       # ... up to this
//! max-attempts = 3                    # deliveries before a request is poison
//! ring-capacity = "1mb"               # bytes per ring (a power of two >= 4kb)
//! stop-timeout-ms = 5000              # SIGTERM grace before SIGKILL
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_MAX_INFLIGHT: u64 = 1024;
pub const DEFAULT_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_BACKOFF_MS: u64 = 100;
pub const DEFAULT_BACKOFF_MAX_MS: u64 = 5000;
pub const DEFAULT_RING_CAPACITY: u64 = 1 << 20;
pub const DEFAULT_STOP_TIMEOUT_MS: u64 = 5000;

/// One `[[plugin]]` table as written; unknown keys are an error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginFile {
    name: String,
    exec: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cores: Option<CoresValue>,
    instances: Option<usize>,
    #[serde(alias = "max_inflight")]
    max_inflight: Option<u64>,
    #[serde(alias = "timeout_ms")]
    timeout_ms: Option<u64>,
    #[serde(alias = "restart_backoff_ms")]
    restart_backoff_ms: Option<u64>,
    #[serde(alias = "restart_backoff_max_ms")]
    restart_backoff_max_ms: Option<u64>,
    #[serde(alias = "max_attempts")]
    max_attempts: Option<u16>,
    #[serde(alias = "ring_capacity")]
    ring_capacity: Option<SizeValue>,
    #[serde(alias = "stop_timeout_ms")]
    stop_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum CoresValue {
    List(Vec<usize>),
    Word(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
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

/// A validated `[[plugin]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    pub name: String,
    /// As configured (shown by PLUGIN INFO).
    pub exec: PathBuf,
    /// Found at start-up (PATH searched for a bare name).
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cores: Cores,
    pub instances: usize,
    pub max_inflight: u64,
    pub timeout: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub max_attempts: u16,
    pub ring_capacity: u64,
    pub stop_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PluginConfigError {
    #[error("plugin {plugin:?}: {reason}")]
    Invalid { plugin: String, reason: String },
}

fn invalid(plugin: &str, reason: impl Into<String>) -> PluginConfigError {
    PluginConfigError::Invalid {
        plugin: plugin.to_string(),
        reason: reason.into(),
    }
}

/// Validates every table; names must be unique.
pub fn resolve(files: Vec<PluginFile>) -> Result<Vec<PluginConfig>, PluginConfigError> {
    let mut out: Vec<PluginConfig> = Vec::with_capacity(files.len());
    for f in files {
        let p = resolve_one(f)?;
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&p.name)) {
            return Err(invalid(&p.name, "defined twice"));
        }
        out.push(p);
    }
    Ok(out)
}

fn resolve_one(f: PluginFile) -> Result<PluginConfig, PluginConfigError> {
    let name = f.name;
    let valid_name = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || name.len() > 64 || !name.chars().all(valid_name) {
        return Err(invalid(
            &name,
            "name must be 1-64 characters of letters, digits, '-' and '_'",
        ));
    }
    let program = find_executable(&f.exec).map_err(|reason| invalid(&name, reason))?;
    let cores = match f.cores {
        None => Cores::Auto,
        Some(CoresValue::List(list)) if list.is_empty() => {
            return Err(invalid(&name, "cores: empty list"))
        }
        Some(CoresValue::List(list)) => Cores::List(list),
        Some(CoresValue::Word(w)) if w.eq_ignore_ascii_case("auto") => Cores::Auto,
        Some(CoresValue::Word(w)) if w.eq_ignore_ascii_case("none") => Cores::Unpinned,
        Some(CoresValue::Word(w)) => {
            return Err(invalid(
                &name,
                format!("cores = {w:?}: expected a list of CPU numbers, \"auto\" or \"none\""),
            ))
        }
    };
    let instances = f.instances.unwrap_or(1);
    if !(1..=64).contains(&instances) {
        return Err(invalid(&name, "instances must be 1-64"));
    }
    let positive = |key: &str, v: Option<u64>, default: u64| match v {
        Some(0) => Err(invalid(&name, format!("{key} must be positive"))),
        Some(v) => Ok(v),
        None => Ok(default),
    };
    let max_inflight = positive("max-inflight", f.max_inflight, DEFAULT_MAX_INFLIGHT)?;
    let timeout_ms = positive("timeout-ms", f.timeout_ms, DEFAULT_TIMEOUT_MS)?;
    let backoff_ms = positive(
        "restart-backoff-ms",
        f.restart_backoff_ms,
        DEFAULT_BACKOFF_MS,
    )?;
    let backoff_max_ms = positive(
        "restart-backoff-max-ms",
        f.restart_backoff_max_ms,
        DEFAULT_BACKOFF_MAX_MS,
    )?
    .max(backoff_ms);
    let stop_ms = positive(
        "stop-timeout-ms",
        f.stop_timeout_ms,
        DEFAULT_STOP_TIMEOUT_MS,
    )?;
    let max_attempts = match f.max_attempts {
        Some(0) => return Err(invalid(&name, "max-attempts must be positive")),
        Some(n) => n,
        None => citadel_proto::handshake::DEFAULT_MAX_ATTEMPTS,
    };
    let ring_capacity = match f.ring_capacity {
        None => DEFAULT_RING_CAPACITY,
        Some(SizeValue::Bytes(n)) => n,
        Some(SizeValue::Text(t)) => crate::config::parse_size(&t)
            .ok_or_else(|| invalid(&name, format!("ring-capacity {t:?} is not a size")))?,
    };
    if !ring_capacity.is_power_of_two() || !(4096..(1 << 32)).contains(&ring_capacity) {
        return Err(invalid(
            &name,
            format!("ring-capacity {ring_capacity} must be a power of two from 4kb to 2gb"),
        ));
    }
    Ok(PluginConfig {
        name,
        exec: f.exec,
        program,
        args: f.args,
        env: f.env.into_iter().collect(),
        cores,
        instances,
        max_inflight,
        timeout: Duration::from_millis(timeout_ms),
        backoff: Duration::from_millis(backoff_ms),
        backoff_max: Duration::from_millis(backoff_max_ms),
        max_attempts,
        ring_capacity,
        stop_timeout: Duration::from_millis(stop_ms),
    })
}

/// The file `exec` names: a path (with a '/') must be an executable file;
/// a bare name is looked up in PATH.
pub fn find_executable(exec: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if exec.as_os_str().is_empty() {
        return Err("exec is empty".into());
    }
    if exec.components().count() > 1 || exec.is_absolute() {
        return match std::fs::metadata(exec) {
            Err(e) => Err(format!("executable {} not found: {e}", exec.display())),
            Ok(_) if !runnable(exec) => {
                Err(format!("{} is not an executable file", exec.display()))
            }
            Ok(_) => Ok(exec.to_path_buf()),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(exec))
        .find(|p| runnable(p))
        .ok_or_else(|| {
            format!(
                "executable {:?} not found in PATH",
                exec.display().to_string()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<PluginConfig>, String> {
        #[derive(Deserialize)]
        struct F {
            plugin: Vec<PluginFile>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        resolve(f.plugin).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_keys() {
        let p = parse(
            "[[plugin]]\nname = \"e\"\nexec = \"sh\"\n\
             [[plugin]]\nname = \"f\"\nexec = \"/bin/sh\"\nargs = [\"-c\", \"x\"]\n\
             env = { A = \"1\" }\ncores = [1, 2]\ninstances = 2\nmax-inflight = 7\n\
             timeout-ms = 10\nring-capacity = \"64kb\"\nmax_attempts = 5\n",
        )
        .unwrap();
        assert_eq!(p[0].cores, Cores::Auto);
        assert_eq!(p[0].timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert!(p[0].program.is_absolute());
        assert_eq!(p[1].cores, Cores::List(vec![1, 2]));
        assert_eq!(p[1].env, vec![("A".to_string(), "1".to_string())]);
        assert_eq!((p[1].instances, p[1].max_inflight), (2, 7));
        assert_eq!((p[1].ring_capacity, p[1].max_attempts), (64 << 10, 5));
    }

    #[test]
    fn clear_errors() {
        let err = parse("[[plugin]]\nname = \"e\"\nexec = \"/nonexistent/plugin\"\n").unwrap_err();
        assert!(err.contains("\"e\"") && err.contains("not found"), "{err}");
        let err =
            parse("[[plugin]]\nname = \"e\"\nexec = \"no-such-plugin-binary\"\n").unwrap_err();
        assert!(err.contains("PATH"), "{err}");
        let err =
            parse("[[plugin]]\nname = \"e\"\nexec = \"sh\"\nring-capacity = 5000\n").unwrap_err();
        assert!(err.contains("power of two"), "{err}");
        let err = parse("[[plugin]]\nname = \"e\"\nexec = \"sh\"\ncolor = 1\n").unwrap_err();
        assert!(err.contains("color"), "{err}");
        let twice = "[[plugin]]\nname = \"e\"\nexec = \"sh\"\n";
        assert!(parse(&format!("{twice}{twice}"))
            .unwrap_err()
            .contains("twice"));
        assert!(parse("[[plugin]]\nname = \"a b\"\nexec = \"sh\"\n").is_err());
    }
}
