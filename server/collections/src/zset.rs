//! Sorted sets in the packed form: member, score, member, score ... in
//! (score, member) order, members unique. A score is 8 bytes, the f64
//! little-endian (exact, and compared without parsing text); NaN is never
//! stored. Ties in score order by member bytes (memcmp, shorter first), as
//! Redis orders them.

use std::cell::{Cell, OnceCell};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use crate::packed::{Corrupt, Packed, PackedWriter};

pub mod paged;
#[cfg(test)]
mod paged_tests;
pub mod tree;

/// Bytes of a stored score.
pub const SCORE_LEN: usize = 8;

/// Redis's `zset-max-listpack-entries` and `zset-max-listpack-value`:
/// past either, Redis reports the "skiplist" encoding. The server's
/// settings of those names are pushed here when they change
/// ([`set_listpack_limits`]); 128 and 64 are Redis 7.0's defaults.
static LISTPACK_ENTRIES: AtomicUsize = AtomicUsize::new(128);
static LISTPACK_VALUE: AtomicUsize = AtomicUsize::new(64);

/// Sets `zset-max-listpack-entries` and `-value` (for the whole process).
pub fn set_listpack_limits(entries: usize, value: usize) {
    LISTPACK_ENTRIES.store(entries, AtomicOrdering::Relaxed);
    LISTPACK_VALUE.store(value, AtomicOrdering::Relaxed);
}

/// The current `zset-max-listpack-entries`.
pub fn listpack_entries() -> usize {
    LISTPACK_ENTRIES.load(AtomicOrdering::Relaxed)
}

/// The current `zset-max-listpack-value`.
pub fn listpack_value() -> usize {
    LISTPACK_VALUE.load(AtomicOrdering::Relaxed)
}

/// One member and its score.
pub type Entry<'a> = (f64, &'a [u8]);

/// The (score, member) order of a sorted set.
pub fn cmp(a: &Entry<'_>, b: &Entry<'_>) -> Ordering {
    a.0.partial_cmp(&b.0)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.1.cmp(b.1))
}

/// The entries of a stored sorted set, in order.
pub fn entries(packed: Packed<'_>) -> Result<Vec<Entry<'_>>, Corrupt> {
    if packed.len() % 2 != 0 {
        return Err(Corrupt);
    }
    let mut out = Vec::with_capacity(packed.len() / 2);
    let mut elements = packed.iter();
    while let Some(member) = elements.next() {
        let member = member?;
        let score = elements.next().ok_or(Corrupt)??;
        out.push((decode_score(score)?, member));
    }
    Ok(out)
}

/// A stored score (8 bytes, never NaN).
pub(crate) fn decode_score(bytes: &[u8]) -> Result<f64, Corrupt> {
    let score = f64::from_le_bytes(bytes.try_into().map_err(|_| Corrupt)?);
    match score.is_nan() {
        true => Err(Corrupt),
        false => Ok(score),
    }
}

/// The score of `member` in a packed sorted set, found by a scan that
/// builds nothing (a ZADD that changes nothing asks it first).
pub fn score_of(packed: Packed<'_>, member: &[u8]) -> Result<Option<f64>, Corrupt> {
    let mut elements = packed.iter();
    while let Some(candidate) = elements.next() {
        let score = elements.next().ok_or(Corrupt)??;
        if candidate? == member {
            return Ok(Some(f64::from_le_bytes(
                score.try_into().map_err(|_| Corrupt)?,
            )));
        }
    }
    Ok(None)
}

/// Encodes `entries` (already in order); -0 is stored as 0, as Redis
/// 7.0's listpack keeps it.
pub fn encode(entries: &[Entry<'_>]) -> Vec<u8> {
    encode_iter(entries.iter().copied())
}

/// A score as stored: -0 as 0, as Redis 7.0's listpack keeps it.
pub(crate) fn score_bytes(score: f64) -> [u8; SCORE_LEN] {
    (score + 0.0).to_le_bytes()
}

/// [`encode`] of entries given one by one (in order).
pub(crate) fn encode_iter<'e>(entries: impl Iterator<Item = Entry<'e>> + Clone) -> Vec<u8> {
    let bytes = entries
        .clone()
        .map(|(_, m)| PackedWriter::element_cost(m.len()) + SCORE_LEN + 1)
        .sum();
    let mut out = PackedWriter::with_capacity(bytes);
    for (score, member) in entries {
        out.push(member);
        out.push(&score_bytes(score));
    }
    out.finish()
}

/// What Redis 7.0's OBJECT ENCODING says for a sorted set of `entries`.
pub fn redis_encoding(entries: &[Entry<'_>]) -> &'static str {
    let value = listpack_value();
    let small =
        entries.len() <= listpack_entries() && entries.iter().all(|(_, m)| m.len() <= value);
    if small {
        "listpack"
    } else {
        "skiplist"
    }
}

/// Past this many member lookups, an edit builds its member index (a
/// command naming one or two members scans instead of hashing them all).
const SCAN_LOOKUPS: usize = 8;

/// A sorted set being edited: the ordered entries, and a member index
/// built once enough lookups ask for one.
pub struct ZSetEdit<'a> {
    entries: Vec<Entry<'a>>,
    index: OnceCell<HashMap<&'a [u8], f64>>,
    lookups: Cell<usize>,
}

impl<'a> ZSetEdit<'a> {
    pub fn new(entries: Vec<Entry<'a>>) -> ZSetEdit<'a> {
        ZSetEdit {
            entries,
            index: OnceCell::new(),
            lookups: Cell::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        if self.index.get().is_none() {
            self.lookups.set(self.lookups.get() + 1);
            if self.lookups.get() <= SCAN_LOOKUPS {
                return self.entries.iter().find(|e| e.1 == member).map(|e| e.0);
            }
        }
        let index = self
            .index
            .get_or_init(|| self.entries.iter().map(|&(s, m)| (m, s)).collect());
        index.get(member).copied()
    }

    fn position(&self, entry: &Entry<'_>) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| cmp(e, entry))
    }

    /// Sets `member`'s score, adding it when missing.
    pub fn set(&mut self, member: &'a [u8], score: f64) {
        self.remove(member);
        let at = self.position(&(score, member)).unwrap_or_else(|at| at);
        self.entries.insert(at, (score, member));
        if let Some(index) = self.index.get_mut() {
            index.insert(member, score);
        }
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.score(member)?;
        if let Ok(at) = self.position(&(score, member)) {
            self.entries.remove(at);
        }
        if let Some(index) = self.index.get_mut() {
            index.remove(member);
        }
        Some(score)
    }

    /// Removes the entries at `range` of ranks; returns them.
    pub fn remove_ranks(&mut self, range: Range<usize>) -> Vec<Entry<'a>> {
        let gone: Vec<Entry<'a>> = self.entries.drain(range).collect();
        if let Some(index) = self.index.get_mut() {
            for (_, member) in &gone {
                index.remove(member);
            }
        }
        gone
    }

    pub fn encode(&self) -> Vec<u8> {
        encode(&self.entries)
    }
}

/// A score interval (ZRANGEBYSCORE's min and max, `(` for exclusive).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub min_ex: bool,
    pub max_ex: bool,
}

/// Parses a score bound as Redis's zslParseRange: `(` for exclusive, then
/// C's strtod over the text up to its first NUL (Redis checks only that
/// strtod stopped at a NUL): leading spaces skipped, an empty text is 0,
/// NaN refused. `number` is strtod over a whole nonempty text not starting
/// with a space (overflow an infinity, underflow zero, hex floats read).
fn score_bound(arg: &[u8], number: fn(&[u8]) -> Option<f64>) -> Option<(f64, bool)> {
    let (ex, text) = match arg.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, arg),
    };
    let text = &text[..text.iter().position(|&c| c == 0).unwrap_or(text.len())];
    // C's isspace: space, \t \n \v \f \r.
    let start = text.iter().position(|c| !matches!(c, b' ' | b'\t'..=b'\r'));
    let text = &text[start.unwrap_or(text.len())..];
    let v = if text.is_empty() { 0.0 } else { number(text)? };
    (!v.is_nan()).then_some((v, ex))
}

impl ScoreRange {
    /// `min` and `max` read by `score_bound` with `number`.
    pub fn parse(min: &[u8], max: &[u8], number: fn(&[u8]) -> Option<f64>) -> Option<ScoreRange> {
        let (min, min_ex) = score_bound(min, number)?;
        let (max, max_ex) = score_bound(max, number)?;
        Some(ScoreRange {
            min,
            max,
            min_ex,
            max_ex,
        })
    }

    pub fn above_min(&self, score: f64) -> bool {
        if self.min_ex {
            score > self.min
        } else {
            score >= self.min
        }
    }

    pub fn below_max(&self, score: f64) -> bool {
        if self.max_ex {
            score < self.max
        } else {
            score <= self.max
        }
    }

    /// The ranks of `entries` in range (scores are sorted, so one run).
    pub fn span(&self, entries: &[Entry<'_>]) -> Range<usize> {
        let start = entries.partition_point(|e| !self.above_min(e.0));
        let end = entries.partition_point(|e| self.below_max(e.0));
        start..end.max(start)
    }
}

/// One end of a lexicographic range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LexBound<'a> {
    Min,
    Max,
    Inclusive(&'a [u8]),
    Exclusive(&'a [u8]),
}

impl<'a> LexBound<'a> {
    /// `-`, `+`, `[member` or `(member`, as Redis's zslParseLexRangeItem.
    pub fn parse(arg: &'a [u8]) -> Option<LexBound<'a>> {
        match arg {
            b"-" => Some(LexBound::Min),
            b"+" => Some(LexBound::Max),
            [b'[', rest @ ..] => Some(LexBound::Inclusive(rest)),
            [b'(', rest @ ..] => Some(LexBound::Exclusive(rest)),
            _ => None,
        }
    }
}

/// A member interval (ZRANGEBYLEX's min and max).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LexRange<'a> {
    pub min: LexBound<'a>,
    pub max: LexBound<'a>,
}

impl<'a> LexRange<'a> {
    pub fn parse(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
        Some(LexRange {
            min: LexBound::parse(min)?,
            max: LexBound::parse(max)?,
        })
    }

    pub fn above_min(&self, member: &[u8]) -> bool {
        match self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Inclusive(m) => member >= m,
            LexBound::Exclusive(m) => member > m,
        }
    }

    pub fn below_max(&self, member: &[u8]) -> bool {
        match self.max {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(m) => member <= m,
            LexBound::Exclusive(m) => member < m,
        }
    }

    /// Redis's zslIsInLexRange: false when min > max, or when the range
    /// misses the set's ends.
    fn may_match(&self, entries: &[Entry<'_>]) -> bool {
        fn key<'b>(b: LexBound<'b>) -> (u8, &'b [u8]) {
            match b {
                LexBound::Min => (0, &[]),
                LexBound::Inclusive(m) | LexBound::Exclusive(m) => (1, m),
                LexBound::Max => (2, &[]),
            }
        }
        let order = key(self.min).cmp(&key(self.max));
        let exclusive = matches!(self.min, LexBound::Exclusive(_))
            || matches!(self.max, LexBound::Exclusive(_));
        if order == Ordering::Greater || (order == Ordering::Equal && exclusive) {
            return false;
        }
        match (entries.first(), entries.last()) {
            (Some(first), Some(last)) => self.above_min(last.1) && self.below_max(first.1),
            _ => false,
        }
    }

    /// Where Redis starts a forward walk: the first member at or above
    /// min, if it is also at or below max (members of equal scores are
    /// sorted, so this is the usual run; with mixed scores it is what
    /// Redis answers).
    pub fn first(&self, entries: &[Entry<'_>]) -> Option<usize> {
        if !self.may_match(entries) {
            return None;
        }
        let start = entries.iter().position(|e| self.above_min(e.1))?;
        self.below_max(entries[start].1).then_some(start)
    }

    /// Where Redis starts a backward walk (ZREVRANGEBYLEX): the last
    /// member at or below max, if it is also at or above min.
    pub fn last(&self, entries: &[Entry<'_>]) -> Option<usize> {
        if !self.may_match(entries) {
            return None;
        }
        let end = entries.iter().rposition(|e| self.below_max(e.1))?;
        self.above_min(entries[end].1).then_some(end)
    }

    /// Whether a forward walk goes on at `member`.
    pub fn continues_forward(&self, member: &[u8]) -> bool {
        self.below_max(member)
    }

    /// Whether a backward walk goes on at `member`.
    pub fn continues_backward(&self, member: &[u8]) -> bool {
        self.above_min(member)
    }

    /// The ranks a forward walk covers (ZLEXCOUNT, ZREMRANGEBYLEX).
    pub fn span(&self, entries: &[Entry<'_>]) -> Range<usize> {
        let Some(start) = self.first(entries) else {
            return 0..0;
        };
        let len = entries[start..]
            .iter()
            .take_while(|e| self.below_max(e.1))
            .count();
        start..start + len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit_of(pairs: &[(f64, &'static str)]) -> ZSetEdit<'static> {
        let mut z = ZSetEdit::new(Vec::new());
        for (s, m) in pairs {
            z.set(m.as_bytes(), *s);
        }
        z
    }

    #[test]
    fn keeps_score_member_order_and_round_trips() {
        let mut z = edit_of(&[(2.0, "b"), (1.0, "z"), (2.0, "a"), (-0.5, "c")]);
        z.set(b"z", 3.0);
        let members: Vec<&[u8]> = z.entries().iter().map(|e| e.1).collect();
        assert_eq!(members, [&b"c"[..], b"a", b"b", b"z"]);
        assert_eq!(z.remove(b"a"), Some(2.0));
        assert_eq!(z.remove(b"a"), None);
        let bytes = z.encode();
        let back = entries(Packed::parse(&bytes).unwrap()).unwrap();
        assert_eq!(back, z.entries());
        assert_eq!(redis_encoding(&back), "listpack");
        let gone = z.remove_ranks(0..2);
        assert_eq!(gone, [(-0.5, &b"c"[..]), (2.0, &b"b"[..])]);
        assert_eq!(z.score(b"z"), Some(3.0));
        assert_eq!(z.score(b"b"), None);
    }

    #[test]
    fn index_path_agrees_with_scans() {
        let names: Vec<String> = (0..40).map(|i| format!("m{i}")).collect();
        let mut z = ZSetEdit::new(Vec::new());
        for (i, n) in names.iter().enumerate() {
            z.set(n.as_bytes(), (i % 7) as f64);
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(z.score(n.as_bytes()), Some((i % 7) as f64));
        }
        z.set(b"m3", 100.0);
        assert_eq!(z.remove(b"m4"), Some(4.0));
        assert_eq!(z.remove_ranks(0..1).len(), 1);
        assert_eq!(
            (z.score(b"m3"), z.score(b"m4"), z.len()),
            (Some(100.0), None, 38)
        );
        let sorted = z.entries().windows(2).all(|w| cmp(&w[0], &w[1]).is_lt());
        assert!(sorted);
    }

    #[test]
    fn corrupt_scores_are_errors() {
        let mut w = PackedWriter::default();
        w.push(b"m");
        w.push(b"123");
        let bytes = w.finish();
        assert_eq!(entries(Packed::parse(&bytes).unwrap()), Err(Corrupt));
        let mut w = PackedWriter::default();
        w.push(b"m");
        w.push(&f64::NAN.to_le_bytes());
        w.push(b"odd");
        let bytes = w.finish();
        assert_eq!(entries(Packed::parse(&bytes).unwrap()), Err(Corrupt));
    }

    #[test]
    fn score_ranges() {
        let z = edit_of(&[(1.0, "a"), (2.0, "b"), (2.0, "c"), (3.0, "d")]);
        let decimal = |t: &[u8]| std::str::from_utf8(t).ok()?.parse().ok();
        let span = |min: &str, max: &str| {
            ScoreRange::parse(min.as_bytes(), max.as_bytes(), decimal)
                .unwrap()
                .span(z.entries())
        };
        assert_eq!(span("2", "2"), 1..3);
        assert_eq!(span("(1", "(3"), 1..3);
        assert_eq!(span("-inf", "+inf"), 0..4);
        assert_eq!(span("3", "1"), 3..3);
        assert_eq!(span("", " 1"), 0..1);
        assert_eq!(span("(\x0b1", "2\0junk"), 1..3, "C spaces, NUL ends");
        assert!(ScoreRange::parse(b"nan", b"1", decimal).is_none());
        assert!(ScoreRange::parse(b"1x", b"1", decimal).is_none());
        assert!(ScoreRange::parse(b"1 ", b"1", decimal).is_none());
    }

    #[test]
    fn lex_ranges() {
        let z = edit_of(&[(0.0, "a"), (0.0, "b"), (0.0, "c"), (0.0, "d")]);
        let span = |min: &str, max: &str| {
            LexRange::parse(min.as_bytes(), max.as_bytes())
                .unwrap()
                .span(z.entries())
        };
        assert_eq!(span("-", "+"), 0..4);
        assert_eq!(span("[b", "(d"), 1..3);
        assert_eq!(span("(b", "[b"), 0..0);
        assert_eq!(span("+", "-"), 0..0);
        assert!(LexRange::parse(b"b", b"+").is_none());
        assert!(LexRange::parse(b"-x", b"+").is_none());
        let mixed = edit_of(&[(1.0, "b"), (2.0, "a"), (3.0, "c")]);
        let range = LexRange::parse(b"[a", b"[b").unwrap();
        assert_eq!(range.span(mixed.entries()), 0..2);
        assert_eq!(range.last(mixed.entries()), Some(1));
    }
}
