//! A client that finds its server in the discovery directory, prefers
//! the fastest local transport and falls back to a remote address.

mod route;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::command::{Command, Request};
use crate::error::Result;
use crate::methods::{typed_methods, with_options_methods, WithOptions};
use crate::options::{CallOptions, ClientOptions};
use crate::outcome::Outcome;
use crate::retry;
use crate::stream::CallStream;
use crate::transport::Endpoint;

use route::Router;
use watch::{DirWatch, Wait, Waker};

/// Where to look for a server and what to do without it.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// The discovery directory (default:
    /// `citadel_proto::discovery::default_dir()`).
    pub dir: PathBuf,
    /// The server's name: its record is `<dir>/<name>.server`.
    pub name: String,
    /// Where to go when no live local server has the name.
    pub fallback: Option<Endpoint>,
    /// Options of every connection opened.
    pub options: ClientOptions,
    /// How often the local server's pid is checked when the directory is
    /// quiet (a killed server leaves its record behind).
    pub recheck: Duration,
}

impl DiscoveryConfig {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            dir: citadel_proto::discovery::default_dir(),
            name: name.into(),
            fallback: None,
            options: ClientOptions::default(),
            recheck: Duration::from_millis(500),
        }
    }

    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    pub fn fallback(mut self, remote: impl Into<Endpoint>) -> Self {
        self.fallback = Some(remote.into());
        self
    }

    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    pub fn recheck(mut self, every: Duration) -> Self {
        self.recheck = every;
        self
    }
}

/// Which transport a [`Discovered`] client uses, and how often it changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// The endpoint in use (`None` before the first connection).
    pub endpoint: Option<Endpoint>,
    /// True while on the local server (not the remote fallback).
    pub local: bool,
    /// Switches from the local server to the remote fallback.
    pub fallbacks: u64,
    /// Switches from the remote fallback back to a local server.
    pub switch_backs: u64,
    /// Idempotent calls run again after a transport failure.
    pub retries: u64,
}

/// A client of the server named in a [`DiscoveryConfig`]: it reads the
/// server's discovery record, connects with the fastest transport the
/// record offers (shared memory `shm=`, else the Unix socket `rpc_unix=`,
/// else TCP `rpc=`), and watches the directory
/// (inotify): when the record goes away or its process dies, it falls
/// back to the remote address, and it switches back when the record
/// returns. A call that fails with its connection is retried once on the
/// new route if it is idempotent ([`Command::is_idempotent`]).
///
/// ```no_run
/// use citadel_client::{Discovered, DiscoveryConfig};
///
/// let client = Discovered::connect(
///     DiscoveryConfig::new("citadel-6379").fallback("cache.internal:7379"),
/// )?;
/// client.set("k", "v")?;
/// let stats = client.transport_stats();
/// println!("on {:?}, {} fallbacks", stats.endpoint, stats.fallbacks);
/// # Ok::<(), citadel_client::Error>(())
/// ```
pub struct Discovered {
    router: Arc<Router>,
    watcher: Option<(JoinHandle<()>, Waker)>,
}

impl Discovered {
    /// Connects to the best route now and starts watching the directory.
    pub fn connect(config: DiscoveryConfig) -> Result<Discovered> {
        let recheck = config.recheck;
        let (mut watch, waker) = DirWatch::new(&config.dir)?;
        let router = Arc::new(Router::new(config));
        router.reroute()?;
        let watched = Arc::clone(&router);
        let thread = std::thread::Builder::new()
            .name("citadel-discovery".into())
            .spawn(move || {
                while watch.wait(recheck) != Wait::Stopped {
                    // A failure leaves the current route; the next round
                    // (or the next call) tries again.
                    let _ = watched.reroute();
                }
            })?;
        Ok(Discovered {
            router,
            watcher: Some((thread, waker)),
        })
    }

    pub fn transport_stats(&self) -> TransportStats {
        self.router.stats()
    }

    /// These per-call options instead of the configured defaults.
    pub fn with_options(&self, options: CallOptions) -> WithOptions<'_, Discovered> {
        WithOptions {
            client: self,
            options,
        }
    }

    pub(crate) fn exec_with(&self, req: Request<'_, '_>, options: &CallOptions) -> Result<Outcome> {
        retry::once(
            req.is_idempotent(),
            || self.router.client()?.exec_with(req, options),
            || self.router.count_retry(),
        )
    }

    fn exec(&self, req: Request<'_, '_>) -> Result<Outcome> {
        self.exec_with(req, &self.router.call_options())
    }

    pub(crate) fn stream_with(
        &self,
        command: &Command<'_>,
        options: &CallOptions,
    ) -> Result<CallStream> {
        let client = self.router.client()?;
        Ok(client.stream_with(command, options)?.keeping(client))
    }

    fn stream(&self, command: &Command<'_>) -> Result<CallStream> {
        self.stream_with(command, &self.router.call_options())
    }

    typed_methods!(CallStream; ;);
}

with_options_methods!(Discovered, CallStream; ;);

impl Drop for Discovered {
    fn drop(&mut self) {
        if let Some((thread, waker)) = self.watcher.take() {
            waker.wake();
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Discovered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovered")
            .field("stats", &self.transport_stats())
            .finish()
    }
}
