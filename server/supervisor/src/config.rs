//! A validated `[[plugin]]`: the typed view the supervisor and the server
//! threads use, built from the table's settings (`citadel_settings::plugin`,
//! where every key, default and check is defined).

use std::path::{Path, PathBuf};
use std::time::Duration;

use citadel_settings::plugin as key;
use citadel_settings::{Cores, Store};

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

/// Every `[[plugin]]` table, validated; names must be unique.
pub fn resolve(tables: &[Store]) -> Result<Vec<PluginConfig>, PluginConfigError> {
    let mut out: Vec<PluginConfig> = Vec::with_capacity(tables.len());
    for t in tables {
        let p = from_table(t)?;
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&p.name)) {
            return Err(invalid(&p.name, "defined twice"));
        }
        out.push(p);
    }
    Ok(out)
}

fn invalid(plugin: &str, reason: impl Into<String>) -> PluginConfigError {
    PluginConfigError::Invalid {
        plugin: plugin.to_string(),
        reason: reason.into(),
    }
}

fn from_table(t: &Store) -> Result<PluginConfig, PluginConfigError> {
    let name = t.get(&key::NAME);
    let exec = t.get(&key::EXEC);
    let program = find_executable(&exec).map_err(|reason| invalid(&name, reason))?;
    let ms = |v: u64| Duration::from_millis(v);
    let backoff = t.get(&key::RESTART_BACKOFF_MS);
    Ok(PluginConfig {
        exec,
        program,
        args: t.get(&key::ARGS),
        env: t.get(&key::ENV).into_iter().collect(),
        cores: t.get(&key::CORES),
        instances: t.get(&key::INSTANCES),
        max_inflight: t.get(&key::MAX_INFLIGHT),
        timeout: ms(t.get(&key::TIMEOUT_MS)),
        backoff: ms(backoff),
        backoff_max: ms(t.get(&key::RESTART_BACKOFF_MAX_MS).max(backoff)),
        max_attempts: t.get(&key::MAX_ATTEMPTS),
        ring_capacity: t.get(&key::RING_CAPACITY).bytes(),
        stop_timeout: ms(t.get(&key::STOP_TIMEOUT_MS)),
        name,
    })
}

/// A plugin with `/bin/sh` as its program and small limits (unit tests).
#[cfg(test)]
pub(crate) fn for_tests(name: &str, cores: Cores, instances: usize) -> PluginConfig {
    PluginConfig {
        name: name.into(),
        exec: "/bin/sh".into(),
        program: "/bin/sh".into(),
        args: vec![],
        env: vec![],
        cores,
        instances,
        max_inflight: 1,
        timeout: Duration::from_secs(1),
        backoff: Duration::from_secs(1),
        backoff_max: Duration::from_secs(1),
        max_attempts: 3,
        ring_capacity: 4096,
        stop_timeout: Duration::from_secs(1),
    }
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
    use citadel_settings::file;

    fn parse(text: &str) -> Result<Vec<PluginConfig>, String> {
        let toml: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
        let tables = file::sections(&key::TABLE, &toml).map_err(|e| e.to_string())?;
        resolve(&tables).map_err(|e| e.to_string())
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
        assert_eq!(p[0].timeout, Duration::from_millis(5000));
        assert_eq!(
            p[0].max_attempts,
            citadel_proto::handshake::DEFAULT_MAX_ATTEMPTS,
            "the documented default is the protocol's"
        );
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
        let twice = "[[plugin]]\nname = \"e\"\nexec = \"sh\"\n";
        assert!(parse(&format!("{twice}{twice}"))
            .unwrap_err()
            .contains("twice"));
    }
}
