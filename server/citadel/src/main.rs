//! `citadel`: read the settings, check io_uring, bind, open (or attach to)
//! the cache file, start the plugins, serve on one pinned thread per CPU
//! until SIGTERM, SIGINT or SHUTDOWN, then close the cache cleanly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_cache::{Cache, CacheConfig, MemoryPolicy, OpenError};
use citadel_net::{NetConfig, NetError};
use citadel_server::metrics;
use citadel_server::readthrough::{self, ReadThrough};
use citadel_server::sd_notify::{self, NotifyThread, SystemdNotify};
use citadel_server::service::CommandService;
use citadel_server::signals;
use citadel_server::state::ServerState;
use citadel_server::stats::ThreadStats;
use citadel_server::wait::Inboxes;
use citadel_settings::cli::{self, Invocation, Loaded};
use citadel_settings::server::{self as setting, MAX_THREADS};
use citadel_settings::{NumaMemory, SettingsError, Store};
use citadel_supervisor::{
    CorePlan, CorePlanError, NumaError, NumaPlan, NumaTopology, PipelineConfig, PluginConfig,
    Supervisor, SupervisorError,
};

/// The server's heap: mimalloc, whose small-object paths take a fraction
/// of glibc malloc's instructions on the per-command buffers a big
/// collection's commands allocate (decoded pages, page copies, plans).
/// The cache's values live in the mapped file, not here. Big connection
/// buffers (a 1 MiB SET's input, a 1 MiB GET's reply), given back after
/// each such command, are reused from its segments: no page faults per
/// command, where glibc needed its mmap and trim thresholds fixed.
#[global_allocator]
static HEAP: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Room above maxclients for listeners, rings, the cache file and the like.
const SPARE_FDS: u64 = 256;

#[derive(Debug, thiserror::Error)]
enum StartupError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("{0}")]
    Config(String),
    #[error("cannot load the ACL file: {0}")]
    AclFile(String),
    #[error(transparent)]
    Plugin(#[from] citadel_supervisor::PluginConfigError),
    #[error(transparent)]
    Keyspace(#[from] readthrough::KeyspaceConfigError),
    #[error("invalid log level {0:?}: {1}")]
    LogLevel(String, String),
    #[error("cannot read the CPU affinity mask: {0}")]
    Affinity(std::io::Error),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Cache(#[from] OpenError),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot create the server threads' eventfds: {0}")]
    Inboxes(std::io::Error),
    #[error(transparent)]
    CorePlan(#[from] CorePlanError),
    #[error(transparent)]
    Numa(#[from] NumaError),
    #[error("cannot bind the cache memory to NUMA node {node}: {source}")]
    NumaBind { node: usize, source: std::io::Error },
    #[error("cannot reach systemd's NOTIFY_SOCKET: {0}")]
    Notify(std::io::Error),
    #[error(transparent)]
    Plugins(#[from] SupervisorError),
    #[error(transparent)]
    Metrics(metrics::MetricsBindError),
    #[error(transparent)]
    ReadThrough(#[from] readthrough::SetupError),
    #[error(transparent)]
    Cluster(#[from] citadel_server::cluster::NodeError),
}

fn main() -> ExitCode {
    citadel_server::state::set_mem_allocator("mimalloc");
    let loaded = match cli::parse(std::env::args_os()) {
        Err(clap_error) => clap_error.exit(),
        Ok(Ok(Invocation::PrintConfig)) => {
            print!("{}", citadel_settings::reference::render());
            return ExitCode::SUCCESS;
        }
        Ok(Ok(Invocation::Run(loaded))) => Ok(loaded),
        Ok(Err(e)) => Err(StartupError::from(e)),
    };
    match loaded.and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("citadel: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(loaded: Loaded) -> Result<(), StartupError> {
    let Loaded {
        server: settings,
        plugins,
        keyspaces,
        pipelines,
        config_file,
    } = loaded;
    setting::check(&settings).map_err(StartupError::Config)?;
    let mut plugins = citadel_supervisor::config::resolve(&plugins)?;
    let pipelines = citadel_supervisor::pipeline::resolve(&pipelines, &plugins)?;
    // Plugins that compute on cached values read them in place.
    let cache_file = cache_path(&settings).display().to_string();
    for p in &mut plugins {
        p.env.push((CACHE_FILE_ENV.to_string(), cache_file.clone()));
    }
    let names: Vec<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    let keyspaces = readthrough::config::resolve(&keyspaces, &names)?;
    // A loader answers the server's LoadRequests; a pipeline stage does not.
    for k in &keyspaces {
        let stage = pipelines.iter().find(|p| {
            p.stages
                .iter()
                .any(|&s| plugins[s].name.eq_ignore_ascii_case(&k.loader))
        });
        if let Some(p) = stage {
            return Err(StartupError::Config(format!(
                "keyspace loader {:?} is a stage of pipeline {:?}; a loader must be its own [[plugin]]",
                k.loader, p.name
            )));
        }
    }
    init_logging(&settings.get(&setting::LOG_LEVEL))?;

    let cpus = citadel_net::allowed_cpus().map_err(StartupError::Affinity)?;
    let topology = NumaTopology::read(&cpus)?;
    let numa = NumaPlan::resolve(settings.get(&setting::NUMA_NODE), &topology, &cpus)?;
    // Plugins get their cores first (on the NUMA node, if one is set);
    // server threads run on the rest.
    let plan = CorePlan::compute(&numa.cpus, &plugins)?;
    let threads = settings
        .get(&setting::THREADS)
        .unwrap_or(plan.server.len())
        .clamp(1, MAX_THREADS);
    let thread_cpus: Vec<Option<usize>> = (0..threads)
        .map(|i| Some(plan.server[i % plan.server.len()]))
        .collect();
    citadel_net::probe()?;
    raise_fd_limit(settings.get(&setting::MAXCLIENTS));

    let addr = SocketAddr::new(settings.get(&setting::BIND), settings.get(&setting::PORT));
    let mut net_cfg = NetConfig::new(addr, thread_cpus.clone());
    // Written in octal, as Redis's unixsocketperm (checked).
    let perm =
        u32::from_str_radix(&settings.get(&setting::UNIXSOCKETPERM).to_string(), 8).unwrap_or(0);
    let unix = |path| citadel_net::UnixSocket { path, perm };
    net_cfg.unix = settings.get(&setting::UNIXSOCKET).map(unix);
    // Door 1: the FlatBuffers RPC (see `service::RPC_DOOR`).
    let rpc_port = rpc_port(&settings, addr.port());
    net_cfg.doors.push(citadel_net::DoorConfig {
        tcp: rpc_port.map(|port| SocketAddr::new(addr.ip(), port)),
        unix: settings.get(&setting::RPC_UNIXSOCKET).map(unix),
    });
    net_cfg.client_output_limit = settings.get(&setting::CLIENT_OUTPUT_LIMIT).bytes() as usize;
    net_cfg.drain_wait = Duration::from_millis(settings.get(&setting::SHUTDOWN_TIMEOUT_MS));
    let max_value = settings.get(&setting::MAX_VALUE_SIZE).bytes() as usize;
    net_cfg.max_input = net_cfg.max_input.max(max_value * 2);
    let listeners = citadel_net::bind(&net_cfg)?;
    // Cluster mode: who this node is, its membership source and first
    // view (once bound: clients redirected here queue in the backlog).
    let cluster = citadel_server::cluster::Node::from_settings(&settings, addr, rpc_port)?;

    let cache = open_cache(&settings)?;
    let cache_memory = match bind_cache_memory(&cache, &numa, &settings) {
        Ok(where_) => where_,
        Err(e) => {
            cache.close();
            return Err(e);
        }
    };
    tracing::info!(
        node = %numa.node.map_or("none".to_string(), |n| n.to_string()),
        threads = %NumaPlan::describe_threads(&topology, &thread_cpus),
        cache_memory = %cache_memory,
        "numa plan"
    );
    // Before any thread starts: it takes the variables out of the environment.
    let systemd = SystemdNotify::from_env()
        .map_err(StartupError::Notify)?
        .map(Arc::new);
    let region = metrics::open_region(
        &metrics::region_path(&settings, &cache_path(&settings)),
        threads,
    );
    let stats: Vec<Arc<ThreadStats>> = (0..threads)
        .map(|i| {
            Arc::new(ThreadStats::with_telemetry(
                region.as_ref().and_then(|r| r.core(i)),
            ))
        })
        .collect();
    let inboxes = Arc::new(Inboxes::new(threads).map_err(StartupError::Inboxes)?);
    // Absolute (INFO config_file, CONFIG REWRITE), as Redis shows it.
    let config_file =
        config_file.map(|p| std::path::absolute(&p).unwrap_or(p).display().to_string());
    // A pipeline's DATA input may be as large as its first stage's ring
    // takes, and larger ones are spooled: Redis's default bulk limit then.
    let largest_input = pipelines
        .iter()
        .map(|p| citadel_proto::ring::layout::max_payload(plugins[p.stages[0]].ring_capacity))
        .max()
        .map_or(0, |ring| ring.max(PIPELINE_MAX_DATA));
    let state = ServerState::new(
        cache.clone(),
        settings,
        config_file,
        stats.clone(),
        inboxes,
        largest_input,
    );
    if let Err(e) = citadel_server::command::load_acl_at_start(&state) {
        drop(state);
        cache.close();
        return Err(StartupError::AclFile(e));
    }
    if let Some(node) = cluster {
        // Before the threads start: each takes its view of the cluster.
        let _ = state.cluster.set(node);
        let invalidations = citadel_server::command::PeerInvalidations::new(Arc::downgrade(&state));
        state.start_forwarder(Box::new(invalidations));
    }
    let started = start_plugins(&plugins, &pipelines, &keyspaces, &plan, threads, &state);
    let supervisor = match started {
        Ok(s) => s,
        Err(e) => {
            drop(state);
            cache.close();
            return Err(e);
        }
    };
    let observers = match region
        .map(|r| metrics::start(r, &state, addr.ip()))
        .transpose()
    {
        Ok(o) => o,
        Err(e) => {
            if let Some(supervisor) = supervisor {
                supervisor.shutdown();
            }
            drop(state);
            cache.close();
            return Err(StartupError::Metrics(e));
        }
    };
    let watcher = {
        let state = state.clone();
        signals::watch(move |_| state.shutdown.request()).map_err(StartupError::Signals)?
    };
    let cores: Vec<String> = thread_cpus
        .iter()
        .flatten()
        .map(|c| c.to_string())
        .collect();
    let loop_stats: Vec<_> = stats.iter().map(|s| s.net.clone()).collect();
    let mut discovery = DiscoveryRecord::new(&state.settings, addr);
    if let Some((id, weight)) = state.cluster.get().and_then(|n| n.directory_member()) {
        // Directory membership: this record makes the server a member.
        discovery.record.cluster_id = Some(id);
        discovery.record.weight = Some(weight);
    }
    let shm_door = match settings_shm_door(&state.settings, threads, perm) {
        Ok(door) => door,
        Err(e) => {
            drop(state);
            cache.close();
            return Err(e);
        }
    };
    let shm_stop = std::sync::atomic::AtomicBool::new(false);
    let mut notify_thread = None;
    let result = std::thread::scope(|scope| {
        if let Some(door) = &shm_door {
            let stop = &shm_stop;
            std::thread::Builder::new()
                .name("citadel-shm-door".into())
                .spawn_scoped(scope, move || door.run(stop))
                .map_err(|e| citadel_net::NetError::Unavailable(format!("shm door thread: {e}")))?;
        }
        let served = citadel_net::serve(
            &net_cfg,
            listeners,
            &loop_stats,
            |i| CommandService::new(&state, i, shm_door.as_ref().and_then(|d| d.take_lane(i))),
            || {
                tracing::info!(%addr, threads, cores = %cores.join(","), "ready to accept connections");
                discovery.publish();
                if let Some(systemd) = &systemd {
                    systemd.ready(&format!("serving {addr} on {threads} threads"));
                    notify_thread = start_notify_thread(systemd, &state, &loop_stats);
                }
            },
        );
        if let Some(systemd) = &systemd {
            systemd.stopping();
        }
        shm_stop.store(true, std::sync::atomic::Ordering::Relaxed);
        served
    });
    drop(notify_thread);
    drop(shm_door);
    discovery.remove();
    if let Some(supervisor) = supervisor {
        // Every client is answered; now let the plugins finish and exit.
        tracing::info!("stopping plugins");
        supervisor.shutdown();
    }
    drop(watcher);
    // The publisher reads the state: stopped before it goes.
    drop(observers);
    drop(state);
    // Every thread (and with it every cache handle) is gone: mark the file clean.
    cache.close();
    match &result {
        Ok(()) => tracing::info!("cache closed cleanly; bye"),
        Err(e) => tracing::error!("server stopped: {e}"),
    }
    Ok(result?)
}

/// Starts the plugin supervisor (when plugins are configured) and hands its
/// hub to the server state, so each server thread finds its rings.
fn start_plugins(
    plugins: &[PluginConfig],
    pipelines: &[PipelineConfig],
    keyspaces: &[readthrough::KeyspaceConfig],
    plan: &CorePlan,
    threads: usize,
    state: &Arc<ServerState>,
) -> Result<Option<Supervisor>, StartupError> {
    tracing::info!(plan = %plan.describe(), "core plan");
    if plugins.is_empty() {
        return Ok(None);
    }
    let st = state.clone();
    let stopping = Arc::new(move || st.shutdown.is_requested());
    let supervisor = Supervisor::start(plugins, pipelines, plan, threads, stopping)?;
    let hub = supervisor.hub().clone();
    state.plugins.install(hub.clone());
    if !keyspaces.is_empty() {
        let find = |name: &str| hub.find(name.as_bytes());
        state
            .readthrough
            .install(ReadThrough::new(keyspaces, find)?);
    }
    Ok(Some(supervisor))
}

/// Binds the cache mapping to the plan's NUMA node; says where the cache
/// memory lives, for the plan's log line.
fn bind_cache_memory(
    cache: &Cache,
    numa: &NumaPlan,
    settings: &Store,
) -> Result<String, StartupError> {
    let Some(node) = numa.node else {
        return Ok("not bound (numa-node none)".into());
    };
    let policy = match settings.get(&setting::NUMA_MEMORY) {
        NumaMemory::Bind => MemoryPolicy::Bind,
        NumaMemory::Preferred => MemoryPolicy::Preferred,
    };
    cache
        .bind_to_node(node, policy)
        .map_err(|source| StartupError::NumaBind { node, source })?;
    let mode = match policy {
        MemoryPolicy::Bind => "MPOL_BIND",
        MemoryPolicy::Preferred => "MPOL_PREFERRED",
    };
    Ok(format!(
        "node {node} ({mode}, mbind of {})",
        cache.path().display()
    ))
}

/// The systemd notifier's thread: STOPPING=1 when a shutdown is requested,
/// WATCHDOG=1 while every server thread's loop turns.
fn start_notify_thread(
    systemd: &Arc<SystemdNotify>,
    state: &Arc<ServerState>,
    loops: &[Arc<citadel_net::LoopStats>],
) -> Option<NotifyThread> {
    let st = state.clone();
    let stopping = move || st.shutdown.is_requested();
    let alive = sd_notify::loops_turning(loops.to_vec());
    match NotifyThread::start(systemd.clone(), stopping, alive) {
        Ok(thread) => Some(thread),
        Err(e) => {
            tracing::warn!("no systemd watchdog thread: {e}");
            None
        }
    }
}

/// This server's record in the discovery directory (see
/// `citadel_proto::discovery`): written once it accepts connections,
/// removed at a clean exit.
struct DiscoveryRecord {
    record: citadel_proto::discovery::Record,
    dir: PathBuf,
}

impl DiscoveryRecord {
    fn new(settings: &Store, addr: SocketAddr) -> DiscoveryRecord {
        let name = settings
            .get(&setting::SERVER_NAME)
            .unwrap_or_else(|| format!("citadel-{}", addr.port()));
        DiscoveryRecord {
            record: citadel_proto::discovery::Record {
                name,
                pid: std::process::id(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                tcp: addr.to_string(),
                unix: path_of(settings.get(&setting::UNIXSOCKET)),
                rpc: rpc_port(settings, addr.port())
                    .map(|port| SocketAddr::new(addr.ip(), port).to_string()),
                rpc_unix: path_of(settings.get(&setting::RPC_UNIXSOCKET)),
                shm: path_of(settings.get(&setting::SHM_SOCKET)),
                started_at_ms: citadel_cache::unix_millis(),
                cluster_id: None,
                weight: None,
            },
            dir: settings
                .get(&setting::DISCOVERY_DIR)
                .unwrap_or_else(citadel_proto::discovery::default_dir),
        }
    }

    fn publish(&self) {
        match self.record.publish(&self.dir) {
            Ok(path) => tracing::info!(record = %path.display(), "discovery record written"),
            Err(e) => tracing::warn!(dir = %self.dir.display(), "no discovery record: {e}"),
        }
    }

    fn remove(&self) {
        let _ = std::fs::remove_file(self.record.path_in(&self.dir));
    }
}

/// The shared-memory transport's handshake socket, when configured.
fn settings_shm_door(
    settings: &Store,
    threads: usize,
    perm: u32,
) -> Result<Option<citadel_server::rpc::ShmDoor>, StartupError> {
    let Some(path) = settings.get(&setting::SHM_SOCKET) else {
        return Ok(None);
    };
    citadel_server::rpc::ShmDoor::bind(&path, threads, perm)
        .map(Some)
        .map_err(|e| {
            StartupError::Config(format!(
                "cannot listen on the shm socket {}: {e}",
                path.display()
            ))
        })
}

/// The RPC TCP port: as set (0: none), else the RESP port + 1000.
fn rpc_port(settings: &Store, resp_port: u16) -> Option<u16> {
    match settings.get(&setting::RPC_PORT) {
        Some(0) => None,
        Some(port) => Some(port),
        None => resp_port.checked_add(1000),
    }
}

fn path_of(path: Option<PathBuf>) -> Option<String> {
    path.map(|p| p.display().to_string())
}

fn init_logging(level: &str) -> Result<(), StartupError> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| StartupError::LogLevel(level.to_string(), e.to_string()))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .init();
    Ok(())
}

fn raise_fd_limit(maxclients: usize) {
    let want = maxclients as u64 + SPARE_FDS;
    match citadel_net::raise_nofile(want) {
        Ok(have) if have < want => tracing::warn!(
            have,
            want,
            "open-file limit is below maxclients + {SPARE_FDS}; connections past it will be refused"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

/// The largest DATA input of a pipeline call when its first stage's ring
/// is smaller (Redis's default proto-max-bulk-len): larger inputs go by KEY
/// or FILE.
const PIPELINE_MAX_DATA: usize = 512 << 20;

/// The environment variable that tells plugins where the cache file is
/// (they may open it read-only: `citadel_cache::CacheReader`).
const CACHE_FILE_ENV: &str = "CITADEL_CACHE_FILE";

fn cache_path(settings: &Store) -> PathBuf {
    let port = settings.get(&setting::PORT);
    settings
        .get(&setting::CACHE_FILE)
        .unwrap_or_else(|| PathBuf::from(format!("/dev/shm/citadel-{port}.cache")))
}

fn open_cache(settings: &Store) -> Result<Arc<Cache>, StartupError> {
    let started = Instant::now();
    let path = cache_path(settings);
    let maxmemory = settings.get(&setting::MAXMEMORY).bytes();
    let fresh = settings.get(&setting::FRESH);
    let (cache, report) = Cache::open(CacheConfig {
        path: path.clone(),
        max_memory: maxmemory,
        max_value_size: settings.get(&setting::MAX_VALUE_SIZE).bytes(),
        fresh,
    })?;
    let file = path.display();
    if report.warm {
        tracing::info!(
            %file,
            keys = report.keys,
            clean = report.clean,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "attached warm cache{}",
            if report.clean { "" } else { " (previous run did not shut down cleanly; recovered)" }
        );
    } else {
        tracing::info!(%file, maxmemory, fresh, "created new cache file");
    }
    match cache.huge_pages() {
        citadel_cache::HugePages::No(why) => tracing::info!(
            %file,
            "cache pages are 4 KiB ({why}): a tmpfs mounted with huge=within_size for the \
             cache file saves ~17% CPU per GET where the host allows it (README, Performance)"
        ),
        huge => tracing::info!(%file, huge_pages = %huge.token(), "cache pages may be huge"),
    }
    Ok(cache)
}
