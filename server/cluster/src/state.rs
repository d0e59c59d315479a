//! The cluster state every server thread reads on every keyed command,
//! without a lock: the current [`Topology`] behind a mutex that only
//! changes take, plus a generation counter. Each thread keeps its own
//! `Arc<Topology>` ([`ThreadView`]) and checks the counter with one load
//! per command; only when it moved does the thread take the mutex to fetch
//! the new topology (once per change per thread).
//!
//! Memory ordering: [`ClusterState::install`] replaces the topology and
//! then stores the new generation with `Release`, both under the mutex;
//! [`ThreadView::current`] loads the generation with `Acquire` and, when it
//! differs from its copy's, locks the mutex to clone the `Arc`. A thread
//! that sees generation g therefore fetches a topology at least as new as
//! g (the store happened inside the critical section the lock waits for).
//! A thread that has not yet seen a change serves one more command with
//! the previous map, which is what any node in transition does anyway:
//! the client is redirected, or served by the old owner.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use citadel_proto::cluster::{Member, MemberView, MembershipEvent};

use crate::slot_map::SlotMap;
use crate::topology::Topology;

pub struct ClusterState {
    /// This node's id (40 hex digits; derived from its announced address).
    my_id: String,
    /// This node's announced RESP address.
    my_addr: String,
    current: Mutex<Arc<Topology>>,
    generation: AtomicU64,
}

/// What applying a membership event did (for the log and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A new view: the map changed and `moved` slots changed owner.
    View {
        revision: u64,
        members: usize,
        moved: usize,
    },
    /// The same members as now: nothing changed.
    Unchanged,
    /// A view older than the one in force: ignored.
    Stale,
    /// This node stops serving until a view includes it again.
    Isolated,
}

/// Why a node with no view yet does not serve.
const NO_VIEW: &str = "no membership view yet";

impl ClusterState {
    /// The state of node `me` before its first view: every keyed command
    /// is answered `-CLUSTERDOWN` until one arrives.
    pub fn new(me: &Member) -> Arc<ClusterState> {
        let topology = Topology {
            generation: 1,
            map: Arc::new(SlotMap::empty()),
            previous: None,
            changed_at_ms: None,
            written: Arc::default(),
            dry: Default::default(),
            me: None,
            down: Some(NO_VIEW.into()),
        };
        Arc::new(ClusterState {
            my_id: me.id.clone(),
            my_addr: me.addr.clone(),
            current: Mutex::new(Arc::new(topology)),
            generation: AtomicU64::new(1),
        })
    }

    pub fn my_id(&self) -> &str {
        &self.my_id
    }

    pub fn my_addr(&self) -> &str {
        &self.my_addr
    }

    /// The map's generation: it moves with every change (a new view,
    /// isolation), without taking the mutex.
    pub fn generation(&self) -> u64 {
        // ORDERING: Acquire, paired with the Release in `install`.
        self.generation.load(Ordering::Acquire)
    }

    /// The topology in force (takes the mutex: for commands that read the
    /// whole map, and for [`ThreadView`] after a change).
    pub fn snapshot(&self) -> Arc<Topology> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<Topology>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies what a membership source reported.
    pub fn apply(&self, event: MembershipEvent) -> Applied {
        let mut current = self.lock();
        let applied = match event {
            MembershipEvent::View(view) => {
                if view.revision < current.map.revision() && current.down.is_none() {
                    return Applied::Stale;
                }
                if current.down.is_none() && current.map.members() == view.members.as_slice() {
                    return Applied::Unchanged;
                }
                let map = Arc::new(SlotMap::build(&view));
                let moved = current.map.moved_slots(&map).len();
                let (previous, changed_at_ms, written) = if current.map.members() == map.members() {
                    // Back from isolation with the same members: keep the
                    // hand-off source of the last real change.
                    let c = &*current;
                    (c.previous.clone(), c.changed_at_ms, c.written.clone())
                } else if current.map.members().is_empty() {
                    // This node's first view: until it came, the others
                    // served the cluster without it (it joined, or came
                    // back), so their map is what its slots move from.
                    let previous = self.map_without_me(&view);
                    (previous, Some(unix_ms()), Arc::default())
                } else {
                    let previous = Some(current.map.clone());
                    (previous, Some(unix_ms()), Arc::default())
                };
                let me = map.index_of(&self.my_id);
                if me.is_none() {
                    tracing::warn!(addr = %self.my_addr, "this node is not in the cluster's member list: it owns no slot");
                }
                let applied = Applied::View {
                    revision: view.revision,
                    members: map.members().len(),
                    moved,
                };
                self.install(&mut current, |generation| Topology {
                    generation,
                    map,
                    previous,
                    changed_at_ms,
                    written,
                    dry: Default::default(),
                    me,
                    down: None,
                });
                applied
            }
            MembershipEvent::Isolated { reason } => {
                tracing::warn!(%reason, "isolated from the cluster: not serving any slot");
                let (map, previous, me) =
                    (current.map.clone(), current.previous.clone(), current.me);
                let (changed_at_ms, written) = (current.changed_at_ms, current.written.clone());
                self.install(&mut current, |generation| Topology {
                    generation,
                    map,
                    previous,
                    changed_at_ms,
                    written,
                    dry: Default::default(),
                    me,
                    down: Some(reason),
                });
                Applied::Isolated
            }
        };
        if let Applied::View {
            revision,
            members,
            moved,
        } = &applied
        {
            tracing::info!(revision, members, moved, "cluster view installed");
        }
        applied
    }

    /// The map of `view`'s other members (None when there are none).
    fn map_without_me(&self, view: &MemberView) -> Option<Arc<SlotMap>> {
        let others = MemberView {
            revision: view.revision,
            members: view
                .members
                .iter()
                .filter(|m| m.id != self.my_id)
                .cloned()
                .collect(),
        };
        (!others.members.is_empty()).then(|| Arc::new(SlotMap::build(&others)))
    }

    /// Publishes the next topology (see the module comment for the order).
    fn install(&self, current: &mut Arc<Topology>, make: impl FnOnce(u64) -> Topology) {
        let generation = current.generation + 1;
        *current = Arc::new(make(generation));
        // ORDERING: Release, paired with the Acquire in `ThreadView::current`.
        self.generation.store(generation, Ordering::Release);
    }
}

/// One thread's copy of the topology, refreshed when the generation moves.
pub struct ThreadView {
    shared: Arc<ClusterState>,
    cached: Arc<Topology>,
}

impl ThreadView {
    pub fn new(shared: Arc<ClusterState>) -> ThreadView {
        let cached = shared.snapshot();
        ThreadView { shared, cached }
    }

    /// The topology in force: one atomic load, plus a lock only right
    /// after a change.
    #[inline]
    pub fn current(&mut self) -> &Topology {
        // ORDERING: Acquire, paired with the Release in `ClusterState::install`.
        if self.shared.generation.load(Ordering::Acquire) != self.cached.generation {
            self.cached = self.shared.snapshot();
        }
        &self.cached
    }

    /// The shared state (this node's id and address, the whole map).
    pub fn shared(&self) -> &Arc<ClusterState> {
        &self.shared
    }
}

/// Now, in Unix ms (a view change's time: see `Topology::changed_at_ms`).
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
