//! A client for a Citadel cluster (`cluster-enabled yes`): requests go to
//! the node that owns their key's slot, learned from the servers' `Moved`
//! answers.

#[cfg(feature = "tokio")]
mod asynch;
mod batch;
mod slots;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[cfg(feature = "tokio")]
pub use asynch::AsyncClusterClient;
use batch::BatchRoute;
use slots::SlotMap;

use crate::client::Client;
use crate::command::{Command, Request};
use crate::error::{Error, Result};
use crate::methods::{typed_methods, with_options_methods, WithOptions};
use crate::options::{CallOptions, ClientOptions};
use crate::outcome::Outcome;
use crate::retry;
use crate::stream::CallStream;

/// One connection per cluster node, opened as needed. A keyed request is
/// sent to the node its slot was last seen on (at first: the seed it
/// connected to); a `Moved` answer names the owner's RPC address, which
/// is remembered for that slot and the request sent there once more (a
/// second `Moved` is returned: the cluster is changing). Keyless requests
/// (scan, stats, calls) go to the seed node. A batch is split by node (one
/// sub-batch each, answers merged in order), and its operations answered
/// `Moved` are sent once more to their new owner.
///
/// ```no_run
/// use citadel_client::ClusterClient;
///
/// let cluster = ClusterClient::connect(["127.0.0.1:8001", "127.0.0.1:8002"])?;
/// cluster.set("user:1", "ada")?;
/// assert_eq!(cluster.get("user:1")?.as_deref(), Some(&b"ada"[..]));
/// # Ok::<(), citadel_client::Error>(())
/// ```
pub struct ClusterClient {
    options: ClientOptions,
    slots: SlotMap,
    /// Each node's connection, by RPC address.
    nodes: Mutex<HashMap<String, Arc<Client>>>,
}

impl ClusterClient {
    /// Connects to the first of `seeds` (RPC `host:port`s) that answers.
    pub fn connect<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> Result<ClusterClient> {
        Self::connect_with(seeds, ClientOptions::default())
    }

    /// As [`connect`](Self::connect), with these options for every node.
    pub fn connect_with<S: Into<String>>(
        seeds: impl IntoIterator<Item = S>,
        options: ClientOptions,
    ) -> Result<ClusterClient> {
        let mut last = Error::NoServer("no seed address given".into());
        for seed in seeds {
            let seed = seed.into();
            match Client::connect_with(seed.as_str(), options.clone()) {
                Ok(client) => {
                    let nodes = HashMap::from([(seed.clone(), Arc::new(client))]);
                    return Ok(ClusterClient {
                        options,
                        slots: SlotMap::new(seed),
                        nodes: Mutex::new(nodes),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// `Moved` answers followed so far.
    pub fn redirects(&self) -> u64 {
        self.slots.redirects()
    }

    /// The connection to the node at `addr` (RPC `host:port`), opened, or
    /// reopened if it failed.
    pub fn node(&self, addr: &str) -> Result<Arc<Client>> {
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = nodes.get(addr).filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(Client::connect_with(addr, self.options.clone())?);
        nodes.insert(addr.to_string(), Arc::clone(&client));
        Ok(client)
    }

    /// These per-call options instead of the client's defaults.
    pub fn with_options(&self, options: CallOptions) -> WithOptions<'_, ClusterClient> {
        WithOptions {
            client: self,
            options,
        }
    }

    pub(crate) fn exec_with(&self, req: Request<'_, '_>, options: &CallOptions) -> Result<Outcome> {
        let attempt = |addr: &str, req: Request<'_, '_>| {
            retry::once(
                req.is_idempotent(),
                || self.node(addr)?.exec_with(req, options),
                || {},
            )
        };
        if let Request::Batch(ops) = req {
            let mut route = BatchRoute::new(&self.slots, ops);
            while let Some((addr, indices, follow, sub)) = route.next(ops) {
                let answer = attempt(&addr, Request::Batch(&sub));
                route.answered(&self.slots, indices, follow, answer)?;
            }
            return Ok(route.finish());
        }
        let first = attempt(&self.slots.owner_of(req.first_key()), req);
        match first.as_ref().err().and_then(|e| self.slots.redirect(e)) {
            Some(owner) => attempt(&owner, req),
            None => first,
        }
    }

    fn exec(&self, req: Request<'_, '_>) -> Result<Outcome> {
        self.exec_with(req, &self.options.call)
    }

    pub(crate) fn stream_with(
        &self,
        command: &Command<'_>,
        options: &CallOptions,
    ) -> Result<CallStream> {
        let client = self.node(&self.slots.home)?;
        Ok(client.stream_with(command, options)?.keeping(client))
    }

    fn stream(&self, command: &Command<'_>) -> Result<CallStream> {
        self.stream_with(command, &self.options.call)
    }

    typed_methods!(CallStream; ;);
}

with_options_methods!(ClusterClient, CallStream; ;);

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner()).len();
        f.debug_struct("ClusterClient")
            .field("home", &self.slots.home)
            .field("nodes", &nodes)
            .finish()
    }
}
