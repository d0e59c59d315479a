//! Outbound MIGRATE's network side: a server thread dumps the keys,
//! submits a [`Job`] (the RESTORE commands, ready to send) and parks its
//! client; the job runs on a worker thread off the server cores, which
//! writes it to the target and reads the replies, then mails the
//! [`Done`] to the submitting thread's inbox (`deliver`), whose
//! continuation (`command/migrate.rs`) deletes the keys restored there.
//!
//! One worker per target `host:port` holds that target's cached
//! connection (Redis's migrate socket cache): jobs for one target run in
//! order on it, jobs for different targets in parallel. A worker idle for
//! [`IDLE`] closes its connection and ends (Redis's 10 s
//! MIGRATE_SOCKET_CACHE_TTL); at most [`MAX_CACHED`] targets keep one at
//! a time (a job beyond runs on a worker of its own that keeps nothing).
//! The target is any Redis: it is not greeted (no HELLO, no CLUSTER
//! NOPROXY, no cluster password), only sent the AUTH the client gave.

mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam::channel::Sender;

/// A cached connection is closed after this long unused.
pub const IDLE: Duration = Duration::from_secs(10);
/// At most this many targets keep a connection (Redis's limit).
pub const MAX_CACHED: usize = 64;

/// A MIGRATE this thread waits for (numbered per server thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MigrateId(pub u64);

/// The credentials MIGRATE's AUTH / AUTH2 options name, sent first on
/// every MIGRATE (as Redis does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub user: Option<Vec<u8>>,
    pub password: Vec<u8>,
}

/// One MIGRATE, ready to send.
#[derive(Debug)]
pub struct Job {
    /// The server thread of the waiting client.
    pub thread: usize,
    pub id: MigrateId,
    pub host: String,
    pub port: String,
    /// The target's database (SELECTed unless the connection's is it).
    pub db: i64,
    /// Bounds the connect, each write and each reply (Redis's timeout).
    pub timeout: Duration,
    pub auth: Option<Auth>,
    /// One RESTORE command per key, in the keys' order.
    pub restores: Vec<u8>,
    /// How many RESTORE commands `restores` holds.
    pub keys: usize,
}

/// What became of a job: which keys the target restored, and MIGRATE's
/// reply.
#[derive(Debug)]
pub struct Done {
    pub thread: usize,
    pub id: MigrateId,
    pub outcome: MigrateOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateOutcome {
    /// Per key of the job: the target answered its RESTORE with OK (such
    /// keys are deleted here unless COPY, even when another key failed).
    pub restored: Vec<bool>,
    /// Ok: MIGRATE answers +OK.
    pub result: Result<(), MigrateError>,
}

/// Why a MIGRATE failed, displayed as Redis 7.0 replies it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigrateError {
    /// The target's address did not resolve, or connecting timed out.
    #[error("IOERR error or timeout connecting to the client")]
    Connect,
    /// Writing failed or timed out (a refused connection too: Redis
    /// connects without blocking and learns of the refusal by writing).
    #[error("IOERR error or timeout writing to target instance")]
    Write,
    #[error("IOERR error or timeout reading to target instance")]
    Read,
    /// The target's first error (its AUTH's, its SELECT's, else the
    /// first RESTORE's), without the leading '-'.
    #[error("ERR Target instance replied with error: {0}")]
    Target(String),
    /// The worker failed (a bug, logged as a panic): nothing is deleted.
    #[error("ERR internal error while migrating (see the server log)")]
    Internal,
}

impl MigrateOutcome {
    /// Nothing restored: failed whole with `error`.
    pub fn failed(keys: usize, error: MigrateError) -> MigrateOutcome {
        MigrateOutcome {
            restored: vec![false; keys],
            result: Err(error),
        }
    }
}

/// Hands a finished job to its thread (the inbox, in the server).
pub type Deliver = Box<dyn Fn(Done) + Send + Sync>;

pub struct Migrator {
    shared: Arc<Shared>,
}

struct Shared {
    deliver: Deliver,
    /// Each target's worker (`host:port`): its queue. Jobs are sent under
    /// this lock, so a worker that removed itself gets no more.
    workers: Mutex<HashMap<String, Sender<Job>>>,
    /// How long a worker waits for a job before it closes its connection
    /// and ends: [`IDLE`] (shorter in tests).
    idle: Duration,
}

impl Migrator {
    pub fn new(deliver: Deliver) -> Migrator {
        Migrator::with_idle(deliver, IDLE)
    }

    /// As [`Migrator::new`], workers idling out after `idle` (tests wait
    /// for an idle close without waiting 10 s).
    pub(crate) fn with_idle(deliver: Deliver, idle: Duration) -> Migrator {
        Migrator {
            shared: Arc::new(Shared {
                deliver,
                workers: Mutex::new(HashMap::new()),
                idle,
            }),
        }
    }

    /// Runs `job` on its target's worker (started on first use); its
    /// `Done` comes through `deliver`.
    pub fn submit(&self, job: Job) {
        let target = format!("{}:{}", job.host, job.port);
        let mut workers = self.shared.lock_workers();
        let job = match workers.get(&target) {
            Some(queue) => match queue.send(job) {
                Ok(()) => return,
                // Its worker ended (a panic): a new one takes over.
                Err(e) => e.into_inner(),
            },
            None => job,
        };
        workers.remove(&target);
        let (queue, jobs) = crossbeam::channel::unbounded();
        let keep = workers.len() < MAX_CACHED;
        let (name, shared) = (target.clone(), self.shared.clone());
        let started = std::thread::Builder::new()
            .name(format!("citadel-migrate-{target}"))
            .spawn(move || worker::run(&name, &jobs, &shared));
        if let Err(e) = started {
            drop(workers);
            tracing::warn!(target, "starting a MIGRATE worker: {e}");
            let outcome = MigrateOutcome::failed(job.keys, MigrateError::Connect);
            (self.shared.deliver)(job.done(outcome));
            return;
        }
        // Sent before the queue is shared: a worker that keeps nothing
        // finds its one job, then its queue closed, and ends.
        let _ = queue.send(job);
        if keep {
            workers.insert(target, queue);
        }
    }
}

impl Migrator {
    /// Targets whose connection is kept between MIGRATEs (INFO's
    /// `migrate_cached_sockets`): each closes once idle for [`IDLE`].
    pub fn cached_targets(&self) -> usize {
        self.shared.lock_workers().len()
    }
}

impl Shared {
    fn lock_workers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sender<Job>>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Job {
    fn done(&self, outcome: MigrateOutcome) -> Done {
        Done {
            thread: self.thread,
            id: self.id,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests;
