//! A fixed set of connections, each kept open by its own task: it connects,
//! prepares the load query, and after a failure or a lost connection tries
//! again with backoff. A load leases the least busy open connection
//! (tokio-postgres pipelines concurrent queries on one, up to
//! `pipeline_depth` each; past that, loads queue for a lease). While no
//! connection is open and the last attempt failed, loads fail at once with
//! that cause instead of waiting.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};
use tokio_postgres::{Client, Error as PgError, NoTls};

use crate::backoff::Backoff;
use crate::database::{ConnectError, Database};
use crate::error::{timed_out, LoadError};
use crate::query::LoadQuery;

/// An open connection, ready for loads.
#[derive(Debug)]
struct Conn {
    client: Client,
    query: LoadQuery,
    /// Loads leasing it now.
    busy: AtomicUsize,
}

/// One load's use of a connection; returned on drop.
struct Lease {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // ORDERING: a load-balancing count only.
        self.conn.busy.fetch_sub(1, Ordering::Relaxed);
        self.shared.freed.notify_one();
    }
}

/// How many connections are open, and why the latest attempt failed (None
/// after a success).
#[derive(Clone, Debug, Default)]
struct Health {
    open: usize,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    slots: Vec<Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
    depth: usize,
    health: watch::Sender<Health>,
    /// Rung when a lease is returned.
    freed: Notify,
}

/// What the pool's connections do.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// The load query.
    pub sql: String,
    pub size: usize,
    /// Most loads in flight on one connection.
    pub pipeline_depth: usize,
    pub reconnect_max: Duration,
    /// Server-side `statement_timeout` of every connection: stops a query
    /// whose client-side cancel did not get through.
    pub statement_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl Pool {
    /// Starts `options.size` connection tasks on the current tokio runtime.
    pub fn start(db: Database, options: PoolOptions) -> Self {
        let shared = Arc::new(Shared {
            slots: (0..options.size).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            depth: options.pipeline_depth.max(1),
            health: watch::Sender::new(Health::default()),
            freed: Notify::new(),
        });
        for slot in 0..options.size {
            let task = Keeper {
                shared: Arc::clone(&shared),
                slot,
                db: db.clone(),
                backoff: Backoff::new(options.reconnect_max),
                options: options.clone(),
            };
            tokio::spawn(task.run());
        }
        Self { shared }
    }

    /// Loads `key` within `budget` (waiting for a connection included).
    pub async fn load(&self, key: &[u8], budget: Duration) -> Result<Option<Vec<u8>>, LoadError> {
        let ms = budget.as_millis() as u64;
        let deadline = Instant::now() + budget;
        let lease = timeout_at(deadline, self.acquire())
            .await
            .map_err(|_| timed_out(ms))??;
        let conn = &lease.conn;
        match timeout_at(deadline, conn.query.run(&conn.client, key, ms)).await {
            Ok(result) => result,
            Err(_) => {
                // Stop the query on the server too (statement_timeout is the
                // backstop if the cancel request cannot get through).
                let token = conn.client.cancel_token();
                tokio::spawn(async move { token.cancel_query(NoTls).await });
                Err(timed_out(ms))
            }
        }
    }

    async fn acquire(&self) -> Result<Lease, LoadError> {
        let mut health = self.shared.health.subscribe();
        loop {
            // Registered before looking, so a lease returned in between is
            // not missed (notify_one keeps a permit for it).
            let freed = self.shared.freed.notified();
            let (lease, open) = self.pick();
            if let Some(lease) = lease {
                return Ok(lease);
            }
            if open == 0 {
                if let Some(why) = &health.borrow_and_update().last_error {
                    return Err(LoadError::Unavailable(why.clone()));
                }
            }
            // Every open connection is at its depth, or none is open yet
            // and the first attempts are under way.
            tokio::select! {
                _ = freed => {}
                changed = health.changed() => if changed.is_err() {
                    return Err(LoadError::Unavailable("the pool is shut down".into()));
                },
            }
        }
    }

    /// A lease on the least busy open connection below its depth (ties:
    /// round robin), and how many connections are open.
    fn pick(&self) -> (Option<Lease>, usize) {
        let slots = &self.shared.slots;
        // ORDERING: load-balancing hints only (a race may put one load too
        // many on a connection, which pipelines it).
        let start = self.shared.next.fetch_add(1, Ordering::Relaxed);
        let mut open = 0;
        let mut best: Option<(usize, Arc<Conn>)> = None;
        for i in 0..slots.len() {
            let Some(conn) = lock(&slots[(start + i) % slots.len()]).clone() else {
                continue;
            };
            open += 1;
            let busy = conn.busy.load(Ordering::Relaxed);
            if busy < self.shared.depth && best.as_ref().is_none_or(|(b, _)| busy < *b) {
                best = Some((busy, conn));
            }
        }
        let lease = best.map(|(_, conn)| {
            conn.busy.fetch_add(1, Ordering::Relaxed);
            Lease {
                conn,
                shared: Arc::clone(&self.shared),
            }
        });
        (lease, open)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The task that keeps one slot's connection open.
struct Keeper {
    shared: Arc<Shared>,
    slot: usize,
    db: Database,
    options: PoolOptions,
    backoff: Backoff,
}

impl Keeper {
    async fn run(mut self) {
        let mut failing = false;
        loop {
            match self.open().await {
                Ok((conn, io)) => {
                    self.backoff.reset();
                    failing = false;
                    tracing::info!(slot = self.slot, "connected to {}", self.db.target());
                    *lock(&self.shared.slots[self.slot]) = Some(Arc::new(conn));
                    self.shared.health.send_modify(|h| {
                        h.open += 1;
                        h.last_error = None;
                    });
                    let why = match io.await {
                        Ok(Ok(())) => "closed by the server".to_string(),
                        Ok(Err(e)) => crate::error::describe(&e),
                        Err(e) => format!("connection task failed: {e}"),
                    };
                    *lock(&self.shared.slots[self.slot]) = None;
                    tracing::warn!(slot = self.slot, "connection lost: {why}");
                    self.shared.health.send_modify(|h| {
                        h.open -= 1;
                        h.last_error = Some(format!("connection lost: {why}"));
                    });
                    // Reconnect at once; back off only if that fails.
                    continue;
                }
                Err(e) => {
                    let why = e.to_string();
                    if failing {
                        tracing::debug!(slot = self.slot, "connecting: {why}");
                    } else {
                        tracing::warn!(
                            slot = self.slot,
                            "connecting: {why}; retrying with backoff"
                        );
                    }
                    failing = true;
                    self.shared.health.send_modify(|h| h.last_error = Some(why));
                }
            }
            tokio::time::sleep(self.backoff.next_pause()).await;
        }
    }

    /// Connects, sets the statement timeout and prepares the query (each
    /// step within the connect timeout); returns the connection and its
    /// running I/O task.
    async fn open(&self) -> Result<(Conn, JoinHandle<Result<(), PgError>>), ConnectError> {
        let (client, io) = self.db.connect().await?;
        let io = tokio::spawn(io);
        let setup = async {
            let ms = self.options.statement_timeout.as_millis();
            client
                .batch_execute(&format!("SET statement_timeout = {ms}"))
                .await?;
            Ok::<_, ConnectError>(LoadQuery::prepare(&client, &self.options.sql).await?)
        };
        let limit = self.db.connect_timeout();
        let query = tokio::time::timeout(limit, setup)
            .await
            .map_err(|_| ConnectError::TimedOut(limit.as_millis() as u64))??;
        let busy = AtomicUsize::new(0);
        Ok((
            Conn {
                client,
                query,
                busy,
            },
            io,
        ))
    }
}
