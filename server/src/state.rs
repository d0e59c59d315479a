//! Process-wide server state shared by every core's loop and every session.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use citadel_cache::{Cache, CacheHandle, CacheStats};

use crate::command::ClientRegistry;

/// Runtime settings the command layer needs (built from the config by `main`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: String,
    pub port: u16,
    pub threads: usize,
    pub requirepass: Option<String>,
    pub maxclients: usize,
    /// Largest bulk string a client may send (the cache's max value size + slack).
    pub proto_max_bulk_len: usize,
    /// Per-client output buffer limit in bytes; past it the client is dropped.
    pub client_output_limit: usize,
    pub config_file: Option<String>,
}

/// Graceful-shutdown flag: set by SIGTERM/SIGINT or SHUTDOWN; every loop
/// checks it at least every maintenance tick (~100 ms).
#[derive(Debug, Default)]
pub struct Shutdown {
    requested: AtomicBool,
}

impl Shutdown {
    pub fn request(&self) {
        self.requested.store(true, Ordering::Release);
    }
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}

/// Counters of one server thread, readable by INFO from any thread.
#[derive(Debug, Default)]
pub struct ThreadStats {
    pub commands: AtomicU64,
    pub connections: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Nanoseconds spent processing (not waiting in io_uring_enter).
    pub busy_ns: AtomicU64,
    pub cpu: AtomicU64,
}

/// What one core's loop owns and lends to every session it runs.
pub struct ThreadCtx {
    pub index: usize,
    pub cache: CacheHandle,
    pub stats: Arc<ThreadStats>,
    /// This thread's plugin rings and calls in flight.
    pub plugins: crate::plugin::PluginClient,
    /// This thread's read-through loads and the clients waiting for them.
    pub loads: crate::readthrough::ThreadLoads,
}

pub struct ServerState {
    pub cache: Arc<Cache>,
    pub settings: Settings,
    pub shutdown: Shutdown,
    pub started: Instant,
    pub threads: Vec<Arc<ThreadStats>>,
    /// Connected clients (CLIENT LIST / KILL, connected_clients).
    pub clients: ClientRegistry,
    /// Settings CONFIG SET may change at runtime.
    pub runtime: Runtime,
    /// 40 hex characters identifying this process run (INFO run_id).
    pub run_id: String,
    /// Configured plugins (installed by `main` once the supervisor runs).
    pub plugins: crate::plugin::Plugins,
    /// `[[keyspace]]` read-through (installed by `main` after the plugins).
    pub readthrough: crate::readthrough::Hook,
    meter: Mutex<Meter>,
    stat_base: Mutex<StatBase>,
}

/// The CONFIG SET-able settings; read them here, not from `settings`.
#[derive(Debug)]
pub struct Runtime {
    requirepass: RwLock<Option<String>>,
    auth_required: AtomicBool,
    maxclients: AtomicUsize,
}

/// Counter values at the last CONFIG RESETSTAT; INFO reports the difference.
#[derive(Debug, Default, Clone)]
pub struct StatBase {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expirations: u64,
}

const SAMPLES: usize = 16;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A ring of (time, total commands, busy ns per thread) samples taken by
/// `tick`, from which INFO derives instantaneous rates.
struct Meter {
    samples: Vec<Sample>,
    next: usize,
    filled: usize,
}

#[derive(Clone)]
struct Sample {
    at: Instant,
    commands: u64,
    busy_ns: Vec<u64>,
}

/// Rates over the sampled window (about the last 1.6 s).
#[derive(Debug, Clone, Default)]
pub struct Rates {
    pub ops_per_sec: f64,
    /// Fraction of wall time each thread spent busy.
    pub thread_load: Vec<f64>,
}

impl ServerState {
    pub fn new(
        cache: Arc<Cache>,
        settings: Settings,
        threads: Vec<Arc<ThreadStats>>,
    ) -> Arc<ServerState> {
        let runtime = Runtime {
            auth_required: AtomicBool::new(settings.requirepass.is_some()),
            requirepass: RwLock::new(settings.requirepass.clone()),
            maxclients: AtomicUsize::new(settings.maxclients),
        };
        let started = Instant::now();
        let sample = Sample {
            at: started,
            commands: 0,
            busy_ns: vec![0; threads.len()],
        };
        Arc::new(ServerState {
            cache,
            clients: ClientRegistry::new(settings.threads.max(threads.len())),
            settings,
            shutdown: Shutdown::default(),
            started,
            threads,
            runtime,
            run_id: make_run_id(),
            plugins: Default::default(),
            readthrough: Default::default(),
            meter: Mutex::new(Meter {
                samples: vec![sample; SAMPLES],
                next: 1,
                filled: 1,
            }),
            stat_base: Mutex::new(StatBase::default()),
        })
    }

    /// Whether clients must AUTH before running commands.
    pub fn auth_required(&self) -> bool {
        self.runtime.auth_required.load(Ordering::Relaxed)
    }

    pub fn requirepass(&self) -> Option<String> {
        self.runtime
            .requirepass
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_requirepass(&self, pass: Option<String>) {
        let mut guard = self
            .runtime
            .requirepass
            .write()
            .unwrap_or_else(|p| p.into_inner());
        self.runtime
            .auth_required
            .store(pass.is_some(), Ordering::Relaxed);
        *guard = pass;
    }

    /// Compares without an early exit on the first differing byte.
    pub fn check_password(&self, given: &[u8]) -> bool {
        match &*self
            .runtime
            .requirepass
            .read()
            .unwrap_or_else(|p| p.into_inner())
        {
            None => true,
            Some(pass) => {
                let pass = pass.as_bytes();
                let mut diff = pass.len() ^ given.len();
                for (i, &b) in pass.iter().enumerate() {
                    diff |= usize::from(b ^ given.get(i).copied().unwrap_or(0));
                }
                diff == 0
            }
        }
    }

    /// Current connection limit (the loops should read this, not `settings`).
    pub fn maxclients(&self) -> usize {
        self.runtime.maxclients.load(Ordering::Relaxed)
    }

    pub fn set_maxclients(&self, n: usize) {
        self.runtime.maxclients.store(n, Ordering::Relaxed);
    }

    pub fn total_commands(&self) -> u64 {
        self.threads
            .iter()
            .map(|t| t.commands.load(Ordering::Relaxed))
            .sum()
    }

    /// Takes a rate sample if the last is ~100 ms old. Loops may all call it
    /// every maintenance tick; extra calls are cheap no-ops.
    pub fn tick(&self) {
        let Ok(mut m) = self.meter.try_lock() else {
            return;
        };
        let now = Instant::now();
        let last = (m.next + SAMPLES - 1) % SAMPLES;
        if now.duration_since(m.samples[last].at) < SAMPLE_EVERY {
            return;
        }
        let commands = self.total_commands();
        let next = m.next;
        let slot = &mut m.samples[next];
        slot.at = now;
        slot.commands = commands;
        for (b, t) in slot.busy_ns.iter_mut().zip(&self.threads) {
            *b = t.busy_ns.load(Ordering::Relaxed);
        }
        m.next = (next + 1) % SAMPLES;
        m.filled = (m.filled + 1).min(SAMPLES);
    }

    pub fn rates(&self) -> Rates {
        self.tick();
        let m = self.meter.lock().unwrap_or_else(|p| p.into_inner());
        let newest = &m.samples[(m.next + SAMPLES - 1) % SAMPLES];
        let oldest = &m.samples[(m.next + SAMPLES - m.filled) % SAMPLES];
        let secs = newest.at.duration_since(oldest.at).as_secs_f64();
        if secs <= 0.0 {
            return Rates {
                ops_per_sec: 0.0,
                thread_load: vec![0.0; self.threads.len()],
            };
        }
        Rates {
            ops_per_sec: newest.commands.saturating_sub(oldest.commands) as f64 / secs,
            thread_load: newest
                .busy_ns
                .iter()
                .zip(&oldest.busy_ns)
                .map(|(n, o)| n.saturating_sub(*o) as f64 / 1e9 / secs)
                .collect(),
        }
    }

    /// Cache statistics net of the last CONFIG RESETSTAT.
    pub fn cache_stats(&self) -> CacheStats {
        let mut s = self.cache.stats();
        let base = self.stat_base().clone();
        s.hits = s.hits.saturating_sub(base.hits);
        s.misses = s.misses.saturating_sub(base.misses);
        s.evictions = s.evictions.saturating_sub(base.evictions);
        s.expirations = s.expirations.saturating_sub(base.expirations);
        s
    }

    fn stat_base(&self) -> MutexGuard<'_, StatBase> {
        self.stat_base.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// CONFIG RESETSTAT: zero the counters INFO reports.
    pub fn reset_stats(&self) {
        let s = self.cache.stats();
        *self.stat_base() = StatBase {
            hits: s.hits,
            misses: s.misses,
            evictions: s.evictions,
            expirations: s.expirations,
        };
        for t in &self.threads {
            for c in [
                &t.commands,
                &t.accepted,
                &t.rejected,
                &t.bytes_in,
                &t.bytes_out,
            ] {
                c.store(0, Ordering::Relaxed);
            }
        }
    }
}

fn make_run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut id = String::with_capacity(40);
    let state = std::collections::hash_map::RandomState::new();
    while id.len() < 40 {
        let mut h = state.build_hasher();
        h.write_usize(id.len());
        h.write_u32(std::process::id());
        h.write_u128(Instant::now().elapsed().as_nanos());
        id.push_str(&format!("{:016x}", h.finish()));
    }
    id.truncate(40);
    id
}
