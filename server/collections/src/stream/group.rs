//! A stream's consumer groups, kept after the page directory in the root:
//!
//! ```text
//! groups:u32 | group x groups
//! group: name_len:u32 | name | last id | entries read:i64 | pel count:u64
//!   | next consumer:u32 | consumers:u32 | consumer x consumers
//!   | pel pages:u32 | pel page info x pel pages
//! consumer: id:u32 | seen time:u64 | pending:u64 | name_len:u32 | name
//! pel page info: page:u64 | first id | last id | count:u32
//! ```
//!
//! Groups and consumers are sorted by name (Redis's radix trees list them
//! so). A group's pending entries live in pages of their own (`pel.rs`),
//! numbered with the stream's pages: the root holds only their directory,
//! so acknowledging an entry rewrites the root and one PEL page.

use super::reader::Reader;
use super::{StreamId, StreamMeta};
use crate::packed::Corrupt;

/// Redis's `SCG_INVALID_ENTRIES_READ`.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// One consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// The number its pending entries name it by.
    pub id: u32,
    pub name: Vec<u8>,
    /// Unix ms of its last read or claim.
    pub seen_time: u64,
    /// Its pending entries.
    pub pending: u64,
}

/// One page of a group's PEL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PelPage {
    pub page: u64,
    pub first: StreamId,
    pub last: StreamId,
    pub count: u32,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub name: Vec<u8>,
    pub last_id: StreamId,
    /// [`INVALID_ENTRIES_READ`] when unknown.
    pub entries_read: i64,
    pub pel_count: u64,
    pub next_consumer: u32,
    pub consumers: Vec<Consumer>,
    pub pel: Vec<PelPage>,
}

impl Group {
    pub fn new(name: &[u8], last_id: StreamId, entries_read: i64) -> Group {
        Group {
            name: name.to_vec(),
            last_id,
            entries_read,
            pel_count: 0,
            next_consumer: 0,
            consumers: Vec::new(),
            pel: Vec::new(),
        }
    }

    /// The consumer named `name`.
    pub fn consumer(&self, name: &[u8]) -> Result<usize, usize> {
        self.consumers
            .binary_search_by(|c| c.name.as_slice().cmp(name))
    }

    /// The consumer numbered `id`.
    pub fn consumer_by_id(&self, id: u32) -> Option<usize> {
        self.consumers.iter().position(|c| c.id == id)
    }

    /// Adds consumer `name` (seen `now`) unless it exists; returns its
    /// index and whether it was created.
    pub fn add_consumer(&mut self, name: &[u8], now: u64) -> (usize, bool) {
        match self.consumer(name) {
            Ok(at) => (at, false),
            Err(at) => {
                let id = self.next_consumer;
                self.next_consumer = self.next_consumer.wrapping_add(1);
                self.consumers.insert(
                    at,
                    Consumer {
                        id,
                        name: name.to_vec(),
                        seen_time: now,
                        pending: 0,
                    },
                );
                (at, true)
            }
        }
    }

    /// The PEL page that holds `id` or would take it (None: no pages).
    pub fn pel_page_for(&self, id: StreamId) -> Option<usize> {
        if self.pel.is_empty() {
            return None;
        }
        Some(
            self.pel
                .partition_point(|p| p.last < id)
                .min(self.pel.len() - 1),
        )
    }

    /// The PEL's first and last IDs.
    pub fn pel_ends(&self) -> Option<(StreamId, StreamId)> {
        Some((self.pel.first()?.first, self.pel.last()?.last))
    }
}

/// Parses the groups area (empty: no groups); every PEL page must lie in
/// `pages`.
pub fn parse(rest: &[u8], pages: &std::ops::Range<u64>) -> Result<Vec<Group>, Corrupt> {
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(rest);
    let n = r.u32()?;
    let mut groups = Vec::with_capacity((n as usize).min(rest.len() / 64));
    for _ in 0..n {
        let name = r.bytes()?.to_vec();
        let last_id = r.id()?;
        let entries_read = r.u64()? as i64;
        let pel_count = r.u64()?;
        let next_consumer = r.u32()?;
        let nc = r.u32()? as usize;
        let mut consumers = Vec::with_capacity(nc.min(rest.len() / 24));
        for _ in 0..nc {
            let id = r.u32()?;
            let seen_time = r.u64()?;
            let pending = r.u64()?;
            let name = r.bytes()?.to_vec();
            consumers.push(Consumer {
                id,
                name,
                seen_time,
                pending,
            });
        }
        let np = r.u32()? as usize;
        let mut pel = Vec::with_capacity(np.min(rest.len() / 44));
        for _ in 0..np {
            let page = r.u64()?;
            if !pages.contains(&page) {
                return Err(Corrupt);
            }
            pel.push(PelPage {
                page,
                first: r.id()?,
                last: r.id()?,
                count: r.u32()?,
            });
        }
        let total: u64 = pel.iter().map(|p| u64::from(p.count)).sum();
        if total != pel_count {
            return Err(Corrupt);
        }
        groups.push(Group {
            name,
            last_id,
            entries_read,
            pel_count,
            next_consumer,
            consumers,
            pel,
        });
    }
    if r.left() != 0 {
        return Err(Corrupt);
    }
    Ok(groups)
}

/// The groups area for `groups` (empty when there are none).
pub fn encode(groups: &[Group]) -> Vec<u8> {
    if groups.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(groups.len() as u32).to_le_bytes());
    for g in groups {
        put_bytes(&mut out, &g.name);
        out.extend_from_slice(&g.last_id.to_bytes());
        out.extend_from_slice(&g.entries_read.to_le_bytes());
        out.extend_from_slice(&g.pel_count.to_le_bytes());
        out.extend_from_slice(&g.next_consumer.to_le_bytes());
        out.extend_from_slice(&(g.consumers.len() as u32).to_le_bytes());
        for c in &g.consumers {
            out.extend_from_slice(&c.id.to_le_bytes());
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            out.extend_from_slice(&c.pending.to_le_bytes());
            put_bytes(&mut out, &c.name);
        }
        out.extend_from_slice(&(g.pel.len() as u32).to_le_bytes());
        for p in &g.pel {
            out.extend_from_slice(&p.page.to_le_bytes());
            out.extend_from_slice(&p.first.to_bytes());
            out.extend_from_slice(&p.last.to_bytes());
            out.extend_from_slice(&p.count.to_le_bytes());
        }
    }
    out
}

/// The smallest PEL page number of the groups area (it bounds the root's
/// page range from below, with the stream's first page).
pub fn first_pel_page(rest: &[u8]) -> Option<u64> {
    let groups = parse(rest, &(0..u64::MAX)).ok()?;
    groups
        .iter()
        .flat_map(|g| g.pel.iter().map(|p| p.page))
        .min()
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Redis's `streamRangeHasTombstones` from `start` to the end.
pub fn has_tombstones_from(m: &StreamMeta, start: StreamId) -> bool {
    if m.length == 0 || m.max_deleted == StreamId::MIN || m.first_id > m.max_deleted {
        return false;
    }
    start <= m.max_deleted
}

/// Redis's `streamEstimateDistanceFromFirstEverEntry`: the entries-read
/// counter of `id`, or [`INVALID_ENTRIES_READ`].
pub fn estimate_entries_read(m: &StreamMeta, id: StreamId) -> i64 {
    let added = m.entries_added as i64;
    if m.entries_added == 0 {
        return 0;
    }
    if m.length == 0 && id <= m.last_id {
        return added;
    }
    if id == m.last_id {
        return added;
    } else if id > m.last_id {
        return INVALID_ENTRIES_READ;
    }
    if m.max_deleted == StreamId::MIN || m.max_deleted < m.first_id {
        if id < m.first_id {
            return added - m.length as i64;
        } else if id == m.first_id {
            return added - m.length as i64 + 1;
        }
    }
    INVALID_ENTRIES_READ
}

/// Redis's group lag (`streamReplyWithCGLag`); None: unknown.
pub fn lag(m: &StreamMeta, g: &Group) -> Option<i64> {
    let added = m.entries_added as i64;
    if m.entries_added == 0 {
        return Some(0);
    }
    if g.entries_read != INVALID_ENTRIES_READ && !has_tombstones_from(m, g.last_id) {
        return Some(added - g.entries_read);
    }
    let read = estimate_entries_read(m, g.last_id);
    (read != INVALID_ENTRIES_READ).then_some(added - read)
}

/// Moves `g`'s last delivered ID to `id` (a newly delivered entry), with
/// Redis's entries-read bookkeeping.
pub fn advance(m: &StreamMeta, g: &mut Group, id: StreamId) {
    if id <= g.last_id {
        return;
    }
    if g.entries_read != INVALID_ENTRIES_READ && !has_tombstones_from(m, id) {
        g.entries_read += 1;
    } else if m.entries_added != 0 {
        g.entries_read = estimate_entries_read(m, id);
    }
    g.last_id = id;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_round_trip_and_reject_corruption() {
        let mut g = Group::new(b"g1", StreamId::new(5, 1), 3);
        g.add_consumer(b"bob", 10);
        g.add_consumer(b"alice", 11);
        assert_eq!(g.consumers[0].name, b"alice");
        assert_eq!(g.add_consumer(b"bob", 12), (1, false));
        g.pel.push(PelPage {
            page: 4,
            first: StreamId::new(1, 0),
            last: StreamId::new(2, 0),
            count: 2,
        });
        g.pel_count = 2;
        let groups = vec![g, Group::new(b"g2", StreamId::MIN, INVALID_ENTRIES_READ)];
        let bytes = encode(&groups);
        assert_eq!(parse(&bytes, &(0..10)).unwrap(), groups);
        assert_eq!(first_pel_page(&bytes), Some(4));
        assert!(parse(&bytes, &(5..10)).is_err());
        for cut in 1..bytes.len() {
            assert!(parse(&bytes[..cut], &(0..10)).is_err());
        }
        assert_eq!(parse(&[], &(0..0)).unwrap(), vec![]);
    }

    #[test]
    fn lag_follows_redis() {
        let mut m = StreamMeta {
            length: 3,
            last_id: StreamId::new(3, 0),
            first_id: StreamId::new(1, 0),
            max_deleted: StreamId::MIN,
            entries_added: 3,
        };
        let mut g = Group::new(b"g", StreamId::MIN, INVALID_ENTRIES_READ);
        assert_eq!(lag(&m, &g), Some(3));
        advance(&m, &mut g, StreamId::new(1, 0));
        assert_eq!((g.entries_read, lag(&m, &g)), (1, Some(2)));
        m.max_deleted = StreamId::new(2, 0);
        m.length = 2;
        let g2 = Group::new(b"g", StreamId::new(1, 5), INVALID_ENTRIES_READ);
        assert_eq!(lag(&m, &g2), None);
        assert_eq!(estimate_entries_read(&m, StreamId::new(3, 0)), 3);
        assert_eq!(estimate_entries_read(&m, StreamId::new(4, 0)), -1);
    }
}
