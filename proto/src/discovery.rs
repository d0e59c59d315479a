//! Registry-less discovery: each server writes one record file into a
//! shared directory (default `$XDG_RUNTIME_DIR/citadel`, else
//! `/run/citadel` for root, else `/tmp/citadel-<uid>`), atomically (write
//! to a temporary name, then rename), and removes it at a clean exit.
//! Clients list the directory (and watch it) to find the local servers; a
//! record whose process is gone (a crash) is dead.
//!
//! A record is `key=value` lines, one per field, unknown keys ignored (so
//! later versions can add fields):
//!
//! ```text
//! name=citadel-6379
//! pid=4242
//! version=0.1.0
//! tcp=127.0.0.1:6379
//! unix=/run/citadel/citadel.sock      (absent: none)
//! rpc=127.0.0.1:7379                   (the RPC TCP listener; absent: none)
//! rpc_unix=/run/citadel/rpc.sock       (absent: none)
//! shm=/run/citadel/shm.sock            (shared-memory handshake socket; absent: none)
//! started_at_ms=1764489600000
//! cluster_id=3f2a...                   (its cluster node id, 40 hex digits; absent: not a cluster member)
//! weight=2                             (its relative share of the slots; absent: 1)
//! ```
//!
//! The directory membership source (`citadel-membership`) makes the live
//! records that carry a `cluster_id` one cluster on one host.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One server, as its record file describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub pid: u32,
    pub version: String,
    /// `ip:port` of the RESP listener.
    pub tcp: String,
    /// Path of the Unix socket, if it serves one.
    pub unix: Option<String>,
    /// `ip:port` of the RPC listener, if any.
    pub rpc: Option<String>,
    /// Path of the RPC Unix socket, if any.
    pub rpc_unix: Option<String>,
    /// Path of the shared-memory transport's handshake socket, if any.
    pub shm: Option<String>,
    pub started_at_ms: u64,
    /// Its cluster node id (`citadel_proto::cluster::Member::id`), when it
    /// is a member of a cluster found through this directory.
    pub cluster_id: Option<String>,
    /// Its relative share of the slots, when it is a cluster member.
    pub weight: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("discovery record: missing {0}")]
    Missing(&'static str),
    #[error("discovery record: {key}={value:?} is not valid")]
    Invalid { key: &'static str, value: String },
}

impl Record {
    pub fn to_text(&self) -> String {
        let mut t = format!(
            "name={}\npid={}\nversion={}\ntcp={}\n",
            self.name, self.pid, self.version, self.tcp
        );
        let optional = [
            ("unix", &self.unix),
            ("rpc", &self.rpc),
            ("rpc_unix", &self.rpc_unix),
            ("shm", &self.shm),
        ];
        for (key, value) in optional {
            if let Some(v) = value {
                t.push_str(&format!("{key}={v}\n"));
            }
        }
        t.push_str(&format!("started_at_ms={}\n", self.started_at_ms));
        if let Some(id) = &self.cluster_id {
            t.push_str(&format!("cluster_id={id}\n"));
        }
        if let Some(weight) = self.weight {
            t.push_str(&format!("weight={weight}\n"));
        }
        t
    }

    pub fn parse(text: &str) -> Result<Record, RecordError> {
        let get = |key: &'static str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .map(str::to_string)
        };
        let need = |key: &'static str| get(key).ok_or(RecordError::Missing(key));
        let num = |key: &'static str| -> Result<u64, RecordError> {
            let v = need(key)?;
            v.parse()
                .map_err(|_| RecordError::Invalid { key, value: v })
        };
        Ok(Record {
            name: need("name")?,
            pid: u32::try_from(num("pid")?).map_err(|_| RecordError::Invalid {
                key: "pid",
                value: need("pid").unwrap_or_default(),
            })?,
            version: need("version")?,
            tcp: need("tcp")?,
            unix: get("unix"),
            rpc: get("rpc"),
            rpc_unix: get("rpc_unix"),
            shm: get("shm"),
            started_at_ms: num("started_at_ms")?,
            cluster_id: get("cluster_id"),
            weight: match get("weight") {
                None => None,
                Some(w) => Some(w.parse().map_err(|_| RecordError::Invalid {
                    key: "weight",
                    value: w,
                })?),
            },
        })
    }

    /// True while the process the record names runs (and is not a zombie).
    pub fn alive(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
    }

    /// The record's file in `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.server", self.name))
    }

    /// Writes the record into `dir` (created if missing) atomically: a
    /// reader sees the old file or the whole new one, never a part.
    pub fn publish(&self, dir: &Path) -> io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = self.path_in(dir);
        let tmp = dir.join(format!(".{}.{}.tmp", self.name, self.pid));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.to_text().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

/// The default discovery directory (see the module documentation).
pub fn default_dir() -> PathBuf {
    if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR") {
        return PathBuf::from(run).join("citadel");
    }
    let uid = crate::sys::effective_uid();
    if uid == 0 {
        PathBuf::from("/run/citadel")
    } else {
        std::env::temp_dir().join(format!("citadel-{uid}"))
    }
}

/// Every readable record in `dir` with whether its server is alive;
/// unreadable or malformed files are skipped.
pub fn list(dir: &Path) -> Vec<(Record, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(Record, bool)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".server"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| Record::parse(&t).ok())
        .map(|r| {
            let alive = r.alive();
            (r, alive)
        })
        .collect();
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, pid: u32) -> Record {
        Record {
            name: name.into(),
            pid,
            version: "0.1.0".into(),
            tcp: "127.0.0.1:6379".into(),
            unix: Some("/tmp/c.sock".into()),
            rpc: Some("127.0.0.1:7379".into()),
            rpc_unix: None,
            shm: Some("/tmp/s.sock".into()),
            started_at_ms: 1,
            cluster_id: None,
            weight: None,
        }
    }

    #[test]
    fn records_round_trip_and_tell_live_from_dead() {
        let dir = std::env::temp_dir().join(format!("citadel-disc-{}", std::process::id()));
        let me = record("me", std::process::id());
        assert_eq!(Record::parse(&me.to_text()).unwrap(), me);
        me.publish(&dir).unwrap();
        // A pid far above pid_max: no such process.
        record("gone", u32::MAX - 1).publish(&dir).unwrap();
        std::fs::write(dir.join("junk.server"), "name=x\n").unwrap();
        let found = list(&dir);
        assert_eq!(found.len(), 2, "the malformed file is skipped");
        assert_eq!((found[0].0.name.as_str(), found[0].1), ("gone", false));
        assert_eq!((found[1].0.name.as_str(), found[1].1), ("me", true));
        assert!(matches!(
            Record::parse("name=a\npid=x\nversion=1\ntcp=a\nstarted_at_ms=1"),
            Err(RecordError::Invalid { key: "pid", .. })
        ));
        let mut member = me.clone();
        member.cluster_id = Some("ab".repeat(20));
        member.weight = Some(3);
        assert_eq!(Record::parse(&member.to_text()).unwrap(), member);
        assert!(matches!(
            Record::parse(&member.to_text().replace("weight=3", "weight=x")),
            Err(RecordError::Invalid { key: "weight", .. })
        ));
        let mut no_unix = me.clone();
        no_unix.unix = None;
        assert_eq!(Record::parse(&no_unix.to_text()).unwrap().unix, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
