//! HSCAN and SSCAN cursors: positions in the *reversed* hash space.
//!
//! An entry's position is its key's hash with the bits reversed. A page
//! holds every key whose low `l` hash bits are its number (`l` is its
//! level), so the page covers one interval of positions: those whose top
//! `l` bits are its number reversed. A split cuts a page's interval in two
//! halves, a merge joins them back: intervals move, positions do not. The
//! cursor is the next position to visit, pages are visited in position
//! order and a call ends at the end of a page's interval, so an entry
//! present for the whole scan is returned exactly once whatever splits or
//! merges happen between calls (Redis's reverse-binary dict scan, for the
//! linear hashing layout). A packed value is walked by the same positions,
//! so a scan that sees a value become paged stays exact.

use super::{key_hash, Root};

/// The scan position of `key`.
pub fn position(key: &[u8]) -> u64 {
    key_hash(key).reverse_bits()
}

/// The interval of positions page `page` covers: its start, and its end
/// (None: the interval reaches the end of the position space).
pub fn page_span(root: &Root, page: u64) -> (u64, Option<u64>) {
    let level = root.page_level(page);
    let start = page.reverse_bits();
    (
        start,
        start
            .checked_add(1u64.checked_shl(64 - level).unwrap_or(0))
            .filter(|_| level > 0),
    )
}

/// The page holding position `cursor`.
pub fn page_at(root: &Root, cursor: u64) -> u64 {
    root.page_of(cursor.reverse_bits())
}

/// Up to `max` pages a scan from `cursor` visits, in order, with the
/// cursor after each (0: the scan is over).
pub fn pages_from(root: &Root, cursor: u64, max: usize) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = cursor;
    while out.len() < max.max(1) {
        let page = page_at(root, at);
        let next = page_span(root, page).1.unwrap_or(0);
        out.push((page, next));
        if next == 0 {
            break;
        }
        at = next;
    }
    out
}

/// One call's worth of `entries` (each with its position) of a value
/// walked whole: those at or past `cursor`, in position order, about
/// `count` of them (entries of one position never split), and the next
/// cursor (0: done).
pub fn entries_from<E>(mut entries: Vec<(u64, E)>, cursor: u64, count: usize) -> (Vec<E>, u64) {
    entries.retain(|(p, _)| *p >= cursor);
    entries.sort_unstable_by_key(|(p, _)| *p);
    let mut end = count.max(1).min(entries.len());
    while end > 0 && end < entries.len() && entries[end].0 == entries[end - 1].0 {
        end += 1;
    }
    let next = entries.get(end).map_or(0, |(p, _)| *p);
    entries.truncate(end);
    (entries.into_iter().map(|(_, e)| e).collect(), next)
}
