//! Membership sources. Any source (the static list here; etcd and the
//! discovery directory in `citadel-membership`) reports
//! [`MembershipEvent`]s; [`follow`] applies those that arrive on a channel
//! from a thread of its own, and [`StaticMembership`] turns the
//! `cluster-nodes` list into views the server applies directly (so that
//! CONFIG SET's reply means the new map is in force on this node).

use std::sync::Arc;
use std::thread::JoinHandle;

use citadel_proto::cluster::{Member, MemberView, MembershipEvent};
use crossbeam::channel::Receiver;

use crate::state::ClusterState;

/// Applies every event from `events` to `state` until the sender is
/// dropped (the source stopped). The thread is named `citadel-cluster`.
pub fn follow(
    state: Arc<ClusterState>,
    events: Receiver<MembershipEvent>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("citadel-cluster".into())
        .spawn(move || {
            for event in events {
                state.apply(event);
            }
            tracing::info!("membership source stopped; the last view stays in force");
        })
}

/// One member of a static list (`cluster-nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticEntry {
    /// `host:port` of its RESP listener.
    pub addr: String,
    /// Its RPC front door's port (same host), when the list says; else
    /// derived (see [`StaticMembership::view`]).
    pub rpc_port: Option<u16>,
    pub weight: u32,
}

impl StaticEntry {
    /// `addr` with weight 1 and no RPC port given.
    pub fn new(addr: impl Into<String>) -> StaticEntry {
        StaticEntry {
            addr: addr.into(),
            rpc_port: None,
            weight: 1,
        }
    }
}

/// The static source: views from a list of [`StaticEntry`]s, numbered 1,
/// 2, ... as the list changes.
pub struct StaticMembership {
    me: Member,
    revision: u64,
    last: Option<Vec<Member>>,
}

impl StaticMembership {
    /// The source of node `me` (its record: id, address, RPC address).
    pub fn new(me: Member) -> StaticMembership {
        StaticMembership {
            me,
            revision: 0,
            last: None,
        }
    }

    /// The view of `entries` (this node alone when empty), or None when
    /// the list names the same members as the last one. A member's RPC
    /// address is its host with the entry's RPC port or, without one, its
    /// RESP port plus this node's own RPC − RESP offset (nodes started
    /// alike: the default + 1000); none when this node has no RPC door.
    pub fn view(&mut self, entries: &[StaticEntry]) -> Option<MembershipEvent> {
        let members: Vec<Member> = if entries.is_empty() {
            vec![self.me.clone()]
        } else {
            entries
                .iter()
                .map(|e| {
                    let mut m = Member::named(&e.addr, None, e.weight);
                    m.rpc = if m.id == self.me.id {
                        self.me.rpc.clone()
                    } else {
                        self.rpc_of(e)
                    };
                    m
                })
                .collect()
        };
        let view = MemberView::new(self.revision + 1, members);
        if self.last.as_ref() == Some(&view.members) {
            return None;
        }
        self.revision += 1;
        self.last = Some(view.members.clone());
        Some(MembershipEvent::View(view))
    }
}

impl StaticMembership {
    fn rpc_of(&self, entry: &StaticEntry) -> Option<String> {
        let (host, port) = split_port(&entry.addr)?;
        let rpc_port = match entry.rpc_port {
            Some(p) => p,
            None => {
                let (_, my_port) = split_port(&self.me.addr)?;
                let (_, my_rpc) = split_port(self.me.rpc.as_deref()?)?;
                let offset = i32::from(my_rpc) - i32::from(my_port);
                u16::try_from(i32::from(port) + offset).ok()?
            }
        };
        Some(format!("{host}:{rpc_port}"))
    }
}

fn split_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[(&str, u32)]) -> Vec<StaticEntry> {
        list.iter()
            .map(|(a, w)| StaticEntry {
                weight: *w,
                ..StaticEntry::new(*a)
            })
            .collect()
    }

    #[test]
    fn views_are_numbered_and_repeats_skipped() {
        let me = Member::named("127.0.0.1:7001", Some("127.0.0.1:8001".into()), 1);
        let mut source = StaticMembership::new(me.clone());
        let list = entries(&[("127.0.0.1:7001", 1), ("127.0.0.1:7002", 2)]);
        let Some(MembershipEvent::View(view)) = source.view(&list) else {
            panic!("a first view")
        };
        assert_eq!(view.revision, 1);
        assert_eq!(view.members.len(), 2);
        let mine = view.members.iter().find(|m| m.id == me.id).unwrap();
        assert_eq!(mine.rpc.as_deref(), Some("127.0.0.1:8001"));
        // A peer's RPC port: this node's offset (+ 1000) unless given.
        let peer = view.members.iter().find(|m| m.id != me.id).unwrap();
        assert_eq!(peer.rpc.as_deref(), Some("127.0.0.1:8002"));
        let mut given = entries(&[("127.0.0.1:7001", 1), ("127.0.0.1:7002", 1)]);
        given[1].rpc_port = Some(9999);
        let Some(MembershipEvent::View(v)) = StaticMembership::new(me.clone()).view(&given) else {
            panic!("a view")
        };
        let peer = v.members.iter().find(|m| m.id != me.id).unwrap();
        assert_eq!(peer.rpc.as_deref(), Some("127.0.0.1:9999"));
        assert_eq!(source.view(&list), None);
        let Some(MembershipEvent::View(alone)) = source.view(&[]) else {
            panic!("a second view")
        };
        assert_eq!((alone.revision, alone.members), (2, vec![me]));
    }
}
