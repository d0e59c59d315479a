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

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{self, Sender};

use citadel_proto::cluster::{Member, MembershipEvent};

pub use client::{EtcdClient, EtcdError, KeyValue, Lease};
pub use endpoint::{split_list, Endpoint, EndpointError};
pub use fence::margin as fencing_margin;

use session::Session;

/// The default key prefix (setting `cluster-etcd-prefix`).
pub const DEFAULT_PREFIX: &str = "/citadel/";

/// Where and how this node registers.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs, `http://host:port` (see [`split_list`] for a
    /// comma-separated setting).
    pub endpoints: Vec<String>,
    /// Key prefix shared by the cluster's nodes, e.g. `/citadel/`.
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
    stop: Sender<()>,
    session: Option<JoinHandle<()>>,
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
        if config.lease_ttl.is_zero() {
            return Err(StartError::ZeroTtl);
        }
        let record = config.me.to_text();
        Member::parse(&record)?;
        let (stop, stop_rx) = channel::bounded(1);
        let mut session = Session::new(
            EtcdClient::new(endpoints),
            &config.prefix,
            &config.me.id,
            record,
            config.lease_ttl,
            events,
            stop_rx,
        );
        let registration = session.register()?;
        let thread = std::thread::Builder::new()
            .name("citadel-etcd".into())
            .spawn(move || session.run(registration))?;
        Ok(EtcdMembership {
            stop,
            session: Some(thread),
        })
    }

    /// Leaves the cluster (revokes the lease, so the others drop this node
    /// at once) and stops the threads.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(thread) = self.session.take() {
            // The session may have ended already (its consumer went away).
            let _ = self.stop.try_send(());
            if thread.join().is_err() {
                tracing::error!("the etcd membership thread panicked");
            }
        }
    }
}

impl Drop for EtcdMembership {
    fn drop(&mut self) {
        self.shut_down();
    }
}
