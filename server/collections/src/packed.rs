//! The packed encoding: a count, then length-prefixed elements.

use std::ops::Range;

/// The encoding byte of the packed form.
pub const ENCODING_PACKED: u8 = 0;
/// The packed form of a hash, set or sorted set that Redis would hold in
/// its big encoding (hashtable, skiplist) though it is small now: it grew
/// past the listpack/intset limits once, and Redis never converts back.
/// Read exactly as [`ENCODING_PACKED`]; only OBJECT ENCODING (and DUMP's
/// choice of form) tell them apart.
pub const ENCODING_PACKED_BIG: u8 = 2;

/// Whether `bytes` is a packed value marked [`ENCODING_PACKED_BIG`].
pub fn is_packed_big(bytes: &[u8]) -> bool {
    bytes.first() == Some(&ENCODING_PACKED_BIG)
}

/// A stored value that does not parse (a corrupt or foreign value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("corrupt collection value")]
pub struct Corrupt;

/// A parsed view of a packed value: `count` elements after the header.
#[derive(Clone, Copy, Debug)]
pub struct Packed<'a> {
    count: usize,
    body: &'a [u8],
}

impl<'a> Packed<'a> {
    /// Checks the header; elements are checked as they are read.
    pub fn parse(bytes: &'a [u8]) -> Result<Packed<'a>, Corrupt> {
        let (&encoding, rest) = bytes.split_first().ok_or(Corrupt)?;
        if encoding != ENCODING_PACKED && encoding != ENCODING_PACKED_BIG {
            return Err(Corrupt);
        }
        let mut pos = 0;
        let count = get_varint(rest, &mut pos)?;
        // Each element takes at least its one-byte length.
        if count > (rest.len() - pos) as u64 {
            return Err(Corrupt);
        }
        Ok(Packed {
            count: count as usize,
            body: &rest[pos..],
        })
    }

    /// The `count` elements encoded in `body` (a run of another value's
    /// body: [`Packed::offset_of`] cuts one).
    pub(crate) fn from_body(body: &'a [u8], count: usize) -> Packed<'a> {
        Packed { count, body }
    }

    /// An empty collection (a missing key reads as one).
    pub fn empty() -> Packed<'static> {
        Packed {
            count: 0,
            body: &[],
        }
    }

    /// Number of elements (fields and values of a hash both count).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the elements (without the header).
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// The encoded elements (without the header): what
    /// `PackedWriter::push_encoded` takes.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The byte offset in [`Packed::body`] of element `index` (<= len),
    /// reading only the length prefixes of the elements before it.
    pub fn offset_of(&self, index: usize) -> Result<usize, Corrupt> {
        if index > self.count {
            return Err(Corrupt);
        }
        // (A tail pop walks a whole page to its end: `element_len` reads a
        // one-byte length without the varint loop.)
        let mut pos = 0;
        skip_elements(self.body, &mut pos, index)?;
        // (An element overrunning the body before the last leaves `pos`
        // past it, and the next read fails.)
        (pos <= self.body.len()).then_some(pos).ok_or(Corrupt)
    }

    /// The entry (`arity` elements) whose first element is `key`, and its
    /// index in entries, read in place: nothing decoded but that entry (a
    /// lookup of a key a page does not hold, an insert's, reads it once).
    pub fn find_entry(&self, arity: usize, key: &[u8]) -> Result<Option<FoundEntry<'a>>, Corrupt> {
        let body = self.body;
        let arity = arity.max(1);
        let mut pos = 0;
        let mut index = 0;
        // Entry by entry: the first element compared, the others skipped
        // by their lengths. The last byte is compared before the rest:
        // keys of one length mostly differ at their ends (numbered ids),
        // so most entries cost no `memcmp` call.
        while index < self.count {
            let start = pos;
            let len = element_len(body, &mut pos)?;
            let end = pos.checked_add(len).ok_or(Corrupt)?;
            let element = body.get(pos..end).ok_or(Corrupt)?;
            if element.len() == key.len() && element.last() == key.last() && element == key {
                let elements = self.entry_at(start, arity)?;
                return Ok(Some(FoundEntry {
                    index: index / arity,
                    offset: start,
                    elements,
                }));
            }
            pos = end;
            skip_elements(body, &mut pos, (arity - 1).min(self.count - index - 1))?;
            index += arity;
        }
        // (An element overrunning the body leaves `pos` past it: corrupt,
        // as the element-by-element read found it.)
        match pos <= body.len() {
            true => Ok(None),
            false => Err(Corrupt),
        }
    }

    /// The `arity` elements from byte `offset` of the body (an entry
    /// [`Packed::find_entry`] found there).
    pub fn entry_at(&self, offset: usize, arity: usize) -> Result<Vec<&'a [u8]>, Corrupt> {
        self.elements_from(offset, arity)?.collect()
    }

    /// The body byte where the entry (`arity` elements) starting at byte
    /// `offset` ends, read from its length prefixes as stored: a splice of
    /// the body cuts exactly what is there.
    pub fn entry_end(&self, offset: usize, arity: usize) -> Result<usize, Corrupt> {
        let mut entry = self.elements_from(offset, arity)?;
        for _ in 0..arity {
            entry.next().ok_or(Corrupt)??;
        }
        Ok(self.body.len() - entry.rest_len())
    }

    /// The `count` elements from byte `offset` of the body.
    fn elements_from(&self, offset: usize, count: usize) -> Result<Elements<'a>, Corrupt> {
        let rest = self.body.get(offset..).ok_or(Corrupt)?;
        Ok(Elements { left: count, rest })
    }

    /// The elements in order; a corrupt element ends with `Err(Corrupt)`.
    pub fn iter(&self) -> Elements<'a> {
        Elements {
            left: self.count,
            rest: self.body,
        }
    }

    /// Every element, or the first corruption found.
    pub fn to_vec(&self) -> Result<Vec<&'a [u8]>, Corrupt> {
        self.iter().collect()
    }
}

/// An entry [`Packed::find_entry`] found: its index (in entries), the
/// byte offset in the body where it starts, its elements.
pub struct FoundEntry<'a> {
    pub index: usize,
    pub offset: usize,
    pub elements: Vec<&'a [u8]>,
}

/// Iterator over a packed value's elements.
pub struct Elements<'a> {
    left: usize,
    rest: &'a [u8],
}

impl Elements<'_> {
    /// Bytes of the body not read yet: a caller that knows the body's
    /// length learns where the next element starts.
    pub(crate) fn rest_len(&self) -> usize {
        self.rest.len()
    }
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<&'a [u8], Corrupt>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        // A one-byte length (an element under 128 bytes, nearly every
        // member and score) skips the varint loop.
        if let Some((&len, rest)) = self.rest.split_first().filter(|(&len, _)| len < 0x80) {
            if let Some((element, rest)) = rest.split_at_checked(usize::from(len)) {
                self.rest = rest;
                return Some(Ok(element));
            }
        }
        let mut pos = 0;
        let element = get_varint(self.rest, &mut pos).and_then(|len| {
            let end = pos.checked_add(usize::try_from(len).map_err(|_| Corrupt)?);
            let element = end.and_then(|end| self.rest.get(pos..end)).ok_or(Corrupt)?;
            self.rest = &self.rest[pos + element.len()..];
            Ok(element)
        });
        if element.is_err() {
            self.left = 0;
        }
        Some(element)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Builds a packed value element by element; the count is written last.
/// The elements go after room for the header, so the value is finished
/// in the same buffer (no second allocation and copy).
pub struct PackedWriter {
    /// `room` bytes reserved, then the elements.
    body: Vec<u8>,
    /// The header's room: the largest header, or the one for the most
    /// elements the caller said it writes (`in_buffer_for`).
    room: usize,
    count: u64,
}

/// The encoding byte and a u64 varint at most.
const HEADER_ROOM: usize = 11;

impl Default for PackedWriter {
    fn default() -> PackedWriter {
        PackedWriter::with_capacity(0)
    }
}

impl PackedWriter {
    pub fn with_capacity(bytes: usize) -> PackedWriter {
        PackedWriter::in_buffer(Vec::new(), bytes)
    }

    /// A writer over `buf`'s allocation (its bytes are dropped), room for
    /// `bytes` more reserved: a caller that reuses its buffers then
    /// allocates nothing.
    pub fn in_buffer(buf: Vec<u8>, bytes: usize) -> PackedWriter {
        PackedWriter::in_buffer_for(buf, bytes, u64::MAX)
    }

    /// `in_buffer` for a value of at most `most` elements: the header's
    /// room is that count's, so a value whose count takes as many bytes
    /// (nearly always) is finished where it was written, without moving
    /// it to the front of its buffer.
    pub fn in_buffer_for(mut buf: Vec<u8>, bytes: usize, most: u64) -> PackedWriter {
        let room = packed_header_len(most);
        buf.clear();
        buf.reserve(room + bytes);
        buf.resize(room, 0);
        PackedWriter {
            body: buf,
            room,
            count: 0,
        }
    }

    pub fn push(&mut self, element: &[u8]) {
        put_varint(&mut self.body, element.len() as u64);
        self.body.extend_from_slice(element);
        self.count += 1;
    }

    /// Appends `count` elements already encoded (a run of a packed
    /// value's body), without decoding them.
    pub fn push_encoded(&mut self, body: &[u8], count: u64) {
        self.body.extend_from_slice(body);
        self.count += count;
    }

    /// Elements pushed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The encoded value: encoding byte, count, elements.
    pub fn finish(self) -> Vec<u8> {
        let mut header = [0u8; HEADER_ROOM];
        header[0] = ENCODING_PACKED;
        let len = 1 + write_varint(&mut header[1..], self.count);
        let mut out = self.body;
        let room = self.room;
        if len > room {
            // More elements than `in_buffer_for` was told: a longer
            // header goes in front (a copy of the value; never expected).
            out.splice(..room, header[..len].iter().copied());
            return out;
        }
        let start = room - len;
        out[start..room].copy_from_slice(&header[..len]);
        if start > 0 {
            // Moves the value to the front of its own buffer.
            out.drain(..start);
        }
        out
    }

    /// Bytes an element of `len` bytes adds (for size limits).
    pub fn element_cost(len: usize) -> usize {
        varint_len(len as u64) + len
    }

    /// Appends `element` encoded (its length, its bytes) to `out`: a
    /// value written straight into a bigger buffer (a list root).
    pub(crate) fn put_element(out: &mut Vec<u8>, element: &[u8]) {
        put_varint(out, element.len() as u64);
        out.extend_from_slice(element);
    }
}

/// Bytes of a packed value's header for `count` elements.
pub(crate) fn packed_header_len(count: u64) -> usize {
    1 + varint_len(count)
}

/// Appends a packed value's header for `count` elements to `out` (its
/// elements follow, [`PackedWriter::put_element`] or a body's bytes).
pub(crate) fn write_packed_header(out: &mut Vec<u8>, count: u64) {
    out.push(ENCODING_PACKED);
    put_varint(out, count);
}

/// Adds `elements` (in that order) before the old elements (`front`) or
/// after them, in the packed value's own buffer: the old elements are
/// moved, never decoded or copied to a new allocation, and the header is
/// rewritten (a push onto a list page: no allocation when the buffer has
/// room).
pub fn push_in_place<'e, I>(value: &mut Vec<u8>, front: bool, elements: I) -> Result<(), Corrupt>
where
    I: Iterator<Item = &'e [u8]> + Clone,
{
    let old = Packed::parse(value)?;
    let (count, body_len) = (old.len() as u64, old.body_len());
    let body_from = value.len() - body_len;
    let (added, added_bytes) = elements.clone().fold((0u64, 0usize), |(n, bytes), e| {
        (n + 1, bytes + PackedWriter::element_cost(e.len()))
    });
    let mut header = [0u8; HEADER_ROOM];
    header[0] = ENCODING_PACKED;
    let header_len = 1 + write_varint(&mut header[1..], count + added);
    let new_len = header_len + body_len + added_bytes;
    let (body_to, mut at) = match front {
        true => (header_len + added_bytes, header_len),
        false => (header_len, header_len + body_len),
    };
    // Grown before the move, cut after it: the old body stays in bounds.
    if new_len > value.len() {
        value.resize(new_len, 0);
    }
    value.copy_within(body_from..body_from + body_len, body_to);
    value.truncate(new_len);
    value[..header_len].copy_from_slice(&header[..header_len]);
    for element in elements {
        at += write_varint(&mut value[at..], element.len() as u64);
        value[at..at + element.len()].copy_from_slice(element);
        at += element.len();
    }
    Ok(())
}

/// Keeps only the `count` elements at body bytes `keep` (a run of whole
/// elements, [`Packed::offset_of`]) of the packed value, in its own
/// buffer: a pop off a list page moves the kept elements, never decodes
/// or reallocates them.
pub fn keep_in_place(value: &mut Vec<u8>, keep: Range<usize>, count: u64) -> Result<(), Corrupt> {
    let body_len = Packed::parse(value)?.body_len();
    if keep.start > keep.end || keep.end > body_len {
        return Err(Corrupt);
    }
    let body_from = value.len() - body_len;
    let kept = body_from + keep.start..body_from + keep.end;
    let mut header = [0u8; HEADER_ROOM];
    header[0] = ENCODING_PACKED;
    let header_len = 1 + write_varint(&mut header[1..], count);
    // (A smaller count never needs a longer header: the kept elements
    // only move toward the front.)
    if header_len > kept.start {
        return Err(Corrupt);
    }
    let new_len = header_len + keep.len();
    value.copy_within(kept, header_len);
    value.truncate(new_len);
    value[..header_len].copy_from_slice(&header[..header_len]);
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Writes `v` as a varint at the front of `out` (room for 10 bytes);
/// returns its length.
fn write_varint(out: &mut [u8], mut v: u64) -> usize {
    let mut at = 0;
    while v >= 0x80 {
        out[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    out[at] = v as u8;
    at + 1
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// The length prefix at `pos` (a one-byte length, an element under 128
/// bytes, skips the varint loop), `pos` moved past it.
#[inline]
fn element_len(body: &[u8], pos: &mut usize) -> Result<usize, Corrupt> {
    match body.get(*pos) {
        Some(&len) if len < 0x80 => {
            *pos += 1;
            Ok(usize::from(len))
        }
        _ => usize::try_from(get_varint(body, pos)?).map_err(|_| Corrupt),
    }
}

/// Moves `pos` past `n` elements, reading only their length prefixes.
#[inline]
fn skip_elements(body: &[u8], pos: &mut usize, n: usize) -> Result<(), Corrupt> {
    for _ in 0..n {
        let len = element_len(body, pos)?;
        *pos = pos.checked_add(len).ok_or(Corrupt)?;
    }
    Ok(())
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, Corrupt> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos).ok_or(Corrupt)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `find_entry` agrees with a model over the decoded elements: the
        /// first entry whose first element is the key, its index and its
        /// elements; arbitrary bytes give an answer or Corrupt, no panic.
        #[test]
        fn find_entry_matches_the_decoded_entries(
            elements in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(0u8..4, 0..3),
                    proptest::collection::vec(0u8..4, 126..131),
                ],
                0..40,
            ),
            arity in 1usize..4,
            pick in 0usize..50,
            garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut w = PackedWriter::default();
            elements.iter().for_each(|e| w.push(e));
            let bytes = w.finish();
            let packed = Packed::parse(&bytes).unwrap();
            let key: Vec<u8> = elements.get(pick).cloned().unwrap_or_else(|| vec![9]);
            let model = elements
                .chunks(arity)
                .position(|entry| entry[0] == key)
                .filter(|&at| elements.chunks(arity).nth(at).unwrap().len() == arity);
            let found = packed.find_entry(arity, &key);
            match model {
                Some(at) => {
                    let found = found.unwrap().unwrap();
                    proptest::prop_assert_eq!(found.index, at);
                    let want: Vec<&[u8]> = elements[at * arity..at * arity + arity].iter().map(|e| &e[..]).collect();
                    proptest::prop_assert_eq!(found.elements, want);
                }
                None => {
                    let partial = elements.len() % arity != 0
                        && elements.chunks(arity).last().is_some_and(|e| e[0] == key)
                        && !elements.chunks(arity).any(|e| e.len() == arity && e[0] == key);
                    match partial {
                        true => proptest::prop_assert!(found.is_err()),
                        false => proptest::prop_assert!(found.unwrap().is_none()),
                    }
                }
            }
            let mut corrupt = vec![ENCODING_PACKED];
            corrupt.extend_from_slice(&garbage);
            if let Ok(packed) = Packed::parse(&corrupt) {
                let _ = packed.find_entry(arity, &key);
            }
        }
    }

    #[test]
    fn elements_round_trip() {
        let long = vec![7u8; 300];
        let elements: [&[u8]; 4] = [b"", b"field", &long, b"v"];
        let mut w = PackedWriter::default();
        elements.iter().for_each(|e| w.push(e));
        let bytes = w.finish();
        let packed = Packed::parse(&bytes).unwrap();
        assert_eq!(packed.len(), 4);
        assert_eq!(packed.to_vec().unwrap(), elements);
        assert_eq!(varint_len(300), 2);
        assert_eq!(PackedWriter::element_cost(300), 302);
    }

    #[test]
    fn long_counts_and_offsets() {
        // 300 elements: a two-byte count in the header written in place.
        let elements: Vec<Vec<u8>> = (0..300).map(|i| vec![b'x'; i % 140]).collect();
        let mut w = PackedWriter::with_capacity(4);
        elements.iter().for_each(|e| w.push(e));
        let bytes = w.finish();
        assert_eq!(&bytes[..3], &[ENCODING_PACKED, 0xac, 0x02]);
        let packed = Packed::parse(&bytes).unwrap();
        assert_eq!(packed.to_vec().unwrap(), elements);
        let mut at = 0;
        for (i, e) in elements.iter().enumerate() {
            assert_eq!(packed.offset_of(i), Ok(at), "element {i}");
            at += PackedWriter::element_cost(e.len());
        }
        assert_eq!(packed.offset_of(300), Ok(packed.body_len()));
        assert_eq!(packed.offset_of(301), Err(Corrupt));
        let tail = Packed::from_body(&packed.body()[packed.offset_of(298).unwrap()..], 2);
        assert_eq!(tail.to_vec().unwrap(), elements[298..]);
        // A length prefix running past the body is corrupt.
        assert_eq!(
            Packed::parse(&[0, 2, 5, b'a']).unwrap().offset_of(1),
            Err(Corrupt)
        );
    }

    #[test]
    fn a_told_most_count_gives_the_same_value() {
        // Counts on both sides of a header size, told exactly, told more
        // (a shorter header: moved to the front), told too few (longer).
        for (count, most) in [(0, 0), (3, 4), (127, 127), (100, 300), (128, 127), (5, 0)] {
            let elements: Vec<Vec<u8>> = (0..count).map(|i| vec![b'e'; i % 9]).collect();
            let mut w = PackedWriter::in_buffer_for(vec![1, 2, 3], 8, most);
            elements.iter().for_each(|e| w.push(e));
            assert_eq!(w.finish(), encode_all(elements.iter()), "{count} of {most}");
        }
    }

    #[test]
    fn pushes_in_place_match_a_rewrite() {
        // Counts crossing a header size (127 -> 128 -> 16384) at both ends.
        for (start, added) in [(0, 1), (3, 2), (126, 3), (16_383, 2), (200, 0)] {
            let old: Vec<Vec<u8>> = (0..start).map(|i| vec![b'o'; i % 5]).collect();
            let new: Vec<Vec<u8>> = (0..added).map(|i| vec![b'n'; 130 * (i % 2)]).collect();
            for front in [true, false] {
                let mut value = encode_all(old.iter());
                push_in_place(&mut value, front, new.iter().map(Vec::as_slice)).unwrap();
                let expected = match front {
                    true => encode_all(new.iter().chain(&old)),
                    false => encode_all(old.iter().chain(&new)),
                };
                assert_eq!(value, expected, "{start} + {added}, front {front}");
            }
        }
        let mut foreign = vec![1, 0];
        assert_eq!(
            push_in_place(&mut foreign, true, [&b"x"[..]].into_iter()),
            Err(Corrupt)
        );
    }

    #[test]
    fn keeps_in_place_match_a_rewrite() {
        let all: Vec<Vec<u8>> = (0..200).map(|i| vec![b'k'; i % 7]).collect();
        let bytes = encode_all(all.iter());
        let packed = Packed::parse(&bytes).unwrap();
        for (from, to) in [(0, 200), (0, 120), (73, 200), (5, 6), (100, 100)] {
            let keep = packed.offset_of(from).unwrap()..packed.offset_of(to).unwrap();
            let mut value = bytes.clone();
            keep_in_place(&mut value, keep, (to - from) as u64).unwrap();
            assert_eq!(value, encode_all(all[from..to].iter()), "{from}..{to}");
        }
        let mut value = bytes.clone();
        let past = packed.body_len() + 1;
        assert_eq!(keep_in_place(&mut value, 0..past, 1), Err(Corrupt));
    }

    fn encode_all<'e>(elements: impl Iterator<Item = &'e Vec<u8>>) -> Vec<u8> {
        let mut w = PackedWriter::default();
        elements.for_each(|e| w.push(e));
        w.finish()
    }

    #[test]
    fn truncated_or_foreign_values_are_corrupt_never_a_panic() {
        let mut w = PackedWriter::default();
        w.push(b"abc");
        w.push(b"defgh");
        let bytes = w.finish();
        for cut in 0..bytes.len() {
            let parsed = Packed::parse(&bytes[..cut]).and_then(|p| p.to_vec());
            assert_eq!(parsed, Err(Corrupt), "cut at {cut}");
        }
        assert_eq!(Packed::parse(&[1, 0]).map(|p| p.len()), Err(Corrupt));
        assert_eq!(
            Packed::parse(&[0, 0xff, 0xff]).map(|p| p.len()),
            Err(Corrupt)
        );
        let huge_len = [
            0u8, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(Packed::parse(&huge_len).unwrap().to_vec(), Err(Corrupt));
    }
}
