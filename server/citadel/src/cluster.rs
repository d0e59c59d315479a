//! This server as a cluster node (`cluster-enabled yes`): who it is (its
//! announced address and id), its membership source, and the shared
//! cluster state (`citadel_cluster`) every thread routes keyed commands
//! by (`command/redirect.rs`). Off, none of this exists and no command
//! pays for it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use citadel_cluster::{ClusterState, StaticMembership};
use citadel_settings::cluster::{self as setting, Membership};
use citadel_settings::Store;

pub struct Node {
    pub state: Arc<ClusterState>,
    /// The static source (`cluster-nodes`, changed live by CONFIG SET);
    /// None with the other sources, which report on a channel.
    statics: Option<Mutex<StaticMembership>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeError {
    #[error("cluster-membership {0}: not built into this server yet")]
    SourceNotBuilt(&'static str),
    #[error("cluster-proxy yes: not built into this server yet (clients must follow -MOVED)")]
    ProxyNotBuilt,
    #[error(
        "cluster-announce: this node listens on {0}, which other nodes cannot reach; \
         set cluster-announce to the host:port they reach it at"
    )]
    Unannounceable(SocketAddr),
}

impl Node {
    /// The node the settings describe, its first view applied (static
    /// membership); None when cluster mode is off. `resp` is the RESP
    /// listener's address, `rpc_port` the RPC front door's port, if any.
    pub fn from_settings(
        settings: &Store,
        resp: SocketAddr,
        rpc_port: Option<u16>,
    ) -> Result<Option<Node>, NodeError> {
        if !settings.get(&setting::CLUSTER_ENABLED).0 {
            return Ok(None);
        }
        if settings.get(&setting::CLUSTER_PROXY).0 {
            return Err(NodeError::ProxyNotBuilt);
        }
        let announce = match settings.get(&setting::CLUSTER_ANNOUNCE) {
            Some(a) => a,
            None if resp.ip().is_unspecified() => return Err(NodeError::Unannounceable(resp)),
            None => resp.to_string(),
        };
        // The RPC door listens beside RESP: same host as announced.
        let host = announce.rsplit_once(':').map_or("", |(h, _)| h);
        let rpc = rpc_port.map(|p| format!("{host}:{p}"));
        let me = citadel_cluster::member(&announce, rpc, settings.get(&setting::CLUSTER_WEIGHT));
        let state = ClusterState::new(&me);
        tracing::info!(id = %me.id, addr = %me.addr, "cluster mode");
        match settings.get(&setting::CLUSTER_MEMBERSHIP) {
            Membership::Static => {
                let node = Node {
                    state,
                    statics: Some(Mutex::new(StaticMembership::new(me))),
                };
                node.settings_changed(settings);
                Ok(Some(node))
            }
            // The membership crate (etcd, discovery directory) delivers
            // its events on a channel: `citadel_cluster::follow(state, rx)`.
            Membership::Etcd => Err(NodeError::SourceNotBuilt("etcd")),
            Membership::Directory => Err(NodeError::SourceNotBuilt("directory")),
        }
    }

    /// Applies `cluster-nodes` if it changed (static membership; CONFIG
    /// SET calls this after any change, so it is a no-op for the others).
    pub fn settings_changed(&self, settings: &Store) {
        let Some(statics) = &self.statics else {
            return;
        };
        let entries: Vec<(String, u32)> = settings
            .get(&setting::CLUSTER_NODES)
            .0
            .into_iter()
            .map(|e| (e.addr, e.weight))
            .collect();
        let event = statics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .view(&entries);
        if let Some(event) = event {
            self.state.apply(event);
        }
    }
}
