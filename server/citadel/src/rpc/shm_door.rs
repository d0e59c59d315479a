//! The shared-memory transport's handshake socket (`--shm-socket`): a
//! small thread off the hot path accepts clients, creates each one's ring
//! pair (`citadel_proto::rpc::shm`), hands it to a server thread (round
//! robin) through that thread's lane, and grants the client its
//! descriptors. It then watches every client's socket: when one closes
//! (the client exited or was killed) the owning thread drops the rings.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use citadel_proto::ring::EventFd;
use citadel_proto::rpc::shm::{grant_bytes, GrantRefused, ShmChannel, ShmHello};
use crossbeam::channel::{unbounded, Receiver, Sender};

/// What the door tells a server thread.
pub enum ShmEvent {
    /// Serve this client from now on.
    Attach {
        id: u64,
        channel: ShmChannel,
        /// Set by the thread when it dropped the client (its reply ring
        /// stayed full): the door then closes the socket.
        dropped: Arc<AtomicBool>,
    },
    /// The client's socket closed: drop its rings.
    Detach { id: u64 },
}

/// One server thread's end: its events and its doorbell (the eventfd
/// every client of the thread rings; one of the thread's wake fds).
pub struct ShmLane {
    pub events: Receiver<ShmEvent>,
    pub doorbell: EventFd,
}

/// The door's end of one thread's lane.
struct LaneSender {
    events: Sender<ShmEvent>,
    doorbell: EventFd,
}

/// A granted client the door watches.
struct Watched {
    id: u64,
    thread: usize,
    socket: UnixStream,
    dropped: Arc<AtomicBool>,
}

pub struct ShmDoor {
    listener: UnixListener,
    path: PathBuf,
    lanes: Vec<LaneSender>,
    /// Each thread takes its lane once (`take_lane`).
    unclaimed: Mutex<Vec<Option<ShmLane>>>,
}

/// Ids of shared-memory sessions: apart from the loops' connection ids
/// (which carry their thread in the top 16 bits), so CLIENT LIST tells
/// them apart.
const ID_BASE: u64 = 0xffff << 48;

impl ShmDoor {
    /// Binds the handshake socket (a stale file is replaced) and makes one
    /// lane per server thread.
    pub fn bind(path: &Path, threads: usize, perm: u32) -> std::io::Result<ShmDoor> {
        use std::os::unix::fs::PermissionsExt;
        if UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another server listens on it",
            ));
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        if perm != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
        }
        listener.set_nonblocking(true)?;
        let mut lanes = Vec::new();
        let mut unclaimed = Vec::new();
        for _ in 0..threads {
            let (tx, rx) = unbounded();
            let doorbell = EventFd::new()?;
            lanes.push(LaneSender {
                events: tx,
                doorbell: doorbell.try_clone()?,
            });
            unclaimed.push(Some(ShmLane {
                events: rx,
                doorbell,
            }));
        }
        Ok(ShmDoor {
            listener,
            path: path.to_path_buf(),
            lanes,
            unclaimed: Mutex::new(unclaimed),
        })
    }

    /// Thread `index`'s lane (once).
    pub fn take_lane(&self, index: usize) -> Option<ShmLane> {
        let mut lanes = self.unclaimed.lock().unwrap_or_else(|p| p.into_inner());
        lanes.get_mut(index).and_then(Option::take)
    }

    /// Serves handshakes until `stop` is set.
    pub fn run(&self, stop: &AtomicBool) {
        let mut watched: Vec<Watched> = Vec::new();
        let mut next = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let mut fds = vec![libc::pollfd {
                fd: self.listener.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            fds.extend(watched.iter().map(|w| libc::pollfd {
                fd: w.socket.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }));
            // SAFETY: `fds` is a live array of pollfd of the length given.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
            if n < 0 {
                continue;
            }
            let mut gone = Vec::new();
            for (i, w) in watched.iter_mut().enumerate() {
                let ready = fds[i + 1].revents != 0;
                if w.dropped.load(Ordering::Relaxed) || (ready && closed(&mut w.socket)) {
                    gone.push(i);
                }
            }
            for i in gone.into_iter().rev() {
                let w = watched.swap_remove(i);
                self.tell(w.thread, ShmEvent::Detach { id: w.id });
                tracing::debug!(client = w.id, "shm client gone; rings reclaimed");
            }
            if fds[0].revents != 0 {
                while let Ok((socket, _)) = self.listener.accept() {
                    next += 1;
                    let thread = (next as usize) % self.lanes.len().max(1);
                    if let Some(w) = self.admit(socket, ID_BASE | next, thread) {
                        watched.push(w);
                    }
                }
            }
        }
    }

    fn tell(&self, thread: usize, event: ShmEvent) {
        let lane = &self.lanes[thread];
        if lane.events.send(event).is_ok() {
            let _ = lane.doorbell.signal();
        }
    }

    /// Reads the client's hello, creates its rings, attaches them to
    /// `thread` and grants them; None if the handshake failed.
    fn admit(&self, mut socket: UnixStream, id: u64, thread: usize) -> Option<Watched> {
        let _ = socket.set_nonblocking(false);
        let _ = socket.set_read_timeout(Some(Duration::from_secs(1)));
        let mut hello = [0u8; 16];
        let refuse = |socket: &UnixStream, e: GrantRefused| {
            tracing::debug!("shm handshake refused: {e}");
            let _ = citadel_proto::rpc::shm::send_with_fds(socket, &grant_bytes(Err(e)), &[]);
            None
        };
        if socket.read_exact(&mut hello).is_err() {
            return refuse(&socket, GrantRefused::BadHello);
        }
        let hello = match ShmHello::parse(&hello) {
            Ok(h) => h,
            Err(e) => return refuse(&socket, e),
        };
        let channel = match ShmChannel::create(hello.capacity) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("shm client: cannot create rings: {e}");
                return refuse(&socket, GrantRefused::Resources);
            }
        };
        let lane = &self.lanes[thread];
        if let Err(e) = channel.grant(&socket, &lane.doorbell) {
            tracing::debug!("shm handshake: {e}");
            return None;
        }
        let dropped = Arc::new(AtomicBool::new(false));
        self.tell(
            thread,
            ShmEvent::Attach {
                id,
                channel,
                dropped: dropped.clone(),
            },
        );
        let _ = socket.set_nonblocking(true);
        tracing::debug!(
            client = id,
            thread,
            fd = socket.as_fd().as_raw_fd(),
            "shm client attached"
        );
        Some(Watched {
            id,
            thread,
            socket,
            dropped,
        })
    }
}

impl Drop for ShmDoor {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// True when the client closed its socket (anything it wrote is ignored).
fn closed(socket: &mut UnixStream) -> bool {
    let mut buf = [0u8; 64];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}
