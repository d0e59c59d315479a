//! A fixed number of connections to one server, used in turn.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::client::Client;
use crate::command::{Command, Request};
use crate::error::Result;
use crate::methods::{typed_methods, with_options_methods, WithOptions};
use crate::options::{CallOptions, ClientOptions};
use crate::outcome::Outcome;
use crate::retry;
use crate::stream::CallStream;
use crate::transport::Endpoint;

/// N connections to one server, used round-robin. A connection that has
/// failed is replaced on its next turn, and an idempotent call that failed
/// with its connection is retried once on the next one.
///
/// ```no_run
/// use citadel_client::Pool;
///
/// let pool = Pool::connect("127.0.0.1:7379", 4)?;
/// pool.set("k", "v")?;
/// assert_eq!(pool.get("k")?.as_deref(), Some(&b"v"[..]));
/// # Ok::<(), citadel_client::Error>(())
/// ```
pub struct Pool {
    endpoint: Endpoint,
    options: ClientOptions,
    slots: Vec<Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
    reconnects: AtomicU64,
    retries: AtomicU64,
}

impl Pool {
    /// Opens `size` connections (at least one) with default options.
    pub fn connect(endpoint: impl Into<Endpoint>, size: usize) -> Result<Pool> {
        Self::connect_with(endpoint, size, ClientOptions::default())
    }

    /// Opens `size` connections (at least one), failing if any cannot be.
    pub fn connect_with(
        endpoint: impl Into<Endpoint>,
        size: usize,
        options: ClientOptions,
    ) -> Result<Pool> {
        let endpoint = endpoint.into();
        let slots = (0..size.max(1))
            .map(|_| Client::connect_with(endpoint.clone(), options.clone()))
            .map(|c| c.map(|c| Mutex::new(Some(Arc::new(c)))))
            .collect::<Result<_>>()?;
        Ok(Pool {
            endpoint,
            options,
            slots,
            next: AtomicUsize::new(0),
            reconnects: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        })
    }

    pub fn size(&self) -> usize {
        self.slots.len()
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Connections replaced after a failure so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Calls retried after a transport failure so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// The next connection in turn, reconnected first if it has failed
    /// (for pipelining with [`Client::send`]).
    pub fn client(&self) -> Result<Arc<Client>> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut slot = self.slots[turn].lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        // Connecting under the slot's lock: its other users would only
        // race to open the same connection.
        *slot = None;
        let client = Arc::new(Client::connect_with(
            self.endpoint.clone(),
            self.options.clone(),
        )?);
        self.reconnects.fetch_add(1, Ordering::Relaxed);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// These per-call options instead of the pool's defaults.
    pub fn with_options(&self, options: CallOptions) -> WithOptions<'_, Pool> {
        WithOptions {
            client: self,
            options,
        }
    }

    pub(crate) fn exec_with(&self, req: Request<'_, '_>, options: &CallOptions) -> Result<Outcome> {
        retry::once(
            req.is_idempotent(),
            || self.client()?.exec_with(req, options),
            || {
                self.retries.fetch_add(1, Ordering::Relaxed);
            },
        )
    }

    fn exec(&self, req: Request<'_, '_>) -> Result<Outcome> {
        self.exec_with(req, &self.options.call)
    }

    pub(crate) fn stream_with(
        &self,
        command: &Command<'_>,
        options: &CallOptions,
    ) -> Result<CallStream> {
        let client = self.client()?;
        Ok(client.stream_with(command, options)?.keeping(client))
    }

    fn stream(&self, command: &Command<'_>) -> Result<CallStream> {
        self.stream_with(command, &self.options.call)
    }

    typed_methods!(CallStream; ;);
}

with_options_methods!(Pool, CallStream; ;);

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("endpoint", &self.endpoint)
            .field("size", &self.slots.len())
            .finish()
    }
}
