//! Starting the server threads: bind the listeners, then in each thread pin
//! the CPU, build the io_uring, buffer ring and service, report readiness, and
//! run the loop. Returns when every thread has finished its shutdown.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use super::bufring::BufRing;
use super::event_loop::Worker;
use super::listener::Listening;
use super::peer_watch::Relief;
use super::shared::Shared;
use super::stats::LoopStats;
use super::{affinity, listener, uring, Door, NetError, Service};

/// Network settings of the whole server.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub addr: SocketAddr,
    /// A Unix domain socket to serve too (every thread accepts on it).
    pub unix: Option<UnixSocket>,
    /// More front doors (door 1, 2, ...; `addr` and `unix` are door 0): a
    /// session learns its connection's door at open, so a second protocol
    /// gets its own listeners while the loop stays protocol-free.
    pub doors: Vec<DoorConfig>,
    /// One entry per thread: the CPU to pin it to, if any.
    pub cpus: Vec<Option<usize>>,
    /// Unsent reply bytes past which a client is dropped.
    pub client_output_limit: usize,
    /// Largest partial command kept while waiting for the rest.
    pub max_input: usize,
    /// At shutdown: how long parked clients (still owed a reply, e.g. a
    /// pipeline call) may wait for it before they are closed; clients that
    /// only do not read their replies are closed after 2 s.
    pub drain_wait: std::time::Duration,
    /// Provided receive buffers per thread (a power of two) and their size.
    pub recv_buffers: u16,
    pub recv_buffer_size: usize,
}

impl NetConfig {
    /// `addr` served by one thread per entry of `cpus`, with the loop's own
    /// defaults for everything else (a caller sets the limits it configures).
    pub fn new(addr: SocketAddr, cpus: Vec<Option<usize>>) -> NetConfig {
        NetConfig {
            addr,
            unix: None,
            doors: Vec::new(),
            cpus,
            client_output_limit: 256 << 20,
            max_input: 1 << 30,
            drain_wait: std::time::Duration::from_secs(2),
            recv_buffers: 512,
            recv_buffer_size: 16 << 10,
        }
    }
}

/// A Unix domain socket to listen on (Redis's `unixsocket`, `unixsocketperm`).
#[derive(Debug, Clone)]
pub struct UnixSocket {
    pub path: PathBuf,
    /// File mode of the socket; 0 leaves it to the umask.
    pub perm: u32,
}

/// A front door beyond the main one: a TCP address, a Unix socket, or both.
#[derive(Debug, Clone, Default)]
pub struct DoorConfig {
    pub tcp: Option<SocketAddr>,
    pub unix: Option<UnixSocket>,
}

/// The bound listening sockets: per door, one TCP listener per thread and
/// the Unix socket (whose file is removed when this is dropped).
pub struct Listeners {
    /// Per thread: (door, listener).
    tcp: Vec<Vec<(Door, TcpListener)>>,
    unix: Vec<(Door, socket2::Socket, PathBuf)>,
    /// The Unix sockets' paths (removed at the end).
    paths: Vec<PathBuf>,
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Binds one listener per thread, and the Unix socket if configured (done
/// before the cache is opened, so a second server on the same port fails
/// before touching its cache file).
pub fn bind(cfg: &NetConfig) -> Result<Listeners, NetError> {
    let threads = cfg.cpus.len();
    let mut listeners = Listeners {
        tcp: (0..threads).map(|_| Vec::new()).collect(),
        unix: Vec::new(),
        paths: Vec::new(),
    };
    let main = DoorConfig {
        tcp: Some(cfg.addr),
        unix: cfg.unix.clone(),
    };
    for (index, door) in std::iter::once(&main).chain(&cfg.doors).enumerate() {
        let id = Door(index as u8);
        if let Some(addr) = door.tcp {
            let bound = listener::bind_all(addr, threads)
                .map_err(|source| NetError::Bind { addr, source })?;
            for (mine, l) in listeners.tcp.iter_mut().zip(bound) {
                mine.push((id, l));
            }
        }
        if let Some(u) = &door.unix {
            let socket =
                listener::bind_unix(&u.path, u.perm).map_err(|source| NetError::BindUnix {
                    path: u.path.display().to_string(),
                    source,
                })?;
            listeners.paths.push(u.path.clone());
            listeners.unix.push((id, socket, u.path.clone()));
        }
    }
    Ok(listeners)
}

/// Runs the server until shutdown. `make_service(i)` builds thread `i`'s
/// service inside that thread; `on_ready` runs once every thread is serving.
pub fn serve<S, F>(
    cfg: &NetConfig,
    listeners: Listeners,
    stats: &[Arc<LoopStats>],
    make_service: F,
    on_ready: impl FnOnce(),
) -> Result<(), NetError>
where
    S: Service,
    F: Fn(usize) -> Result<S, String> + Sync,
{
    let mut listeners = listeners;
    assert_eq!(
        listeners.tcp.len(),
        stats.len(),
        "one LoopStats per listener"
    );
    // Each thread's listening sockets, moved into it (a thread that stops
    // closes them): its TCP listeners and its own descriptor of each Unix
    // socket. `listeners` keeps only the sockets' paths, removed at the end.
    let unix = std::mem::take(&mut listeners.unix);
    let mut per_thread = Vec::with_capacity(listeners.tcp.len());
    for tcp in std::mem::take(&mut listeners.tcp) {
        let mut mine: Vec<Listening> = tcp
            .into_iter()
            .map(|(door, l)| Listening::tcp(door, l))
            .collect();
        for (door, socket, path) in &unix {
            let dup = socket
                .try_clone()
                .map_err(|e| NetError::Unavailable(format!("duplicating the Unix socket: {e}")))?;
            mine.push(Listening::unix(*door, dup, path));
        }
        per_thread.push(mine);
    }
    drop(unix);
    let listener_fds = per_thread
        .iter()
        .map(|mine| {
            mine.iter()
                .filter_map(|l| {
                    let fd = l.socket.as_ref()?.as_raw_fd();
                    Some((l.door, fd, l.unix_path.clone()))
                })
                .collect()
        })
        .collect();
    // The per-thread descriptors are all that listen now.
    let shared = Arc::new(Shared {
        clients: AtomicUsize::new(0),
        client_output_limit: cfg.client_output_limit,
        max_input: cfg.max_input,
        drain_wait: cfg.drain_wait,
        stop: AtomicBool::new(false),
        limits: Default::default(),
        relief: Relief::new(stats.to_vec(), listener_fds),
    });
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), NetError>>();
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (index, listener) in per_thread.into_iter().enumerate() {
            let ready = ready_tx.clone();
            let (shared, stats, make_service) =
                (shared.clone(), stats[index].clone(), &make_service);
            let cpu = cfg.cpus[index];
            let handle = std::thread::Builder::new()
                .name(format!("citadel-{index}"))
                .spawn_scoped(scope, move || {
                    let worker = match setup(
                        cfg,
                        index,
                        cpu,
                        listener,
                        stats,
                        shared.clone(),
                        make_service,
                    ) {
                        Ok(worker) => worker,
                        Err(e) => {
                            let _ = ready.send(Err(e));
                            return Ok(());
                        }
                    };
                    let _ = ready.send(Ok(()));
                    drop(ready);
                    let result = worker.run();
                    if result.is_err() {
                        shared.stop.store(true, Ordering::Relaxed);
                    }
                    result
                })
                .map_err(|e| NetError::Thread {
                    thread: index,
                    message: e.to_string(),
                })?;
            handles.push(handle);
        }
        drop(ready_tx);
        let mut first_error = None;
        for _ in 0..handles.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    shared.stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
                Err(_) => break,
            }
        }
        if first_error.is_none() {
            on_ready();
        }
        for (index, handle) in handles.into_iter().enumerate() {
            let result = handle.join().unwrap_or_else(|_| {
                Err(NetError::Thread {
                    thread: index,
                    message: "panicked".into(),
                })
            });
            if let Err(e) = result {
                shared.stop.store(true, Ordering::Relaxed);
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}

fn setup<S, F>(
    cfg: &NetConfig,
    index: usize,
    cpu: Option<usize>,
    listener: Vec<Listening>,
    stats: Arc<LoopStats>,
    shared: Arc<Shared>,
    make_service: &F,
) -> Result<Worker<S>, NetError>
where
    S: Service,
    F: Fn(usize) -> Result<S, String>,
{
    if let Some(cpu) = cpu {
        match affinity::pin_current_thread(cpu) {
            Ok(()) => stats.cpu.store(cpu as u64, Ordering::Relaxed),
            Err(e) => tracing::warn!(thread = index, cpu, "cannot pin thread: {e}"),
        }
    }
    let uring = uring::create()?;
    let bufs = BufRing::new(&uring, 0, cfg.recv_buffers, cfg.recv_buffer_size)
        .map_err(NetError::BufRing)?;
    let svc = make_service(index).map_err(|message| NetError::Thread {
        thread: index,
        message,
    })?;
    Ok(Worker::new(
        uring, bufs, listener, svc, index, stats, shared,
    ))
}
