//! Lists in the packed form: elements head first. Edits decode the
//! elements (borrowed, no copies), change the sequence and re-encode it:
//! O(n) per write, the scope of the one-item form. Past
//! list-max-listpack-size a list is paged (`paged`): pushes, pops and
//! index lookups then touch a page or two.

pub mod paged;

use std::ops::Range;

use crate::packed::{Corrupt, Packed, PackedWriter};

/// A list value's elements.
#[derive(Clone, Copy, Debug)]
pub struct ListView<'a> {
    packed: Packed<'a>,
}

impl<'a> ListView<'a> {
    pub fn new(packed: Packed<'a>) -> ListView<'a> {
        ListView { packed }
    }

    pub fn len(&self) -> usize {
        self.packed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// The elements head first.
    pub fn elements(&self) -> Result<Vec<&'a [u8]>, Corrupt> {
        self.packed.to_vec()
    }

    /// The element at `index` (negative: from the tail, -1 the last).
    pub fn get(&self, index: i64) -> Result<Option<&'a [u8]>, Corrupt> {
        let Some(i) = resolve_index(self.len(), index) else {
            return Ok(None);
        };
        self.packed.iter().nth(i).transpose()
    }

    /// The elements `start ..= stop` as LRANGE reads them.
    pub fn range(&self, start: i64, stop: i64) -> Result<Vec<&'a [u8]>, Corrupt> {
        let range = clamp_range(self.len(), start, stop);
        self.packed
            .iter()
            .skip(range.start)
            .take(range.len())
            .collect()
    }
}

/// An encoded list and its length.
pub struct Encoded {
    pub value: Vec<u8>,
    pub len: u64,
}

/// The encoded list of `elements` (head first).
pub fn encode<'e>(elements: impl IntoIterator<Item = &'e [u8]>) -> Encoded {
    let mut out = PackedWriter::default();
    for element in elements {
        out.push(element);
    }
    Encoded {
        len: out.count(),
        value: out.finish(),
    }
}

/// Position of `index` in a list of `len` (negative counts from the tail);
/// None when outside it.
pub fn resolve_index(len: usize, index: i64) -> Option<usize> {
    let i = if index < 0 {
        index.checked_add(len as i64)?
    } else {
        index
    };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// Redis's `start .. stop` (inclusive, negative from the tail) clamped to
/// a list of `len`, as LRANGE and LTRIM read it; empty when they cross.
pub fn clamp_range(len: usize, start: i64, stop: i64) -> Range<usize> {
    let len = len as i64;
    let from_tail = |v: i64| if v < 0 { v.saturating_add(len) } else { v };
    let start = from_tail(start).max(0);
    let stop = from_tail(stop);
    if start > stop || start >= len {
        return 0..0;
    }
    start as usize..(stop.min(len - 1) + 1) as usize
}

/// Where LPOS looks: rank (1 = first match from the head, -1 from the
/// tail), how many matches to collect (0 = all) and how many elements to
/// compare at most (0 = all).
#[derive(Clone, Copy, Debug)]
pub struct PosQuery {
    pub rank: i64,
    pub count: usize,
    pub max_len: usize,
}

/// The indexes of `element` in `elements` that `query` selects.
pub fn positions(elements: &[&[u8]], element: &[u8], query: PosQuery) -> Vec<usize> {
    let limit = if query.max_len == 0 {
        elements.len()
    } else {
        query.max_len.min(elements.len())
    };
    let wanted = if query.count == 0 {
        usize::MAX
    } else {
        query.count
    };
    let mut skip = query.rank.unsigned_abs().saturating_sub(1);
    let mut found = Vec::new();
    let mut visit = |i: usize| {
        if elements[i] == element {
            if skip > 0 {
                skip -= 1;
            } else {
                found.push(i);
            }
        }
        found.len() < wanted
    };
    if query.rank > 0 {
        for i in 0..limit {
            if !visit(i) {
                break;
            }
        }
    } else {
        for i in (elements.len() - limit..elements.len()).rev() {
            if !visit(i) {
                break;
            }
        }
    }
    found
}

/// Removes up to `count` elements equal to `element` (0: all; negative:
/// from the tail); returns how many went.
pub fn remove(elements: &mut Vec<&[u8]>, element: &[u8], count: i64) -> usize {
    let limit = if count == 0 {
        usize::MAX
    } else {
        count.unsigned_abs().min(usize::MAX as u64) as usize
    };
    let mut doomed = vec![false; elements.len()];
    let mut removed = 0;
    let order: Box<dyn Iterator<Item = usize>> = if count < 0 {
        Box::new((0..elements.len()).rev())
    } else {
        Box::new(0..elements.len())
    };
    for i in order {
        if removed == limit {
            break;
        }
        if elements[i] == element {
            doomed[i] = true;
            removed += 1;
        }
    }
    let mut i = 0;
    elements.retain(|_| {
        i += 1;
        !doomed[i - 1]
    });
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(elements: &[&[u8]]) -> Vec<u8> {
        encode(elements.iter().copied()).value
    }

    #[test]
    fn elements_round_trip_head_first() {
        let bytes = list(&[b"a", b"", b"ccc"]);
        let view = ListView::new(Packed::parse(&bytes).unwrap());
        assert_eq!(view.len(), 3);
        assert_eq!(view.elements().unwrap(), [&b"a"[..], b"", b"ccc"]);
        assert_eq!(view.get(-1).unwrap(), Some(&b"ccc"[..]));
        assert_eq!(view.get(3).unwrap(), None);
        assert_eq!(view.get(-4).unwrap(), None);
        assert_eq!(view.get(i64::MIN).unwrap(), None);
        assert_eq!(view.range(1, -1).unwrap(), [&b""[..], b"ccc"]);
    }

    #[test]
    fn ranges_clamp_as_redis() {
        assert_eq!(clamp_range(5, 0, -1), 0..5);
        assert_eq!(clamp_range(5, -100, 100), 0..5);
        assert_eq!(clamp_range(5, 3, 1), 0..0);
        assert_eq!(clamp_range(5, 5, 10), 0..0);
        assert_eq!(clamp_range(5, -2, -1), 3..5);
        assert_eq!(clamp_range(5, i64::MIN, i64::MAX), 0..5);
        assert_eq!(clamp_range(0, 0, -1), 0..0);
    }

    #[test]
    fn positions_follow_rank_count_and_maxlen() {
        let e: Vec<&[u8]> = vec![b"a", b"b", b"a", b"c", b"a"];
        let q = |rank, count, max_len| PosQuery {
            rank,
            count,
            max_len,
        };
        assert_eq!(positions(&e, b"a", q(1, 1, 0)), [0]);
        assert_eq!(positions(&e, b"a", q(2, 0, 0)), [2, 4]);
        assert_eq!(positions(&e, b"a", q(-1, 2, 0)), [4, 2]);
        assert_eq!(positions(&e, b"a", q(1, 0, 2)), [0]);
        assert_eq!(positions(&e, b"a", q(-1, 0, 2)), [4]);
        assert_eq!(positions(&e, b"x", q(1, 0, 0)), Vec::<usize>::new());
        assert_eq!(positions(&e, b"a", q(i64::MAX, 0, 0)), Vec::<usize>::new());
    }

    #[test]
    fn remove_counts_from_either_end() {
        let base: Vec<&[u8]> = vec![b"a", b"b", b"a", b"c", b"a"];
        let mut e = base.clone();
        assert_eq!(remove(&mut e, b"a", 2), 2);
        assert_eq!(e, [&b"b"[..], b"c", b"a"]);
        let mut e = base.clone();
        assert_eq!(remove(&mut e, b"a", -1), 1);
        assert_eq!(e, [&b"a"[..], b"b", b"a", b"c"]);
        let mut e = base;
        assert_eq!(remove(&mut e, b"a", 0), 3);
        assert_eq!(e, [&b"b"[..], b"c"]);
    }
}
