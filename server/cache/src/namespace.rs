//! Namespaces: Redis's numbered databases in one keyspace.
//!
//! A handle works in one physical namespace at a time (`set_namespace`);
//! every key it is given is turned into the key stored in the index here,
//! once, and every key it hands back (SCAN, RANDOMKEY, the change feed) is
//! turned back. The mapping is a bijection:
//!
//! * namespace 0: the user's key itself, unless it starts with `MARKER`;
//!   then `MARKER | 0 | key` (escaped, so no user key of namespace 0 can
//!   pose as another namespace's key);
//! * namespace p != 0: `MARKER | p | key`.
//!
//! So namespace 0 (every key of a server that never SELECTs) costs one
//! first-byte compare per key. A page key (owned.rs) states its owner's
//! length; the prefix grows the owner, so the stated length grows with it:
//! the stored page key of a stored root is what the engine derives itself.
//!
//! The logical database -> physical namespace table (SWAPDB) and the set of
//! namespaces ever written live in the file's header (`H_DB_TABLE`,
//! `H_NAMESPACES_USED`), so a restart keeps them. The table is one word of
//! 16 nibbles, each `physical ^ logical`: a zeroed header (a new file, or
//! one from before namespaces) is the identity, and a swap is one store.

use crate::cache::Cache;
use crate::layout::{H_DB_TABLE, H_NAMESPACES_USED};
use crate::owned::parse_page_key;
use crate::region::SharedBytes;
use crate::sync::Ordering;

/// Leads every key stored outside namespace 0's plain keys: bytes no text
/// key starts with.
pub const MARKER: [u8; 4] = [0xFF, 0xDB, 0x5E, 0x1C];
/// `MARKER` and the namespace byte.
pub const PREFIX_LEN: usize = MARKER.len() + 1;
pub use crate::layout::MAX_NAMESPACES;

/// The handle's namespace while it is given stored keys themselves (a
/// command working across namespaces: MOVE, COPY ... DB).
pub const RAW: u8 = u8::MAX;

/// Whether `key` of namespace `ns` is stored under other bytes.
#[inline(always)]
pub fn needs_prefix(ns: u8, key: &[u8]) -> bool {
    if ns == 0 {
        key.first() == Some(&MARKER[0]) && key.starts_with(&MARKER)
    } else {
        ns != RAW
    }
}

/// The stored form of `key` of namespace `ns`, in `out` (cleared first).
pub fn stored_key(ns: u8, key: &[u8], out: &mut Vec<u8>) {
    out.clear();
    if needs_prefix(ns, key) {
        append_stored(ns, key, out);
    } else {
        out.extend_from_slice(key);
    }
}

/// Appends the stored form of `key` of namespace `ns` to `out` (for a key
/// `needs_prefix` says is stored under other bytes).
pub fn append_stored(ns: u8, key: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&MARKER);
    out.push(ns);
    out.extend_from_slice(key);
    if let Some(page) = parse_page_key(key) {
        // The stated owner length: the owner's stored length now.
        let stated_at = out.len() - crate::owned::PAGE_KEY_MAGIC.len() - 4;
        let stated = (page.owner.len() + PREFIX_LEN) as u32;
        out[stated_at..stated_at + 4].copy_from_slice(&stated.to_le_bytes());
    }
    debug_assert!(out.len() - start == key.len() + PREFIX_LEN);
}

/// The writer slots' counter lane of namespace `ns` (`W_NS_KEYS`,
/// `W_NS_EXPIRES`): None for namespace 0, which has none (the total less
/// the others), and for a byte that names no namespace.
#[inline(always)]
pub(crate) fn counter_lane(ns: u8) -> Option<usize> {
    let ns = usize::from(ns);
    (ns != 0 && ns < MAX_NAMESPACES).then_some(ns)
}

/// The namespace of stored key `stored` and the user's key in it.
pub fn split(stored: &[u8]) -> (u8, &[u8]) {
    match stored.strip_prefix(&MARKER) {
        Some([ns, key @ ..]) => (*ns, key),
        _ => (0, stored),
    }
}

/// `split` for a key in the mapped file: the namespace and where the
/// user's key starts.
pub fn split_shared(stored: SharedBytes<'_>) -> (u8, usize) {
    match stored.head::<PREFIX_LEN>() {
        Some(head) if head[..MARKER.len()] == MARKER => (head[MARKER.len()], PREFIX_LEN),
        _ => (0, 0),
    }
}

/// The logical databases' physical namespaces (SWAPDB), in the header.
impl Cache {
    fn db_table(&self) -> &crate::sync::AtomicU64 {
        self.region.u64_at(H_DB_TABLE)
    }

    /// The physical namespace of logical database `db` (< `MAX_NAMESPACES`).
    #[inline]
    pub fn namespace_of(&self, db: usize) -> u8 {
        debug_assert!(db < MAX_NAMESPACES);
        // ORDERING: Relaxed: SWAPDB changes it while every other server
        // thread is outside its loop turn (the world gate), which orders it.
        let table = self.db_table().load(Ordering::Relaxed);
        let db = db % MAX_NAMESPACES;
        ((table >> (4 * db)) & 0xF) as u8 ^ db as u8
    }

    /// Whether every logical database is its own namespace (no SWAPDB in
    /// effect).
    #[inline]
    pub fn namespaces_identity(&self) -> bool {
        // ORDERING: Relaxed, as in `namespace_of`.
        self.db_table().load(Ordering::Relaxed) == 0
    }

    /// SWAPDB: logical databases `a` and `b` trade namespaces, in one
    /// store (a kill -9 leaves the old table or the new one).
    pub fn swap_namespaces(&self, a: usize, b: usize) {
        let (pa, pb) = (self.namespace_of(a), self.namespace_of(b));
        let nibble = |db: usize, physical: u8| u64::from(physical ^ db as u8) << (4 * db);
        let mask = (0xF << (4 * a)) | (0xF << (4 * b));
        // ORDERING: Relaxed load; the store is Release so a reader that
        // sees it sees what the swapping thread wrote before.
        let old = self.db_table().load(Ordering::Relaxed);
        let new = (old & !mask) | nibble(a, pb) | nibble(b, pa);
        self.db_table().store(new, Ordering::Release);
    }

    /// Notes that namespace `ns` may hold keys (before a write to it).
    #[inline]
    pub fn note_namespace_used(&self, ns: u8) {
        let bit = 1u64 << (ns % 64);
        let used = self.region.u64_at(H_NAMESPACES_USED);
        // ORDERING: Relaxed: a hint for DBSIZE; set before the write, so
        // no key of `ns` exists while its bit is clear.
        if used.load(Ordering::Relaxed) & bit == 0 {
            used.fetch_or(bit, Ordering::Relaxed);
        }
    }

    /// Namespaces other than 0 that may hold keys, one bit each.
    pub fn namespaces_used(&self) -> u64 {
        // ORDERING: Relaxed: see `note_namespace_used`.
        self.region
            .u64_at(H_NAMESPACES_USED)
            .load(Ordering::Relaxed)
            & !1
    }

    /// After FLUSHALL: no namespace but 0 holds keys.
    pub(crate) fn clear_namespaces_used(&self) {
        // ORDERING: Relaxed: see `note_namespace_used`.
        self.region
            .u64_at(H_NAMESPACES_USED)
            .store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::owned::page_key;

    fn stored(ns: u8, key: &[u8]) -> Vec<u8> {
        if !needs_prefix(ns, key) {
            return key.to_vec();
        }
        let mut out = Vec::new();
        append_stored(ns, key, &mut out);
        out
    }

    #[test]
    fn mapping_round_trips_and_never_collides() {
        let keys: [&[u8]; 5] = [b"", b"a", &MARKER, b"\xff\xdb\x5e\x1c\x01x", b"\xffz"];
        let mut seen = std::collections::HashSet::new();
        for ns in [0u8, 1, 2, 15] {
            for key in keys {
                let s = stored(ns, key);
                assert_eq!(split(&s), (ns, key), "ns {ns} key {key:?}");
                assert!(seen.insert(s), "two keys stored alike");
            }
        }
        assert_eq!(stored(0, b"plain"), b"plain");
    }

    #[test]
    fn a_page_key_maps_to_the_stored_roots_page_key() {
        let mut user_page = Vec::new();
        page_key(b"list", 7, 3, &mut user_page);
        let root = stored(2, b"list");
        let mut expected = Vec::new();
        page_key(&root, 7, 3, &mut expected);
        let got = stored(2, &user_page);
        assert_eq!(got, expected);
        let page = parse_page_key(&got).expect("still a page key");
        assert_eq!((page.owner, page.generation, page.page), (&root[..], 7, 3));
    }
}
