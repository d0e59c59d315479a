//! MONITOR's process-wide registry: which connections monitor, on which
//! thread, and their connection's `Waiter`; and the line Redis writes for
//! each command ([`line`]). When nobody monitors, a command pays one
//! Relaxed load ([`Monitors::active`]). Otherwise the thread that ran the
//! command formats its line once and mails it, behind an `Arc`, to every
//! thread serving a monitor ([`Mail::Monitor`](crate::wait::Mail)); that
//! thread writes it into each monitor's output through the completion path
//! (`Completion::Monitor`, a push like a Pub/Sub message), so a slow
//! monitor never holds up the server: the loop cuts it off at the output
//! limit like any other client.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use citadel_net::{Endpoint, Waiter};

struct Watcher {
    client: u64,
    thread: usize,
    /// Known once the loop handed the connection over (see
    /// `Session::process`'s `detached`).
    waiter: Option<Waiter>,
}

#[derive(Default)]
pub struct Monitors {
    /// How many connections monitor: the only thing a command reads when
    /// nobody does.
    count: AtomicUsize,
    inner: RwLock<Vec<Watcher>>,
}

impl Monitors {
    fn read(&self) -> RwLockReadGuard<'_, Vec<Watcher>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, Vec<Watcher>> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether anyone monitors (one Relaxed load: the cost of MONITOR to
    /// every command while nobody does).
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    /// How many connections monitor.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// `client` (served by `thread`) monitors from now on.
    pub fn add(&self, client: u64, thread: usize) {
        let mut list = self.write();
        if list.iter().any(|w| w.client == client) {
            return;
        }
        list.push(Watcher {
            client,
            thread,
            waiter: None,
        });
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// The connection of monitor `client` is `waiter`.
    pub fn attach(&self, client: u64, waiter: Waiter) {
        if let Some(w) = self.write().iter_mut().find(|w| w.client == client) {
            w.waiter = Some(waiter);
        }
    }

    /// `client` stops monitoring (disconnect, RESET).
    pub fn remove(&self, client: u64) {
        let mut list = self.write();
        list.retain(|w| w.client != client);
        self.count.store(list.len(), Ordering::Relaxed);
    }

    /// Every monitor but `except`, grouped by the thread serving it.
    pub fn receivers(&self, except: u64) -> Vec<(usize, Vec<u64>)> {
        let list = self.read();
        let mut by_thread: Vec<(usize, Vec<u64>)> = Vec::new();
        for w in list.iter().filter(|w| w.client != except) {
            match by_thread.iter_mut().find(|(t, _)| *t == w.thread) {
                Some((_, clients)) => clients.push(w.client),
                None => by_thread.push((w.thread, vec![w.client])),
            }
        }
        by_thread
    }

    /// The connection of each of `clients` that still monitors.
    pub fn waiters(&self, clients: &[u64]) -> Vec<Option<Waiter>> {
        let list = self.read();
        clients
            .iter()
            .map(|c| list.iter().find(|w| w.client == *c).and_then(|w| w.waiter))
            .collect()
    }
}

/// Who ran the command, as the line names it.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// A client connection: its peer and the endpoint it reached (a Unix
    /// socket client is named after the server's socket, as Redis does).
    Client {
        peer: &'a Endpoint,
        local: &'a Endpoint,
    },
    /// A command a script runs ("lua" in the line).
    Script,
}

/// Redis's MONITOR line for a command: `+<secs>.<micros> [<db> <origin>]`
/// then each argument quoted as `sdscatrepr` does, and CRLF. A simple
/// string in RESP3 too, as Redis writes it.
pub fn line<'a>(
    now: SystemTime,
    db: u32,
    origin: Origin<'_>,
    args: impl Iterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut head = String::with_capacity(48);
    let _ = write!(
        head,
        "+{}.{:06} [{db} ",
        since.as_secs(),
        since.subsec_micros()
    );
    match origin {
        Origin::Script => head.push_str("lua"),
        Origin::Client {
            local: Endpoint::Unix(path),
            ..
        } => {
            let _ = write!(head, "unix:{path}");
        }
        Origin::Client { peer, .. } => {
            let _ = write!(head, "{peer}");
        }
    }
    head.push(']');
    let mut out = head.into_bytes();
    for arg in args {
        out.push(b' ');
        quote(&mut out, arg);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// `sdscatrepr`: in double quotes, `\\` `\"` `\n` `\r` `\t` `\a` `\b`
/// escaped, other bytes outside printable ASCII as `\xHH`.
pub fn quote(out: &mut Vec<u8>, arg: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in arg {
        match b {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_quote_as_redis_does() {
        let at = UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_042);
        let peer = Endpoint::Ip("127.0.0.1:5000".parse().unwrap());
        let origin = Origin::Client {
            peer: &peer,
            local: &peer,
        };
        let args: [&[u8]; 3] = [b"SET", b"k", b"v\n\"\\\t\r\x07\x08\x00\xff \xc3\xa9~"];
        let got = line(at, 0, origin, args.into_iter());
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "+1700000000.000042 [0 127.0.0.1:5000] \"SET\" \"k\" \
             \"v\\n\\\"\\\\\\t\\r\\a\\b\\x00\\xff \\xc3\\xa9~\"\r\n"
        );
        let unix = Endpoint::Unix("/tmp/c.sock".into());
        let origin = Origin::Client {
            peer: &unix,
            local: &unix,
        };
        let got = line(at, 0, origin, [&b"PING"[..]].into_iter());
        assert_eq!(
            got,
            b"+1700000000.000042 [0 unix:/tmp/c.sock] \"PING\"\r\n".to_vec()
        );
        let got = line(at, 0, Origin::Script, [&b"GET"[..], b""].into_iter());
        assert_eq!(got, b"+1700000000.000042 [0 lua] \"GET\" \"\"\r\n".to_vec());
    }

    #[test]
    fn the_count_follows_adds_and_removes() {
        let m = Monitors::default();
        assert!(!m.active());
        m.add(1, 0);
        m.add(1, 0);
        m.add(2, 1);
        m.add(3, 1);
        assert_eq!(m.count(), 3);
        assert_eq!(m.receivers(1), vec![(1, vec![2, 3])]);
        m.remove(2);
        assert_eq!(m.receivers(9), vec![(0, vec![1]), (1, vec![3])]);
        assert_eq!(m.waiters(&[1, 2]), vec![None, None]);
        m.remove(1);
        m.remove(3);
        assert!(!m.active());
    }
}
