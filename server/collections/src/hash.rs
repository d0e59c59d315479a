//! Hashes in the packed form: field, value, field, value ... in insertion
//! order (as Redis's listpack), fields unique.

use std::collections::{HashMap, HashSet};

use crate::packed::{write_packed_header, Corrupt, Packed, PackedWriter};

pub mod paged;

/// Past this many fields in one command, lookups go through a hash set
/// instead of a scan of the arguments.
const SCAN_LIMIT: usize = 8;

/// A packed header's most bytes: the encoding byte and a u64 varint.
const HEADER_MAX: usize = 11;

/// A hash value's field/value pairs.
#[derive(Clone, Copy, Debug)]
pub struct HashView<'a> {
    packed: Packed<'a>,
}

impl<'a> HashView<'a> {
    pub fn new(packed: Packed<'a>) -> Result<HashView<'a>, Corrupt> {
        if packed.len() % 2 != 0 {
            return Err(Corrupt);
        }
        Ok(HashView { packed })
    }

    /// Number of fields.
    /// Bytes of the fields and values, encoded (an upper bound on any one).
    pub fn body_len(&self) -> usize {
        self.packed.body_len()
    }

    pub fn len(&self) -> usize {
        self.packed.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// The (field, value) pairs in stored order.
    pub fn pairs(&self) -> impl Iterator<Item = Result<(&'a [u8], &'a [u8]), Corrupt>> + 'a {
        let mut elements = self.packed.iter();
        std::iter::from_fn(move || {
            let field = elements.next()?;
            let value = elements.next().unwrap_or(Err(Corrupt));
            Some(field.and_then(|f| value.map(|v| (f, v))))
        })
    }

    /// The value of `field`, if present.
    pub fn get(&self, field: &[u8]) -> Result<Option<&'a [u8]>, Corrupt> {
        for pair in self.pairs() {
            let (f, v) = pair?;
            if f == field {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// The hash with `updates` applied in order (a field given twice takes
    /// its last value); with `only_new`, existing fields keep their value
    /// (HSETNX). Returns the encoding, the field count and how many fields
    /// were added.
    pub fn with_fields(
        &self,
        updates: &[(&[u8], &[u8])],
        only_new: bool,
    ) -> Result<Edited, Corrupt> {
        self.with_fields_in(updates, only_new, Vec::new())
    }

    /// [`HashView::with_fields`] written into `buf`'s allocation (its
    /// bytes are dropped): the new value's buffer can be a reused one.
    pub fn with_fields_in(
        &self,
        updates: &[(&[u8], &[u8])],
        only_new: bool,
        buf: Vec<u8>,
    ) -> Result<Edited, Corrupt> {
        if let [(field, value)] = updates {
            return self.with_field_in(field, value, only_new, buf);
        }
        let latest = Latest::new(updates);
        // At most every old field and every update, each a field and a value.
        let most = 2 * (self.len() + updates.len()) as u64;
        let mut out = PackedWriter::in_buffer_for(buf, self.packed_bytes(updates), most);
        // Fields of `updates` already written.
        let mut written = Written::new(updates.len());
        for pair in self.pairs() {
            let (field, mut value) = pair?;
            if let Some(new) = latest.get(field) {
                written.insert(field);
                if !only_new {
                    value = new;
                }
            }
            out.push(field);
            out.push(value);
        }
        let mut added = 0;
        for (field, _) in updates {
            if written.insert(field) {
                out.push(field);
                out.push(latest.get(field).unwrap_or_default());
                added += 1;
            }
        }
        Ok(Edited::from(out, added))
    }

    /// [`HashView::with_fields_in`] of one field (the common HSET): the
    /// elements around its value are copied as encoded runs after the
    /// header, none decoded and re-encoded (fields are unique, so the scan
    /// stops at it), and no `PackedWriter` room to settle.
    fn with_field_in(
        &self,
        field: &[u8],
        value: &[u8],
        only_new: bool,
        mut out: Vec<u8>,
    ) -> Result<Edited, Corrupt> {
        let body = self.packed.body();
        let count = self.packed.len();
        let mut elements = self.packed.iter();
        // (The scan reads the body; `out` is written once it is known.)
        let mut found = None;
        while let Some(f) = elements.next() {
            let value_start = body.len() - elements.rest_len();
            let old = elements.next().ok_or(Corrupt)??;
            if f? == field {
                found = Some((value_start, body.len() - elements.rest_len(), old));
                break;
            }
        }
        out.clear();
        let (fields, added) = match found {
            Some((start, end, old)) => {
                let new = if only_new { old } else { value };
                let bytes = body.len() - (end - start) + PackedWriter::element_cost(new.len());
                out.reserve(HEADER_MAX + bytes);
                write_packed_header(&mut out, count as u64);
                out.extend_from_slice(&body[..start]);
                PackedWriter::put_element(&mut out, new);
                out.extend_from_slice(&body[end..]);
                (count / 2, 0)
            }
            None => {
                let bytes = body.len()
                    + PackedWriter::element_cost(field.len())
                    + PackedWriter::element_cost(value.len());
                out.reserve(HEADER_MAX + bytes);
                write_packed_header(&mut out, count as u64 + 2);
                out.extend_from_slice(body);
                PackedWriter::put_element(&mut out, field);
                PackedWriter::put_element(&mut out, value);
                (count / 2 + 1, 1)
            }
        };
        Ok(Edited {
            value: out,
            fields: fields as u64,
            changed: added,
        })
    }

    /// The hash without `fields`; returns the encoding, the field count
    /// and how many were removed.
    pub fn without_fields(&self, fields: &[&[u8]]) -> Result<Edited, Corrupt> {
        let set: Option<HashSet<&[u8]>> =
            (fields.len() > SCAN_LIMIT).then(|| fields.iter().copied().collect());
        let doomed = |field: &[u8]| match &set {
            Some(set) => set.contains(field),
            None => fields.contains(&field),
        };
        let mut out = PackedWriter::with_capacity(self.packed_bytes(&[]));
        let mut removed = 0;
        for pair in self.pairs() {
            let (field, value) = pair?;
            if doomed(field) {
                removed += 1;
            } else {
                out.push(field);
                out.push(value);
            }
        }
        Ok(Edited::from(out, removed))
    }

    fn packed_bytes(&self, updates: &[(&[u8], &[u8])]) -> usize {
        let extra: usize = updates
            .iter()
            .map(|(f, v)| PackedWriter::element_cost(f.len()) + PackedWriter::element_cost(v.len()))
            .sum();
        self.packed.body_len() + extra
    }
}

/// The last value each field of a command is given: a scan of the
/// arguments for a few fields, a map for many.
enum Latest<'u> {
    Few(&'u [(&'u [u8], &'u [u8])]),
    Many(HashMap<&'u [u8], &'u [u8]>),
}

impl<'u> Latest<'u> {
    fn new(updates: &'u [(&'u [u8], &'u [u8])]) -> Latest<'u> {
        if updates.len() <= SCAN_LIMIT {
            Latest::Few(updates)
        } else {
            Latest::Many(updates.iter().copied().collect())
        }
    }

    fn get(&self, field: &[u8]) -> Option<&'u [u8]> {
        match self {
            Latest::Few(updates) => updates
                .iter()
                .rev()
                .find(|(f, _)| *f == field)
                .map(|(_, v)| *v),
            Latest::Many(map) => map.get(field).copied(),
        }
    }
}

/// The fields of a command already written: an array for a few (the
/// common HSET of one field allocates and hashes nothing), a set for many.
enum Written<'a> {
    Few([&'a [u8]; SCAN_LIMIT], usize),
    Many(HashSet<&'a [u8]>),
}

impl<'a> Written<'a> {
    /// For the fields of `updates` updates (each one inserted is one of them).
    fn new(updates: usize) -> Written<'a> {
        match updates <= SCAN_LIMIT {
            true => Written::Few([&[]; SCAN_LIMIT], 0),
            false => Written::Many(HashSet::new()),
        }
    }

    /// Adds `field`; false when it was there.
    fn insert(&mut self, field: &'a [u8]) -> bool {
        match self {
            Written::Few(fields, len) => {
                if fields[..*len].contains(&field) {
                    return false;
                }
                fields[*len] = field;
                *len += 1;
                true
            }
            Written::Many(set) => set.insert(field),
        }
    }
}

/// A re-encoded hash and what the edit did.
pub struct Edited {
    pub value: Vec<u8>,
    /// Fields in the new value (0: the key goes away).
    pub fields: u64,
    /// Fields added or removed by the edit.
    pub changed: usize,
}

impl Edited {
    fn from(out: PackedWriter, changed: usize) -> Edited {
        let fields = out.count() / 2;
        Edited {
            value: out.finish(),
            fields,
            changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        HashView::new(Packed::empty())
            .unwrap()
            .with_fields(pairs, false)
            .unwrap()
            .value
    }

    fn pairs(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let view = HashView::new(Packed::parse(bytes).unwrap()).unwrap();
        view.pairs()
            .map(|p| p.map(|(f, v)| (f.to_vec(), v.to_vec())).unwrap())
            .collect()
    }

    #[test]
    fn set_keeps_order_updates_in_place_and_last_value_wins() {
        let bytes = hash(&[(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]);
        assert_eq!(
            pairs(&bytes),
            [
                (b"a".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        let view = HashView::new(Packed::parse(&bytes).unwrap()).unwrap();
        let edited = view
            .with_fields(&[(b"b", b"x"), (b"c", b"y")], false)
            .unwrap();
        assert_eq!((edited.fields, edited.changed), (3, 1));
        let got = pairs(&edited.value);
        assert_eq!(got[1], (b"b".to_vec(), b"x".to_vec()));
        let nx = view.with_fields(&[(b"a", b"z")], true).unwrap();
        assert_eq!(
            (nx.changed, pairs(&nx.value)[0].1.clone()),
            (0, b"3".to_vec())
        );
    }

    #[test]
    fn a_one_field_edit_is_the_general_edit_byte_for_byte() {
        let long = vec![b'v'; 200];
        let over = vec![b'w'; 130];
        let bytes = hash(&[(b"a", b"1"), (b"bb", &long), (b"c", b"")]);
        let views = [
            HashView::new(Packed::parse(&bytes).unwrap()).unwrap(),
            HashView::new(Packed::empty()).unwrap(),
        ];
        for view in views {
            for field in [&b"a"[..], b"bb", b"c", b"new"] {
                for value in [&b""[..], b"x", &long, &over] {
                    for only_new in [false, true] {
                        let one = view.with_fields(&[(field, value)], only_new).unwrap();
                        // (Twice: the general path, the same last value.)
                        let general = view
                            .with_fields(&[(field, value), (field, value)], only_new)
                            .unwrap();
                        assert_eq!(
                            (one.value, one.fields, one.changed),
                            (general.value, general.fields, general.changed)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn an_edit_into_a_used_buffer_writes_the_same_value() {
        let bytes = hash(&[(b"a", b"1"), (b"b", b"2")]);
        let view = HashView::new(Packed::parse(&bytes).unwrap()).unwrap();
        let updates: &[(&[u8], &[u8])] = &[(b"b", b"x"), (b"c", b"y")];
        let fresh = view.with_fields(updates, false).unwrap();
        let used = vec![0xAB; 300];
        let reused = view.with_fields_in(updates, false, used).unwrap();
        assert_eq!(reused.value, fresh.value);
        assert_eq!(
            (reused.fields, reused.changed),
            (fresh.fields, fresh.changed)
        );
    }

    #[test]
    fn many_fields_use_the_set_path_with_the_same_result() {
        let names: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("f{}", i % 30).into_bytes())
            .collect();
        let updates: Vec<(&[u8], &[u8])> = names.iter().map(|n| (&n[..], &b"v"[..])).collect();
        let edited = HashView::new(Packed::empty())
            .unwrap()
            .with_fields(&updates, false)
            .unwrap();
        assert_eq!((edited.fields, edited.changed), (30, 30));
        let view = HashView::new(Packed::parse(&edited.value).unwrap()).unwrap();
        let removed = view
            .without_fields(&names.iter().map(|n| &n[..]).collect::<Vec<_>>())
            .unwrap();
        assert_eq!((removed.fields, removed.changed), (0, 30));
    }
}
