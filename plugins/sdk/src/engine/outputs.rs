//! A pipeline stage's output rings (the next stage's request rings, one
//! per next-stage instance slot) and which one each call goes to.
//!
//! The host closes the rings of a next-stage slot that takes no new calls
//! (a spare, or one draining for an overlapped upgrade: the ring's gate,
//! `citadel_proto::ring` `gate.rs`). A call is opened in one open ring,
//! spread by id over the open ones, and every later record of it goes to
//! the same ring until the record that ends it, even if that ring closes
//! meanwhile: the server completes a call on its `End`, so a call's
//! records must reach it in order, through one instance. The route is kept
//! in the ring's open-call table too, so a stage killed in the middle of a
//! call and restarted sends the call's remaining records where the first
//! ones went (`Outputs::new` takes the table back).

use std::collections::{HashMap, VecDeque};

use citadel_proto::pipeline::{MessageType, VERSION};
use citadel_proto::ring::OpenCall;
use citadel_proto::Producer;

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
    /// Takes over the calls a previous process of this stage held open in
    /// `rings` (none on a first start): their records keep going there.
    pub(crate) fn new(rings: Vec<Producer>) -> Self {
        let mut out = Self {
            rings,
            ..Self::default()
        };
        for (n, ring) in out.rings.iter().enumerate() {
            for id in ring.open_call_ids() {
                out.open.insert(id, n);
                out.order.push_back(id);
            }
        }
        if !out.open.is_empty() {
            tracing::info!(
                calls = out.open.len(),
                "continuing the calls a previous process of this stage held open"
            );
        }
        out
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
            let mut opened = self.rings[pick].open_call(id);
            if opened == OpenCall::TableFull {
                self.evict_oldest(pick);
                opened = self.rings[pick].open_call(id);
            }
            if opened == OpenCall::Opened {
                self.remember(id, pick);
                return Some(pick);
            }
        }
        None
    }

    fn remember(&mut self, id: u64, ring: usize) {
        self.open.insert(id, ring);
        self.order.push_back(id);
        if self.order.len() > 2 * self.open.len() + 64 {
            let open = &self.open;
            self.order.retain(|id| open.contains_key(id));
        }
    }

    /// Ends the oldest call open in `ring`, whose table is full: a call
    /// whose end never passes here (the stage before answered the server
    /// with an error instead), unless a stage keeps more calls going at
    /// once than the table holds.
    fn evict_oldest(&mut self, ring: usize) {
        let oldest = self
            .order
            .iter()
            .copied()
            .find(|id| self.open.get(id) == Some(&ring));
        if let Some(id) = oldest {
            tracing::warn!(
                call = id,
                ring,
                "the next stage's open-call table is full: ending the oldest call"
            );
            self.end(id);
        }
    }

    /// Call `id` ended here (its last record published, or answered to
    /// the server).
    pub(crate) fn end(&mut self, id: u64) {
        if let Some(n) = self.open.remove(&id) {
            self.rings[n].end_call(id);
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
    use citadel_proto::ring::layout::OPEN_CALL_SLOTS;
    use citadel_proto::{EventFd, Ring};

    fn attach(rings: &[Ring]) -> Outputs {
        let producers = rings
            .iter()
            .map(|r| Producer::attach(r.clone(), EventFd::new().unwrap()))
            .collect();
        Outputs::new(producers)
    }

    fn outputs(n: usize) -> (Outputs, Vec<Ring>) {
        let rings: Vec<Ring> = (0..n)
            .map(|i| Ring::create_memfd(&format!("out-{i}"), 4096).unwrap())
            .collect();
        (attach(&rings), rings)
    }

    #[test]
    fn calls_spread_over_open_rings_and_stay_where_they_opened() {
        let (mut out, rings) = outputs(3);
        rings[2].close();
        let picks: Vec<usize> = (1..5).map(|id| out.route(id).unwrap()).collect();
        assert_eq!(picks, [1, 0, 1, 0], "the closed slot is skipped evenly");
        // Ring 0 closes: its open calls stay there, new ones go elsewhere.
        rings[0].close();
        assert_eq!(out.route(2), Some(0));
        assert_eq!(out.route(10), Some(1));
        assert!(!rings[0].is_drained(), "calls 2 and 4 are open in it");
        out.end(2);
        out.end(4);
        assert!(rings[0].is_drained());
        rings[1].close();
        assert_eq!(out.route(11), None, "every ring closed: wait");
    }

    #[test]
    fn a_restarted_stage_sends_a_call_where_it_was_opened() {
        let (mut out, rings) = outputs(2);
        assert_eq!(out.route(3), Some(1));
        assert_eq!(out.route(4), Some(0));
        out.end(4);
        // Killed here; ring 1 closes (an upgrade) before the restart.
        drop(out);
        rings[1].close();
        let mut again = attach(&rings);
        assert_eq!(again.route(3), Some(1), "call 3 goes on in the closed ring");
        assert_eq!(again.route(5), Some(0));
        assert!(!rings[1].is_drained());
        again.end(3);
        assert!(rings[1].is_drained());
    }

    #[test]
    fn a_full_table_ends_its_oldest_call() {
        let (mut out, rings) = outputs(1);
        for id in 1..=OPEN_CALL_SLOTS as u64 {
            assert_eq!(out.route(id), Some(0));
        }
        assert_eq!(out.route(100), Some(0));
        assert_eq!(rings[0].open_calls(), OPEN_CALL_SLOTS as u64);
        out.end(1);
        assert_eq!(
            rings[0].open_calls(),
            OPEN_CALL_SLOTS as u64,
            "1 was ended already"
        );
        out.end(2);
        assert_eq!(rings[0].open_calls(), OPEN_CALL_SLOTS as u64 - 1);
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
