//! Process-wide server state shared by every core's loop and every session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use citadel_cache::{Cache, CacheStats};
use citadel_settings::{server as setting, Store};

use crate::clients::ClientRegistry;
use crate::stats::ThreadStats;
use crate::wait::SharedInboxes;

/// Graceful-shutdown flag: set by SIGTERM/SIGINT or SHUTDOWN; every loop
/// checks it at least every maintenance tick (~100 ms).
#[derive(Debug, Default)]
pub struct Shutdown {
    requested: AtomicBool,
}

impl Shutdown {
    pub fn request(&self) {
        // ORDERING: Release, paired with the Acquire in `is_requested`.
        self.requested.store(true, Ordering::Release);
    }
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Acquire)
    }
}

/// Limits derived from the settings at start-up.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string a client may send (the cache's max value size + slack).
    pub proto_max_bulk_len: usize,
    /// Per-client output buffer limit in bytes; past it the client is dropped.
    pub client_output_limit: usize,
}

pub struct ServerState {
    pub cache: Arc<Cache>,
    /// The server's settings (`citadel_settings::server`); live ones may
    /// change (CONFIG SET), so read them here each time.
    pub settings: Store,
    pub limits: Limits,
    /// The `--config` file, if any (INFO config_file).
    pub config_file: Option<String>,
    /// Server threads.
    pub threads: usize,
    /// Lets one thread run with the others outside their loop turns
    /// (MULTI/EXEC with a keyspace-wide command).
    pub gate: crate::gate::Gate,
    pub shutdown: Shutdown,
    pub started: Instant,
    pub thread_stats: Vec<Arc<ThreadStats>>,
    /// Connected clients (CLIENT LIST / KILL, connected_clients).
    pub clients: ClientRegistry,
    /// Every thread's inbox (cross-thread completions).
    pub inboxes: SharedInboxes,
    /// Pub/Sub subscriptions (see `crate::pubsub`).
    pub pubsub: Arc<crate::pubsub::Registry>,
    /// Connections in MONITOR mode (see `crate::monitor`).
    pub monitors: Arc<crate::monitor::Monitors>,
    /// 40 hex characters identifying this process run (INFO run_id).
    pub run_id: String,
    /// Configured plugins (installed by `main` once the supervisor runs).
    pub plugins: crate::plugin::Plugins,
    /// Pipeline calls in progress, by result key (single flight).
    pub pipeline_flights: Arc<crate::pipeline::Flights>,
    /// Where DATA inputs larger than a first stage's ring are spooled:
    /// `<cache file>.spool/` (emptied at start).
    pub pipeline_spool: Arc<std::path::Path>,
    /// `[[keyspace]]` read-through (installed by `main` after the plugins).
    pub readthrough: crate::readthrough::Hook,
    /// Slow log and latency thresholds, CLIENT PAUSE.
    pub introspect: crate::introspect::Introspection,
    /// Lua scripts, function libraries and running scripts (`crate::script`).
    pub scripts: Arc<crate::script::Store>,
    /// ACL users (the `default` one mirrors `requirepass`) and the ACL LOG.
    pub acl: crate::acl::Acl,
    /// This server as a cluster node (installed by `main` before the
    /// threads start); unset when cluster mode is off.
    pub cluster: std::sync::OnceLock<crate::cluster::Node>,
    /// The forwarder of proxy mode, warm hand-off and broadcast PUBLISH
    /// (installed by `main` in cluster mode).
    pub forwarder: std::sync::OnceLock<crate::forward::Forwarder>,
    /// Outbound MIGRATE's workers (`crate::migrate`): each finished
    /// MIGRATE is mailed to its thread's inbox.
    pub migrator: crate::migrate::Migrator,
    /// CLIENT TRACKING: who cached which key.
    pub tracking: crate::tracking::Tracking,
    /// Clients blocked on keys (BLPOP ...), by key.
    pub blocked: crate::blocking::BlockedKeys,
    /// Overload protection's rules and counters (`crate::overload`).
    pub overload: Arc<crate::overload::Overload>,
    /// Hot-key counters of every core and the per-key write limit.
    pub hotkeys: crate::hotkeys::HotKeys,
    /// SAVE / BGSAVE / BGREWRITEAOF: the last save and the one running.
    pub saves: Arc<crate::saves::Saves>,
    /// `notify-keyspace-events` as bits (citadel_settings::key_events).
    notify_flags: std::sync::atomic::AtomicU32,
    meter: Mutex<Meter>,
    stat_base: Mutex<StatBase>,
}

/// Counter values at the last CONFIG RESETSTAT; INFO reports the difference.
#[derive(Debug, Default, Clone)]
pub struct StatBase {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub expirations: u64,
    pub lazyfreed_roots: u64,
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
        settings: Store,
        config_file: Option<String>,
        thread_stats: Vec<Arc<ThreadStats>>,
        inboxes: SharedInboxes,
        largest_input: usize,
    ) -> Arc<ServerState> {
        let max_value = settings.get(&setting::MAX_VALUE_SIZE).bytes() as usize;
        let limits = Limits {
            // Room for the command and key around the largest value, or
            // the largest pipeline input (`largest_input`) if larger.
            proto_max_bulk_len: (max_value + (64 << 10)).max(largest_input),
            client_output_limit: settings.get(&setting::CLIENT_OUTPUT_LIMIT).bytes() as usize,
        };
        let started = Instant::now();
        let threads = thread_stats.len();
        let sample = Sample {
            at: started,
            commands: 0,
            busy_ns: vec![0; threads],
        };
        let pipeline_spool = spool_dir(&cache);
        let scripts = Arc::new(crate::script::Store::new(Some(cache.path()), threads));
        if settings.get(&setting::FRESH) {
            // Functions persist beside the cache file; a fresh start drops both.
            scripts.discard_saved();
        }
        let state = ServerState {
            scripts,
            cache,
            limits,
            config_file,
            threads,
            gate: crate::gate::Gate::new(threads),
            clients: ClientRegistry::new(threads),
            acl: crate::acl::Acl::new(settings.get(&setting::REQUIREPASS)),
            overload: Arc::new(crate::overload::Overload::new(threads)),
            notify_flags: Default::default(),
            saves: Default::default(),
            tracking: Default::default(),
            blocked: Default::default(),
            hotkeys: crate::hotkeys::HotKeys::new(threads),
            cluster: Default::default(),
            forwarder: Default::default(),
            migrator: migrator(&inboxes),
            introspect: Default::default(),
            settings,
            shutdown: Shutdown::default(),
            started,
            thread_stats,
            inboxes,
            pubsub: Default::default(),
            monitors: Default::default(),
            run_id: make_run_id(),
            plugins: Default::default(),
            pipeline_flights: Default::default(),
            pipeline_spool,
            readthrough: Default::default(),
            meter: Mutex::new(Meter {
                samples: vec![sample; SAMPLES],
                next: 1,
                filled: 1,
            }),
            stat_base: Mutex::new(StatBase::default()),
        };
        state.settings_changed();
        Arc::new(state)
    }

    /// Refreshes what is derived from live settings (after CONFIG SET).
    pub fn settings_changed(&self) {
        self.acl
            .requirepass_changed(self.settings.get(&setting::REQUIREPASS));
        let events = self.settings.get(&setting::NOTIFY_KEYSPACE_EVENTS);
        let flags = citadel_settings::key_events::parse(&events).unwrap_or(0);
        self.notify_flags.store(flags, Ordering::Relaxed);
        self.introspect.refresh(&self.settings);
        self.overload.refresh(&self.settings);
        crate::collection_limits::refresh(&self.settings);
        self.cache
            .set_memory_cap(self.settings.get(&setting::MAXMEMORY).bytes());
        let policy = self.settings.get(&setting::MAXMEMORY_POLICY);
        self.cache.set_eviction_policy(engine_policy(policy));
        {
            use citadel_settings::hotkeys as hk;
            self.hotkeys.configure(
                self.settings.get(&hk::HOTKEYS_SAMPLE),
                self.settings.get(&hk::HOTKEYS_WINDOW),
                self.settings.get(&hk::HOTKEYS_TOP) as usize,
                self.settings.get(&hk::HOTKEYS_WRITE_LIMIT),
            );
        }
        if let Some(node) = self.cluster.get() {
            node.settings_changed(&self.settings);
        }
    }

    /// Which keyspace notifications to publish (bits of
    /// `citadel_settings::key_events`).
    pub fn notify_flags(&self) -> u32 {
        self.notify_flags.load(Ordering::Relaxed)
    }

    /// Whether the cache handles must record the keys they change (someone
    /// publishes or invalidates on key changes).
    pub fn key_changes_wanted(&self) -> bool {
        let flags = self.notify_flags();
        let notify =
            citadel_settings::key_events::KEYSPACE | citadel_settings::key_events::KEYEVENT;
        flags & notify != 0 || self.tracking.active()
    }

    /// Cluster mode: the forwarder of proxy mode (`cluster-proxy yes`),
    /// warm hand-off (`cluster-handoff yes`) and broadcast PUBLISH (its
    /// links to peers start on first use); each finished forward is mailed
    /// to its thread's inbox. Peers are greeted with this node's
    /// `requirepass` (the cluster's nodes share it). `tracking` takes the
    /// peers' invalidation pushes (`command::PeerInvalidations`: given by
    /// the caller, so this module does not reach into `command`).
    pub fn start_forwarder(self: &Arc<Self>, tracking: Box<dyn crate::forward::PeerTracking>) {
        use citadel_settings::cluster as cluster_setting;
        if self.cluster.get().is_none() {
            return;
        }
        let timeout = self
            .settings
            .get(&cluster_setting::CLUSTER_FORWARD_TIMEOUT_MS);
        let state = Arc::downgrade(self);
        let password = Box::new(move || {
            let state = state.upgrade()?;
            state.settings.get(&setting::REQUIREPASS)
        });
        let inboxes = self.inboxes.clone();
        let deliver = Box::new(move |done: crate::forward::Done| {
            inboxes.send(done.thread, crate::wait::Mail::Forwarded(done))
        });
        let timeout = Duration::from_millis(timeout);
        let forwarder = crate::forward::Forwarder::start(timeout, password, deliver, tracking);
        let _ = self.forwarder.set(forwarder);
    }

    /// Whether clients must AUTH before running commands (the `default`
    /// user is off or has a password).
    pub fn auth_required(&self) -> bool {
        self.acl.auth_required()
    }

    /// Whether `given` is a password of the `default` user (the RPC front
    /// door's HELLO); compared without an early exit.
    pub fn check_password(&self, given: &[u8]) -> bool {
        match self.acl.get(b"default") {
            Some(user) => user.accepts(given),
            // Before the command layer installed the ACL: `requirepass`.
            None => self.settings.get(&setting::REQUIREPASS).is_none_or(|p| {
                crate::acl::user::hash_password(p.as_bytes())
                    == crate::acl::user::hash_password(given)
            }),
        }
    }

    /// Current connection limit (CONFIG SET may change it).
    pub fn maxclients(&self) -> usize {
        self.settings.get(&setting::MAXCLIENTS)
    }

    pub fn total_commands(&self) -> u64 {
        self.thread_stats
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
        for (b, t) in slot.busy_ns.iter_mut().zip(&self.thread_stats) {
            *b = t.net.busy_ns.load(Ordering::Relaxed);
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
                thread_load: vec![0.0; self.threads],
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
        s.lazyfreed_roots = s.lazyfreed_roots.saturating_sub(base.lazyfreed_roots);
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
            lazyfreed_roots: s.lazyfreed_roots,
        };
        for t in &self.thread_stats {
            t.reset();
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

/// `<cache file>.spool/`, emptied (a previous run's leftovers) and created.
fn spool_dir(cache: &citadel_cache::Cache) -> Arc<std::path::Path> {
    let mut name = cache.path().as_os_str().to_owned();
    name.push(".spool");
    let dir = std::path::PathBuf::from(name);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), "cannot create the pipeline spool: {e}");
    }
    Arc::from(dir.as_path())
}

/// What the engine may evict under `policy` (ARCHITECTURE, "TTL and
/// eviction"): the three allkeys policies share its one approximate LFU,
/// and volatile-lfu/lru/random its TTL-only variant.
fn engine_policy(policy: citadel_settings::MaxmemoryPolicy) -> citadel_cache::EvictionPolicy {
    use citadel_cache::EvictionPolicy as Engine;
    use citadel_settings::MaxmemoryPolicy as Redis;
    match policy {
        Redis::AllkeysLfu | Redis::AllkeysLru | Redis::AllkeysRandom => Engine::AllKeys,
        Redis::VolatileLfu | Redis::VolatileLru | Redis::VolatileRandom => Engine::Volatile,
        Redis::VolatileTtl => Engine::VolatileTtl,
        Redis::NoEviction => Engine::NoEviction,
    }
}

/// MIGRATE's workers, mailing each finished MIGRATE to its thread.
fn migrator(inboxes: &crate::wait::SharedInboxes) -> crate::migrate::Migrator {
    let inboxes = inboxes.clone();
    crate::migrate::Migrator::new(Box::new(move |done: crate::migrate::Done| {
        inboxes.send(done.thread, crate::wait::Mail::Migrated(done))
    }))
}

/// The heap allocator the process runs on, as INFO's `mem_allocator`
/// names it: the `citadel` binary sets it; the library's own tests run
/// on the system allocator.
static MEM_ALLOCATOR: OnceLock<&'static str> = OnceLock::new();

/// Names the process's heap allocator (the first call wins).
pub fn set_mem_allocator(name: &'static str) {
    let _ = MEM_ALLOCATOR.set(name);
}

/// The heap allocator's name ("libc" unless the binary set another).
pub fn mem_allocator() -> &'static str {
    MEM_ALLOCATOR.get().copied().unwrap_or("libc")
}
