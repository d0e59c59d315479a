//! A validated `[[plugin]]`: the typed view the supervisor and the server
//! threads use, built from the table's settings (`citadel_settings::plugin`,
//! where every key, default and check is defined).

use std::path::{Path, PathBuf};
use std::time::Duration;

use citadel_settings::instances::InstanceRange;
use citadel_settings::plugin as key;
use citadel_settings::plugin_placement::Placement;
use citadel_settings::plugin_versions::{Balance, RollbackRule, VersionEntry};
use citadel_settings::{Cores, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    pub name: String,
    /// As configured (shown by PLUGIN INFO): the first version's.
    pub exec: PathBuf,
    /// Found at start-up (PATH searched for a bare name).
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cores: Cores,
    /// A process per instance, or a module loaded into the server.
    pub placement: Placement,
    /// Instance slots in all (each with its ring pairs): `per_version` ×
    /// versions. Instance `i` runs version `i / per_version`.
    pub instances: usize,
    pub per_version: usize,
    /// How many of a version's slots run: fixed, or elastic `MIN..MAX`.
    pub running: InstanceRange,
    /// One slot beyond `running.max` kept for an overlapped upgrade (the
    /// new process starts there while the old one drains); see
    /// [`with_spare_slots`].
    pub spare_slot: bool,
    pub scaling: ScaleRule,
    /// At least one; the single-`exec` form is one version named "default".
    pub versions: Vec<VersionConfig>,
    pub balance: Balance,
    pub rollback: Option<RollbackRule>,
    pub max_inflight: u64,
    pub timeout: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub max_attempts: u16,
    pub ring_capacity: u64,
    pub stop_timeout: Duration,
}

/// When an elastic plugin grows or shrinks (see `elastic.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScaleRule {
    pub delay_target: Duration,
    pub up_window: Duration,
    pub down_window: Duration,
    pub cooldown: Duration,
}

/// One version of a plugin: what its processes run, and its configured
/// share of the calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConfig {
    pub name: String,
    pub exec: PathBuf,
    pub program: PathBuf,
    /// Its own arguments; empty: the plugin's.
    pub args: Vec<String>,
    /// Added to the plugin's environment (after it).
    pub env: Vec<(String, String)>,
    pub weight: u32,
}

impl PluginConfig {
    /// The version instance `i` runs.
    pub fn version_of(&self, instance: usize) -> usize {
        instance / self.per_version.max(1)
    }
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
    let args: Vec<String> = t.get(&key::ARGS);
    let env: Vec<(String, String)> = t.get(&key::ENV).into_iter().collect();
    let placement = t.get(&key::PLACEMENT);
    let versions = versions(&name, placement, t)?;
    let ms = |v: u64| Duration::from_millis(v);
    let backoff = t.get(&key::RESTART_BACKOFF_MS);
    let running: InstanceRange = t.get(&key::INSTANCES);
    if running.is_elastic() && versions.len() > 1 {
        return Err(invalid(
            &name,
            "elastic instances (MIN..MAX) need a single version",
        ));
    }
    if running.is_elastic() && placement == Placement::Inline {
        return Err(invalid(
            &name,
            "elastic instances (MIN..MAX) need placement = \"process\"",
        ));
    }
    let per_version = running.max;
    Ok(PluginConfig {
        exec: versions[0].exec.clone(),
        program: versions[0].program.clone(),
        args,
        env,
        cores: t.get(&key::CORES),
        placement,
        instances: per_version * versions.len(),
        per_version,
        running,
        spare_slot: false,
        scaling: ScaleRule {
            delay_target: Duration::from_micros(t.get(&key::SCALE_DELAY_TARGET_US)),
            up_window: ms(t.get(&key::SCALE_UP_WINDOW_MS)),
            down_window: ms(t.get(&key::SCALE_DOWN_WINDOW_MS)),
            cooldown: ms(t.get(&key::SCALE_COOLDOWN_MS)),
        },
        balance: t.get(&key::BALANCE),
        rollback: t.get(&key::ROLLBACK),
        versions,
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

/// The versions of plugin `name`: `versions`, or `exec` as the one
/// version "default"; exactly one of the two, names unique, some weight.
fn versions(
    name: &str,
    placement: Placement,
    t: &Store,
) -> Result<Vec<VersionConfig>, PluginConfigError> {
    let exec = t.get(&key::EXEC);
    let listed = t.get(&key::VERSIONS).0;
    let entries = match (exec.as_os_str().is_empty(), listed.is_empty()) {
        (false, true) => vec![VersionEntry {
            name: "default".into(),
            exec,
            weight: 100,
            args: Vec::new(),
            env: Default::default(),
        }],
        (true, false) => listed,
        (true, true) => return Err(invalid(name, "exec (or versions) is required")),
        (false, false) => return Err(invalid(name, "give exec or versions, not both")),
    };
    if entries.len() > 16 {
        return Err(invalid(name, "at most 16 versions"));
    }
    if entries.iter().all(|v| v.weight == 0) {
        return Err(invalid(name, "every version has weight 0"));
    }
    let mut out: Vec<VersionConfig> = Vec::with_capacity(entries.len());
    for v in entries {
        if out.iter().any(|o| o.name == v.name) {
            return Err(invalid(name, format!("version {:?} defined twice", v.name)));
        }
        let program = find_program(placement, &v.exec)
            .map_err(|reason| invalid(name, format!("version {}: {reason}", v.name)))?;
        out.push(VersionConfig {
            args: v.args,
            env: v.env.into_iter().collect(),
            program,
            exec: v.exec,
            weight: v.weight,
            name: v.name,
        });
    }
    Ok(out)
}

/// The plugins as the supervisor runs them: every version of a plugin
/// gets one slot more than it ever runs, so an upgrade can start the new
/// process (or inline module) beside the old one, version by version.
/// Inline too: the new module's thread serves its own rings while the old
/// one drains (inline/upgrade.rs). A pipeline stage's spare has its own
/// rings from every upstream pair, closed until it takes calls (`inputs.rs`).
pub fn with_spare_slots(plugins: &[PluginConfig]) -> Vec<PluginConfig> {
    plugins
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.spare_slot = true;
            c.per_version = c.running.max + 1;
            c.instances = c.per_version * c.versions.len();
            c
        })
        .collect()
}

impl PluginConfig {
    /// Slots of a version that run from the start.
    pub fn starts_running(&self, slot: usize) -> bool {
        !self.spare_slot || slot % self.per_version.max(1) < self.running.min
    }
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
        placement: Placement::Process,
        instances,
        per_version: instances,
        running: InstanceRange::fixed(instances),
        spare_slot: false,
        scaling: ScaleRule {
            delay_target: Duration::from_millis(2),
            up_window: Duration::from_secs(1),
            down_window: Duration::from_secs(10),
            cooldown: Duration::from_secs(2),
        },
        versions: vec![VersionConfig {
            name: "default".into(),
            exec: "/bin/sh".into(),
            program: "/bin/sh".into(),
            args: vec![],
            env: vec![],
            weight: 100,
        }],
        balance: Balance::Latency,
        rollback: None,
        max_inflight: 1,
        timeout: Duration::from_secs(1),
        backoff: Duration::from_secs(1),
        backoff_max: Duration::from_secs(1),
        max_attempts: 3,
        ring_capacity: 4096,
        stop_timeout: Duration::from_secs(1),
    }
}

/// `for_tests` in two versions of `instances` each, with their spare
/// slots (unit tests).
#[cfg(test)]
pub(crate) fn two_versions_for_tests(instances: usize) -> PluginConfig {
    let mut c = for_tests("echo", Cores::Unpinned, instances);
    let v2 = VersionConfig {
        name: "v2".into(),
        ..c.versions[0].clone()
    };
    c.versions.push(v2);
    with_spare_slots(&[c]).remove(0)
}

/// The file `exec` names for `placement`: an executable, or a module.
pub fn find_program(placement: Placement, exec: &Path) -> Result<PathBuf, String> {
    match placement {
        Placement::Process => find_executable(exec),
        Placement::Inline => find_module(exec),
    }
}

/// An inline plugin's module: a path to a file (dlopen's library search
/// is not used, so the server loads exactly the file named).
pub fn find_module(exec: &Path) -> Result<PathBuf, String> {
    if exec.as_os_str().is_empty() {
        return Err("exec is empty".into());
    }
    if exec.components().count() < 2 && !exec.is_absolute() {
        return Err(format!(
            "inline module {:?} must be a path (e.g. ./libecho.so)",
            exec.display().to_string()
        ));
    }
    match std::fs::metadata(exec) {
        Err(e) => Err(format!("inline module {} not found: {e}", exec.display())),
        Ok(m) if !m.is_file() => Err(format!("{} is not a file", exec.display())),
        Ok(_) => Ok(exec.to_path_buf()),
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
        let err = parse("[[plugin]]\nname = \"e\"\n").unwrap_err();
        assert!(err.contains("required"), "{err}");
        let both = "[[plugin]]\nname = \"e\"\nexec = \"sh\"\nversions = [{ name = \"a\", exec = \"sh\" }]\n";
        assert!(parse(both).unwrap_err().contains("not both"));
        let zero =
            "[[plugin]]\nname = \"e\"\nversions = [{ name = \"a\", exec = \"sh\", weight = 0 }]\n";
        assert!(parse(zero).unwrap_err().contains("weight 0"));
    }

    #[test]
    fn versions_each_run_the_instances() {
        let p = parse(
            "[[plugin]]\nname = \"e\"\ninstances = 2\nbalance = \"round-robin\"\n\
             rollback = { error_rate = 0.1, window_s = 5 }\n\
             versions = [{ name = \"v1\", exec = \"sh\", weight = 90 }, \
             { name = \"v2\", exec = \"/bin/sh\", weight = 10, env = { X = \"1\" } }]\n",
        )
        .unwrap();
        let p = &p[0];
        assert_eq!((p.instances, p.per_version, p.versions.len()), (4, 2, 2));
        assert_eq!((p.version_of(1), p.version_of(2)), (0, 1));
        assert_eq!(p.versions[1].env, vec![("X".to_string(), "1".to_string())]);
        assert_eq!(p.balance, Balance::RoundRobin);
        assert_eq!(p.rollback.unwrap().window_s, 5);
    }
}
