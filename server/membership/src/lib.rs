//! Where a node learns who is in its cluster. Each source reports
//! [`MembershipEvent`]s on a channel: a [`MemberView`] whenever the set of
//! members changes, and `Isolated` when this node can no longer be sure
//! it still belongs (it must then stop answering for its slots).
//!
//! * [`etcd`]: every node holds a leased key `<prefix>members/<id>` and
//!   watches the others' keys; a node whose keep-alives stop fences itself
//!   before its lease can expire (see ARCHITECTURE.md, "Cluster
//!   membership").
//! * [`directory`]: the servers of one host, found through the discovery
//!   directory's records that carry a `cluster_id`.
//!
//! The static list lives with the slot map (`server/cluster`); nothing here
//! knows about slots.

pub mod directory;
pub mod etcd;
mod worker;

pub use citadel_proto::cluster::{Member, MemberView, MembershipEvent};
pub use directory::{DirectoryConfig, DirectoryMembership};
pub use etcd::{EtcdConfig, EtcdMembership, StartError};
