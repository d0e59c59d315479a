//! This server as a cluster node (`cluster-enabled yes`): who it is (its
//! announced address and id), its membership source, and the shared
//! cluster state (`citadel_cluster`) every thread routes keyed commands
//! by (`command/redirect.rs`). Off, none of this exists and no command
//! pays for it.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use citadel_cluster::{ClusterState, StaticEntry, StaticMembership};
use citadel_membership::{etcd, DirectoryConfig, DirectoryMembership, EtcdConfig, EtcdMembership};
use citadel_proto::cluster::Member;
use citadel_settings::cluster::{self as setting, Membership};
use citadel_settings::Store;

pub struct Node {
    pub state: Arc<ClusterState>,
    source: Source,
    /// `cluster-proxy yes`: forward other nodes' commands (`command/proxy.rs`).
    pub proxy: bool,
    /// Warm hand-off (`command/handoff.rs`): its window and counters.
    pub handoff: Handoff,
}

/// Warm hand-off's setting and what it did (INFO `cluster`).
#[derive(Debug, Default)]
pub struct Handoff {
    /// How long after a map change a moved slot's miss is read from its
    /// previous owner; None: `cluster-handoff no`.
    pub window: Option<Duration>,
    /// Misses answered with the previous owner's value.
    pub hits: AtomicU64,
    /// Misses the previous owner did not have either.
    pub misses: AtomicU64,
    /// Misses answered nil because the previous owner failed or timed out.
    pub errors: AtomicU64,
}

impl Handoff {
    fn from_settings(settings: &Store) -> Handoff {
        let on = settings.get(&setting::CLUSTER_HANDOFF).0;
        let window = Duration::from_millis(settings.get(&setting::CLUSTER_HANDOFF_MS));
        Handoff {
            window: on.then_some(window),
            ..Handoff::default()
        }
    }
}

/// Where this node's views come from.
enum Source {
    /// `cluster-nodes`, changed live by CONFIG SET, applied at once.
    Static(Mutex<StaticMembership>),
    /// Held for the node's life: dropping it leaves etcd (revokes the
    /// lease, so the others take the slots at once).
    Etcd { _source: EtcdMembership },
    /// The discovery directory's records with a `cluster_id`; this node's
    /// own record carries its id and weight (`directory_member`).
    Directory {
        _source: DirectoryMembership,
        me: Member,
    },
}

/// How often the discovery directory is listed (directory membership).
const DIRECTORY_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("cluster-membership etcd: {0}")]
    Etcd(#[from] citadel_membership::StartError),
    #[error("cluster-membership directory: {0}")]
    Directory(std::io::Error),
    #[error("cannot start the cluster membership thread: {0}")]
    Follow(std::io::Error),
    #[error(
        "cluster-announce: this node listens on {0}, which other nodes cannot reach; \
         set cluster-announce to the host:port they reach it at"
    )]
    Unannounceable(SocketAddr),
}

impl Node {
    /// The node the settings describe, its membership source started
    /// (static: its first view applied; etcd: registered, which may take
    /// up to a lease TTL); None when cluster mode is off. `resp` is the
    /// RESP listener's address, `rpc_port` the RPC front door's port.
    pub fn from_settings(
        settings: &Store,
        resp: SocketAddr,
        rpc_port: Option<u16>,
    ) -> Result<Option<Node>, NodeError> {
        if !settings.get(&setting::CLUSTER_ENABLED).0 {
            return Ok(None);
        }
        let announce = match settings.get(&setting::CLUSTER_ANNOUNCE) {
            Some(a) => a,
            None if resp.ip().is_unspecified() => return Err(NodeError::Unannounceable(resp)),
            None => resp.to_string(),
        };
        // The RPC door listens beside RESP: same host as announced.
        let host = announce.rsplit_once(':').map_or("", |(h, _)| h);
        let rpc = rpc_port.map(|p| format!("{host}:{p}"));
        let me = citadel_proto::cluster::Member::named(
            &announce,
            rpc,
            settings.get(&setting::CLUSTER_WEIGHT),
        );
        let state = ClusterState::new(&me);
        tracing::info!(id = %me.id, addr = %me.addr, "cluster mode");
        if settings.get(&setting::CLUSTER_MEMBERSHIP) == Membership::Static {
            let source = Source::Static(Mutex::new(StaticMembership::new(me)));
            let node = Node::new(settings, state, source);
            node.settings_changed(settings);
            return Ok(Some(node));
        }
        // The other sources report on a channel, applied by a thread.
        let (events, received) = crossbeam::channel::unbounded();
        citadel_cluster::follow(state.clone(), received).map_err(NodeError::Follow)?;
        let source = match settings.get(&setting::CLUSTER_MEMBERSHIP) {
            Membership::Etcd => {
                let config = EtcdConfig {
                    endpoints: etcd::split_list(&settings.get(&setting::CLUSTER_ETCD_ENDPOINTS)),
                    prefix: settings.get(&setting::CLUSTER_ETCD_PREFIX),
                    lease_ttl: Duration::from_millis(settings.get(&setting::CLUSTER_LEASE_TTL_MS)),
                    me,
                };
                Source::Etcd {
                    _source: EtcdMembership::start(config, events)?,
                }
            }
            // (Static returned above.)
            Membership::Directory | Membership::Static => {
                let dir = settings
                    .get(&citadel_settings::server::DISCOVERY_DIR)
                    .unwrap_or_else(citadel_proto::discovery::default_dir);
                let config = DirectoryConfig {
                    dir,
                    poll_interval: DIRECTORY_POLL,
                };
                let source =
                    DirectoryMembership::start(config, events).map_err(NodeError::Directory)?;
                Source::Directory {
                    _source: source,
                    me,
                }
            }
        };
        Ok(Some(Node::new(settings, state, source)))
    }

    fn new(settings: &Store, state: Arc<ClusterState>, source: Source) -> Node {
        Node {
            state,
            source,
            proxy: settings.get(&setting::CLUSTER_PROXY).0,
            handoff: Handoff::from_settings(settings),
        }
    }

    /// With directory membership, the id and weight this server's
    /// discovery record must carry to count as a member.
    pub fn directory_member(&self) -> Option<(String, u32)> {
        match &self.source {
            Source::Directory { me, .. } => Some((me.id.clone(), me.weight)),
            _ => None,
        }
    }

    /// Applies `cluster-nodes` if it changed (static membership; CONFIG
    /// SET calls this after any change, so it is a no-op for the others).
    pub fn settings_changed(&self, settings: &Store) {
        let Source::Static(statics) = &self.source else {
            return;
        };
        let entries: Vec<StaticEntry> = settings
            .get(&setting::CLUSTER_NODES)
            .0
            .into_iter()
            .map(|e| StaticEntry {
                addr: e.addr,
                rpc_port: e.rpc_port,
                weight: e.weight,
            })
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
