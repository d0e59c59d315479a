//! The server's side of the stats region (`citadel_telemetry`): opening it
//! beside the cache file, giving each server thread its slot, and the two
//! threads that work off the hot path — the publisher (INFO's text into
//! the region once a second) and the `/metrics` HTTP endpoint.

mod http;
mod publisher;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use citadel_settings::{metrics as setting, Store};
use citadel_telemetry::{Geometry, Opened, Region};

use crate::introspect::calls::MAX_COMMANDS;
use crate::state::ServerState;

/// Hot keys the region keeps (the top of the hot-key detector's list).
const HOT_KEYS: usize = 32;
/// Room for INFO's text (every section but the per-command ones).
const INFO_BYTES: usize = 64 << 10;

/// The region's command slots past the command table's: one per RPC
/// method, named `rpc.get`, `rpc.mset` ... (the RPC front door's
/// operations, counted and timed like commands).
fn rpc_slot(method: citadel_proto::rpc::Method) -> usize {
    MAX_COMMANDS + method as usize
}

/// Counts one RPC request of `method` that ran for `nanos` (up to its
/// reply, or until it was parked to wait) in this thread's slot.
#[inline]
pub fn rpc_ran(
    slot: &citadel_telemetry::SlotStats,
    method: citadel_proto::rpc::Method,
    nanos: u64,
    failed: bool,
) {
    slot.command(rpc_slot(method), nanos, failed);
}

/// The region's path: the `stats-file` setting, else `<cache file>.stats`.
pub fn region_path(settings: &Store, cache_file: &Path) -> PathBuf {
    settings.get(&setting::STATS_FILE).unwrap_or_else(|| {
        let mut p = cache_file.as_os_str().to_owned();
        p.push(".stats");
        PathBuf::from(p)
    })
}

/// Opens the region for `threads` server threads and names its command
/// slots. A region that cannot be opened is logged and done without: the
/// server serves the same, only unobserved.
pub fn open_region(path: &Path, threads: usize) -> Option<Arc<Region>> {
    let geometry = Geometry {
        cores: threads,
        commands: MAX_COMMANDS + citadel_proto::rpc::Method::ALL.len(),
        hot_keys: HOT_KEYS,
        info_bytes: INFO_BYTES,
    };
    match Region::open(path, geometry) {
        Ok((region, opened)) => {
            match opened {
                Opened::Reused => {
                    tracing::info!(path = %path.display(), "stats region reopened: counters kept")
                }
                Opened::Created(why) => {
                    tracing::info!(path = %path.display(), %why, "stats region created")
                }
            }
            (0..MAX_COMMANDS)
                .map_while(|i| crate::command::command_name(i).map(|n| (i, n)))
                .for_each(|(i, name)| region.name_command(i, name));
            for method in citadel_proto::rpc::Method::ALL {
                if let Some(name) = method.op_type().variant_name() {
                    let name = format!("rpc.{}", name.to_ascii_lowercase());
                    region.name_command(rpc_slot(method), &name);
                }
            }
            Some(region)
        }
        Err(e) => {
            tracing::warn!("{e}; running without the stats region");
            None
        }
    }
}

/// Gives each plugin its entry in the region's plugin table (counted per
/// call from then on); plugins or versions past the table are logged.
fn attach_plugins(region: &Region, state: &ServerState) {
    let Some(hub) = state.plugins.hub() else {
        return;
    };
    let wanted: Vec<(&str, Vec<&str>)> = hub
        .plugins
        .iter()
        .map(|p| {
            let versions = p.traffic.versions.iter().map(|v| v.name.as_str());
            (p.config.name.as_str(), versions.collect())
        })
        .collect();
    for ((name, versions), (plugin, entry)) in wanted
        .iter()
        .zip(hub.plugins.iter().zip(region.plugins(&wanted)))
    {
        match entry {
            Some(entry) => {
                if versions.len() > citadel_telemetry::PLUGIN_VERSIONS {
                    tracing::warn!(plugin = %name, versions = versions.len(), "the stats region records the first {} versions only", citadel_telemetry::PLUGIN_VERSIONS);
                }
                let _ = plugin.shm.set(entry);
            }
            None => {
                tracing::warn!(plugin = %name, "no room in the stats region's plugin table ({} plugins): its calls are not recorded there", citadel_telemetry::PLUGINS)
            }
        }
    }
}

/// The publisher and the HTTP endpoint; dropping it stops and joins both
/// (before the server state goes, as the publisher reads it).
pub struct Observers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot serve metrics on {addr}: {source}")]
pub struct MetricsBindError {
    addr: SocketAddr,
    source: std::io::Error,
}

/// Starts the publisher, and the endpoint when `metrics-port` is set.
pub fn start(
    region: Arc<Region>,
    state: &Arc<ServerState>,
    bind: IpAddr,
) -> Result<Observers, MetricsBindError> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    if let Some(port) = state.settings.get(&setting::METRICS_PORT) {
        let addr = SocketAddr::new(bind, port);
        let listener = http::bind(addr).map_err(|source| MetricsBindError { addr, source })?;
        tracing::info!(%addr, "serving Prometheus metrics at /metrics");
        threads.push(http::spawn(listener, region.clone(), stop.clone()));
    }
    state.overload.stats.attach(&region);
    attach_plugins(&region, state);
    threads.push(publisher::spawn(region, state.clone(), stop.clone()));
    Ok(Observers { stop, threads })
}

impl Drop for Observers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
