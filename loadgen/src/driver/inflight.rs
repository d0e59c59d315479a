//! A connection's requests in flight, by id. Ids are consecutive per connection, so the
//! table is a deque of slots indexed by `id - first_id`: taking the oldest is O(1) (in-order
//! protocols), taking any id is O(1) too (RPC replies may come out of order), and a taken
//! slot in the middle stays as a hole until everything before it is answered.
//!
//! No allocation per request: the deque is sized for the pipeline up front and only grows
//! (once, to the high-water mark) when out-of-order replies leave holes.

use std::collections::VecDeque;

use crate::protocol::OpKind;
use crate::workload::values::ValueRef;

/// A request sent (or queued to send) whose reply has not arrived yet.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    pub op: OpKind,
    /// Latency origin: actual send time (closed loop) or intended send time (open loop).
    pub start_ns: u64,
    /// When the request was handed to the send path (equal to `start_ns` in closed loop;
    /// later in open loop when the client ran behind its timetable: the send lag).
    pub sent_ns: u64,
    pub measured: bool,
    /// The key index, value and element number, to send the request again after a cluster
    /// redirect.
    pub key: u64,
    pub value: ValueRef,
    pub element: u64,
    /// Cluster redirects it followed so far.
    pub redirects: u8,
    /// The ASKING sent before a request redirected by `-ASK`: its reply is not a result.
    pub asking: bool,
}

impl InFlight {
    pub fn new(op: OpKind, key: u64, value: ValueRef, start_ns: u64, measured: bool) -> InFlight {
        InFlight {
            op,
            start_ns,
            sent_ns: start_ns,
            measured,
            key,
            value,
            element: 0,
            redirects: 0,
            asking: false,
        }
    }
}

#[derive(Debug)]
pub struct InFlightTable {
    /// Slot `i` is request `first_id + i`; `None` once answered. The front is never `None`.
    slots: VecDeque<Option<InFlight>>,
    first_id: u64,
    live: usize,
}

impl InFlightTable {
    pub fn with_capacity(n: usize) -> InFlightTable {
        InFlightTable {
            slots: VecDeque::with_capacity(n),
            // Id 0 is what a server answers when it could not read the id: never ours.
            first_id: 1,
            live: 0,
        }
    }

    /// Requests still waiting for a reply.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Adds a request; returns its id.
    pub fn push(&mut self, f: InFlight) -> u64 {
        let id = self.first_id + self.slots.len() as u64;
        self.slots.push_back(Some(f));
        self.live += 1;
        id
    }

    pub fn oldest(&self) -> Option<&InFlight> {
        self.slots.front().and_then(Option::as_ref)
    }

    pub fn take_oldest(&mut self) -> Option<InFlight> {
        self.take(self.first_id)
    }

    /// Removes request `id`; `None` if it is not in flight.
    pub fn take(&mut self, id: u64) -> Option<InFlight> {
        let i = usize::try_from(id.checked_sub(self.first_id)?).ok()?;
        let f = self.slots.get_mut(i)?.take()?;
        self.live -= 1;
        while matches!(self.slots.front(), Some(None)) {
            self.slots.pop_front();
            self.first_id += 1;
        }
        Some(f)
    }

    /// Removes every request in flight. Ids keep counting up, so a late reply to one of
    /// them cannot be taken for a newer request.
    pub fn drain(&mut self) -> impl Iterator<Item = InFlight> + '_ {
        self.first_id += self.slots.len() as u64;
        self.live = 0;
        self.slots.drain(..).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(start_ns: u64) -> InFlight {
        InFlight::new(OpKind::Get, 0, ValueRef::default(), start_ns, true)
    }

    #[test]
    fn out_of_order_takes_leave_holes_until_the_front_is_answered() {
        let mut t = InFlightTable::with_capacity(4);
        let ids: Vec<u64> = (0..4).map(|i| t.push(f(i))).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        assert_eq!(t.take(3).unwrap().start_ns, 2);
        assert!(t.take(3).is_none(), "taken twice");
        assert_eq!(t.len(), 3);
        assert_eq!(t.take_oldest().unwrap().start_ns, 0);
        assert_eq!(t.take(2).unwrap().start_ns, 1);
        // 1..=3 answered: the front is now 4.
        assert_eq!(t.oldest().unwrap().start_ns, 3);
        assert_eq!(t.push(f(9)), 5);
        assert!(t.take(0).is_none() && t.take(99).is_none());
        assert_eq!(t.drain().count(), 2);
        assert!(t.is_empty() && t.take(5).is_none());
        assert_eq!(t.push(f(10)), 6, "ids go on after a drain");
    }
}
