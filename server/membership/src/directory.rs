//! Membership of one host's servers through the discovery directory
//! (`citadel_proto::discovery`): every live record that carries a
//! `cluster_id` is a member. The directory is listed every poll interval;
//! a record whose process died stops counting at the next listing. A view
//! goes out at start and whenever the set of members changes, its revision
//! a counter local to this node (each node counts its own changes, so
//! revisions agree only while the nodes started together).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam::channel::{RecvTimeoutError, Sender};

use citadel_proto::cluster::{Member, MemberView, MembershipEvent};
use citadel_proto::discovery::{self, Record};

use crate::worker::Worker;

/// The default time between two listings of the directory.
pub const DEFAULT_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// The discovery directory (setting `discovery-dir`).
    pub dir: PathBuf,
    pub poll_interval: Duration,
}

/// A running directory membership; [`stop`](Self::stop) (or drop) ends it.
pub struct DirectoryMembership {
    _worker: Worker,
}

impl DirectoryMembership {
    /// Sends the first view (listed before this returns) and keeps
    /// listing on its own thread.
    pub fn start(
        config: DirectoryConfig,
        events: Sender<MembershipEvent>,
    ) -> std::io::Result<DirectoryMembership> {
        let mut current = MemberView::new(1, members_in(&config.dir));
        // Nobody listening already: the thread would end at once anyway.
        let _ = events.send(MembershipEvent::View(current.clone()));
        let worker = Worker::spawn("citadel-dir-members", move |stop| loop {
            // Told to stop, or the handle is gone.
            if stop.recv_timeout(config.poll_interval) != Err(RecvTimeoutError::Timeout) {
                return;
            }
            let members = MemberView::new(current.revision + 1, members_in(&config.dir));
            if members.members != current.members {
                current = members;
                tracing::info!(
                    revision = current.revision,
                    members = current.members.len(),
                    "directory membership changed"
                );
                if events.send(MembershipEvent::View(current.clone())).is_err() {
                    return;
                }
            }
        })?;
        Ok(DirectoryMembership { _worker: worker })
    }

    /// Stops listing (also done on drop).
    pub fn stop(self) {
        // Dropping the worker signals the thread and joins it.
    }
}

/// The members among `dir`'s live records; a record whose member fields
/// are invalid is logged and skipped.
pub fn members_in(dir: &Path) -> Vec<Member> {
    discovery::list(dir)
        .into_iter()
        .filter(|(_, alive)| *alive)
        .filter_map(|(record, _)| member_of(&record))
        .collect()
}

fn member_of(record: &Record) -> Option<Member> {
    let member = Member {
        id: record.cluster_id.clone()?,
        addr: record.tcp.clone(),
        rpc: record.rpc.clone(),
        weight: record.weight.unwrap_or(1),
    };
    // The member record's own checks (id form, host:port, weight ≥ 1).
    match Member::parse(&member.to_text()) {
        Ok(member) => Some(member),
        Err(e) => {
            tracing::warn!(server = %record.name, "discovery record is not a valid member: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam::channel;

    fn record(name: &str, pid: u32, cluster_id: Option<String>) -> Record {
        Record {
            name: name.into(),
            pid,
            version: "0.1.0".into(),
            tcp: format!("127.0.0.1:{}", 7000 + name.len()),
            unix: None,
            rpc: None,
            rpc_unix: None,
            shm: None,
            started_at_ms: 1,
            cluster_id,
            weight: Some(2),
        }
    }

    #[test]
    fn live_cluster_records_are_members_and_changes_send_views() {
        let dir = std::env::temp_dir().join(format!("citadel-dir-members-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let me = std::process::id();
        let a = record("a", me, Some(Member::id_from_name("a")));
        a.publish(&dir).unwrap();
        record("plain", me, None).publish(&dir).unwrap();
        record("dead", u32::MAX - 1, Some(Member::id_from_name("dead")))
            .publish(&dir)
            .unwrap();
        record("bad", me, Some("not-hex".into()))
            .publish(&dir)
            .unwrap();

        let (tx, rx) = channel::unbounded();
        let config = DirectoryConfig {
            dir: dir.clone(),
            poll_interval: Duration::from_millis(10),
        };
        let source = DirectoryMembership::start(config, tx).unwrap();
        let MembershipEvent::View(first) = rx.recv().unwrap() else {
            panic!("a view first")
        };
        assert_eq!(first.revision, 1);
        let ids: Vec<&str> = first.members.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, vec![a.cluster_id.as_deref().unwrap()]);
        assert_eq!(first.members[0].weight, 2);

        let b = record("bb", me, Some(Member::id_from_name("bb")));
        b.publish(&dir).unwrap();
        let MembershipEvent::View(second) = rx.recv().unwrap() else {
            panic!("a view")
        };
        assert_eq!((second.revision, second.members.len()), (2, 2));
        std::fs::remove_file(b.path_in(&dir)).unwrap();
        let MembershipEvent::View(third) = rx.recv().unwrap() else {
            panic!("a view")
        };
        assert_eq!(third, MemberView::new(3, first.members.clone()));
        source.stop();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
