//! Citadel's cluster mode, below the server: which node owns each of Redis
//! Cluster's 16,384 slots, and the state every server thread consults on
//! each keyed command.
//!
//! * [`SlotMap`]: the owner of every slot for one membership view, by
//!   weighted rendezvous hashing (`hrw`): every node computes the same map
//!   from the same view, a join moves only the newcomer's slots
//!   (≈ weight/total of them) and a leave only the leaver's.
//!   [`SlotMap::moved_slots`] diffs two maps.
//! * [`ClusterState`], [`ThreadView`]: the topology in force (map, the map
//!   before it, this node's place, isolation), read by each thread with
//!   one atomic load per command and no lock.
//! * Membership: any source reporting
//!   [`MembershipEvent`](citadel_proto::cluster::MembershipEvent)s on a
//!   crossbeam channel ([`follow`]), or the static list
//!   ([`StaticMembership`], `cluster-nodes`).
//! * [`KeySlots`]: the one slot of a command's keys, or [`CrossSlot`].
//!
//! The key → slot function and the member record are
//! `citadel_proto::cluster`'s (shared with the membership sources and
//! cluster-aware tools).

mod hrw;
mod marks;
mod route;
mod slot_map;
mod source;
mod state;
mod topology;

pub use marks::{DrySources, WriteMarks};
pub use route::{CrossSlot, KeySlots};
pub use slot_map::{sample_member_names, SlotMap, SlotRange, SLOTS_PER_GROUP};
pub use source::{follow, StaticEntry, StaticMembership};
pub use state::{Applied, ClusterState, ThreadView};
pub use topology::{Route, Topology};
