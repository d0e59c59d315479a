//! Sets in the packed form: members, each once.
//!
//! A set whose members are all canonical 64-bit integers, at most
//! [`intset_max_entries`] of them, is Redis's *intset*: kept sorted
//! numerically, the order SMEMBERS and SSCAN show for one in Redis. Any
//! other set is Redis's *hashtable* and keeps insertion order (Redis's own
//! order is its hash order, which no client may rely on).

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::packed::{Corrupt, Elements, Packed, PackedWriter};

pub mod algebra;
pub mod paged;
pub mod scan;

/// Redis's `set-max-intset-entries`: past it an integer set is a
/// hashtable. The server's setting of that name is pushed here when it
/// changes ([`set_intset_max_entries`]); 512 is Redis's default.
static INTSET_MAX_ENTRIES: AtomicUsize = AtomicUsize::new(512);

/// Sets `set-max-intset-entries` (for the whole process).
pub fn set_intset_max_entries(entries: usize) {
    INTSET_MAX_ENTRIES.store(entries, Ordering::Relaxed);
}

/// The current `set-max-intset-entries`.
pub fn intset_max_entries() -> usize {
    INTSET_MAX_ENTRIES.load(Ordering::Relaxed)
}

/// Past this many members on both sides, membership goes through a hash
/// set instead of a scan.
const SCAN_LIMIT: usize = 8;

/// The encoding Redis would report (OBJECT ENCODING) for a set's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetEncoding {
    IntSet,
    HashTable,
}

impl SetEncoding {
    pub fn name(self) -> &'static str {
        match self {
            SetEncoding::IntSet => "intset",
            SetEncoding::HashTable => "hashtable",
        }
    }

    /// The encoding of a set of `members` (unique).
    pub fn of(members: &[&[u8]]) -> SetEncoding {
        if members.len() <= intset_max_entries() && members.iter().all(|m| as_int(m).is_some()) {
            SetEncoding::IntSet
        } else {
            SetEncoding::HashTable
        }
    }
}

/// The integer `member` spells in canonical form (as Redis's string2ll:
/// no '+', no leading zeros, no "-0", no spaces), if any.
pub fn as_int(member: &[u8]) -> Option<i64> {
    let digits = member.strip_prefix(b"-").unwrap_or(member);
    let canonical = match digits {
        [b'0'] => member.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.len() < 19 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    std::str::from_utf8(member).ok()?.parse().ok()
}

/// Whether `member` is an integer in canonical form ([`as_int`] is Some), told
/// without parsing it when it has at most 18 digits (every write of a
/// small set asks for each member).
pub fn is_int(member: &[u8]) -> bool {
    let digits = member.strip_prefix(b"-").unwrap_or(member);
    match digits {
        [b'1'..=b'9', rest @ ..] if rest.len() < 18 => rest.iter().all(u8::is_ascii_digit),
        _ => as_int(member).is_some(),
    }
}

/// A set value's members.
#[derive(Clone, Copy, Debug)]
pub struct SetView<'a> {
    packed: Packed<'a>,
}

impl<'a> SetView<'a> {
    pub fn new(packed: Packed<'a>) -> SetView<'a> {
        SetView { packed }
    }

    /// An empty set (a missing key).
    pub fn empty() -> SetView<'static> {
        SetView::new(Packed::empty())
    }

    pub fn len(&self) -> usize {
        self.packed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// The members in stored order.
    pub fn members(&self) -> Elements<'a> {
        self.packed.iter()
    }

    pub fn to_vec(&self) -> Result<Vec<&'a [u8]>, Corrupt> {
        self.packed.to_vec()
    }

    pub fn contains(&self, member: &[u8]) -> Result<bool, Corrupt> {
        for m in self.members() {
            if m? == member {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The members, indexed for many membership tests.
    pub fn lookup(&self) -> Result<Lookup<'a>, Corrupt> {
        Ok(Lookup::new(self.to_vec()?))
    }

    pub fn encoding(&self) -> Result<SetEncoding, Corrupt> {
        Ok(SetEncoding::of(&self.to_vec()?))
    }

    /// The set with `added` members (repeats count once); `changed` says
    /// how many were new.
    pub fn with_members(&self, added: &[&'a [u8]]) -> Result<Edited, Corrupt> {
        let mut members = self.to_vec()?;
        let mut seen = Lookup::new(members.clone());
        let before = members.len();
        for &m in added {
            if seen.insert(m) {
                members.push(m);
            }
        }
        let changed = members.len() - before;
        Ok(Edited::of(members, changed))
    }

    /// The set without `removed`; `changed` says how many were present.
    pub fn without_members(&self, removed: &[&[u8]]) -> Result<Edited, Corrupt> {
        let kept = self.members_not_in(&Lookup::new(removed.to_vec()))?;
        let changed = self.len() - kept.len();
        Ok(Edited::of(kept, changed))
    }

    /// The members `other` does not hold, in stored order.
    pub fn members_not_in(&self, other: &Lookup<'_>) -> Result<Vec<&'a [u8]>, Corrupt> {
        let mut kept = Vec::with_capacity(self.len());
        for m in self.members() {
            let m = m?;
            if !other.contains(m) {
                kept.push(m);
            }
        }
        Ok(kept)
    }
}

/// Membership over a list of members: a scan for a few, a hash set for many.
pub struct Lookup<'a> {
    members: Vec<&'a [u8]>,
    index: Option<HashSet<&'a [u8]>>,
}

impl<'a> Lookup<'a> {
    /// Duplicates in `members` are harmless.
    pub fn new(members: Vec<&'a [u8]>) -> Lookup<'a> {
        let index = (members.len() > SCAN_LIMIT).then(|| members.iter().copied().collect());
        Lookup { members, index }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.index {
            Some(index) => index.contains(member),
            None => self.members.contains(&member),
        }
    }

    /// The members, in the order given or inserted.
    pub fn into_members(self) -> Vec<&'a [u8]> {
        self.members
    }

    /// Adds `member`; false when it was there.
    pub fn insert(&mut self, member: &'a [u8]) -> bool {
        if self.contains(member) {
            return false;
        }
        self.members.push(member);
        match &mut self.index {
            Some(index) => {
                index.insert(member);
            }
            None if self.members.len() > SCAN_LIMIT => {
                self.index = Some(self.members.iter().copied().collect());
            }
            None => {}
        }
        true
    }
}

/// Encodes `members` (unique) as a set value: sorted when an intset.
pub fn encode(members: &mut [&[u8]]) -> Vec<u8> {
    if SetEncoding::of(members) == SetEncoding::IntSet {
        members.sort_by_key(|m| as_int(m));
    }
    let bytes = members
        .iter()
        .map(|m| PackedWriter::element_cost(m.len()))
        .sum();
    let mut out = PackedWriter::with_capacity(bytes);
    members.iter().for_each(|m| out.push(m));
    out.finish()
}

/// A re-encoded set and what the edit did.
pub struct Edited {
    pub value: Vec<u8>,
    /// Members in the new value (0: the key goes away).
    pub members: u64,
    /// Members added or removed by the edit.
    pub changed: usize,
}

impl Edited {
    pub fn of(mut members: Vec<&[u8]>, changed: usize) -> Edited {
        Edited {
            value: encode(&mut members),
            members: members.len() as u64,
            changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(bytes: &[u8]) -> Vec<Vec<u8>> {
        let packed = Packed::parse(bytes).unwrap();
        SetView::new(packed)
            .to_vec()
            .unwrap()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    }

    fn strs(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn canonical_integers_only() {
        for good in [
            "0",
            "-1",
            "9223372036854775807",
            "-9223372036854775808",
            "10",
            "123456789012345678",
            "-999999999999999999",
        ] {
            assert!(as_int(good.as_bytes()).is_some(), "{good}");
            assert!(is_int(good.as_bytes()), "{good}");
        }
        for bad in [
            "",
            "-",
            "-0",
            "01",
            "+1",
            " 1",
            "1 ",
            "9223372036854775808",
            "1.0",
            "0x1",
            "--1",
            "99999999999999999999",
            "12a",
            "-00",
        ] {
            assert_eq!(as_int(bad.as_bytes()), None, "{bad}");
            assert!(!is_int(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn integer_sets_sort_numerically_others_keep_insertion_order() {
        let add: [&[u8]; 5] = [b"10", b"-5", b"3", b"10", b"2"];
        let edited = SetView::empty().with_members(&add).unwrap();
        assert_eq!((edited.members, edited.changed), (4, 4));
        assert_eq!(members(&edited.value), strs(&["-5", "2", "3", "10"]));
        let packed = Packed::parse(&edited.value).unwrap();
        let view = SetView::new(packed);
        assert_eq!(view.encoding(), Ok(SetEncoding::IntSet));
        let mixed = view.with_members(&[b"a", b"1", b"-5"]).unwrap();
        assert_eq!(mixed.changed, 2);
        assert_eq!(
            members(&mixed.value),
            strs(&["-5", "2", "3", "10", "a", "1"])
        );
        let packed = Packed::parse(&mixed.value).unwrap();
        assert_eq!(SetView::new(packed).encoding(), Ok(SetEncoding::HashTable));
        let removed = SetView::new(packed).without_members(&[b"a", b"x"]).unwrap();
        assert_eq!((removed.members, removed.changed), (5, 1));
        assert_eq!(members(&removed.value), strs(&["-5", "1", "2", "3", "10"]));
    }

    #[test]
    fn many_members_take_the_hash_path_and_big_integer_sets_are_hashtables() {
        let names: Vec<Vec<u8>> = (0..600)
            .map(|i| (i % 550).to_string().into_bytes())
            .collect();
        let refs: Vec<&[u8]> = names.iter().map(|n| &n[..]).collect();
        let edited = SetView::empty().with_members(&refs).unwrap();
        assert_eq!((edited.members, edited.changed), (550, 550));
        let packed = Packed::parse(&edited.value).unwrap();
        let view = SetView::new(packed);
        assert_eq!(view.encoding(), Ok(SetEncoding::HashTable));
        assert!(view.contains(b"549").unwrap() && !view.contains(b"550").unwrap());
        let lookup = view.lookup().unwrap();
        assert!(lookup.contains(b"0") && !lookup.contains(b"x"));
        let removed = view.without_members(&refs[..100]).unwrap();
        assert_eq!((removed.members, removed.changed), (450, 100));
    }
}
