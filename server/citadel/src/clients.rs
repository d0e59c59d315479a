//! Registry of connected clients for CLIENT LIST / KILL / INFO. Sharded by
//! server thread and locked only on connect, disconnect and CLIENT commands;
//! the per-request fields are relaxed atomics.

use citadel_net::Endpoint;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Names a client set with CLIENT SETNAME / SETINFO / HELLO SETNAME.
#[derive(Debug, Default, Clone)]
pub struct ClientNames {
    pub name: Vec<u8>,
    pub lib_name: Vec<u8>,
    pub lib_ver: Vec<u8>,
    /// Its ACL user (AUTH, HELLO AUTH); empty until one is set: `default`.
    pub acl_user: Vec<u8>,
}

impl ClientNames {
    /// The client's ACL user name (CLIENT LIST's `user=`).
    pub fn user(&self) -> &[u8] {
        if self.acl_user.is_empty() {
            b"default"
        } else {
            &self.acl_user
        }
    }
}

/// One client as other threads see it.
#[derive(Debug)]
pub struct ClientShared {
    pub id: u64,
    pub peer: Endpoint,
    pub local: Endpoint,
    pub thread: usize,
    pub created_ms: u64,
    /// Unix ms of the last request (updated once per batch of commands).
    pub last_ms: AtomicU64,
    /// Global command index (see `table::by_index`) of the last command.
    pub last_cmd: AtomicU32,
    pub resp: AtomicU8,
    /// The selected database (CLIENT LIST's `db=`).
    pub db: AtomicU8,
    /// Set by CLIENT KILL from any thread; the owning loop then closes it.
    pub killed: Arc<AtomicBool>,
    /// CLIENT UNBLOCK's request to a blocked client (`Unblock`), taken by
    /// its blocked command when it runs again.
    pub unblock: AtomicU8,
    /// CLIENT LIST's mode flags (`ClientModes`), kept by the owning thread.
    pub modes: AtomicU8,
    pub names: Mutex<ClientNames>,
    /// Input bytes held, not yet run, and the input buffer's spare room
    /// (CLIENT LIST's `qbuf`, `qbuf-free`), set by the owning loop when
    /// they change.
    pub qbuf: AtomicU64,
    pub qbuf_free: AtomicU64,
    /// What a busy script's hook did to the client's transaction while
    /// its thread was stalled (`stall_tx` bits; `command/busy_door.rs`),
    /// taken by its session before its next command.
    pub stall_tx: AtomicU8,
    /// It has a Pub/Sub subscription (RESP2 subscribe mode while `resp`
    /// is 2), kept by its session for a busy script's hook.
    pub subscribed: AtomicBool,
}

/// Bits of `ClientShared::stall_tx`, in the order a session applies them.
pub mod stall_tx {
    /// EXEC was refused: the transaction is discarded, WATCHes with it.
    pub const DISCARDED: u8 = 1;
    /// MULTI began one.
    pub const BEGUN: u8 = 2;
    /// A command was refused inside it: EXEC answers EXECABORT.
    pub const REFUSED: u8 = 4;
}

/// The connection modes CLIENT LIST shows as flags, one bit each, in
/// Redis's flag order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ClientMode {
    /// `x`: inside MULTI.
    Multi = 1,
    /// `t`: CLIENT TRACKING on.
    Tracking = 2,
    /// `B`: tracking in BCAST mode.
    TrackingBcast = 4,
    /// `e`: CLIENT NO-EVICT on.
    NoEvict = 8,
    /// `T`: CLIENT NO-TOUCH on.
    NoTouch = 16,
}

impl ClientMode {
    const FLAGS: [(ClientMode, char); 5] = [
        (ClientMode::Multi, 'x'),
        (ClientMode::Tracking, 't'),
        (ClientMode::TrackingBcast, 'B'),
        (ClientMode::NoEvict, 'e'),
        (ClientMode::NoTouch, 'T'),
    ];
}

impl ClientShared {
    pub fn new(id: u64, peer: Endpoint, local: Endpoint, thread: usize, now_ms: u64) -> Self {
        ClientShared {
            id,
            peer,
            local,
            thread,
            created_ms: now_ms,
            last_ms: AtomicU64::new(now_ms),
            last_cmd: AtomicU32::new(u32::MAX),
            resp: AtomicU8::new(2),
            db: AtomicU8::new(0),
            killed: Arc::new(AtomicBool::new(false)),
            unblock: AtomicU8::new(Unblock::None as u8),
            modes: AtomicU8::new(0),
            names: Mutex::new(ClientNames::default()),
            qbuf: AtomicU64::new(0),
            qbuf_free: AtomicU64::new(0),
            stall_tx: AtomicU8::new(0),
            subscribed: AtomicBool::new(false),
        }
    }

    /// The owning loop's held input changed (see `qbuf`).
    pub fn set_input(&self, len: usize, spare: usize) {
        // ORDERING: Relaxed: figures for CLIENT LIST, read on their own.
        self.qbuf.store(len as u64, Ordering::Relaxed);
        self.qbuf_free.store(spare as u64, Ordering::Relaxed);
    }

    pub fn names(&self) -> MutexGuard<'_, ClientNames> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Turns `mode` on or off (the owning thread only: others read it).
    pub fn set_mode(&self, mode: ClientMode, on: bool) {
        // ORDERING: Relaxed: a display flag, read by CLIENT LIST only.
        let bits = self.modes.load(Ordering::Relaxed);
        let bits = if on {
            bits | mode as u8
        } else {
            bits & !(mode as u8)
        };
        self.modes.store(bits, Ordering::Relaxed);
    }

    /// Whether the client has a Pub/Sub subscription (the owning thread
    /// sets it).
    pub fn set_subscribed(&self, on: bool) {
        // ORDERING: Relaxed: read by the owning thread's busy-script hook.
        self.subscribed.store(on, Ordering::Relaxed);
    }

    /// Whether `mode` is on.
    pub fn has_mode(&self, mode: ClientMode) -> bool {
        // ORDERING: Relaxed: see `set_mode`.
        self.modes.load(Ordering::Relaxed) & mode as u8 != 0
    }

    /// CLIENT LIST's `flags` field: `P` for a subscriber, then the modes'
    /// letters, `N` when there is none (Redis's order).
    pub fn flags(&self, subscriber: bool) -> String {
        // ORDERING: Relaxed: see `set_mode`.
        let bits = self.modes.load(Ordering::Relaxed);
        let mut flags: String = subscriber.then_some('P').into_iter().collect();
        flags.extend(
            ClientMode::FLAGS
                .iter()
                .filter(|(mode, _)| bits & *mode as u8 != 0)
                .map(|(_, letter)| letter),
        );
        if flags.is_empty() {
            flags.push('N');
        }
        flags
    }

    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    /// Asks this (blocked) client's command to end as `how` says.
    pub fn request_unblock(&self, how: Unblock) {
        // ORDERING: Release, paired with the Acquire swap in
        // `take_unblock`; the mail that wakes the client follows.
        self.unblock.store(how as u8, Ordering::Release);
    }

    /// The pending CLIENT UNBLOCK request, cleared.
    pub fn take_unblock(&self) -> Unblock {
        // ORDERING: Acquire, paired with `request_unblock`.
        match self.unblock.swap(Unblock::None as u8, Ordering::Acquire) {
            1 => Unblock::Timeout,
            2 => Unblock::Error,
            _ => Unblock::None,
        }
    }
}

/// How CLIENT UNBLOCK ends a blocked command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unblock {
    None = 0,
    /// As if its timeout passed (the default).
    Timeout = 1,
    /// With the error `-UNBLOCKED client unblocked via CLIENT UNBLOCK`.
    Error = 2,
}

pub struct ClientRegistry {
    shards: Vec<Mutex<BTreeMap<u64, Arc<ClientShared>>>>,
}

impl ClientRegistry {
    pub fn new(shards: usize) -> Self {
        ClientRegistry {
            shards: (0..shards.max(1))
                .map(|_| Mutex::new(BTreeMap::new()))
                .collect(),
        }
    }

    fn shard(&self, thread: usize) -> MutexGuard<'_, BTreeMap<u64, Arc<ClientShared>>> {
        self.shards[thread % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn register(&self, client: Arc<ClientShared>) {
        self.shard(client.thread).insert(client.id, client);
    }

    pub fn unregister(&self, client: &ClientShared) {
        self.shard(client.thread).remove(&client.id);
    }

    /// The client with this id, if connected.
    pub fn get(&self, id: u64) -> Option<Arc<ClientShared>> {
        (0..self.shards.len()).find_map(|i| self.shard(i).get(&id).cloned())
    }

    pub fn len(&self) -> usize {
        (0..self.shards.len()).map(|i| self.shard(i).len()).sum()
    }

    /// The clients not killed: a killed one closes when its thread next
    /// turns, but is already gone for CLIENT LIST and INFO, as in Redis.
    pub fn live(&self) -> Vec<Arc<ClientShared>> {
        let mut all = self.snapshot();
        all.retain(|c| !c.is_killed());
        all
    }

    /// How many clients `live` would list, counted in place (INFO).
    pub fn live_len(&self) -> usize {
        (0..self.shards.len())
            .map(|i| self.shard(i).values().filter(|c| !c.is_killed()).count())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every client, ordered by id.
    pub fn snapshot(&self) -> Vec<Arc<ClientShared>> {
        let mut all: Vec<_> = (0..self.shards.len())
            .flat_map(|i| self.shard(i).values().cloned().collect::<Vec<_>>())
            .collect();
        all.sort_by_key(|c| c.id);
        all
    }
}
