//! Read-through loading: a GET/MGET/GETEX miss of a key under a configured
//! `[[keyspace]]` prefix is loaded from the origin by a loader plugin
//! (`LoadRequest` → `LoadReply`), while the client is parked and its core
//! keeps serving others.
//!
//! * [`config`]: the `[[keyspace]]` tables; [`keyspace`]: longest-prefix
//!   match and the expiry of what is stored (TTL + jitter, stale window).
//! * [`flights`]: single-flight across threads, and invalidation marks.
//! * [`breaker`]: per loader, loads in flight and the circuit breaker.
//! * [`thread`]: one server thread's loads and waiting clients (results
//!   for waiters on other threads are mailed through `crate::wait`).
//! * [`wire`]: the loader protocol; [`store`]: cache writes and stale reads.
//!
//! The command side (GET/MGET/GETEX hooks, replies) is `command::loading`.

pub mod breaker;
pub mod config;
pub mod error;
pub mod flights;
pub mod keyspace;
pub mod stats;
pub mod store;
pub mod thread;
pub mod wire;

use std::sync::{Arc, OnceLock};

pub use config::{KeyspaceConfig, KeyspaceConfigError};
pub use error::LoadError;
pub use thread::{Loader, Remote, ThreadLoads};

use breaker::Breaker;
use flights::Flights;
use keyspace::{Keyspace, Keyspaces};
use stats::Stats;

/// A finished load as a waiting client sees it: the value, `None` (the
/// origin has no such key), or why there is none.
pub type LoadResult = Result<Option<Arc<[u8]>>, LoadError>;

/// One command's wait for its loads (per thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoadWaitId(pub u64);

/// One loader plugin's protection.
pub struct LoaderGuard {
    pub name: String,
    pub breaker: Breaker,
}

/// Process-wide read-through state.
pub struct ReadThrough {
    pub keyspaces: Keyspaces,
    pub breakers: Vec<LoaderGuard>,
    pub flights: Flights,
    pub stats: Stats,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("keyspace {0:?}: its loader plugin {1:?} is not running")]
    NoLoader(String, String),
}

impl ReadThrough {
    /// Binds each keyspace to its loader (`find`: plugin name → id).
    pub fn new(
        configs: &[KeyspaceConfig],
        find: impl Fn(&str) -> Option<crate::plugin::PluginId>,
    ) -> Result<ReadThrough, SetupError> {
        let mut breakers: Vec<LoaderGuard> = Vec::new();
        let mut plugins = Vec::new();
        let mut list = Vec::with_capacity(configs.len());
        for c in configs {
            let plugin = find(&c.loader).ok_or_else(|| {
                let prefix = String::from_utf8_lossy(&c.prefix).into_owned();
                SetupError::NoLoader(prefix, c.loader.clone())
            })?;
            let loader = match plugins.iter().position(|&p| p == plugin) {
                Some(i) => i,
                None => {
                    plugins.push(plugin);
                    breakers.push(LoaderGuard {
                        name: c.loader.clone(),
                        breaker: Breaker::new(
                            &c.loader,
                            c.breaker_failures,
                            c.breaker_open_ms,
                            c.max_loads,
                        ),
                    });
                    breakers.len() - 1
                }
            };
            list.push(Keyspace {
                config: c.clone(),
                plugin,
                loader,
            });
        }
        Ok(ReadThrough {
            keyspaces: Keyspaces::new(list),
            breakers,
            flights: Flights::default(),
            stats: Stats::default(),
        })
    }
}

/// The read-through hook in `ServerState`: empty until `main` installs it.
#[derive(Default)]
pub struct Hook {
    rt: OnceLock<Arc<ReadThrough>>,
}

impl Hook {
    pub fn install(&self, rt: ReadThrough) {
        if self.rt.set(Arc::new(rt)).is_err() {
            tracing::warn!("read-through installed twice; keeping the first");
        }
    }

    pub fn get(&self) -> Option<&Arc<ReadThrough>> {
        self.rt.get()
    }

    /// Server thread `thread`'s side.
    pub fn thread(&self, thread: usize) -> ThreadLoads {
        ThreadLoads::new(thread, self.rt.get().cloned())
    }
}
