//! Whether a connection is alone on its core (ARCHITECTURE.md, "Overload
//! protection", a client's own work): nobody who minds the wait is
//! behind its input, so all the delay that input meets is its own
//! making: a slow command and the commands sent with it, however many
//! reads they span (one write of FLUSHALL and 20,000 SETs is some 40 reads
//! of 16 KiB), or bulk loads such as `redis-cli --pipe`. Redis runs it
//! all; so does the core.
//!
//! A connection is alone when it is the only client connection open on
//! the core, or when no other connection sent *shallow* input in this
//! loop turn or the last [`ACTIVE_TURNS`]. A pass over less than
//! [`DEEP_INPUT`] bytes is shallow (a request or a pipeline of a few
//! dozen: an interactive client), unless its connection had a deep pass
//! in those turns too (a bulk load's last read of a turn is often short).
//! So idle connections (a pool's spares, a monitoring client between
//! polls, redis-cli left open in another terminal) and other bulk loads
//! wait behind nobody's input, while an interactive client that keeps
//! sending is what a flood's input is shed for. Counting every open
//! connection made a 2M-command `redis-cli --pipe` beside one idle
//! connection get 1.6M `-OVERLOAD` replies on an otherwise idle core, and
//! two loads at once on one core got 77-98% refused.
//!
//! Lately is in turns and in time, either: a flood's turn may last longer
//! than any fixed span, and a client that pings in a closed loop has input
//! every turn or two however long they are; but turns may also be short
//! and many while a client's thread waits for a CPU, and one pass judged
//! alone in a control interval keeps the core from counting it overloaded
//! (its delay counts as zero), so [`ACTIVE_TIME`] counts too (by turns
//! alone, a flood beside a client polling INFO ended unshed 2 runs in 4).
//! (Alone since the core idled was tried first: a lone flood's whole input
//! is often reaped in one turn with the PING that waits behind it, so
//! floods were served whole where they must be shed, `tests/overload.rs` 2
//! runs in 6.) The first command of a client idle for a while still waits
//! for the turn it arrived in; from then on it counts.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection counts as active for this many turns after its last
/// shallow input (a closed-loop client's next request arrives within one
/// or two).
pub const ACTIVE_TURNS: u64 = 3;
/// ... or for this long (its turns' starts).
pub const ACTIVE_TIME: Duration = Duration::from_millis(20);
/// A pass over at least this many bytes is deep: a bulk load or batch.
/// redis-benchmark's `-P 16` GETs are ~700 bytes, a full receive 16 KiB.
pub const DEEP_INPUT: usize = 4096;

/// The client connections of one core (RESP and RPC over the loop): how
/// many are open (shared with their guards), and which sent shallow input
/// lately (the core's own record, plain fields: asked at every pass).
#[derive(Debug)]
pub struct CoreConnections {
    open: Arc<AtomicU32>,
    next_id: u64,
    /// Turn times are nanoseconds since this.
    epoch: Instant,
    /// The loop turn now (0 before the first) and when it began.
    turn: u64,
    turn_ns: u64,
    /// The connection that sent shallow input last, and its turn ...
    latest_id: u64,
    latest: Stamp,
    /// ... and the last turn another connection did before it (zero:
    /// none). The two answer "did anyone but X lately" for any X in O(1).
    other: Stamp,
}

/// A turn (0: none) and its start.
#[derive(Debug, Clone, Copy, Default)]
struct Stamp {
    turn: u64,
    ns: u64,
}

impl Default for CoreConnections {
    fn default() -> CoreConnections {
        CoreConnections {
            open: Arc::default(),
            next_id: 0,
            epoch: Instant::now(),
            turn: 0,
            turn_ns: 0,
            latest_id: 0,
            latest: Stamp::default(),
            other: Stamp::default(),
        }
    }
}

impl CoreConnections {
    /// Counts a connection until the returned guard is dropped.
    pub fn opened(&mut self) -> OpenConnection {
        // ORDERING: Relaxed: a count of this core's, read by it alone.
        self.open.fetch_add(1, Relaxed);
        self.next_id += 1;
        OpenConnection {
            open: self.open.clone(),
            id: self.next_id,
            deep_turn: 0,
        }
    }

    /// A loop turn begins, `now`.
    #[inline]
    pub fn turn_began(&mut self, now: Instant) {
        self.turn += 1;
        self.turn_ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
    }

    /// True when at most one connection is open.
    #[inline]
    pub fn alone(&self) -> bool {
        // ORDERING: Relaxed: see `opened`.
        self.open.load(Relaxed) <= 1
    }

    /// A pass over `input` bytes of `conn`'s input begins: notes it, and
    /// answers whether the connection is alone on its core (no other
    /// connection open, or none that sent shallow input lately).
    // (Not inlined: in `Session::process` it tipped the compiler into
    // calling the cache's GET out of line, +16 instructions a pipelined
    // GET.)
    #[inline(never)]
    pub fn input_began(&mut self, conn: &mut OpenConnection, input: usize) -> bool {
        if self.alone() {
            return true;
        }
        if input >= DEEP_INPUT {
            conn.deep_turn = self.turn;
        } else if conn.deep_turn == 0 || conn.deep_turn + ACTIVE_TURNS < self.turn {
            self.shallow_input(conn.id);
        }
        !self.others_active(conn.id)
    }

    fn shallow_input(&mut self, id: u64) {
        if self.latest_id != id {
            self.other = self.latest;
            self.latest_id = id;
        }
        self.latest = Stamp {
            turn: self.turn,
            ns: self.turn_ns,
        };
    }

    /// Whether a connection other than `id` sent shallow input lately.
    fn others_active(&self, id: u64) -> bool {
        let last = if self.latest_id != id {
            self.latest
        } else {
            self.other
        };
        last.turn != 0
            && (last.turn + ACTIVE_TURNS >= self.turn
                || self.turn_ns.saturating_sub(last.ns) <= ACTIVE_TIME.as_nanos() as u64)
    }
}

/// A counted connection (held by its session).
#[derive(Debug)]
pub struct OpenConnection {
    open: Arc<AtomicU32>,
    id: u64,
    /// The last turn it had a deep pass in (0: none).
    deep_turn: u64,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        // ORDERING: Relaxed: see `CoreConnections::opened`.
        self.open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHALLOW: usize = 100;
    const DEEP: usize = DEEP_INPUT;

    /// Turns a second apart, so only their count matters.
    fn turns(core: &mut CoreConnections, n: u64) {
        for _ in 0..n {
            let at = core.epoch + Duration::from_nanos(core.turn_ns) + Duration::from_secs(1);
            core.turn_began(at);
        }
    }

    #[test]
    fn a_connection_is_alone_while_no_other_is_open() {
        let mut core = CoreConnections::default();
        turns(&mut core, 1);
        let mut first = core.opened();
        assert!(core.alone());
        assert!(core.input_began(&mut first, SHALLOW));
        let mut second = core.opened();
        assert!(!core.alone());
        assert!(
            core.input_began(&mut first, SHALLOW),
            "the second sent nothing"
        );
        assert!(
            !core.input_began(&mut second, SHALLOW),
            "the first sent input"
        );
        drop(first);
        assert!(core.alone(), "the other one closed");
        assert!(core.input_began(&mut second, SHALLOW));
        drop(second);
        assert!(core.alone());
    }

    #[test]
    fn an_idle_connection_stops_counting_after_a_few_turns() {
        let mut core = CoreConnections::default();
        turns(&mut core, 1);
        let (mut bulk, mut idle) = (core.opened(), core.opened());
        assert!(
            core.input_began(&mut idle, SHALLOW),
            "nobody else sent anything yet"
        );
        assert!(
            !core.input_began(&mut bulk, DEEP),
            "the other sent input this turn"
        );
        assert!(
            core.input_began(&mut idle, SHALLOW),
            "a deep pass is nobody's wait"
        );
        turns(&mut core, ACTIVE_TURNS);
        assert!(!core.input_began(&mut bulk, DEEP), "... and lately");
        turns(&mut core, 1);
        assert!(core.input_began(&mut bulk, DEEP), "idle for long enough");
        assert!(
            core.input_began(&mut idle, SHALLOW),
            "a bulk load's input is nobody a shallow client waits for"
        );
        assert!(
            !core.input_began(&mut bulk, DEEP),
            "and now the other is active"
        );
    }

    #[test]
    fn deep_inputs_do_not_make_others_wait() {
        let mut core = CoreConnections::default();
        let (mut a, mut b) = (core.opened(), core.opened());
        for _ in 0..10 {
            turns(&mut core, 1);
            assert!(core.input_began(&mut a, DEEP));
            assert!(core.input_began(&mut b, DEEP));
            // A load's short last read of a turn keeps it deep.
            assert!(core.input_began(&mut a, SHALLOW));
            assert!(core.input_began(&mut b, SHALLOW));
        }
        let mut ping = core.opened();
        assert!(
            core.input_began(&mut ping, SHALLOW),
            "no one else is shallow"
        );
        assert!(
            !core.input_began(&mut a, DEEP),
            "an interactive client is active"
        );
        assert!(!core.input_began(&mut b, DEEP));
    }

    #[test]
    fn the_latest_other_connection_is_found_whoever_asks() {
        let mut core = CoreConnections::default();
        let (mut x, mut y, mut z) = (core.opened(), core.opened(), core.opened());
        turns(&mut core, 1);
        core.input_began(&mut y, SHALLOW);
        turns(&mut core, 1);
        core.input_began(&mut x, SHALLOW);
        turns(&mut core, ACTIVE_TURNS - 1);
        assert!(!core.input_began(&mut z, DEEP), "x lately");
        assert!(
            !core.input_began(&mut x, SHALLOW),
            "y within the turns, x's own aside"
        );
        turns(&mut core, 1);
        assert!(core.input_began(&mut x, SHALLOW), "y no longer");
        turns(&mut core, ACTIVE_TURNS + 1);
        assert!(
            core.input_began(&mut x, SHALLOW),
            "only x itself, ever since"
        );
        assert!(!core.input_began(&mut y, DEEP), "x this turn");
    }

    #[test]
    fn short_turns_do_not_end_activity_within_its_time() {
        let mut core = CoreConnections::default();
        let (mut flood, mut poller) = (core.opened(), core.opened());
        let start = Instant::now();
        core.turn_began(start);
        core.input_began(&mut poller, SHALLOW);
        for us in 1..100 {
            core.turn_began(start + Duration::from_micros(us * 100));
            assert!(
                !core.input_began(&mut flood, DEEP),
                "{us}: the poller within 20 ms"
            );
        }
        core.turn_began(start + ACTIVE_TIME + Duration::from_millis(1));
        assert!(core.input_began(&mut flood, DEEP), "past both");
    }
}
