//! A cluster member as every membership source publishes it (one etcd
//! value, one discovery record, one `cluster-nodes` entry), and the view
//! of all members at one revision from which each node computes the same
//! slot map.
//!
//! A member record is `key=value` lines, unknown keys ignored (so later
//! versions can add fields), like the discovery record:
//!
//! ```text
//! id=3f2a...        (40 lowercase hex digits, like a Redis Cluster node id)
//! addr=10.0.0.5:6379 (the RESP listener clients are redirected to)
//! rpc=10.0.0.5:7379  (the RPC listener; absent: none)
//! weight=2           (relative share of the slots; absent: 1)
//! ```

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Member {
    /// 40 lowercase hex digits; stable for the node's life.
    pub id: String,
    /// `host:port` of the RESP listener (what `-MOVED` names).
    pub addr: String,
    /// `host:port` of the RPC listener, if it has one.
    pub rpc: Option<String>,
    /// Relative share of the slots (a bigger machine takes more); ≥ 1.
    pub weight: u32,
}

/// Every live member at one membership revision, sorted by id so that
/// all nodes holding the same revision hold the same view.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberView {
    /// The membership source's revision (etcd's store revision; a counter
    /// for the static and directory sources).
    pub revision: u64,
    pub members: Vec<Member>,
}

/// What a membership source (static list, etcd, discovery directory)
/// reports to its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent {
    /// The live members at a new revision: recompute the slot map.
    View(MemberView),
    /// This node lost its standing with the source (its lease expired or
    /// the source is unreachable for longer than the lease): it must stop
    /// answering for its slots until the next `View` that includes it, so
    /// no slot has two owners once the others have taken it over.
    Isolated { reason: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MemberError {
    #[error("member record: missing {0}")]
    Missing(&'static str),
    #[error("member record: {key}={value:?} is not valid")]
    Invalid { key: &'static str, value: String },
}

impl Member {
    /// A node id derived from a stable name (e.g. the announced address),
    /// so a restarted node keeps its id: 40 hex digits of three seeded
    /// FNV-1a passes (the id only has to be stable and well spread).
    pub fn id_from_name(name: &str) -> String {
        let mut id = String::with_capacity(40);
        for seed in 0u64..3 {
            let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for &b in name.as_bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            id.push_str(&format!("{h:016x}"));
        }
        id.truncate(40);
        id
    }

    /// The member record of a node named by its announced RESP address
    /// (`addr`), its id derived from it ([`Member::id_from_name`]).
    pub fn named(addr: &str, rpc: Option<String>, weight: u32) -> Member {
        Member {
            id: Member::id_from_name(addr),
            addr: addr.to_string(),
            rpc,
            weight: weight.max(1),
        }
    }

    pub fn to_text(&self) -> String {
        let mut t = format!("id={}\naddr={}\n", self.id, self.addr);
        if let Some(rpc) = &self.rpc {
            t.push_str(&format!("rpc={rpc}\n"));
        }
        t.push_str(&format!("weight={}\n", self.weight));
        t
    }

    pub fn parse(text: &str) -> Result<Member, MemberError> {
        let get = |key: &'static str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .map(|v| v.trim().to_string())
        };
        let id = get("id").ok_or(MemberError::Missing("id"))?;
        if id.len() != 40
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(MemberError::Invalid {
                key: "id",
                value: id,
            });
        }
        let addr = get("addr").ok_or(MemberError::Missing("addr"))?;
        if !is_host_port(&addr) {
            return Err(MemberError::Invalid {
                key: "addr",
                value: addr,
            });
        }
        let rpc = get("rpc");
        if let Some(r) = &rpc {
            if !is_host_port(r) {
                return Err(MemberError::Invalid {
                    key: "rpc",
                    value: r.clone(),
                });
            }
        }
        let weight = match get("weight") {
            None => 1,
            Some(w) => match w.parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(MemberError::Invalid {
                        key: "weight",
                        value: w,
                    })
                }
            },
        };
        Ok(Member {
            id,
            addr,
            rpc,
            weight,
        })
    }
}

fn is_host_port(s: &str) -> bool {
    match s.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

impl MemberView {
    /// A view of `members` at `revision`, sorted by id, duplicates (same
    /// id) dropped keeping the first.
    pub fn new(revision: u64, mut members: Vec<Member>) -> MemberView {
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members.dedup_by(|b, a| a.id == b.id);
        MemberView { revision, members }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Member {
        Member {
            id: Member::id_from_name("127.0.0.1:7001"),
            addr: "127.0.0.1:7001".into(),
            rpc: Some("127.0.0.1:8001".into()),
            weight: 2,
        }
    }

    #[test]
    fn a_record_round_trips() {
        let m = member();
        assert_eq!(Member::parse(&m.to_text()), Ok(m));
    }

    #[test]
    fn ids_are_stable_40_hex_digits_and_differ_by_name() {
        let a = Member::id_from_name("127.0.0.1:7001");
        assert_eq!(a.len(), 40);
        assert_eq!(a, Member::id_from_name("127.0.0.1:7001"));
        assert_ne!(a, Member::id_from_name("127.0.0.1:7002"));
    }

    #[test]
    fn bad_records_get_typed_errors() {
        let text = member().to_text();
        assert_eq!(
            Member::parse(&text.replace("weight=2", "weight=0")),
            Err(MemberError::Invalid {
                key: "weight",
                value: "0".into()
            })
        );
        assert!(matches!(
            Member::parse("addr=1.2.3.4:5\n"),
            Err(MemberError::Missing("id"))
        ));
        let no_port = text.replace("addr=127.0.0.1:7001", "addr=127.0.0.1");
        assert!(matches!(
            Member::parse(&no_port),
            Err(MemberError::Invalid { key: "addr", .. })
        ));
    }

    #[test]
    fn views_are_sorted_and_deduplicated() {
        let a = member();
        let mut b = member();
        b.id = "0".repeat(40);
        let view = MemberView::new(7, vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(view.members, vec![b, a]);
    }
}
