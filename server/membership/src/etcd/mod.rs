//! Membership through etcd. Each node holds a lease and, attached to it,
//! the key `<prefix>members/<id>` whose value is its member record
//! (`Member::to_text`). It watches `<prefix>members/` and sends a
//! [`MemberView`](citadel_proto::cluster::MemberView) for every store
//! revision that changed it, so nodes at the same revision hold the same
//! view. A crashed node's key goes when its lease expires; a node that
//! stops cleanly revokes its lease, so its key goes at once.
//!
//! Fencing: a node whose keep-alives go unanswered sends
//! `MembershipEvent::Isolated` before anyone else can see its lease expire
//! (see `fence`), keeps trying, and once etcd answers registers with a new
//! lease and resumes sending views.
//!
//! etcd is spoken to through its JSON gateway (`/v3/...` over HTTP/1.1):
//! no gRPC stack, no async runtime, every call bounded by a deadline on a
//! plain socket. Two threads per node: the session (lease, views) and the
//! watch reader; the server's threads only read the event channel.

mod client;
mod endpoint;
mod fence;
mod http;
mod members;
mod session;
mod watch;

use std::time::Duration;

use crossbeam::channel::Sender;

use citadel_proto::cluster::{Member, MembershipEvent};

pub use client::{EtcdClient, EtcdError, KeyValue, Lease};
pub use endpoint::{split_list, Endpoint, EndpointError};
pub use fence::margin as fencing_margin;

use crate::worker::Worker;
use session::Session;

/// The default key prefix (setting `cluster-etcd-prefix`).
pub const DEFAULT_PREFIX: &str = "/citadel/";

/// Where and how this node registers.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs, `http://host:port` (see [`split_list`] for a
    /// comma-separated setting).
    pub endpoints: Vec<String>,
    /// Key prefix shared by the cluster's nodes, e.g. `/citadel/` (a `/`
    /// is added if it does not end with one).
    pub prefix: String,
    /// The lease TTL asked for (rounded up to whole seconds; etcd may raise
    /// it to its minimum). A node fences itself within it.
    pub lease_ttl: Duration,
    /// This node's record.
    pub me: Member,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("etcd key prefix must not be empty")]
    EmptyPrefix,
    #[error("etcd lease TTL must be at least 1 ms")]
    ZeroTtl,
    #[error("this node's member record is invalid: {0}")]
    Member(#[from] citadel_proto::cluster::MemberError),
    #[error("registering in etcd failed: {0}")]
    Register(#[from] EtcdError),
    #[error("cannot start the etcd membership thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A running etcd membership: this node is registered, and events flow to
/// the channel given to [`EtcdMembership::start`] until [`stop`](Self::stop)
/// (or drop), which leaves the cluster cleanly.
pub struct EtcdMembership {
    _worker: Worker,
}

impl EtcdMembership {
    /// Registers this node (blocking up to about one lease TTL), sends the
    /// first view, then keeps the membership current on its own threads.
    pub fn start(
        config: EtcdConfig,
        events: Sender<MembershipEvent>,
    ) -> Result<EtcdMembership, StartError> {
        let endpoints = endpoint::parse_all(&config.endpoints)?;
        if config.prefix.is_empty() {
            return Err(StartError::EmptyPrefix);
        }
        let mut prefix = config.prefix;
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        if config.lease_ttl.is_zero() {
            return Err(StartError::ZeroTtl);
        }
        let record = config.me.to_text();
        Member::parse(&record)?;
        let mut session = Session::new(
            EtcdClient::new(endpoints),
            &prefix,
            &config.me.id,
            record,
            config.lease_ttl,
            events,
        );
        let registration = session.register()?;
        let worker = Worker::spawn("citadel-etcd", move |stop| session.run(registration, stop))?;
        Ok(EtcdMembership { _worker: worker })
    }

    /// Leaves the cluster (revokes the lease, so the others drop this node
    /// at once) and stops the threads; dropping the handle does the same.
    pub fn stop(self) {
        // Dropping the worker signals the session and joins it.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EtcdConfig {
        // A port nothing listens on: connecting is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        EtcdConfig {
            endpoints: vec![format!("http://127.0.0.1:{port}")],
            prefix: DEFAULT_PREFIX.into(),
            lease_ttl: Duration::from_secs(1),
            me: Member {
                id: Member::id_from_name("me"),
                addr: "127.0.0.1:6379".into(),
                rpc: None,
                weight: 1,
            },
        }
    }

    fn start(config: EtcdConfig) -> StartError {
        let (tx, _rx) = crossbeam::channel::unbounded();
        EtcdMembership::start(config, tx)
            .err()
            .expect("start fails")
    }

    #[test]
    fn bad_settings_and_an_absent_etcd_are_typed_errors() {
        let mut c = config();
        c.endpoints = split_list("https://e:2379");
        assert!(matches!(
            start(c),
            StartError::Endpoint(EndpointError::Scheme(_))
        ));
        let mut c = config();
        c.endpoints.clear();
        assert!(matches!(
            start(c),
            StartError::Endpoint(EndpointError::None)
        ));
        let mut c = config();
        c.prefix.clear();
        assert!(matches!(start(c), StartError::EmptyPrefix));
        let mut c = config();
        c.lease_ttl = Duration::ZERO;
        assert!(matches!(start(c), StartError::ZeroTtl));
        let mut c = config();
        c.me.weight = 0;
        assert!(matches!(start(c), StartError::Member(_)));
        assert!(matches!(
            start(config()),
            StartError::Register(EtcdError::Unreachable { .. })
        ));
    }
}
