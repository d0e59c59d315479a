//! The async cluster client (feature `tokio`): the same routing as the
//! blocking [`ClusterClient`](crate::ClusterClient), over one
//! [`AsyncClient`] per node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::batch::BatchRoute;
use super::slots::SlotMap;
use crate::asynch::{AsyncCallStream, AsyncClient};
use crate::command::{Command, Request};
use crate::error::{Error, Result};
use crate::methods::{typed_methods, with_options_methods, WithOptions};
use crate::options::{CallOptions, ClientOptions};
use crate::outcome::Outcome;

/// The async twin of [`ClusterClient`](crate::ClusterClient): a keyed
/// request goes to the node its slot was last seen on, a `Moved` answer
/// is remembered and followed once (a batch is split by node, as the
/// blocking client's); keyless requests and streams go to the seed.
/// Concurrent calls to one node are pipelined on its connection.
///
/// ```no_run
/// use citadel_client::AsyncClusterClient;
///
/// # async fn run() -> Result<(), citadel_client::Error> {
/// let cluster = AsyncClusterClient::connect(["127.0.0.1:8001", "127.0.0.1:8002"]).await?;
/// cluster.set("user:1", "ada").await?;
/// let (a, b) = tokio::join!(cluster.get("user:1"), cluster.incr("visits", 1));
/// assert_eq!(a?.as_deref(), Some(&b"ada"[..]));
/// let _ = b?;
/// # Ok(())
/// # }
/// ```
pub struct AsyncClusterClient {
    options: ClientOptions,
    slots: SlotMap,
    /// Each node's connection, by RPC address.
    nodes: Mutex<HashMap<String, Arc<AsyncClient>>>,
}

impl AsyncClusterClient {
    /// Connects to the first of `seeds` (RPC `host:port`s) that answers.
    pub async fn connect<S: Into<String>>(
        seeds: impl IntoIterator<Item = S>,
    ) -> Result<AsyncClusterClient> {
        Self::connect_with(seeds, ClientOptions::default()).await
    }

    /// As [`connect`](Self::connect), with these options for every node.
    pub async fn connect_with<S: Into<String>>(
        seeds: impl IntoIterator<Item = S>,
        options: ClientOptions,
    ) -> Result<AsyncClusterClient> {
        let mut last = Error::NoServer("no seed address given".into());
        for seed in seeds {
            let seed = seed.into();
            match AsyncClient::connect_with(seed.as_str(), options.clone()).await {
                Ok(client) => {
                    let nodes = HashMap::from([(seed.clone(), Arc::new(client))]);
                    return Ok(AsyncClusterClient {
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
    /// reopened if it failed. Two tasks opening the same node at once
    /// keep the first connection that lands.
    pub async fn node(&self, addr: &str) -> Result<Arc<AsyncClient>> {
        if let Some(client) = self.open_node(addr) {
            return Ok(client);
        }
        let client = Arc::new(AsyncClient::connect_with(addr, self.options.clone()).await?);
        let mut nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        let kept = nodes
            .entry(addr.to_string())
            .or_insert_with(|| Arc::clone(&client));
        if kept.is_closed() {
            *kept = client;
        }
        Ok(Arc::clone(kept))
    }

    fn open_node(&self, addr: &str) -> Option<Arc<AsyncClient>> {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner());
        nodes.get(addr).filter(|c| !c.is_closed()).cloned()
    }

    /// These per-call options instead of the client's defaults.
    pub fn with_options(&self, options: CallOptions) -> WithOptions<'_, AsyncClusterClient> {
        WithOptions {
            client: self,
            options,
        }
    }

    /// One attempt on the node at `addr`, run once more on a fresh
    /// connection after a transport failure if that is harmless.
    async fn attempt(
        &self,
        addr: &str,
        req: Request<'_, '_>,
        options: &CallOptions,
    ) -> Result<Outcome> {
        let first = self.node(addr).await?.exec_with(req, options).await;
        match first {
            Err(e) if e.is_transport() && req.is_idempotent() => {
                self.node(addr).await?.exec_with(req, options).await
            }
            done => done,
        }
    }

    pub(crate) async fn exec_with(
        &self,
        req: Request<'_, '_>,
        options: &CallOptions,
    ) -> Result<Outcome> {
        if let Request::Batch(ops) = req {
            let mut route = BatchRoute::new(&self.slots, ops);
            while let Some((addr, indices, follow, sub)) = route.next(ops) {
                let answer = self.attempt(&addr, Request::Batch(&sub), options).await;
                route.answered(&self.slots, indices, follow, answer)?;
            }
            return Ok(route.finish());
        }
        let owner = self.slots.owner_of(req.first_key());
        let first = self.attempt(&owner, req, options).await;
        match first.as_ref().err().and_then(|e| self.slots.redirect(e)) {
            Some(owner) => self.attempt(&owner, req, options).await,
            None => first,
        }
    }

    async fn exec(&self, req: Request<'_, '_>) -> Result<Outcome> {
        self.exec_with(req, &self.options.call).await
    }

    pub(crate) async fn stream_with(
        &self,
        command: &Command<'_>,
        options: &CallOptions,
    ) -> Result<AsyncCallStream> {
        let client = self.node(&self.slots.home).await?;
        client.stream_with(command, options).await
    }

    async fn stream(&self, command: &Command<'_>) -> Result<AsyncCallStream> {
        self.stream_with(command, &self.options.call).await
    }

    typed_methods!(AsyncCallStream; async; .await);
}

with_options_methods!(AsyncClusterClient, AsyncCallStream; async; .await);

impl std::fmt::Debug for AsyncClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes = self.nodes.lock().unwrap_or_else(|e| e.into_inner()).len();
        f.debug_struct("AsyncClusterClient")
            .field("home", &self.slots.home)
            .field("nodes", &nodes)
            .finish()
    }
}
