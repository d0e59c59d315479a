//! A pipeline stage's output rings (the next stage's request rings, one
//! per next-stage instance slot) and which one each call goes to.
//!
//! The host closes the rings of a next-stage slot that takes no new calls
//! (a spare, or one draining for an overlapped upgrade: the ring's gate,
//! `citadel_proto::ring` `gate.rs`). A call is opened in one open ring,
//! spread by id over the open ones, and every later record of it goes to
//! the same ring until the record that ends it, even if that ring closes
//! meanwhile: the server completes a call on its `End`, so a call's
//! records must reach it in order, through one instance.

use std::collections::{HashMap, VecDeque};

use citadel_proto::pipeline::{MessageType, VERSION};
use citadel_proto::Producer;

/// Calls kept open at most per ring pair; the oldest is ended beyond it (a
/// call whose end never passed here: answered by an error elsewhere).
const MAX_OPEN_CALLS: usize = 4096;

#[derive(Debug, Default)]
pub(crate) struct Outputs {
    rings: Vec<Producer>,
    /// Open calls: id -> ring.
    open: HashMap<u64, usize>,
    /// Open calls' ids, oldest first (may hold ended ones).
    order: VecDeque<u64>,
}

/// True when a record with this payload continues a call that more
/// records follow: a pipeline frame or result. A call's `End`, a first
/// stage's `Call` and anything else end the call here.
pub(crate) fn continues_call(payload: &[u8]) -> bool {
    let frame = MessageType::Frame as u8;
    let result = MessageType::Result as u8;
    matches!(payload, [t, v, ..] if (*t == frame || *t == result) && *v == VERSION)
}

impl Outputs {
    pub(crate) fn new(rings: Vec<Producer>) -> Self {
        Self {
            rings,
            ..Self::default()
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// Largest payload one output record may have (0 without outputs).
    pub(crate) fn max_payload(&self) -> usize {
        self.rings.first().map_or(0, |p| p.ring().max_payload())
    }

    pub(crate) fn ring(&mut self, n: usize) -> &mut Producer {
        &mut self.rings[n]
    }

    /// The ring call `id`'s records go to: the one it is open in, else one
    /// it is opened in now. None while every ring is closed (the caller
    /// waits, as for a full ring).
    pub(crate) fn route(&mut self, id: u64) -> Option<usize> {
        if let Some(&n) = self.open.get(&id) {
            return Some(n);
        }
        let n = self.rings.len();
        // Among the open rings, the (id mod open)th: an even spread that
        // skips closed slots. A ring that closes between the look and the
        // claim is skipped on the next try.
        for _ in 0..n {
            let rings = &self.rings;
            let open = || (0..n).filter(|&i| rings[i].ring().is_open());
            let count = open().count() as u64;
            if count == 0 {
                return None;
            }
            let pick = open().nth((id % count) as usize)?;
            if self.rings[pick].open_call() {
                self.remember(id, pick);
                return Some(pick);
            }
        }
        None
    }

    fn remember(&mut self, id: u64, ring: usize) {
        self.open.insert(id, ring);
        self.order.push_back(id);
        while self.order.len() > MAX_OPEN_CALLS {
            if let Some(old) = self.order.pop_front() {
                self.end(old);
            }
        }
    }

    /// Call `id` ended here (its last record published, or answered to
    /// the server).
    pub(crate) fn end(&mut self, id: u64) {
        if let Some(n) = self.open.remove(&id) {
            self.rings[n].end_call();
        }
        if self.open.is_empty() {
            self.order.clear();
        }
    }

    /// Wakes every output's consumer that sleeps (a notify costs a system
    /// call only then, so waking every output is as cheap as tracking which).
    pub(crate) fn notify_all(&self) -> Result<(), citadel_proto::ring::NotifyError> {
        for out in &self.rings {
            out.notify()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use citadel_proto::{EventFd, Ring};

    fn outputs(n: usize) -> (Outputs, Vec<Ring>) {
        let rings: Vec<Ring> = (0..n)
            .map(|i| Ring::create_memfd(&format!("out-{i}"), 4096).unwrap())
            .collect();
        let producers = rings
            .iter()
            .map(|r| Producer::attach(r.clone(), EventFd::new().unwrap()))
            .collect();
        (Outputs::new(producers), rings)
    }

    #[test]
    fn calls_spread_over_open_rings_and_stay_where_they_opened() {
        let (mut out, rings) = outputs(3);
        rings[2].close();
        let picks: Vec<usize> = (0..4).map(|id| out.route(id).unwrap()).collect();
        assert_eq!(picks, [0, 1, 0, 1], "the closed slot is skipped evenly");
        // Ring 0 closes: its open calls stay there, new ones go elsewhere.
        rings[0].close();
        assert_eq!(out.route(0), Some(0));
        assert_eq!(out.route(10), Some(1));
        assert!(!rings[0].is_drained(), "calls 0 and 2 are open in it");
        out.end(0);
        out.end(2);
        assert!(rings[0].is_drained());
        rings[1].close();
        assert_eq!(out.route(11), None, "every ring closed: wait");
    }

    #[test]
    fn frames_and_results_continue_a_call_anything_else_ends_it() {
        assert!(continues_call(&[MessageType::Frame as u8, VERSION, 0]));
        assert!(continues_call(&[MessageType::Result as u8, VERSION]));
        assert!(!continues_call(&[MessageType::End as u8, VERSION]));
        assert!(!continues_call(&[MessageType::Call as u8, VERSION]));
        assert!(!continues_call(b"plain text"));
    }
}
