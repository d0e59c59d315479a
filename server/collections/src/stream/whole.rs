//! A stream read whole into plain values, and built back into a root and
//! pages: what DUMP writes and RESTORE reads, independent of how pages
//! and consumer numbers happen to be laid out.

pub use super::entries::{Entries, EntryRef, WholeEntry};
use super::{
    group, page, pel, Consumer, Group, PelPage, Pending, StreamId, StreamMeta, StreamRoot,
    NODE_MAX_BYTES, NODE_MAX_ENTRIES,
};
use crate::packed::Corrupt;
use crate::paged::{Built, RootHeader};

/// A pending entry of a group, owned by one of its consumers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WholePending {
    pub id: StreamId,
    /// Unix ms of the last delivery.
    pub delivery_time: u64,
    pub delivery_count: u64,
    /// Its consumer's index in [`WholeGroup::consumers`].
    pub consumer: usize,
}

/// A consumer: its name and when it was last seen (unix ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WholeConsumer {
    pub name: Vec<u8>,
    pub seen_time: u64,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WholeGroup {
    pub name: Vec<u8>,
    pub last_id: StreamId,
    /// [`group::INVALID_ENTRIES_READ`] when unknown.
    pub entries_read: i64,
    /// In ID order.
    pub pending: Vec<WholePending>,
    pub consumers: Vec<WholeConsumer>,
}

/// A whole stream. `meta.length` is the number of entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WholeStream {
    /// In ID order.
    pub entries: Entries,
    pub meta: StreamMeta,
    pub groups: Vec<WholeGroup>,
}

impl WholeStream {
    /// The stream whose root is `root` (stored bytes) and whose pages
    /// `page` copies by number into the buffer it is given (false: not
    /// stored).
    pub fn read(
        root: &[u8],
        mut page: impl FnMut(u64, &mut Vec<u8>) -> bool,
    ) -> Result<WholeStream, Corrupt> {
        let root = StreamRoot::parse(root)?;
        let mut buf = Vec::new();
        let mut entries = Entries::default();
        for info in &root.dir {
            let count = page::entries_into(load(&mut page, info.page, &mut buf)?, &mut entries)?;
            if count != info.count as usize {
                return Err(Corrupt);
            }
        }
        let mut groups = Vec::new();
        for g in group::parse(&root.rest, &root.header.pages)? {
            let mut pending = Vec::with_capacity(g.pel_count.min(1 << 20) as usize);
            for p in &g.pel {
                for entry in pel::entries(load(&mut page, p.page, &mut buf)?)? {
                    pending.push(WholePending {
                        id: entry.id,
                        delivery_time: entry.delivery_time,
                        delivery_count: entry.delivery_count,
                        consumer: g.consumer_by_id(entry.consumer).ok_or(Corrupt)?,
                    });
                }
            }
            groups.push(WholeGroup {
                name: g.name,
                last_id: g.last_id,
                entries_read: g.entries_read,
                pending,
                consumers: g
                    .consumers
                    .into_iter()
                    .map(|c| WholeConsumer {
                        name: c.name,
                        seen_time: c.seen_time,
                    })
                    .collect(),
            });
        }
        let whole = WholeStream {
            entries,
            meta: root.meta,
            groups,
        };
        whole.check()?;
        Ok(whole)
    }

    /// Whether it holds together: entries and every group's pending
    /// entries in strictly rising ID order, none past the last ID,
    /// group and consumer names unique, every consumer index valid.
    pub fn check(&self) -> Result<(), Corrupt> {
        let ids = self.entries.ids();
        let fields_ok = self
            .entries
            .iter()
            .all(|e| !e.is_empty() && e.len() % 2 == 0);
        if !ids.windows(2).all(|w| w[0] < w[1])
            || !fields_ok
            || self.meta.length != self.entries.len() as u64
            || ids.last().is_some_and(|&last| last > self.meta.last_id)
        {
            return Err(Corrupt);
        }
        let unique = |names: &mut dyn Iterator<Item = &[u8]>| {
            let mut sorted: Vec<&[u8]> = names.collect();
            sorted.sort_unstable();
            sorted.windows(2).all(|w| w[0] != w[1])
        };
        if !unique(&mut self.groups.iter().map(|g| &g.name[..])) {
            return Err(Corrupt);
        }
        for g in &self.groups {
            if !g.pending.windows(2).all(|w| w[0].id < w[1].id)
                || !unique(&mut g.consumers.iter().map(|c| &c.name[..]))
                || g.pending.iter().any(|p| p.consumer >= g.consumers.len())
            {
                return Err(Corrupt);
            }
        }
        Ok(())
    }

    /// Its root and pages under `generation`, pages numbered from 0 (see
    /// [`WholeStream::page_count`]). Entries go into pages by Redis's node
    /// rule, as XADD puts them.
    pub fn build(&self, generation: u64) -> Result<Built, Corrupt> {
        self.check()?;
        let mut root = StreamRoot::new(generation);
        let mut pages: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut fields: Vec<&[u8]> = Vec::new();
        for entry in self.entries.iter() {
            fields.clear();
            fields.extend(entry.fields());
            let at = root.note_append(entry.id, &fields);
            let number = root.dir[at].page;
            if pages.last().is_none_or(|(n, _)| *n != number) {
                // A full page at the default limits: the node rule's bytes,
                // a 20-byte header an entry (a hint: the page grows past it).
                let full = (NODE_MAX_BYTES + 20 * NODE_MAX_ENTRIES) as usize;
                pages.push((number, Vec::with_capacity(full)));
            }
            let (_, bytes) = pages.last_mut().expect("pushed");
            page::append(bytes, entry.id, &fields)?;
        }
        root.meta = self.meta;
        let mut groups = Vec::with_capacity(self.groups.len());
        for g in &self.groups {
            groups.push(self.build_group(g, &mut root, &mut pages));
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        root.rest = group::encode(&groups);
        root.header = RootHeader {
            generation,
            version: 0,
            pages: 0..root.header.pages.end,
        };
        Ok(Built {
            root: root.encode(),
            pages,
        })
    }

    /// Group `g` as stored, its PEL pages numbered after `root`'s and
    /// added to `pages`.
    fn build_group(
        &self,
        g: &WholeGroup,
        root: &mut StreamRoot,
        pages: &mut Vec<(u64, Vec<u8>)>,
    ) -> Group {
        let mut built = Group::new(&g.name, g.last_id, g.entries_read);
        let mut pending_of = vec![0u64; g.consumers.len()];
        for p in &g.pending {
            pending_of[p.consumer] += 1;
        }
        // Consumers are numbered in the payload's order, kept by name.
        built.consumers = g
            .consumers
            .iter()
            .zip(pending_of)
            .enumerate()
            .map(|(id, (c, pending))| Consumer {
                id: id as u32,
                name: c.name.clone(),
                seen_time: c.seen_time,
                pending,
            })
            .collect();
        built.consumers.sort_by(|a, b| a.name.cmp(&b.name));
        built.next_consumer = g.consumers.len() as u32;
        for chunk in g.pending.chunks(pel::PEL_PAGE_MAX) {
            let list: Vec<Pending> = chunk
                .iter()
                .map(|p| Pending {
                    id: p.id,
                    delivery_time: p.delivery_time,
                    delivery_count: p.delivery_count,
                    consumer: p.consumer as u32,
                })
                .collect();
            let number = root.header.pages.end;
            root.header.pages.end += 1;
            built.pel.push(PelPage {
                page: number,
                first: chunk[0].id,
                last: chunk[chunk.len() - 1].id,
                count: chunk.len() as u32,
            });
            pages.push((number, pel::encode(&list)));
        }
        built.pel_count = g.pending.len() as u64;
        built
    }

    /// How many pages [`WholeStream::build`] makes (the fresh pages to ask
    /// for first): entry pages by the node rule, then PEL pages.
    pub fn page_count(&self) -> Result<u64, Corrupt> {
        // (Counting needs no check: `build` checks before it lays out.)
        let mut root = StreamRoot::new(0);
        let mut fields: Vec<&[u8]> = Vec::new();
        for entry in self.entries.iter() {
            fields.clear();
            fields.extend(entry.fields());
            root.note_append(entry.id, &fields);
        }
        let pel: u64 = (self.groups.iter())
            .map(|g| g.pending.len().div_ceil(pel::PEL_PAGE_MAX) as u64)
            .sum();
        Ok(root.header.pages.end + pel)
    }
}

/// Page `number` copied into `buf` by `page`; a page not stored is
/// corruption.
fn load<'b>(
    page: &mut impl FnMut(u64, &mut Vec<u8>) -> bool,
    number: u64,
    buf: &'b mut Vec<u8>,
) -> Result<&'b [u8], Corrupt> {
    buf.clear();
    match page(number, buf) {
        true => Ok(buf),
        false => Err(Corrupt),
    }
}

#[cfg(test)]
mod tests;
