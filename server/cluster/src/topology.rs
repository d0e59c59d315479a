//! What one node knows of the cluster at one moment: the slot map in
//! force, the one before it, which member this node is, and whether its
//! membership source cut it off. Immutable; a change is a new `Topology`.

use std::sync::Arc;
use std::time::Duration;

use citadel_proto::cluster::Member;

use crate::marks::{DrySources, WriteMarks};
use crate::slot_map::SlotMap;

#[derive(Debug)]
pub struct Topology {
    /// Bumped by every change (see `ClusterState`).
    pub generation: u64,
    pub map: Arc<SlotMap>,
    /// The map before the last view change, if any: a slot that moved was
    /// served by its owner there (what a warm hand-off reads misses from).
    pub previous: Option<Arc<SlotMap>>,
    /// When `previous` stopped being the map in force, in Unix ms (a
    /// hand-off reads from it only for a while after; compared with the
    /// server thread's per-turn clock, so a write costs no clock read).
    pub changed_at_ms: Option<u64>,
    /// Keys written here since `changed_at_ms`: never handed off (the
    /// previous owner's copy is older).
    pub written: Arc<WriteMarks>,
    /// Previous owners that said they never owned the slot asked for.
    pub dry: DrySources,
    /// This node's index in `map.members()`, when it is a member.
    pub me: Option<usize>,
    /// Why this node must not serve its slots (isolated by its membership
    /// source, or no view yet); None when it may.
    pub down: Option<String>,
}

/// Where a command on one slot is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// Here.
    Local,
    /// By another member: answer `-MOVED <slot> <addr>`.
    Moved(&'a Member),
    /// Nowhere right now: `-CLUSTERDOWN`.
    Down,
}

impl Topology {
    /// Where `slot` is served.
    #[inline]
    pub fn route(&self, slot: u16) -> Route<'_> {
        if self.down.is_some() {
            return Route::Down;
        }
        match self.map.owner_index(slot) {
            None => Route::Down,
            Some(i) if Some(i) == self.me => Route::Local,
            Some(i) => Route::Moved(&self.map.members()[i]),
        }
    }

    /// Whether the last map change is at most `window` old at `now_ms`
    /// (Unix ms).
    pub fn in_handoff_window(&self, window: Duration, now_ms: u64) -> bool {
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        self.changed_at_ms
            .is_some_and(|at| now_ms.saturating_sub(at) <= window_ms)
    }

    /// The member that owned `slot` before a map change at most `window`
    /// ago, when it is another member of the map in force (a live node:
    /// where a warm hand-off reads a miss of `slot` from).
    pub fn handoff_source(&self, slot: u16, window: Duration, now_ms: u64) -> Option<&Member> {
        if !self.in_handoff_window(window, now_ms) {
            return None;
        }
        let before = self.previous_owner(slot)?;
        let live = self.map.index_of(&before.id)?;
        (Some(live) != self.me && !self.dry.is_dry(live)).then_some(before)
    }

    /// Whether this node owned `slot` in the map in force or the one
    /// before (what it may hand off).
    pub fn owned_lately(&self, slot: u16) -> bool {
        let mine = |map: &SlotMap| {
            let me = self.myself();
            map.owner(slot)
                .is_some_and(|o| me.is_some_and(|m| m.id == o.id))
        };
        mine(&self.map) || self.previous.as_deref().is_some_and(mine)
    }

    /// This node's member record, when it is a member.
    pub fn myself(&self) -> Option<&Member> {
        self.me.map(|i| &self.map.members()[i])
    }

    /// The member that owned `slot` before the last view change, when it
    /// is not its owner now (where a warm hand-off reads a miss from).
    pub fn previous_owner(&self, slot: u16) -> Option<&Member> {
        let before = self.previous.as_ref()?.owner(slot)?;
        match self.map.owner(slot) {
            Some(now) if now.id == before.id => None,
            _ => Some(before),
        }
    }
}
