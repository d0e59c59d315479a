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

/// The static source: views from a list of `(address, weight)` entries,
/// numbered 1, 2, ... as the list changes.
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
    /// the list names the same members as the last one.
    pub fn view(&mut self, entries: &[(String, u32)]) -> Option<MembershipEvent> {
        let members: Vec<Member> = if entries.is_empty() {
            vec![self.me.clone()]
        } else {
            entries
                .iter()
                .map(|(addr, weight)| {
                    let mut m = Member::named(addr, None, *weight);
                    if m.id == self.me.id {
                        m.rpc = self.me.rpc.clone();
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[(&str, u32)]) -> Vec<(String, u32)> {
        list.iter().map(|(a, w)| (a.to_string(), *w)).collect()
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
        assert_eq!(source.view(&list), None);
        let Some(MembershipEvent::View(alone)) = source.view(&[]) else {
            panic!("a second view")
        };
        assert_eq!((alone.revision, alone.members), (2, vec![me]));
    }
}
