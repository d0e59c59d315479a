//! A stream's root: the common root header, the stream's metadata and the
//! directory of its pages in ID order.
//!
//! ```text
//! header (paged.rs) | length:u64 | last id | first id | max deleted id
//!   | entries added:u64 | pages:u32 | page info x pages | rest
//! page info: page:u64 | first id | last id | count:u32 | deleted:u32 | bytes:u32
//! ```
//!
//! An ID is 16 bytes (`ms:u64 | seq:u64`); all integers little endian.
//! `rest` is the consumer groups' area (`group.rs`; empty: none).

use super::{node_max_bytes, node_max_entries, StreamId};
use crate::packed::Corrupt;
use crate::paged::RootHeader;

/// What Redis keeps of a stream besides its entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamMeta {
    pub length: u64,
    pub last_id: StreamId,
    /// Redis's `first_id` (XINFO's recorded-first-entry-id).
    pub first_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
}

/// What XTRIM (or XADD's trimming) keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A trimming request: the strategy, `~`, and LIMIT (0: none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrimArgs {
    pub trim: Trim,
    pub approx: bool,
    pub limit: u64,
}

/// One page of the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageInfo {
    pub page: u64,
    pub first: StreamId,
    pub last: StreamId,
    /// Live entries.
    pub count: u32,
    /// Entries deleted from it since it was started (Redis counts them
    /// towards a node's size).
    pub deleted: u32,
    /// Redis's estimate of the node's listpack bytes (the node rule).
    pub bytes: u32,
}

const META_LEN: usize = 8 + 16 * 3 + 8 + 4;
const INFO_LEN: usize = 8 + 32 + 12;

/// A parsed stream root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRoot {
    pub header: RootHeader,
    pub meta: StreamMeta,
    pub dir: Vec<PageInfo>,
    pub rest: Vec<u8>,
}

fn id_at(b: &[u8], at: usize) -> StreamId {
    StreamId::from_bytes(b[at..at + 16].try_into().expect("16 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl StreamRoot {
    /// An empty stream whose pages will be named under `generation`.
    pub fn new(generation: u64) -> StreamRoot {
        StreamRoot {
            header: RootHeader {
                generation,
                version: 0,
                pages: 0..0,
            },
            meta: StreamMeta::default(),
            dir: Vec::new(),
            rest: Vec::new(),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<StreamRoot, Corrupt> {
        let (header, body) = RootHeader::parse(bytes)?;
        if body.len() < META_LEN {
            return Err(Corrupt);
        }
        let meta = StreamMeta {
            length: u64_at(body, 0),
            last_id: id_at(body, 8),
            first_id: id_at(body, 24),
            max_deleted: id_at(body, 40),
            entries_added: u64_at(body, 56),
        };
        let pages = u32_at(body, 64) as usize;
        let end = pages
            .checked_mul(INFO_LEN)
            .and_then(|n| n.checked_add(META_LEN))
            .filter(|&end| end <= body.len())
            .ok_or(Corrupt)?;
        let dir = body[META_LEN..end]
            .chunks_exact(INFO_LEN)
            .map(|b| PageInfo {
                page: u64_at(b, 0),
                first: id_at(b, 8),
                last: id_at(b, 24),
                count: u32_at(b, 40),
                deleted: u32_at(b, 44),
                bytes: u32_at(b, 48),
            })
            .collect::<Vec<_>>();
        let live: u64 = dir.iter().map(|p| u64::from(p.count)).sum();
        if live != meta.length || dir.iter().any(|p| !header.pages.contains(&p.page)) {
            return Err(Corrupt);
        }
        Ok(StreamRoot {
            header,
            meta,
            dir,
            rest: body[end..].to_vec(),
        })
    }

    /// The stored bytes (the header as it is: see [`StreamRoot::bump`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(33 + META_LEN + self.dir.len() * INFO_LEN + self.rest.len());
        self.header.write(&mut out);
        out.extend_from_slice(&self.meta.length.to_le_bytes());
        for id in [self.meta.last_id, self.meta.first_id, self.meta.max_deleted] {
            out.extend_from_slice(&id.to_bytes());
        }
        out.extend_from_slice(&self.meta.entries_added.to_le_bytes());
        out.extend_from_slice(&(self.dir.len() as u32).to_le_bytes());
        for p in &self.dir {
            out.extend_from_slice(&p.page.to_le_bytes());
            out.extend_from_slice(&p.first.to_bytes());
            out.extend_from_slice(&p.last.to_bytes());
            out.extend_from_slice(&p.count.to_le_bytes());
            out.extend_from_slice(&p.deleted.to_le_bytes());
            out.extend_from_slice(&p.bytes.to_le_bytes());
        }
        out.extend_from_slice(&self.rest);
        out
    }

    /// Moves the version on (every write) and fits the page range to the
    /// directory (pages are numbered upwards: the first one's number
    /// starts it, the next to be made ends it).
    pub fn bump(&mut self) {
        self.header = self.header.next();
        let first = self.dir.first().map(|p| p.page);
        let pel = super::group::first_pel_page(&self.rest);
        self.header.pages.start = first
            .into_iter()
            .chain(pel)
            .min()
            .unwrap_or(self.header.pages.end);
    }

    /// The page an entry of `fields` goes to: the last page while it has
    /// room (Redis's node rule), else a new page (the next number).
    /// Returns its directory index after noting the entry there.
    pub fn note_append(&mut self, id: StreamId, fields: &[&[u8]]) -> usize {
        // Redis's test: the node's listpack bytes plus the new entry's
        // fields and values; a listpack entry costs a few bytes more than
        // its text (estimated as 8), not our page's 20-byte header.
        let bytes = fields.iter().map(|f| f.len() as u64).sum::<u64>() + 8;
        let (max_bytes, max_entries) = (node_max_bytes(), node_max_entries());
        let fits = self.dir.last().is_some_and(|p| {
            u64::from(p.bytes) + bytes < max_bytes
                && u64::from(p.count) + u64::from(p.deleted) < max_entries
        });
        if !fits {
            let page = self.header.pages.end;
            self.header.pages.end += 1;
            self.dir.push(PageInfo {
                page,
                first: id,
                last: id,
                count: 0,
                deleted: 0,
                bytes: 4,
            });
        }
        let at = self.dir.len() - 1;
        let p = &mut self.dir[at];
        p.count += 1;
        p.last = id;
        p.bytes = p.bytes.saturating_add(bytes as u32);
        self.meta.length += 1;
        self.meta.entries_added += 1;
        self.meta.last_id = id;
        if self.meta.length == 1 {
            self.meta.first_id = id;
        }
        at
    }

    /// The directory index of the first page whose entries may reach `id`
    /// (its last entry is at or after it).
    pub fn first_page_from(&self, id: StreamId) -> usize {
        self.dir.partition_point(|p| p.last < id)
    }

    /// The directory index just past the last page whose first entry is at
    /// or before `id`.
    pub fn end_page_to(&self, id: StreamId) -> usize {
        self.dir.partition_point(|p| p.first <= id)
    }

    /// The pages holding entries in `start..=end`, in order, enough to give
    /// `count` entries from the front (`rev`: from the back; 0: all).
    pub fn pages_in(&self, start: StreamId, end: StreamId, count: u64, rev: bool) -> Vec<u64> {
        if start > end {
            return Vec::new();
        }
        let span = &self.dir
            [self.first_page_from(start)..self.end_page_to(end).max(self.first_page_from(start))];
        let mut out = Vec::new();
        let mut seen = 0u64;
        // The first page taken may hold entries outside the range: only
        // the pages after it count towards `count`.
        let mut take = |p: &PageInfo| {
            if !out.is_empty() {
                seen += u64::from(p.count);
            }
            out.push(p.page);
            count != 0 && seen >= count
        };
        if rev {
            for p in span.iter().rev() {
                if take(p) {
                    break;
                }
            }
        } else {
            for p in span {
                if take(p) {
                    break;
                }
            }
        }
        out
    }

    /// Redis's `streamTrim` over the directory: how many leading pages go
    /// whole, and whether the page after them is cut inside (exact
    /// trimming only).
    pub fn trim_span(&self, args: &TrimArgs) -> (usize, bool) {
        let mut length = self.meta.length;
        let mut deleted = 0u64;
        for (i, p) in self.dir.iter().enumerate() {
            if matches!(args.trim, Trim::MaxLen(max) if length <= max) {
                return (i, false);
            }
            let entries = u64::from(p.count);
            if args.limit != 0 && deleted + entries > args.limit {
                return (i, false);
            }
            let whole = match args.trim {
                Trim::MaxLen(max) => length - entries >= max,
                Trim::MinId(id) => p.last < id,
            };
            if !whole {
                return (i, !args.approx);
            }
            length -= entries;
            deleted += entries;
        }
        (self.dir.len(), false)
    }

    /// The last live entry's ID (Redis's `streamLastValidID`).
    pub fn last_valid(&self) -> Option<StreamId> {
        self.dir.last().map(|p| p.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_round_trip_and_pages_follow_the_node_rule() {
        let mut root = StreamRoot::new(7);
        for i in 0..250u64 {
            root.note_append(StreamId::new(i, 0), &[b"f", b"v"]);
        }
        root.bump();
        assert_eq!(root.dir.len(), 3);
        assert_eq!(u64::from(root.dir[0].count), super::super::NODE_MAX_ENTRIES);
        assert_eq!(root.header.pages, 0..3);
        let bytes = root.encode();
        assert_eq!(StreamRoot::parse(&bytes).unwrap(), root);
        assert_eq!(
            root.pages_in(StreamId::new(150, 0), StreamId::MAX, 10, false),
            vec![1, 2]
        );
        assert_eq!(
            root.pages_in(StreamId::MIN, StreamId::MAX, 150, true),
            vec![2, 1, 0]
        );
        assert_eq!(
            root.pages_in(StreamId::new(5, 0), StreamId::new(4, 0), 0, false),
            Vec::<u64>::new()
        );
        let exact = |trim| TrimArgs {
            trim,
            approx: false,
            limit: 0,
        };
        assert_eq!(root.trim_span(&exact(Trim::MaxLen(150))), (1, false));
        assert_eq!(root.trim_span(&exact(Trim::MaxLen(149))), (1, true));
        assert_eq!(
            root.trim_span(&TrimArgs {
                approx: true,
                ..exact(Trim::MaxLen(149))
            }),
            (1, false)
        );
        assert_eq!(
            root.trim_span(&exact(Trim::MinId(StreamId::new(100, 0)))),
            (1, true)
        );
        assert_eq!(
            root.trim_span(&exact(Trim::MinId(StreamId::new(101, 0)))),
            (1, true)
        );
        assert_eq!(
            root.trim_span(&TrimArgs {
                limit: 99,
                ..exact(Trim::MaxLen(0))
            }),
            (0, false)
        );
        for cut in 0..bytes.len() {
            assert!(StreamRoot::parse(&bytes[..cut]).is_err());
        }
    }
}
