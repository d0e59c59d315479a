//! Cluster mode (`--cluster`): the slot map from `CLUSTER SLOTS`, which
//! node serves a key (`citadel_proto::cluster::key_slot`, CRC16 with hash
//! tags, as Redis), and the `-MOVED` / `-ASK` redirections.
//!
//! The map is fetched once before the run with a plain blocking client,
//! and again (from the node that answered) when a `-MOVED` says a slot
//! moved elsewhere than the map believes. Every node the first map names
//! gets one socket per load connection; a node that appears in a later
//! map (it joined mid-run) gets one too, then (`worker/join.rs`), so its
//! slots are served once the redirects point there.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use citadel_proto::cluster::{key_slot, SLOT_COUNT};

const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Nesting and size limits of the replies read with `read_value` (the
/// load generator's own questions: CLUSTER SLOTS, INFO).
const MAX_DEPTH: usize = 4;
const MAX_ITEMS: usize = 1 << 20;

/// Which node (an index into `nodes`) serves each of the 16384 slots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    pub nodes: Vec<SocketAddr>,
    owner: Vec<Option<u16>>,
}

/// Where a `-MOVED` or `-ASK` reply sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redirect {
    pub ask: bool,
    pub slot: u16,
    pub to: SocketAddr,
}

impl SlotMap {
    /// Asks the first of `seeds` that answers for `CLUSTER SLOTS`.
    pub fn fetch(seeds: &[SocketAddr]) -> io::Result<SlotMap> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no seed given");
        for seed in seeds {
            match fetch_from(*seed) {
                Ok(map) => return Ok(map),
                Err(e) => last = io::Error::new(e.kind(), format!("{seed}: {e}")),
            }
        }
        Err(last)
    }

    /// The node serving `slot`, if the map has one.
    #[inline]
    pub fn node_of_slot(&self, slot: u16) -> Option<usize> {
        self.owner[usize::from(slot)].map(usize::from)
    }

    /// The node serving `key`'s slot.
    #[inline]
    pub fn node_of_key(&self, key: &[u8]) -> Option<usize> {
        self.node_of_slot(key_slot(key))
    }

    pub fn node_index(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|n| *n == addr)
    }

    /// Applies a `-MOVED`: the slot now belongs to `to`. Returns whether
    /// that changed the map (then the whole map is likely stale).
    pub fn moved(&mut self, r: &Redirect) -> bool {
        let node = self.node_index(r.to).map(|n| n as u16);
        let changed = self.owner[usize::from(r.slot)] != node;
        self.owner[usize::from(r.slot)] = node;
        changed
    }

    /// The nodes of `fresh` this map does not know yet (they joined).
    pub fn newcomers(&self, fresh: &SlotMap) -> Vec<SocketAddr> {
        (fresh.nodes.iter())
            .filter(|a| self.node_index(**a).is_none())
            .copied()
            .collect()
    }

    /// Adds a node (connections to it are made first); its index.
    pub fn add_node(&mut self, addr: SocketAddr) -> usize {
        self.node_index(addr).unwrap_or_else(|| {
            self.nodes.push(addr);
            self.nodes.len() - 1
        })
    }

    /// Takes the owners of `fresh` for the nodes this map knows (the
    /// connections are made for those only).
    pub fn refresh(&mut self, fresh: &SlotMap) {
        for (mine, theirs) in self.owner.iter_mut().zip(&fresh.owner) {
            *mine = theirs
                .and_then(|n| {
                    self.nodes
                        .iter()
                        .position(|a| *a == fresh.nodes[usize::from(n)])
                })
                .map(|n| n as u16);
        }
    }

    /// Builds a map from `(first slot, last slot, node)` ranges.
    pub fn from_ranges(ranges: &[(u16, u16, SocketAddr)]) -> SlotMap {
        let mut map = SlotMap {
            nodes: Vec::new(),
            owner: vec![None; usize::from(SLOT_COUNT)],
        };
        for &(first, last, addr) in ranges {
            let node = match map.node_index(addr) {
                Some(n) => n,
                None => {
                    map.nodes.push(addr);
                    map.nodes.len() - 1
                }
            };
            for slot in first..=last.min(SLOT_COUNT - 1) {
                map.owner[usize::from(slot)] = Some(node as u16);
            }
        }
        map
    }
}

/// Parses `MOVED <slot> <host:port>` / `ASK <slot> <host:port>` (an error
/// reply's text, without the `-`).
pub fn parse_redirect(message: &[u8]) -> Option<Redirect> {
    let text = std::str::from_utf8(message).ok()?;
    let mut words = text.split_ascii_whitespace();
    let ask = match words.next()? {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let slot: u16 = words.next()?.parse().ok().filter(|s| *s < SLOT_COUNT)?;
    let to = words.next()?.to_socket_addrs().ok()?.next()?;
    Some(Redirect { ask, slot, to })
}

fn fetch_from(seed: SocketAddr) -> io::Result<SlotMap> {
    let mut stream = TcpStream::connect_timeout(&seed, FETCH_TIMEOUT)?;
    stream.set_read_timeout(Some(FETCH_TIMEOUT))?;
    stream.write_all(b"*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n")?;
    let reply = read_value(&mut BufReader::new(stream), 0)?;
    let bad =
        |what: &str| io::Error::new(io::ErrorKind::InvalidData, format!("CLUSTER SLOTS: {what}"));
    let Value::Array(entries) = reply else {
        return Err(match reply {
            Value::Error(e) => bad(&e),
            _ => bad("not an array"),
        });
    };
    let mut ranges = Vec::with_capacity(entries.len());
    for entry in entries {
        // [first, last, [host, port, id, ...], replicas...]
        let Value::Array(fields) = entry else {
            return Err(bad("an entry is not an array"));
        };
        let (Some(Value::Int(first)), Some(Value::Int(last)), Some(Value::Array(master))) =
            (fields.first(), fields.get(1), fields.get(2))
        else {
            return Err(bad("an entry lacks its slots or master"));
        };
        let (Some(Value::Text(host)), Some(Value::Int(port))) = (master.first(), master.get(1))
        else {
            return Err(bad("a master lacks its host or port"));
        };
        // An empty or "?" host means "the address you asked".
        let host = if host.is_empty() || host == "?" {
            seed.ip().to_string()
        } else {
            host.clone()
        };
        let port = u16::try_from(*port).map_err(|_| bad("port out of range"))?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| bad("a host does not resolve"))?;
        let slot = |n: i64| u16::try_from(n).ok().filter(|s| *s < SLOT_COUNT);
        let (Some(first), Some(last)) = (slot(*first), slot(*last)) else {
            return Err(bad("slot out of range"));
        };
        ranges.push((first, last, addr));
    }
    if ranges.is_empty() {
        return Err(bad("no slot is served (is the cluster created?)"));
    }
    Ok(SlotMap::from_ranges(&ranges))
}

/// The RESP values the load generator's own questions get back.
#[derive(Debug)]
pub(crate) enum Value {
    Int(i64),
    Text(String),
    Array(Vec<Value>),
    Error(String),
    Nil,
}

/// Reads one reply (`depth` 0 at the top).
pub(crate) fn read_value(r: &mut impl BufRead, depth: usize) -> io::Result<Value> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if depth > MAX_DEPTH {
        return Err(bad("reply nested too deep"));
    }
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(bad("connection closed"));
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let (tag, rest) = line.split_at(line.len().min(1));
    let count = || -> io::Result<i64> { rest.parse().map_err(|_| bad("bad length")) };
    match tag {
        "+" => Ok(Value::Text(rest.to_string())),
        "-" => Ok(Value::Error(rest.to_string())),
        ":" => Ok(Value::Int(count()?)),
        "_" => Ok(Value::Nil),
        "$" => match count()? {
            n if n < 0 => Ok(Value::Nil),
            n if n as usize > MAX_ITEMS => Err(bad("bulk too long")),
            n => {
                let mut bytes = vec![0; n as usize + 2];
                r.read_exact(&mut bytes)?;
                bytes.truncate(n as usize);
                Ok(Value::Text(String::from_utf8_lossy(&bytes).into_owned()))
            }
        },
        "*" | "%" => {
            let n = count()?;
            if n < 0 {
                return Ok(Value::Nil);
            }
            let n = n as usize * if tag == "%" { 2 } else { 1 };
            if n > MAX_ITEMS {
                return Err(bad("array too long"));
            }
            (0..n)
                .map(|_| read_value(r, depth + 1))
                .collect::<io::Result<_>>()
                .map(Value::Array)
        }
        _ => Err(bad("unexpected reply type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn redirects_parse() {
        assert_eq!(
            parse_redirect(b"MOVED 3999 127.0.0.1:6381"),
            Some(Redirect {
                ask: false,
                slot: 3999,
                to: addr(6381)
            })
        );
        assert!(parse_redirect(b"ASK 1 127.0.0.1:7000").unwrap().ask);
        assert_eq!(parse_redirect(b"ERR wrong"), None);
        assert_eq!(parse_redirect(b"MOVED 16384 127.0.0.1:1"), None);
    }

    #[test]
    fn moved_updates_one_slot_and_refresh_keeps_known_nodes() {
        let mut map = SlotMap::from_ranges(&[(0, 8191, addr(1)), (8192, 16383, addr(2))]);
        assert_eq!(map.node_of_slot(100), Some(0));
        let r = Redirect {
            ask: false,
            slot: 100,
            to: addr(2),
        };
        assert!(map.moved(&r));
        assert!(!map.moved(&r), "already there");
        assert_eq!(map.node_of_slot(100), Some(1));
        let fresh = SlotMap::from_ranges(&[(0, 99, addr(2)), (100, 16383, addr(3))]);
        map.refresh(&fresh);
        assert_eq!(map.node_of_slot(0), Some(1));
        assert_eq!(map.node_of_slot(200), None, "node 3 has no connections");
    }

    #[test]
    fn hash_tags_keep_a_group_on_one_slot() {
        let map = SlotMap::from_ranges(&[(0, 16383, addr(1))]);
        assert_eq!(key_slot(b"key:{7}:70"), key_slot(b"key:{7}:79"));
        assert_eq!(map.node_of_key(b"anything"), Some(0));
    }
}
