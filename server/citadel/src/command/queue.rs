//! A connection's transaction state: the commands MULTI queued (owned: the
//! receive buffer they came in is gone by EXEC) and the keys WATCH noted.
//! Buffers are kept across transactions, so a steady stream of MULTI/EXEC
//! allocates nothing once warm.

use std::ops::Range;

use citadel_cache::Watch;

use super::args::Args;
use super::table::CommandDef;

/// One queued command: its (sub)command and its arguments' spans.
struct Queued {
    /// The command's index in the table (its change tag).
    idx: usize,
    def: &'static CommandDef,
    spans: Range<usize>,
}

/// A watched key: its home bucket's version, and when it expires if it
/// was alive with a TTL (an expiry since WATCH aborts the EXEC too).
struct Watched {
    key: Range<usize>,
    watch: Watch,
    expire_at: Option<u64>,
}

/// The stretch of `buf` from the first span's start to the last one's
/// end, when the spans lie in it in order without overlapping.
fn ordered_extent(buf: &[u8], spans: &[Range<usize>]) -> Option<Range<usize>> {
    let (first, last) = (spans.first()?, spans.last()?);
    let mut at = first.start;
    for r in spans {
        if r.start < at || r.end < r.start {
            return None;
        }
        at = r.end;
    }
    (last.end <= buf.len()).then_some(first.start..last.end)
}

#[derive(Default)]
pub struct TxState {
    /// Between MULTI and EXEC/DISCARD.
    pub in_multi: bool,
    /// A command was refused while queuing: EXEC answers EXECABORT.
    pub dirty: bool,
    /// EXEC is running the queue (the connection's state while it does:
    /// MONITOR refuses then, as Redis does for a client that cannot block).
    pub running: bool,
    buf: Vec<u8>,
    spans: Vec<Range<usize>>,
    queued: Vec<Queued>,
    watch_buf: Vec<u8>,
    watched: Vec<Watched>,
}

impl TxState {
    pub fn queue(&mut self, idx: usize, def: &'static CommandDef, args: Args<'_>) {
        let first = self.spans.len();
        let (buf, spans) = args.parts();
        match ordered_extent(buf, spans) {
            // The arguments lie in order in one stretch of the input (as
            // parsed): copied at once, framing between them included.
            Some(extent) => {
                let base = self.buf.len();
                self.buf.extend_from_slice(&buf[extent.clone()]);
                self.spans.extend(
                    spans
                        .iter()
                        .map(|r| base + r.start - extent.start..base + r.end - extent.start),
                );
            }
            None => {
                for arg in args.iter() {
                    let start = self.buf.len();
                    self.buf.extend_from_slice(arg);
                    self.spans.push(start..self.buf.len());
                }
            }
        }
        self.queued.push(Queued {
            idx,
            def,
            spans: first..self.spans.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Queued command `i` and its arguments.
    pub fn command(&self, i: usize) -> (usize, &'static CommandDef, Args<'_>) {
        let q = &self.queued[i];
        (
            q.idx,
            q.def,
            Args::new(&self.buf, &self.spans[q.spans.clone()]),
        )
    }

    /// Leaves MULTI: the queue is emptied (watches stay until `unwatch`).
    pub fn discard(&mut self) {
        self.in_multi = false;
        self.dirty = false;
        self.buf.clear();
        self.spans.clear();
        self.queued.clear();
    }

    pub fn watch(&mut self, key: &[u8], watch: Watch, expire_at: Option<u64>) {
        let start = self.watch_buf.len();
        self.watch_buf.extend_from_slice(key);
        self.watched.push(Watched {
            key: start..self.watch_buf.len(),
            watch,
            expire_at,
        });
    }

    pub fn unwatch(&mut self) {
        self.watch_buf.clear();
        self.watched.clear();
    }

    pub fn watched_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.watched.iter().map(|w| &self.watch_buf[w.key.clone()])
    }

    pub fn watches(&self) -> impl Iterator<Item = Watch> + '_ {
        self.watched.iter().map(|w| w.watch)
    }

    /// A watched key that was alive with a TTL has expired by `now`.
    pub fn watched_key_expired(&self, now: u64) -> bool {
        self.watched
            .iter()
            .any(|w| w.expire_at.is_some_and(|at| at <= now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(spans: &[Range<usize>], buf: &[u8]) -> Vec<Vec<u8>> {
        let def = super::super::table::lookup(b"set").unwrap().1;
        let mut tx = TxState::default();
        // Something queued before: the copy lands after it.
        let ping = 0..4;
        tx.queue(0, def, Args::new(b"ping", std::slice::from_ref(&ping)));
        tx.queue(1, def, Args::new(buf, spans));
        let (idx, _, args) = tx.command(1);
        assert_eq!(idx, 1);
        args.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn queued_arguments_read_back_as_given() {
        let buf = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
        // In order (as parsed), an empty one included: one copy.
        let in_order = [8..11, 17..18, 24..24];
        assert_eq!(ordered_extent(buf, &in_order), Some(8..24));
        assert_eq!(queued(&in_order, buf), [&b"SET"[..], b"k", b""]);
        // Out of order or overlapping: copied one by one.
        let shuffled = [17..18, 8..11];
        assert_eq!(ordered_extent(buf, &shuffled), None);
        assert_eq!(queued(&shuffled, buf), [&b"k"[..], b"SET"]);
        let overlapping = [8..11, 9..10];
        assert_eq!(ordered_extent(buf, &overlapping), None);
        assert_eq!(queued(&overlapping, buf), [&b"SET"[..], b"E"]);
    }
}
