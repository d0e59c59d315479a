//! `citadel`: parse the configuration, check io_uring, bind, open (or attach
//! to) the cache file, serve on one pinned thread per CPU until SIGTERM,
//! SIGINT or SHUTDOWN, then close the cache cleanly.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use citadel_cache::{Cache, CacheConfig, OpenError};
use citadel_server::config::{Config, ConfigError, MAX_THREADS};
use citadel_server::net::{self, signals, CommandService, NetConfig, NetError};
use citadel_server::readthrough::ReadThrough;
use citadel_server::state::{ServerState, Settings, ThreadStats};
use citadel_server::supervisor::cores::{CorePlan, CorePlanError};
use citadel_server::supervisor::{Supervisor, SupervisorError};

/// Room above maxclients for listeners, rings, the cache file and the like.
const SPARE_FDS: u64 = 256;

#[derive(Debug, thiserror::Error)]
enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
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
    #[error(transparent)]
    CorePlan(#[from] CorePlanError),
    #[error(transparent)]
    Plugins(#[from] SupervisorError),
    #[error(transparent)]
    ReadThrough(#[from] citadel_server::readthrough::SetupError),
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("citadel: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), StartupError> {
    let config = Config::from_args()?;
    init_logging(&config.log_level)?;
    let cpus = net::allowed_cpus().map_err(StartupError::Affinity)?;
    // Plugins get their cores first; server threads run on the rest.
    let plan = CorePlan::compute(&cpus, &config.plugins)?;
    let server_cpus = &plan.server;
    let threads = config
        .threads
        .unwrap_or(server_cpus.len())
        .clamp(1, MAX_THREADS);
    let thread_cpus: Vec<Option<usize>> = (0..threads)
        .map(|i| Some(server_cpus[i % server_cpus.len()]))
        .collect();
    net::probe()?;
    raise_fd_limit(config.maxclients);

    let addr = SocketAddr::new(config.bind, config.port);
    let mut net_cfg = NetConfig::new(addr, thread_cpus.clone());
    net_cfg.client_output_limit = config.client_output_limit as usize;
    net_cfg.max_input = net_cfg.max_input.max(config.max_value_size as usize * 2);
    let listeners = net::bind(&net_cfg)?;

    let cache = open_cache(&config)?;
    let stats: Vec<Arc<ThreadStats>> = (0..threads)
        .map(|_| Arc::new(ThreadStats::default()))
        .collect();
    let state = ServerState::new(cache.clone(), settings(&config, threads), stats.clone());
    let supervisor = match start_plugins(&config, &plan, threads, &state) {
        Ok(s) => s,
        Err(e) => {
            drop(state);
            cache.close();
            return Err(e);
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
    let result = net::serve(
        &net_cfg,
        listeners,
        &stats,
        |i| CommandService::new(&state, i, stats[i].clone()),
        || tracing::info!(%addr, threads, cores = %cores.join(","), "ready to accept connections"),
    );
    if let Some(supervisor) = supervisor {
        // Every client is answered; now let the plugins finish and exit.
        tracing::info!("stopping plugins");
        supervisor.shutdown();
    }
    drop(watcher);
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
    config: &Config,
    plan: &CorePlan,
    threads: usize,
    state: &Arc<ServerState>,
) -> Result<Option<Supervisor>, StartupError> {
    tracing::info!(plan = %plan.describe(), "core plan");
    if config.plugins.is_empty() {
        return Ok(None);
    }
    let st = state.clone();
    let stopping = Arc::new(move || st.shutdown.is_requested());
    let supervisor = Supervisor::start(&config.plugins, plan, threads, stopping)?;
    let hub = supervisor.hub().clone();
    state.plugins.install(hub.clone());
    if !config.keyspaces.is_empty() {
        let find = |name: &str| hub.find(name.as_bytes());
        state
            .readthrough
            .install(ReadThrough::new(&config.keyspaces, find, threads)?);
    }
    Ok(Some(supervisor))
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
    match net::raise_nofile(want) {
        Ok(have) if have < want => tracing::warn!(
            have,
            want,
            "open-file limit is below maxclients + {SPARE_FDS}; connections past it will be refused"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
    }
}

fn open_cache(config: &Config) -> Result<Arc<Cache>, StartupError> {
    let started = Instant::now();
    let (cache, report) = Cache::open(CacheConfig {
        path: config.cache_file.clone(),
        max_memory: config.maxmemory,
        max_value_size: config.max_value_size,
        fresh: config.fresh,
    })?;
    let file = config.cache_file.display();
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
        tracing::info!(%file, maxmemory = config.maxmemory, fresh = config.fresh, "created new cache file");
    }
    Ok(cache)
}

fn settings(config: &Config, threads: usize) -> Settings {
    Settings {
        bind: config.bind.to_string(),
        port: config.port,
        threads,
        requirepass: config.requirepass.clone(),
        maxclients: config.maxclients,
        // Room for the command and key around the largest value.
        proto_max_bulk_len: config.max_value_size as usize + (64 << 10),
        client_output_limit: config.client_output_limit as usize,
        config_file: config.config_file.as_ref().map(|p| p.display().to_string()),
    }
}
