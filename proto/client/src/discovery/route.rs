//! Choosing and switching the route of a [`Discovered`](super::Discovered)
//! client: the local server's best transport while its record is there
//! and its process alive, else the remote fallback.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use citadel_proto::discovery::Record;

use super::{DiscoveryConfig, TransportStats};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::options::CallOptions;
use crate::transport::Endpoint;

struct Route {
    client: Arc<Client>,
    local: bool,
}

pub(super) struct Router {
    config: DiscoveryConfig,
    current: Mutex<Option<Route>>,
    /// Held while choosing and connecting a route: one switch at a time,
    /// while calls go on over the current route.
    switching: Mutex<()>,
    fallbacks: AtomicU64,
    switch_backs: AtomicU64,
    retries: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fastest transport a record offers: shared memory, then the Unix
/// socket, then TCP.
fn preferred_endpoint(record: &Record) -> Option<Endpoint> {
    let shm = record.shm.as_deref().map(Endpoint::shm);
    let unix = || record.rpc_unix.as_deref().map(Endpoint::unix);
    shm.or_else(unix)
        .or_else(|| record.rpc.as_deref().map(Endpoint::tcp))
}

impl Router {
    pub(super) fn new(config: DiscoveryConfig) -> Self {
        Self {
            config,
            current: Mutex::new(None),
            switching: Mutex::new(()),
            fallbacks: AtomicU64::new(0),
            switch_backs: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    pub(super) fn call_options(&self) -> CallOptions {
        self.config.options.call
    }

    pub(super) fn count_retry(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// The endpoint of the live local server with our name, if any.
    fn local_endpoint(&self) -> Option<Endpoint> {
        let path = self.config.dir.join(format!("{}.server", self.config.name));
        let record = Record::parse(&std::fs::read_to_string(path).ok()?).ok()?;
        if !record.alive() {
            return None;
        }
        preferred_endpoint(&record)
    }

    /// The current connection, or a new route if it has failed.
    pub(super) fn client(&self) -> Result<Arc<Client>> {
        if let Some(route) = lock(&self.current).as_ref() {
            if !route.client.is_closed() {
                return Ok(Arc::clone(&route.client));
            }
        }
        self.reroute()
    }

    /// Connects to the best route now unless it is the one in use:
    /// the local server if it is alive, else the fallback.
    pub(super) fn reroute(&self) -> Result<Arc<Client>> {
        let _one = lock(&self.switching);
        let local = self.local_endpoint();
        if let Some(route) = lock(&self.current).as_ref() {
            let on_local = route.local && local.as_ref() == Some(route.client.endpoint());
            let on_fallback = !route.local && local.is_none();
            if !route.client.is_closed() && (on_local || on_fallback) {
                return Ok(Arc::clone(&route.client));
            }
        }
        let candidates = local
            .map(|e| (e, true))
            .into_iter()
            .chain(self.config.fallback.clone().map(|e| (e, false)));
        let mut failure = None;
        for (endpoint, is_local) in candidates {
            match Client::connect_with(endpoint, self.config.options.clone()) {
                Ok(client) => return Ok(self.install(client, is_local)),
                Err(e) => failure = Some(e),
            }
        }
        Err(failure.unwrap_or_else(|| {
            Error::NoServer(format!(
                "no live {:?} in {} and no fallback",
                self.config.name,
                self.config.dir.display()
            ))
        }))
    }

    fn install(&self, client: Client, local: bool) -> Arc<Client> {
        let client = Arc::new(client);
        let route = Route {
            client: Arc::clone(&client),
            local,
        };
        let mut current = lock(&self.current);
        // Counted under the lock, so that `stats` sees route and counts agree.
        match (current.as_ref().map(|r| r.local), local) {
            (Some(true), false) => self.fallbacks.fetch_add(1, Ordering::Relaxed),
            (Some(false), true) => self.switch_backs.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        // The old connection closes once the calls still using it finish.
        let previous = current.replace(route);
        drop(current);
        drop(previous);
        client
    }

    pub(super) fn stats(&self) -> TransportStats {
        let current = lock(&self.current);
        TransportStats {
            endpoint: current.as_ref().map(|r| r.client.endpoint().clone()),
            local: current.as_ref().is_some_and(|r| r.local),
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            switch_backs: self.switch_backs.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_memory_then_the_unix_socket_then_tcp() {
        let mut record = Record {
            name: "x".into(),
            pid: 1,
            version: "0".into(),
            tcp: "127.0.0.1:1".into(),
            unix: None,
            rpc: Some("127.0.0.1:2".into()),
            rpc_unix: Some("/r.sock".into()),
            shm: Some("/s.sock".into()),
            started_at_ms: 1,
            cluster_id: None,
            weight: None,
        };
        assert_eq!(preferred_endpoint(&record), Some(Endpoint::shm("/s.sock")));
        record.shm = None;
        assert_eq!(preferred_endpoint(&record), Some(Endpoint::unix("/r.sock")));
        record.rpc_unix = None;
        assert_eq!(
            preferred_endpoint(&record),
            Some(Endpoint::tcp("127.0.0.1:2"))
        );
        record.rpc = None;
        assert_eq!(preferred_endpoint(&record), None);
    }
}
