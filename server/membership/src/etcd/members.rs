//! The member keys under `<prefix>members/` as of one store revision, kept
//! up to date from the watch: one view per revision, so every node that
//! reached a revision holds the same members at it.

use std::collections::BTreeMap;

use citadel_proto::cluster::{Member, MemberView};

use super::client::{KeyValue, WatchEvent};

pub struct MemberSet {
    /// `<prefix>members/`: a key's id is what follows it.
    members_prefix: String,
    revision: u64,
    /// Valid records by key; a key whose value does not parse is absent.
    members: BTreeMap<Vec<u8>, Member>,
}

impl MemberSet {
    /// The members read by a range at `revision`.
    pub fn from_range(members_prefix: &str, revision: u64, kvs: Vec<KeyValue>) -> MemberSet {
        let mut set = MemberSet {
            members_prefix: members_prefix.to_string(),
            revision,
            members: BTreeMap::new(),
        };
        for kv in kvs {
            set.store(kv.key, Some(&kv.value));
        }
        set
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn view(&self) -> MemberView {
        MemberView::new(self.revision, self.members.values().cloned().collect())
    }

    /// Applies a watch batch (events in revision order, possibly several
    /// revisions) and returns the view after each revision it completes.
    /// Events at or below the current revision (a replay) are ignored.
    pub fn apply(&mut self, events: Vec<WatchEvent>) -> Vec<MemberView> {
        let mut views = Vec::new();
        let mut pending: Option<u64> = None;
        for event in events {
            if event.revision <= self.revision {
                continue;
            }
            if let Some(rev) = pending.filter(|&rev| rev != event.revision) {
                self.revision = rev;
                views.push(self.view());
            }
            pending = Some(event.revision);
            self.store(event.key, event.value.as_deref());
        }
        if let Some(rev) = pending {
            self.revision = rev;
            views.push(self.view());
        }
        views
    }

    fn store(&mut self, key: Vec<u8>, value: Option<&[u8]>) {
        match value.and_then(|v| self.parse(&key, v)) {
            Some(member) => self.members.insert(key, member),
            None => self.members.remove(&key),
        };
    }

    /// The member a record describes; a record that does not parse, or
    /// whose id is not its key's, is logged and skipped.
    fn parse(&self, key: &[u8], value: &[u8]) -> Option<Member> {
        let key_text = String::from_utf8_lossy(key);
        let key_id = key_text.strip_prefix(self.members_prefix.as_str());
        let parsed = std::str::from_utf8(value)
            .map_err(|_| "value is not UTF-8".to_string())
            .and_then(|text| Member::parse(text).map_err(|e| e.to_string()));
        match parsed {
            Ok(member) if key_id == Some(member.id.as_str()) => Some(member),
            Ok(member) => {
                tracing::warn!(key = %key_text, id = %member.id, "member record under another id's key skipped");
                None
            }
            Err(e) => {
                tracing::warn!(key = %key_text, "member record skipped: {e}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &str = "/c/members/";

    fn member(name: &str) -> Member {
        Member {
            id: Member::id_from_name(name),
            addr: format!("{name}:6379"),
            rpc: None,
            weight: 1,
        }
    }

    fn put(revision: u64, m: &Member) -> WatchEvent {
        WatchEvent {
            revision,
            key: format!("{PREFIX}{}", m.id).into_bytes(),
            value: Some(m.to_text().into_bytes()),
        }
    }

    fn delete(revision: u64, m: &Member) -> WatchEvent {
        WatchEvent {
            revision,
            key: format!("{PREFIX}{}", m.id).into_bytes(),
            value: None,
        }
    }

    #[test]
    fn one_view_per_revision_and_replays_ignored() {
        let (a, b, c) = (member("a"), member("b"), member("c"));
        let kv = KeyValue {
            key: format!("{PREFIX}{}", a.id).into_bytes(),
            value: a.to_text().into_bytes(),
        };
        let mut set = MemberSet::from_range(PREFIX, 5, vec![kv]);
        assert_eq!(set.view().members, vec![a.clone()]);
        // A batch over two revisions (a lease expiry deleting two keys in
        // one revision): two views.
        let views = set.apply(vec![
            put(5, &c),
            put(6, &b),
            put(6, &c),
            delete(7, &a),
            delete(7, &b),
        ]);
        assert_eq!(views.len(), 2);
        assert_eq!(
            views[0],
            MemberView::new(6, vec![a.clone(), b.clone(), c.clone()])
        );
        assert_eq!(views[1], MemberView::new(7, vec![c.clone()]));
        assert!(
            set.apply(vec![put(7, &a)]).is_empty(),
            "a replayed revision"
        );
        assert_eq!(set.revision(), 7);
    }

    #[test]
    fn garbage_and_misfiled_records_are_skipped() {
        let (a, b) = (member("a"), member("b"));
        let mut set = MemberSet::from_range(PREFIX, 1, Vec::new());
        let garbage = WatchEvent {
            revision: 2,
            key: format!("{PREFIX}zzz").into_bytes(),
            value: Some(b"\xff\xfe not a record".to_vec()),
        };
        let misfiled = WatchEvent {
            revision: 3,
            key: format!("{PREFIX}{}", a.id).into_bytes(),
            value: Some(b.to_text().into_bytes()),
        };
        let views = set.apply(vec![garbage, misfiled, put(4, &b)]);
        let sizes: Vec<usize> = views.iter().map(|v| v.members.len()).collect();
        assert_eq!(sizes, vec![0, 0, 1]);
        // A valid record overwritten by garbage is gone.
        let mut overwrite = put(5, &b);
        overwrite.value = Some(b"id=nope".to_vec());
        assert!(set.apply(vec![overwrite])[0].members.is_empty());
    }
}
