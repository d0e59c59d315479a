//! What the ACL rules name: every command and subcommand by its global
//! index (the command table's), with its ACL categories as bits. Built once
//! by the command layer and handed down, so this module knows nothing of
//! the command table.

use std::collections::HashMap;

/// Redis 7.0's categories, in its order (ACL CAT, the describe algorithm).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// The bit of a category name (without its `@`), case-insensitive.
pub fn category_bit(name: &[u8]) -> Option<u32> {
    CATEGORIES
        .iter()
        .position(|c| c.as_bytes().eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// One command or subcommand.
pub struct Entry {
    /// "get", or "config|get" for a subcommand.
    pub name: &'static str,
    /// Bits of [`CATEGORIES`].
    pub categories: u32,
    /// Its subcommands' indexes (empty for most).
    pub subs: Vec<usize>,
    /// A subcommand's container.
    pub parent: Option<usize>,
}

/// Every command, by global index; top-level ones in table order.
pub struct Catalog {
    entries: Vec<Option<Entry>>,
    /// Top-level indexes, in table order (the describe order).
    top: Vec<usize>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    /// `entries`: (global index, entry) for every command and subcommand.
    pub fn new(list: Vec<(usize, Entry)>) -> Catalog {
        let len = list.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
        let mut entries: Vec<Option<Entry>> = (0..len).map(|_| None).collect();
        let mut top = Vec::new();
        let mut by_name = HashMap::new();
        for (i, e) in list {
            if e.parent.is_none() {
                top.push(i);
            }
            by_name.insert(e.name.to_owned(), i);
            entries[i] = Some(e);
        }
        Catalog {
            entries,
            top,
            by_name,
        }
    }

    /// How many command indexes there are (the permission bitmap's size).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, idx: usize) -> Option<&Entry> {
        self.entries.get(idx)?.as_ref()
    }

    /// A command ("get") or subcommand ("config|get") by name, any case.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        self.by_name.get(&lower).copied()
    }

    /// Top-level commands, each followed by its subcommands (the order
    /// rules are described and categories listed in).
    pub fn walk(&self) -> impl Iterator<Item = (usize, &Entry)> + '_ {
        self.top.iter().flat_map(move |&i| {
            let e = self.get(i);
            let subs = e.map(|e| e.subs.as_slice()).unwrap_or(&[]);
            std::iter::once(i)
                .chain(subs.iter().copied())
                .filter_map(move |j| self.get(j).map(|e| (j, e)))
        })
    }
}
