//! Runs a load: connects, spawns one pinned io_uring worker per thread, runs the prefill,
//! warm-up and measured phases, prints progress, and merges the workers' stats.

pub mod cluster;
mod conn;
mod inflight;
mod recorder;
mod ring;
mod shm;
mod transport;
mod worker;

use std::net::ToSocketAddrs;
use std::sync::mpsc::{self, Receiver};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use rand::{rngs::SmallRng, SeedableRng};

use crate::cli::{RunArgs, WorkloadArgs};
use crate::cpu;
use crate::error::LoadgenError;
use crate::protocol::{with_protocol, Protocol, ProtocolKind, WithProtocol};
use crate::schedule::Schedule;
use crate::stats::{new_histogram, Stats};
use crate::workload::values::ValuePool;
use crate::workload::Generator;

use conn::Conn;
use recorder::Progress;
pub use transport::{Endpoint, Stream};
use worker::{Clock, ClusterSetup, PhaseSpec, Worker};

/// `--elements` at most: element numbers are written as 12 digits.
const MAX_ELEMENTS: u64 = 1_000_000_000_000;

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub servers: Vec<Endpoint>,
    pub protocol: ProtocolKind,
    pub workload: WorkloadArgs,
    /// Print the live progress line on stderr.
    pub progress: bool,
    /// Cluster mode: `servers` are seeds; requests go to the node serving their slot,
    /// following up to this many redirects each (`None`: not a cluster).
    pub cluster: Option<u8>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The measured phase.
    pub stats: Stats,
    /// Requests of the warm-up.
    pub warmup: Stats,
    /// The prefill's requests, when `--prefill` was given.
    pub prefill: Option<Stats>,
    /// From the start of measurement to the last measured reply.
    pub elapsed: Duration,
    /// CPU time (user + system) this process spent during the measured phase.
    pub client_cpu: Duration,
    pub threads: usize,
    pub connections: usize,
    /// Cluster mode: the nodes of the slot map, each connection's sockets.
    pub cluster_nodes: Vec<String>,
}

impl RunResult {
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.stats.requests() as f64 / secs
        } else {
            0.0
        }
    }
}

/// The command line's servers: its `--shm` or `--unix` sockets, else its resolved
/// `--server`s.
pub fn endpoints(args: &RunArgs) -> Result<Vec<Endpoint>, LoadgenError> {
    if !args.shm.is_empty() {
        Ok(args.shm.iter().cloned().map(Endpoint::Shm).collect())
    } else if !args.unix.is_empty() {
        Ok(args.unix.iter().cloned().map(Endpoint::Unix).collect())
    } else {
        resolve(&args.servers)
    }
}

/// Resolves `host:port` strings.
pub fn resolve(servers: &[String]) -> Result<Vec<Endpoint>, LoadgenError> {
    servers
        .iter()
        .map(|s| {
            s.to_socket_addrs()
                .and_then(|mut it| {
                    it.next().ok_or_else(|| {
                        std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
                    })
                })
                .map(Endpoint::Tcp)
                .map_err(|source| LoadgenError::Resolve {
                    addr: s.clone(),
                    source,
                })
        })
        .collect()
}

/// Runs the configured load to completion.
pub fn run(cfg: &LoadConfig) -> Result<RunResult, LoadgenError> {
    validate(cfg)?;
    with_protocol(cfg.protocol, cfg.workload.batch, RunWith(cfg))
}

fn validate(cfg: &LoadConfig) -> Result<(), LoadgenError> {
    let w = &cfg.workload;
    let bad = |m: &str| Err(LoadgenError::Config(m.into()));
    if cfg.servers.is_empty() {
        return bad("no --server");
    }
    let shm = (cfg.servers.iter())
        .filter(|e| matches!(e, Endpoint::Shm(_)))
        .count();
    if shm > 0 && cfg.protocol != ProtocolKind::Rpc {
        return bad("--shm carries Citadel RPC frames only: add --protocol rpc");
    }
    // A worker either drives io_uring sockets or polls rings, not both.
    if shm > 0 && shm < cfg.servers.len() {
        return bad("shm endpoints cannot be mixed with sockets in one run");
    }
    if w.threads == 0 || w.conns == 0 || w.pipeline == 0 {
        return bad("--threads, --conns and --pipeline must be at least 1");
    }
    if w.batch == 0 || (w.batch > 1 && cfg.protocol != ProtocolKind::Rpc) {
        return bad("--batch must be at least 1, and above 1 only with --protocol rpc");
    }
    if w.keys == 0 {
        return bad("--keys must be at least 1");
    }
    if matches!(w.rate, Some(r) if !(r > 0.0 && r.is_finite())) {
        return bad("--rate must be a positive number");
    }
    if w.requests.is_none() && w.duration.is_zero() {
        return bad("--duration must be positive (or give --requests)");
    }
    let resp = cfg.protocol == ProtocolKind::Resp;
    if matches!(w.mget, Some(n) if n == 0 || !resp) {
        return bad("--mget must be at least 1, and needs --protocol resp");
    }
    if let Some(mix) = &w.ops {
        if w.mget.is_some() {
            return bad("--ops and --mget do not mix (--mget turns --ratio's GETs into MGETs)");
        }
        if let Some(op) = mix.ops().find(|op| op.resp_only() && !resp) {
            return bad(&format!(
                "--ops {op}: collection operations and bitcount need --protocol resp"
            ));
        }
    }
    if w.collection_keys == 0 {
        return bad("--collection-keys must be at least 1");
    }
    if !(1..=MAX_ELEMENTS).contains(&w.elements) {
        return bad("--elements must be between 1 and 10^12 (element numbers have 12 digits)");
    }
    if cfg.cluster.is_some()
        && (!resp || (cfg.servers.iter()).any(|e| !matches!(e, Endpoint::Tcp(_))))
    {
        return bad("--cluster needs --protocol resp over TCP (--server seeds)");
    }
    Ok(())
}

struct RunWith<'a>(&'a LoadConfig);

impl WithProtocol for RunWith<'_> {
    type Output = Result<RunResult, LoadgenError>;
    fn call<P: Protocol>(self, proto: P) -> Self::Output {
        run_with(self.0, proto)
    }
}

/// A worker thread's share: its sockets (global connection index, node in the cluster
/// map or 0, server, socket).
type ThreadConns = Vec<(u64, usize, Endpoint, Stream)>;

struct ThreadResult {
    phases: [Stats; 2],
    prefill: Option<Stats>,
    measure_from_ns: u64,
    last_measured_ns: u64,
}

fn run_with<P: Protocol>(cfg: &LoadConfig, proto: P) -> Result<RunResult, LoadgenError> {
    let w = &cfg.workload;
    let total = (w.threads * w.conns) as u64;
    let cpus = w
        .cpus
        .as_ref()
        .map(|c| c.0.clone())
        .unwrap_or_else(cpu::allowed_cpus);
    let values = ValuePool::new(w.value_size, &mut SmallRng::seed_from_u64(w.seed));
    let slot_map = cluster_map(cfg)?;
    let servers = match &slot_map {
        Some(map) => map.nodes.iter().copied().map(Endpoint::Tcp).collect(),
        None => cfg.servers.clone(),
    };
    let per_thread = connect_all(cfg, &servers, total)?;
    let clock = Clock(Instant::now());
    let barrier = Barrier::new(w.threads + 1);
    let (tx, rx) = mpsc::channel::<Progress>();

    let (results, cpu_start, cpu_end) = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .enumerate()
            .map(|(t, socks)| {
                let tx = Some(tx.clone());
                let (proto, values, barrier) = (proto.clone(), &values, &barrier);
                let cluster = slot_map.clone().zip(cfg.cluster);
                let cpu = (!cpus.is_empty()).then(|| cpus[t % cpus.len()]);
                std::thread::Builder::new()
                    .name(format!("loadgen-{t}"))
                    .spawn_scoped(scope, move || {
                        if let Some(cpu) = cpu {
                            if let Err(e) = cpu::pin_current_thread(cpu) {
                                tracing::warn!("cannot pin worker {t} to cpu {cpu}: {e}");
                            }
                        }
                        let shared = Shared {
                            cfg,
                            values,
                            cluster,
                            clock,
                            barrier,
                            total,
                        };
                        worker_main(&shared, proto, socks, tx)
                    })
                    .expect("spawn worker thread")
            })
            .collect();
        drop(tx);
        barrier.wait();
        let measure_at = Instant::now() + w.warmup;
        let cpu_start = watch_progress(&rx, cfg.progress, measure_at);
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (results, cpu_start, cpu::self_cpu_time())
    });

    let mut stats = Stats::default();
    let mut warmup = Stats::default();
    let mut prefill: Option<Stats> = None;
    let (mut from, mut last) = (u64::MAX, 0u64);
    for r in results {
        let r = r.map_err(|_| LoadgenError::WorkerPanicked)??;
        warmup.merge(&r.phases[0]);
        stats.merge(&r.phases[1]);
        if let Some(p) = &r.prefill {
            prefill.get_or_insert_with(Stats::default).merge(p);
        }
        from = from.min(r.measure_from_ns);
        last = last.max(r.last_measured_ns);
    }
    Ok(RunResult {
        stats,
        warmup,
        prefill,
        elapsed: Duration::from_nanos(last.saturating_sub(from)),
        client_cpu: cpu_end.saturating_sub(cpu_start),
        threads: w.threads,
        connections: total as usize,
        cluster_nodes: match &slot_map {
            Some(map) => map.nodes.iter().map(|a| a.to_string()).collect(),
            None => Vec::new(),
        },
    })
}

/// Cluster mode: the slot map from the first seed that answers CLUSTER SLOTS.
fn cluster_map(cfg: &LoadConfig) -> Result<Option<cluster::SlotMap>, LoadgenError> {
    if cfg.cluster.is_none() {
        return Ok(None);
    }
    let seeds: Vec<_> = (cfg.servers.iter())
        .filter_map(|e| match e {
            Endpoint::Tcp(a) => Some(*a),
            _ => None,
        })
        .collect();
    cluster::SlotMap::fetch(&seeds)
        .map(Some)
        .map_err(|source| LoadgenError::Connect {
            addr: format!("CLUSTER SLOTS of {}", cfg.servers[0]),
            source,
        })
}

/// Opens every connection up front (failing fast with a clear error) and deals them out
/// to threads; connection `g` goes to server `g % servers`, or in cluster mode is one
/// socket to each node.
fn connect_all(
    cfg: &LoadConfig,
    servers: &[Endpoint],
    total: u64,
) -> Result<Vec<ThreadConns>, LoadgenError> {
    let w = &cfg.workload;
    let mut per_thread: Vec<ThreadConns> = (0..w.threads)
        .map(|_| Vec::with_capacity(w.conns))
        .collect();
    for g in 0..total {
        let nodes: Vec<(usize, &Endpoint)> = match cfg.cluster {
            Some(_) => servers.iter().enumerate().collect(),
            None => vec![(0, &servers[g as usize % servers.len()])],
        };
        for (node, addr) in nodes {
            let sock =
                addr.connect(Duration::from_secs(3))
                    .map_err(|source| LoadgenError::Connect {
                        addr: addr.to_string(),
                        source,
                    })?;
            per_thread[g as usize / w.conns].push((g, node, addr.clone(), sock));
        }
    }
    Ok(per_thread)
}

/// What every worker thread shares.
struct Shared<'a> {
    cfg: &'a LoadConfig,
    values: &'a ValuePool,
    cluster: Option<(cluster::SlotMap, u8)>,
    clock: Clock,
    barrier: &'a Barrier,
    total: u64,
}

fn worker_main<P: Protocol>(
    shared: &Shared<'_>,
    proto: P,
    socks: ThreadConns,
    tx: Option<mpsc::Sender<Progress>>,
) -> Result<ThreadResult, LoadgenError> {
    let Shared {
        cfg,
        values,
        clock,
        barrier,
        total,
        ..
    } = *shared;
    let w = &cfg.workload;
    // An MGET names up to --mget keys of up to ~20 digits plus the prefix and a tag each.
    let key_bytes = (w.key_prefix.len() + 48) * w.mget.unwrap_or(1);
    // 128: a command's name, argument headers, an element and a ZADD score.
    let max_request = w.value_size.max + key_bytes + 128;
    let conns: Vec<Conn> = socks
        .into_iter()
        .map(|(g, node, addr, sock)| {
            let gen = Generator::mix(w, g, total);
            Conn::new(g, node, addr, sock, gen, w.pipeline, max_request)
        })
        .collect();
    // Every thread must reach the barrier, or the others wait forever.
    let cluster = shared
        .cluster
        .clone()
        .map(|(map, max_redirects)| ClusterSetup {
            map,
            max_redirects,
            joiner: worker::Joiner { total, max_request },
        });
    let setup =
        Worker::new(proto, conns, w, values, cluster, clock, tx).map_err(LoadgenError::Ring);
    let prefill = match setup {
        Ok(mut worker) => {
            let prefill = w.prefill.then(|| run_prefill(&mut worker, w, total));
            Ok((worker, prefill))
        }
        Err(e) => Err(e),
    };
    barrier.wait();
    let (mut worker, prefill) = prefill?;
    let prefill = prefill.transpose()?;

    let start = clock.now();
    let measure_from_ns = start + w.warmup.as_nanos() as u64;
    let send_until_ns = match w.requests {
        Some(_) => u64::MAX,
        None => measure_from_ns + w.duration.as_nanos() as u64,
    };
    for c in &mut worker.conns {
        let g = c.global;
        let budget = w.requests.map(|n| n / total + u64::from(g < n % total));
        let sched = w.rate.map(|r| Schedule::new(start, r, g, total));
        c.begin_phase(Generator::mix(w, g, total), budget, sched);
    }
    let spec = PhaseSpec {
        measure_from_ns,
        send_until_ns,
        open_loop: w.rate.is_some(),
    };
    let phases = worker.run_phase(spec).map_err(LoadgenError::Ring)?;
    let last_measured_ns = worker.rec.last_measured_ns;
    worker.shutdown();
    Ok(ThreadResult {
        phases,
        prefill,
        measure_from_ns,
        last_measured_ns,
    })
}

/// SETs this thread's share of the key space, closed loop. A SET the
/// server shed (`-OVERLOAD`) leaves its key missing: an error, never a
/// prefill that looks complete.
fn run_prefill<P: Protocol>(
    worker: &mut Worker<'_, P>,
    w: &WorkloadArgs,
    total: u64,
) -> Result<Stats, LoadgenError> {
    for c in &mut worker.conns {
        let g = c.global;
        let (start, end) = (w.keys * g / total, w.keys * (g + 1) / total);
        c.begin_phase(Generator::prefill(w.seed, g, start, end), None, None);
    }
    let spec = PhaseSpec {
        measure_from_ns: 0,
        send_until_ns: u64::MAX,
        open_loop: false,
    };
    let [_, stats] = worker.run_phase(spec).map_err(LoadgenError::Ring)?;
    match stats.total_shed() {
        0 => Ok(stats),
        shed => Err(LoadgenError::PrefillShed {
            shed,
            requests: stats.requests(),
            sample: stats.shed_sample.clone().unwrap_or_default(),
        }),
    }
}

/// Prints one progress line per second until every worker is done; returns the client CPU
/// time sampled when measurement began.
fn watch_progress(rx: &Receiver<Progress>, print: bool, measure_at: Instant) -> Duration {
    let started = Instant::now();
    let mut cpu_start = None;
    let mut window = Progress {
        replies: 0,
        errors: 0,
        latency: new_histogram(),
        measuring: false,
    };
    let mut next_print = started + Duration::from_secs(1);
    loop {
        if cpu_start.is_none() && Instant::now() >= measure_at {
            cpu_start = Some(cpu::self_cpu_time());
        }
        let timeout = next_print
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(50));
        match rx.recv_timeout(timeout) {
            Ok(p) => {
                window.replies += p.replies;
                window.errors += p.errors;
                window.measuring |= p.measuring;
                let _ = window.latency.add(&p.latency);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if Instant::now() >= next_print {
            let h = &window.latency;
            if print {
                eprintln!(
                    "[{:>4.0}s] {:>12.0} ops/s  p50 {:>9.1}us  p99 {:>9.1}us  errors {}{}",
                    started.elapsed().as_secs_f64(),
                    window.replies as f64,
                    h.value_at_quantile(0.5) as f64 / 1e3,
                    h.value_at_quantile(0.99) as f64 / 1e3,
                    window.errors,
                    if window.measuring {
                        ""
                    } else {
                        "  (warm-up/prefill)"
                    },
                );
            }
            window.replies = 0;
            window.errors = 0;
            window.measuring = false;
            window.latency.reset();
            next_print += Duration::from_secs(1);
        }
    }
    cpu_start.unwrap_or_else(cpu::self_cpu_time)
}
