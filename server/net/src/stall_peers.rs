//! A stalled thread's own connections. While a command runs long (a Lua
//! script past busy-script-time), the connections already on its thread
//! would wait for it whatever they send; Redis answers them (`-BUSY`, and
//! SCRIPT KILL / SHUTDOWN NOSAVE act). [`serve`], called from inside the
//! command (`stall_door::serve_stalled`), answers the ones that are
//! *quiet*: nothing of theirs is anywhere but in their socket.
//!
//! A connection is quiet once a send drained its replies and nothing else
//! is pending (no input held, not parked or held, its recv armed, and its
//! session in a state the service can answer from outside:
//! `Service::stall_plain`); any later event clears it: a recv completion
//! reaped (each turn's are marked before any runs) or a parked wait
//! finishing. Output is only ever added by one of those. So no
//! completion of a quiet connection sits unrun in the loop, and replies
//! answered here come before any the loop makes later: their input is
//! taken from the socket (peeked, then only the commands answered are
//! read) and the replies sent at once; what the socket would not take is
//! handed to the connection's output when the loop turns again
//! (`OwnConnections::take_unsent`), ahead of anything else.
//!
//! The loop writes one flag per event (a `Cell` per slot, no lock, no
//! thread-local); the rest of what `serve` needs (descriptor, session id)
//! changes only when a connection opens or closes. A turn whose
//! completion queue overflowed (completions held back, not reaped)
//! answers nothing.
//!
//! Reading a socket beside an armed io_uring recv is safe only when the
//! ring defers task work to the thread's own `io_uring_enter` (our
//! DEFER_TASKRUN setup): no recv completes while the thread is stalled in
//! a command, and one that finds the socket emptied arms again. Without it
//! this is off.

use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::cqueue;

use super::stall_io::{flush_unsent, peek_and_take, Answer, Caller, Peeked, PEEK};
use super::token::{Op, Token};
use super::Door;

/// Most connections looked at per call (the rest on later calls, in
/// turn): one poll(2) over them finds those with input.
const MOST_POLLED: usize = 1024;
/// Most slots tracked (a slot past them is never answered while stalled).
const MOST_SLOTS: usize = 1 << 16;

thread_local! {
    /// The thread's connections as the loop tells them (for `serve`).
    static OWN: RefCell<Option<Rc<Own>>> = const { RefCell::new(None) };
}

struct Own {
    /// By connection slot: nothing of it is pending in the loop.
    quiet: Box<[Cell<bool>]>,
    /// Completions this turn has not reaped may exist (the completion
    /// queue overflowed): no connection is answered until the next turn.
    suspended: Cell<bool>,
    peers: RefCell<Peers>,
}

struct Peer {
    generation: u32,
    id: u64,
    door: Door,
    fd: RawFd,
    /// It sent a command for its session: left alone until the loop turns.
    left: bool,
    /// Replies the socket did not take yet.
    unsent: Vec<u8>,
}

#[derive(Default)]
struct Peers {
    /// By connection slot.
    slots: Vec<Option<Peer>>,
    /// Where the next call's poll starts.
    next: usize,
    /// `serve` ran since the loop last turned.
    served: bool,
}

/// The loop's side: what it tells of its connections as they change.
#[derive(Default)]
pub(super) struct OwnConnections(Option<Rc<Own>>);

impl OwnConnections {
    /// This thread's ring defers task work: its connections (up to
    /// `slots` of them) may be answered while it is stalled.
    pub(super) fn enable(&mut self, slots: usize) {
        let own = Rc::new(Own {
            quiet: (0..slots.min(MOST_SLOTS))
                .map(|_| Cell::new(false))
                .collect(),
            suspended: Cell::new(false),
            peers: RefCell::default(),
        });
        OWN.set(Some(own.clone()));
        self.0 = Some(own);
    }

    /// Shutdown: nothing more is answered.
    pub(super) fn disable(&mut self) {
        OWN.set(None);
        self.0 = None;
    }

    /// Whether the loop tells its connections' states.
    #[inline]
    pub(super) fn tracking(&self) -> bool {
        self.0.is_some()
    }

    /// Whether the connection in `slot` is quiet.
    #[inline]
    pub(super) fn set_quiet(&self, slot: u32, quiet: bool) {
        if let Some(flag) = self.0.as_ref().and_then(|o| o.quiet.get(slot as usize)) {
            flag.set(quiet);
        }
    }

    /// A turn's completions: the connections they received for are busy
    /// until the loop runs them; `overflowed`: the completion queue held
    /// more (this turn answers nothing while stalled).
    pub(super) fn reaped(&self, cqes: &[cqueue::Entry], overflowed: bool) {
        let Some(own) = &self.0 else {
            return;
        };
        own.suspended.set(overflowed);
        for cqe in cqes {
            let token = Token::decode(cqe.user_data());
            if token.op == Op::Recv {
                if let Some(flag) = own.quiet.get(token.slot as usize) {
                    flag.set(false);
                }
            }
        }
    }

    /// Completions this turn did not reap may be posted (a mid-turn enter
    /// that flushes an overflowed queue): nothing is answered until the
    /// next turn.
    pub(super) fn suspend(&self) {
        if let Some(own) = &self.0 {
            own.suspended.set(true);
        }
    }

    /// A connection opened in `slot` (not quiet until a send drains).
    pub(super) fn opened(&self, slot: u32, generation: u32, id: u64, door: Door, fd: RawFd) {
        let Some(own) = self.0.as_ref().filter(|o| (slot as usize) < o.quiet.len()) else {
            return;
        };
        own.quiet[slot as usize].set(false);
        let mut peers = own.peers.borrow_mut();
        let at = slot as usize;
        if peers.slots.len() <= at {
            peers.slots.resize_with(at + 1, || None);
        }
        peers.slots[at] = Some(Peer {
            generation,
            id,
            door,
            fd,
            left: false,
            unsent: Vec::new(),
        });
    }

    /// The connection in `slot` is freed.
    pub(super) fn closed(&self, slot: u32) {
        let Some(own) = &self.0 else {
            return;
        };
        self.set_quiet(slot, false);
        if let Some(entry) = own.peers.borrow_mut().slots.get_mut(slot as usize) {
            *entry = None;
        }
    }

    /// The replies answered while the loop was stalled that their sockets
    /// did not take: (slot, generation, bytes), to send before anything
    /// else. Every connection is looked at again from the next stall on.
    pub(super) fn take_unsent(&self) -> Vec<(u32, u32, Vec<u8>)> {
        let mut unsent = Vec::new();
        let Some(own) = &self.0 else {
            return unsent;
        };
        let mut peers = own.peers.borrow_mut();
        if !std::mem::take(&mut peers.served) {
            return unsent;
        }
        for (slot, peer) in peers.slots.iter_mut().enumerate() {
            let Some(peer) = peer.as_mut() else {
                continue;
            };
            peer.left = false;
            if !peer.unsent.is_empty() {
                own.quiet[slot].set(false);
                let bytes = std::mem::take(&mut peer.unsent);
                unsent.push((slot as u32, peer.generation, bytes));
            }
        }
        unsent
    }
}

/// From inside a long-running command: answers the quiet connections'
/// complete commands with `answer` (`input`: a buffer to peek into).
pub(super) fn serve(answer: &mut Answer<'_>, input: &mut Vec<u8>) {
    let Some(own) = OWN.with_borrow(|o| o.clone()) else {
        return;
    };
    if own.suspended.get() {
        return;
    }
    let Ok(mut peers) = own.peers.try_borrow_mut() else {
        return;
    };
    let p = &mut *peers;
    if p.slots.is_empty() {
        return;
    }
    p.served = true;
    let (mut polled, mut at) = (Vec::new(), Vec::new());
    let count = p.slots.len();
    let start = p.next % count;
    for slot in (start..count).chain(0..start) {
        if polled.len() == MOST_POLLED {
            p.next = slot;
            break;
        }
        let Some(peer) = p.slots[slot].as_mut() else {
            continue;
        };
        if !own.quiet[slot].get() || peer.left {
            continue;
        }
        if !peer.unsent.is_empty() {
            // (Its earlier replies go first; its input waits for them.)
            flush_unsent(peer.fd, &mut peer.unsent);
            continue;
        }
        polled.push(libc::pollfd {
            fd: peer.fd,
            events: libc::POLLIN,
            revents: 0,
        });
        at.push(slot);
    }
    if polled.is_empty() || !poll_now(&mut polled) {
        return;
    }
    for (pollfd, slot) in polled.iter().zip(at) {
        if pollfd.revents == 0 {
            continue;
        }
        let Some(peer) = p.slots[slot].as_mut() else {
            continue;
        };
        let caller = Caller {
            door: peer.door,
            id: peer.id,
            has_session: true,
        };
        if input.is_empty() {
            input.resize(PEEK, 0);
        }
        let (replies, done) = match peek_and_take(peer.fd, caller, input, answer) {
            Peeked::Nothing => continue,
            // Closed by the peer, or an error: the loop finds out.
            Peeked::Gone => {
                peer.left = true;
                continue;
            }
            Peeked::Taken { replies, done } => (replies, done),
        };
        peer.left = done.leave || done.close;
        peer.unsent = replies;
        flush_unsent(peer.fd, &mut peer.unsent);
    }
}

/// poll(2) without waiting; false on an error.
fn poll_now(fds: &mut [libc::pollfd]) -> bool {
    // SAFETY: `fds` is valid for `fds.len()` entries of reads and writes;
    // each names a socket of a connection this thread owns.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
    n > 0
}
