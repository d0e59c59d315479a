//! The cluster's shared vocabulary: Redis Cluster's key space (16,384
//! slots, CRC16 of the key or of its `{hash tag}`) and a member record,
//! which every node, the membership sources (static list, etcd, the
//! discovery directory) and cluster-aware tools (the loadgen) must agree
//! on byte for byte.

mod member;
mod slot;

pub use member::{Member, MemberError, MemberView, MembershipEvent};
pub use slot::{crc16, hash_tag, key_slot, SLOT_COUNT};
